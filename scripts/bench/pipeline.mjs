// Pipeline benchmarks: a GPT-like transformer cut into stages and run through worker processes, against
// ONNX Runtime in this process: throughput against the slowest stage alone (the ideal of a pipeline),
// the overhead of each hop, the time a stage host's death costs, and the activations moved per row.
import { resolveConfig, ShoalNode } from '@shoal/node'
import { SessionCache, sliceRows } from '@shoal/runtime'
import { buildTransformerModel, transformerInputs } from '@shoal/runtime/transformer-model'
import os from 'node:os'
import { record, table } from '../record.mjs'
import { startNodeProcess, tempDir, waitFor } from '../lib.mjs'

const SHAPE = { sequence: 64, vocabulary: 512, width: 256, heads: 8, layers: 8, seed: 5 }
const STAGES = Number(process.env.SHOAL_BENCH_STAGES ?? 4)
const WORKERS = Number(process.env.SHOAL_BENCH_PIPELINE_WORKERS ?? 3)
const ROWS = Number(process.env.SHOAL_BENCH_PIPELINE_ROWS ?? 96)
const MICRO = Number(process.env.SHOAL_BENCH_MICRO_ROWS ?? 8)
const calibration = { providers: [{ name: 'cpu', gflops: 50 }], failed: [], gpu: null, measuredAt: 0 }

const cores = os.availableParallelism()
const median = values => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]

/** Rows per second of a model in this process, one thread, over the batch in micro-batches (after a warm-up run). */
async function localRate (sessions, key, bytes, batches) {
  await sessions.run(key, async () => bytes, batches[0])
  const started = performance.now()
  let rows = 0
  for (const inputs of batches) {
    await sessions.run(key, async () => bytes, inputs)
    rows += Object.values(inputs)[0].dims[0]
  }
  return rows / ((performance.now() - started) / 1000)
}

export async function run ({ record: save }) {
  const whole = buildTransformerModel(SHAPE)
  const config = await resolveConfig({ env: {}, dataDir: await tempDir('shoal-bench-'), flags: { listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, cpuThreads: 1, adIntervalMs: 500, maxConcurrency: 0 } })
  const submitter = new ShoalNode({ config, calibration, api: false })
  await submitter.start()
  const { pipeline, split } = await submitter.splitModel(whole, { stages: STAGES, sample: { input_ids: transformerInputs(SHAPE, 2) } })
  const input = transformerInputs(SHAPE, ROWS, 9)

  // references in this process: the whole model and each stage, on the same micro-batches
  const sessions = new SessionCache({ providers: ['cpu'], cpuThreads: 1 })
  const micro = Array.from({ length: ROWS / MICRO }, (_, i) => ({ input_ids: sliceRows(input, i * MICRO, MICRO) }))
  const wholeRate = await localRate(sessions, 'whole', whole, micro)
  const stageRates = []
  const stageMs = []
  let boundary = micro
  for (const [i, stage] of split.stages.entries()) {
    stageRates.push(await localRate(sessions, `stage${i}`, stage.bytes, boundary.map(b => Object.fromEntries(stage.inputs.map(t => [t.name, b[t.name]])))))
    const started = performance.now()
    const next = []
    for (const b of boundary) next.push({ ...b, ...(await sessions.run(`stage${i}`, async () => stage.bytes, Object.fromEntries(stage.inputs.map(t => [t.name, b[t.name]])))).outputs })
    stageMs.push((performance.now() - started) / boundary.length)
    boundary = next
  }
  await sessions.close()
  const slowest = Math.min(...stageRates)

  const workers = []
  for (let i = 0; i < WORKERS; i++) {
    workers.push(startNodeProcess(['--data-dir', await tempDir('shoal-bench-'), '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--no-gpu', '--cpu-threads', '1', '--ad-interval', '500', '--bootstrap', submitter.addrs[0], '--max-model-size', String(Math.max(...split.stages.map(s => s.bytes.byteLength)) + 1)]))
  }
  const ready = await Promise.all(workers.map(w => w.ready))
  await waitFor(() => submitter.peers().length === WORKERS, 'every worker')
  const runJob = async (onProgress, onAttempt) => {
    const job = submitter.submitJob(pipeline.cid, { input_ids: input }, { verify: 'off', rowsPerPiece: MICRO, timeoutFloorMs: 30_000 })
    if (onProgress != null) job.onProgress(p => onProgress(p, job))
    if (onAttempt != null) job.onPieceAttempt(onAttempt)
    const started = performance.now()
    const result = await job.run()
    return { wallMs: performance.now() - started, progress: result.progress }
  }
  // warm-up: workers fetch the stages and open their sessions
  await runJob()
  const steady = await runJob()
  const meshRate = ROWS / (steady.wallMs / 1000)
  const movedPerRow = (steady.progress.bytesSent + steady.progress.bytesReceived) / ROWS

  // per hop: one micro-batch alone through every stage, against the stages' compute here
  const hops = []
  for (let i = 0; i < 10; i++) {
    const job = submitter.submitJob(pipeline.cid, { input_ids: sliceRows(input, 0, MICRO) }, { verify: 'off', rowsPerPiece: MICRO })
    const started = performance.now()
    await job.run()
    hops.push((performance.now() - started - stageMs.reduce((a, b) => a + b, 0)) / STAGES)
  }

  // repair: a worker with a micro-batch in flight killed once a third of the first stage is done; the
  // time from the kill to the last of its micro-batches answered by another host
  let killedAt = 0
  let victim = -1
  const lost = new Set()
  let repairedAt = 0
  const repaired = await runJob((p) => {
    if (killedAt !== 0 || p.pipeline.stages[0].done < ROWS / MICRO / 3) return
    victim = ready.findIndex(r => p.pipeline.stages.some(s => (s.running[r.peerId] ?? 0) > 0))
    if (victim < 0) return
    killedAt = performance.now()
    workers[victim].proc.kill('SIGKILL')
  }, attempt => {
    if (victim < 0) return
    if (attempt.outcome === 'failed' && attempt.peerId === ready[victim].peerId) lost.add(attempt.pieceId)
    if (attempt.outcome === 'done' && lost.has(attempt.pieceId)) repairedAt = Math.max(repairedAt, performance.now())
  })
  const replays = repaired.progress.pipeline.stages.reduce((n, s) => n + s.replays, 0)

  for (const w of workers) w.proc.kill('SIGKILL')
  await submitter.stop()

  const crossing = split.cuts.map(c => `${c.bytesPerRow}`).join(', ')
  const markdown = [
    `A ${SHAPE.layers}-block GPT-like transformer (width ${SHAPE.width}, ${SHAPE.sequence} tokens, ${(whole.byteLength / 2 ** 20).toFixed(1)} MiB) in ${STAGES} stages, ${ROWS} rows in micro-batches of ${MICRO}, through ${WORKERS} worker processes of one CPU thread each (the submitter computes nothing), against ONNX Runtime in the benchmark's process (one thread).`,
    '',
    table(['measure', 'value'], [
      ['whole model here, rows/s', wholeRate.toFixed(1)],
      ['slowest stage alone here, rows/s (the ideal pipeline rate)', slowest.toFixed(1)],
      ['each stage here, rows/s', stageRates.map(r => r.toFixed(1)).join(', ')],
      ['pipeline through the mesh, rows/s', meshRate.toFixed(1)],
      ['pipeline / slowest stage', (meshRate / slowest).toFixed(2)],
      [`this machine's ideal: the whole model's rate x ${Math.min(cores, WORKERS)} (cores the workers can use), rows/s`, (wholeRate * Math.min(cores, WORKERS)).toFixed(1)],
      ['pipeline / this machine\'s ideal', (meshRate / (wholeRate * Math.min(cores, WORKERS))).toFixed(2)],
      ['pipeline / whole model here', (meshRate / wholeRate).toFixed(2)],
      ['overhead per hop (one micro-batch alone, median of 10), ms', median(hops).toFixed(1)],
      ['bytes crossing each cut, per row', crossing],
      ['activations and inputs moved per row (both ways, all stages), bytes', Math.round(movedPerRow)],
      ['a stage host killed a third in: micro-batches replayed', String(replays)],
      ['from the kill to its last micro-batch answered by another host, ms', repairedAt > 0 ? (repairedAt - killedAt).toFixed(0) : 'none lost'],
      ['that job\'s wall time, against the same job undisturbed, s', `${(repaired.wallMs / 1000).toFixed(2)} / ${(steady.wallMs / 1000).toFixed(2)}`]
    ]),
    '',
    `The machine has ${cores} cores for ${WORKERS} workers and the submitter: where that is fewer than the workers, the pipeline rate is bounded by the cores, not by the slowest stage. The ideal of a pipeline (every stage busy on a core of its own, the rate of its slowest stage) needs a machine with a core per stage host: \`scripts/device-run.sh\` runs this benchmark on the 16-core device machine.`
  ].join('\n')
  process.stdout.write(markdown + '\n')
  if (save) await record('pipeline', 'pnpm bench pipeline --record', markdown)
}
