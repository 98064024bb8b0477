import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { ShoalNode } from '@shoal/node'
import { formatNpy, parseNpy, SessionCache } from '@shoal/runtime'
import type { PieceRuntime } from '@shoal/runtime'
import { buildTransformerModel, transformerInputs } from '@shoal/runtime/transformer-model'
import type { TransformerShape } from '@shoal/runtime/transformer-model'
import { afterEach, describe, expect, it } from 'vitest'
import { DETECTION_MODEL, images, localRun, metricValue, runCli, sameBytes, spawnNode, startNode, startNodeWith, stopAll, tempDir, waitFor } from './helpers.js'
import type { NodeProcess } from './helpers.js'

let nodes: ShoalNode[] = []
afterEach(async () => {
  await stopAll(nodes)
  nodes = []
})

const SHAPE: TransformerShape = { sequence: 16, vocabulary: 256, width: 64, heads: 4, layers: 4, seed: 3 }
// the whole transformer is about 950 kB; each of its four stages under 300 kB
const WORKER_LIMIT = 400_000

/** A submitter that computes nothing and workers that see it, with these flags. */
async function pipelineMesh (workers: number, submitterFlags: Record<string, unknown>, workerFlags: Record<string, unknown>, slowdown?: number): Promise<ShoalNode[]> {
  const submitter = await startNode([], { maxConcurrency: 0, ...submitterFlags })
  const rest = await Promise.all(Array.from({ length: workers }, async () => await startNode([submitter.addrs[0]], workerFlags, { slowdown })))
  const all = [submitter, ...rest]
  await waitFor(() => submitter.peers().length === workers, 'the submitter to see every worker')
  return all
}

describe('a model no single peer may hold runs as a pipeline across the mesh', () => {
  it('a GPT-like transformer in 4 stages over 4 workers: logits equal the whole model run here, bit for bit; the whole model is refused by every worker', async () => {
    const whole = buildTransformerModel(SHAPE)
    nodes = await pipelineMesh(4, { maxModelBytes: WORKER_LIMIT }, { maxModelBytes: WORKER_LIMIT })
    const [submitter, ...workers] = nodes
    // the submitter may not hold the whole model either: it keeps the stages only
    await expect(submitter.addModel(whole)).rejects.toThrow(/over the limit/)
    const { pipeline, split } = await submitter.splitModel(whole, { stages: 4, sample: { input_ids: transformerInputs(SHAPE, 2) } })
    expect(pipeline.manifest.stages).toHaveLength(4)
    expect(split.check.identical).toBe(true)
    for (const stage of pipeline.manifest.stages) expect(stage.bytes).toBeLessThan(WORKER_LIMIT)
    expect(submitter.models.list().map(m => m.cid).sort()).toEqual(pipeline.manifest.stages.map(s => s.cid).sort())

    const input = transformerInputs(SHAPE, 24, 11)
    const job = submitter.submitJob(pipeline.cid, { input_ids: input }, { verify: 'off', rowsPerPiece: 2 })
    const result = await job.run()
    const reference = await localRun(whole, { input_ids: input })
    expect(sameBytes(result.outputs.logits, reference.logits)).toBe(true)
    const progress = result.progress as any
    expect(progress.pipeline.microBatches).toBe(12)
    expect(progress.pipeline.stages.map((s: any) => s.done)).toEqual([12, 12, 12, 12])
    // every piece went to workers (the submitter computes nothing), and the workers fetched the stages they served
    expect(progress.perPeer[submitter.peerId]).toBeUndefined()
    expect(Object.keys(progress.perPeer).every(p => workers.some(w => w.peerId === p))).toBe(true)

    // a batch job on the whole model, from a node that may hold it: every worker refuses it
    const holder = await startNode([submitter.addrs[0]], { maxConcurrency: 0 })
    nodes.push(holder)
    await waitFor(() => holder.peers().filter(p => workers.some(w => w.peerId === p.peerId)).length === 4, 'the holder to see every worker')
    const model = await holder.addModel(whole)
    const refused = holder.submitJob(model.cid, { input_ids: input }, { verify: 'off', rowsPerPiece: 24, maxAttempts: 4 })
    const error = await refused.run().then(() => undefined, err => err)
    expect(error?.name).toBe('JobError')
    expect(error.message).toMatch(/--max-model-size/)
    const refusers = new Set(refused.progress().failures.filter(f => /--max-model-size/.test(f.reason)).map(f => f.peerId))
    expect(refusers.size).toBe(4)
  })

  it('a stage host killed mid-job: the job completes with the same outputs, its micro-batches replayed from the boundary held here', async () => {
    const whole = buildTransformerModel(SHAPE)
    // slowed 3x, so that the job is still running when a worker dies
    nodes = await pipelineMesh(4, {}, { maxModelBytes: WORKER_LIMIT }, 3)
    const [submitter, ...workers] = nodes
    const { pipeline } = await submitter.splitModel(whole, { stages: 4, sample: { input_ids: transformerInputs(SHAPE, 2) } })
    const input = transformerInputs(SHAPE, 32, 5)
    const job = submitter.submitJob(pipeline.cid, { input_ids: input }, { verify: 'off', rowsPerPiece: 2, timeoutFloorMs: 20_000 })
    let victim: ShoalNode | undefined
    job.onProgress(p => {
      const stages = (p as any).pipeline.stages as Array<{ done: number, running: Record<string, number> }>
      if (victim != null || stages[0].done < 3) return
      // a worker with a micro-batch in flight: its death must cost a replay
      victim = workers.find(w => stages.some(s => (s.running[w.peerId] ?? 0) > 0))
      if (victim != null) void victim.kill()
    })
    const result = await job.run()
    expect(victim).toBeDefined()
    const reference = await localRun(whole, { input_ids: input })
    expect(sameBytes(result.outputs.logits, reference.logits)).toBe(true)
    const stages = (result.progress as any).pipeline.stages as Array<{ replays: number }>
    expect(stages.reduce((n, s) => n + s.replays, 0)).toBeGreaterThan(0)
    expect(result.progress.failures.some(f => f.peerId === victim!.peerId)).toBe(true)
  })

  it('PP-OCRv4 text detection in 3 stages over 3 workers equals the whole model, bit for bit', async () => {
    const detection = await readFile(DETECTION_MODEL)
    nodes = await pipelineMesh(3, {}, {})
    const [submitter] = nodes
    const x = images(6, 64, 64)
    const { pipeline, split } = await submitter.splitModel(detection, { stages: 3, sample: { x: images(1, 64, 64) } })
    expect(split.check.identical).toBe(true)
    const result = await submitter.submitJob(pipeline.cid, { x }, { verify: 'off', rowsPerPiece: 2 }).run()
    const reference = await localRun(detection, { x })
    const name = Object.keys(reference)[0]
    expect(sameBytes(result.outputs[name], reference[name])).toBe(true)
  })

  it('a pipeline published by name on one node runs from another: its manifest comes from the peers (a holder sending other bytes is passed over), its stages reach the workers', async () => {
    const whole = buildTransformerModel(SHAPE)
    nodes = await pipelineMesh(3, {}, { maxModelBytes: WORKER_LIMIT })
    const [submitter] = nodes
    const publisher = await startNode([submitter.addrs[0]], { maxConcurrency: 0 })
    nodes.push(publisher)
    const { pipeline } = await publisher.splitModel(whole, { stages: 4, name: 'gpt@1', sample: { input_ids: transformerInputs(SHAPE, 2) } })
    // a second holder of the manifest that corrupts what it serves
    const liar = await startNode([submitter.addrs[0]], { maxConcurrency: 0 })
    nodes.push(liar)
    await liar.fetchPipeline(pipeline.cid, { hints: [publisher.peerId] })
    liar.swarm.corruptServedBlocks = true
    await waitFor(() => submitter.peers().length === 5, 'the submitter to see the publisher and the liar')
    let resolved: { cid: string } | undefined
    await waitFor(async () => {
      resolved = await submitter.resolveModel('gpt@1', [publisher.peerId]).catch(() => undefined)
      return resolved != null
    }, 'the name to resolve through the DHT', 20_000)
    expect(resolved!.cid).toBe(pipeline.cid)
    const fetched = await submitter.fetchPipeline(resolved!.cid, { hints: [liar.peerId, publisher.peerId] })
    expect(fetched.manifest).toEqual(pipeline.manifest)
    // the liar was asked first and answered: its bytes did not hash to the CID
    expect(metricValue(await liar.metrics.text(), 'shoal_model_served_bytes_total')).toBeGreaterThan(0)
    const input = transformerInputs(SHAPE, 8, 3)
    const result = await submitter.submitJob(pipeline.cid, { input_ids: input }, { verify: 'off', rowsPerPiece: 2 }).run()
    const reference = await localRun(whole, { input_ids: input })
    expect(sameBytes(result.outputs.logits, reference.logits)).toBe(true)
  })

  it('under spot verification (the default) a stage host that perturbs its answers is caught and excluded; the logits are still exact', async () => {
    const whole = buildTransformerModel(SHAPE)
    nodes = await pipelineMesh(2, {}, {})
    const [submitter] = nodes
    const liar = await perturbingWorker([submitter.addrs[0]])
    nodes.push(liar)
    await waitFor(() => submitter.peers().length === 3, 'the submitter to see the liar')
    const { pipeline, split } = await submitter.splitModel(whole, { stages: 2, sample: { input_ids: transformerInputs(SHAPE, 2) } })
    // the liar holds the stages and advertises the most speed: it is sure to get the first micro-batches
    for (const stage of split.stages) await liar.addModel(stage.bytes)
    await waitFor(() => pipeline.manifest.stages.every(s => submitter.peers().find(p => p.peerId === liar.peerId)?.models.includes(s.cid) === true), 'the liar\'s ad to list the stages')
    const input = transformerInputs(SHAPE, 16, 8)
    const job = submitter.submitJob(pipeline.cid, { input_ids: input }, { rowsPerPiece: 2 })
    const result = await job.run()
    const reference = await localRun(whole, { input_ids: input })
    expect(sameBytes(result.outputs.logits, reference.logits)).toBe(true)
    const v = result.progress.verification
    expect(v.policy).toBe('spot')
    expect(v.excluded).toEqual([liar.peerId])
    expect(v.mismatches).toBeGreaterThan(0)
  })
})

describe('shoal model split and shoal run, from the command line', () => {
  let procs: NodeProcess[] = []
  afterEach(() => {
    for (const p of procs) p.proc.kill('SIGKILL')
    procs = []
  })

  it('split prints the pipeline (table, or --json), refuses bad --stages, and run takes the pipeline by its name; the summary shows the stages', async () => {
    const work = await tempDir('shoal-split-')
    const whole = buildTransformerModel(SHAPE)
    await writeFile(join(work, 'gpt.onnx'), whole)
    const input = transformerInputs(SHAPE, 6, 4)
    await writeFile(join(work, 'ids.npy'), formatNpy(input))
    const dataDir = await tempDir()
    procs = [await spawnNode(['--data-dir', dataDir, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--no-gpu', '--cpu-threads', '1'])]
    const bad = await runCli(['model', 'split', join(work, 'gpt.onnx'), '--stages', '0', '--data-dir', dataDir])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/--stages must be a whole number from 1 to 64/)
    const split = await runCli(['model', 'split', join(work, 'gpt.onnx'), '--stages', '2', '--name', 'gpt@2', '--json', '--data-dir', dataDir])
    expect(split.stderr).toBe('')
    expect(split.code).toBe(0)
    const report = JSON.parse(split.stdout)
    expect(report.cid).toMatch(/^bagaaiera/)
    expect(report.stages).toHaveLength(2)
    expect(report.stages[0]).toMatchObject({ inputs: [{ name: 'input_ids', dtype: 'int64' }] })
    expect(report.stages[1].outputs.map((t: any) => t.name)).toEqual(['logits'])
    expect(report.check).toEqual({ identical: true, maxAbsDiff: 0 })
    expect(report.name).toMatchObject({ name: 'gpt', version: '2', cid: report.cid })
    const run = await runCli(['run', 'gpt@2', '--input', `input_ids=${join(work, 'ids.npy')}`, '--output', join(work, 'out'), '--data-dir', dataDir])
    expect(run.code).toBe(0)
    expect(run.stdout).toMatch(/pipeline: 2 stages, \d+ micro-batches of \d+ rows; nothing replayed/)
    const logits = parseNpy(await readFile(join(work, 'out', 'logits.npy')))
    expect(sameBytes(logits, (await localRun(whole, { input_ids: input })).logits)).toBe(true)
  })
})

/** A worker that runs each piece for real and answers every value times 1.001: ten times the tolerance. */
async function perturbingWorker (bootstrap: string[]): Promise<ShoalNode> {
  const real = new SessionCache({ providers: ['cpu'], cpuThreads: 1 })
  const runtime: PieceRuntime = {
    run: async (cid, load, inputs, options) => {
      const result = await real.run(cid, load, inputs, options)
      for (const t of Object.values(result.outputs)) {
        if (t.dtype === 'float32') t.data = new Uint8Array(new Float32Array(t.data.slice().buffer).map(v => v * 1.001).buffer)
      }
      return result
    },
    close: async () => { await real.close() }
  }
  return await startNodeWith(runtime, bootstrap, { gflops: 500 })
}
