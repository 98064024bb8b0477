import type { ShoalNode } from '@shoal/node'
import { buildCalibrationModel } from '@shoal/runtime/calibration-model'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { formatNpy, parseNpy, SessionCache } from '@shoal/runtime'
import type { PieceRuntime, Tensor } from '@shoal/runtime'
import { afterEach, describe, expect, it } from 'vitest'
import { localRun, metricValue, runCli, sameBytes, spawnNode, startNode, startNodeWith, stopAll, tempDir, waitFor, withDynamicBatch } from './helpers.js'
import type { NodeProcess } from './helpers.js'

let nodes: ShoalNode[] = []
afterEach(async () => {
  await stopAll(nodes)
  nodes = []
})

const MODEL = withDynamicBatch(buildCalibrationModel({ batch: 1, width: 64, layers: 2 }))
const x = (rows: number): Tensor => ({ dtype: 'float32', dims: [rows, 64], data: new Uint8Array(Float32Array.from({ length: rows * 64 }, (_, i) => Math.sin(i)).buffer) })

/** How long a worker's runs wait before computing (set by the test), and how many wait now. */
interface Delay { ms: number, waiting: number }

/** Each worker's ONNX Runtime sessions, opened ahead when a test asks (`mesh`): a first request's session start, slow on a busy machine, would count in the router's view of its speed. */
const warmers = new WeakMap<ShoalNode, (cid: string) => Promise<unknown>>()

/** A worker advertising `gflops` whose runs first wait `delay.ms`. */
async function worker (bootstrap: string[], gflops: number, delay: Delay, flags: Record<string, unknown> = {}): Promise<ShoalNode> {
  const real = new SessionCache({ providers: ['cpu'], cpuThreads: 1 })
  const runtime: PieceRuntime = {
    run: async (cid, load, inputs, options) => {
      delay.waiting++
      try {
        if (delay.ms > 0) await new Promise(resolve => setTimeout(resolve, delay.ms))
      } finally {
        delay.waiting--
      }
      return await real.run(cid, load, inputs, options)
    },
    close: async () => { await real.close() }
  }
  const node = await startNodeWith(runtime, bootstrap, { gflops, flags })
  warmers.set(node, async cid => await real.run(cid, async () => MODEL, { input: x(1) }))
  return node
}

/** A submitter (computing nothing unless `localSlots`) and workers of these speeds, every one holding the model. */
async function mesh (workers: Array<{ gflops: number, flags?: Record<string, unknown> }>, localSlots = 0, warm = false): Promise<{ submitter: ShoalNode, workers: ShoalNode[], cid: string, delays: Delay[] }> {
  const submitter = await startNode([], { maxConcurrency: localSlots })
  const delays = workers.map(() => ({ ms: 0, waiting: 0 }))
  const rest = await Promise.all(workers.map(async (w, i) => await worker([submitter.addrs[0]], w.gflops, delays[i], w.flags)))
  nodes = [submitter, ...rest]
  const [model] = await Promise.all(nodes.map(async n => await n.addModel(MODEL)))
  await waitFor(() => submitter.peers().length === workers.length && submitter.peers().every(p => p.models.includes(model.cid)), 'every worker\'s ad, listing the model')
  if (warm) await Promise.all(rest.map(async w => await warmers.get(w)!(model.cid)))
  return { submitter, workers: rest, cid: model.cid, delays }
}

describe('inference requests', () => {
  it('go whole to the peer expected to answer first, with the answer a local run gives', async () => {
    const { submitter, workers, cid } = await mesh([{ gflops: 50 }, { gflops: 500 }])
    const input = x(3)
    const result = await submitter.infer(cid, { input }, { verify: 'off', hedge: false })
    expect(result.peerId).toBe(workers[1].peerId)
    expect(result.hedged).toBe(false)
    expect(result.failures).toEqual([])
    expect(sameBytes(result.outputs.output, (await localRun(MODEL, { input })).output)).toBe(true)
    // the worker that answered now keeps a session of the model, and its ad says so
    await waitFor(() => submitter.peers().find(p => p.peerId === workers[1].peerId)?.warmModels?.includes(cid) === true, 'the answering worker\'s ad to list the model as warm')
    expect(submitter.peers().find(p => p.peerId === workers[0].peerId)?.warmModels).toEqual([])
  })

  it('64 at once to one worker all get their answer: those past its share wait here, none is refused', async () => {
    const { submitter, workers, cid } = await mesh([{ gflops: 50 }])
    const input = x(1)
    const reference = (await localRun(MODEL, { input })).output
    const results = await Promise.all(Array.from({ length: 64 }, async () => await submitter.infer(cid, { input }, { verify: 'off' })))
    for (const r of results) {
      expect(r.peerId).toBe(workers[0].peerId)
      expect(r.failures).toEqual([])
      expect(sameBytes(r.outputs.output, reference)).toBe(true)
    }
  })

  it('sent together, run on the worker as one ONNX Runtime call (dynamic batching), each answer exactly that of its own run', async () => {
    const { submitter, workers, cid } = await mesh([{ gflops: 50, flags: { maxConcurrency: 16, batchWindowMs: 20 } }])
    const inputs = Array.from({ length: 16 }, (_, i) => ({ dtype: 'float32' as const, dims: [1, 64], data: new Uint8Array(Float32Array.from({ length: 64 }, (_, k) => Math.cos(i * 64 + k)).buffer) }))
    const results = await Promise.all(inputs.map(async input => await submitter.infer(cid, { input }, { verify: 'off', hedge: false })))
    for (const [i, r] of results.entries()) expect(sameBytes(r.outputs.output, (await localRun(MODEL, { input: inputs[i] })).output)).toBe(true)
    const text = await workers[0].metrics.text()
    expect(metricValue(text, 'shoal_batched_runs_total')).toBeGreaterThan(0)
    expect(metricValue(text, 'shoal_batched_pieces_total')).toBeGreaterThan(metricValue(text, 'shoal_batched_runs_total')!)
  })

  it('run here when this node is expected to answer first', async () => {
    const { submitter, cid } = await mesh([{ gflops: 50 }], 2)
    const result = await submitter.infer(cid, { input: x(2) }, { verify: 'off' })
    expect(result.peerId).toBe(submitter.peerId)
  })

  it('are hedged to a second peer when the first is slower than its p95, and the first answer wins', async () => {
    const { submitter, workers, cid, delays } = await mesh([{ gflops: 5000 }, { gflops: 50 }], 0, true)
    // the router learns the fast worker's times (and, should it try the slow one, that it is slow): on a
    // loaded machine the fast one's measured times can exceed the slow one's untried estimate at first
    delays[1].ms = 1500
    const answered: string[] = []
    for (let i = 0; i < 8; i++) answered.push((await submitter.infer(cid, { input: x(2) }, { verify: 'off', hedge: false })).peerId)
    expect(answered.slice(-3)).toEqual(Array(3).fill(workers[0].peerId))
    delays[1].ms = 0
    delays[0].ms = 3000
    const started = performance.now()
    const result = await submitter.infer(cid, { input: x(2) }, { verify: 'off' })
    expect(result.hedged).toBe(true)
    expect(result.peerId).toBe(workers[1].peerId)
    // the hedge's answer came long before the slow copy's would have
    expect(performance.now() - started).toBeLessThan(3000)
  })

  it('survive their peer dying mid-request: a retry on another, never an error', async () => {
    const { submitter, workers, cid, delays } = await mesh([{ gflops: 5000 }, { gflops: 50 }])
    const input = x(8)
    delays[0].ms = 3000
    const pending = submitter.infer(cid, { input }, { verify: 'off', hedge: false })
    // the favourite has the request now; it dies before answering
    await waitFor(() => delays[0].waiting > 0, 'the request at the favourite')
    await workers[0].kill()
    const result = await pending
    expect(result.peerId).toBe(workers[1].peerId)
    expect(result.failures.map(f => f.peerId)).toEqual([workers[0].peerId])
    expect(sameBytes(result.outputs.output, (await localRun(MODEL, { input })).output)).toBe(true)
  })
})

describe('inference requests from the command line and the HTTP API', () => {
  let procs: NodeProcess[] = []
  afterEach(() => {
    for (const p of procs) p.proc.kill('SIGKILL')
    procs = []
  })

  it('shoal infer writes the outputs and says who answered; POST /v1/infer takes and gives JSON tensors, and refuses bad ones', async () => {
    const work = await tempDir('shoal-infer-')
    await writeFile(join(work, 'mlp.onnx'), MODEL)
    const input = x(3)
    await writeFile(join(work, 'x.npy'), formatNpy(input))
    const dataDir = await tempDir()
    procs = [await spawnNode(['--data-dir', dataDir, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--no-gpu', '--cpu-threads', '1'])]
    const reference = (await localRun(MODEL, { input })).output
    const cli = await runCli(['infer', join(work, 'mlp.onnx'), '--input', `input=${join(work, 'x.npy')}`, '--output', join(work, 'out'), '--json', '--data-dir', dataDir])
    expect(cli.stderr).toBe('')
    expect(cli.code).toBe(0)
    const report = JSON.parse(cli.stdout)
    // alone, the node answers itself
    expect(report).toMatchObject({ peerId: procs[0].peerId, hedged: false, provider: 'cpu', failures: [] })
    expect(sameBytes(parseNpy(await readFile(report.outputs.output)), reference)).toBe(true)
    const usage = await runCli(['infer', join(work, 'mlp.onnx'), '--input', `input=${join(work, 'x.npy')}`, '--output', join(work, 'out'), '--verify', 'full', '--data-dir', dataDir])
    expect(usage.code).toBe(2)
    expect(usage.stderr).toMatch(/--verify must be off or spot/)

    const api = JSON.parse(await readFile(join(dataDir, 'api.json'), 'utf8'))
    const post = async (body: unknown): Promise<{ status: number, json: any }> => {
      const res = await fetch(`${api.url as string}/v1/infer`, { method: 'POST', headers: { authorization: `Bearer ${api.token as string}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
      return { status: res.status, json: await res.json() }
    }
    const model = report.outputs != null ? (await (await fetch(`${api.url as string}/v1/models`, { headers: { authorization: `Bearer ${api.token as string}` } })).json())[0].cid : undefined
    const values = Array.from(new Float32Array(input.data.slice().buffer))
    const answer = await post({ model, inputs: { input: { dtype: 'float32', dims: input.dims, values } } })
    expect(answer.status).toBe(200)
    expect(answer.json.outputs.output.dims).toEqual([3, 64])
    expect(answer.json.outputs.output.values).toEqual(Array.from(new Float32Array(reference.data.slice().buffer)))
    const bad = await post({ model, inputs: { input: { dtype: 'float32', dims: [3, 64], values: [1, 2] } } })
    expect(bad.status).toBe(400)
    expect(bad.json.error.message).toMatch(/values must be a flat array of 192 elements/)
    const wrongShape = await post({ model, inputs: { input: { dtype: 'float32', dims: [1, 3], values: [1, 2, 3] } } })
    expect(wrongShape.status).toBe(400)
    expect(wrongShape.json.error.message).toMatch(/input "input" has shape \[1, 3\]/)
  })
})

