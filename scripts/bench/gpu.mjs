// The GPU proof: a worker whose capacity ad lists WebGPU runs a job's pieces on it; the same
// job then runs on a worker limited to the CPU provider (--no-gpu), in the same run. Outputs are
// compared with the cross-provider tolerance (allClose: rtol 1e-3, atol 1e-5; docs/architecture.md).
// Needs a GPU that onnxruntime-node's WebGPU provider can use (a machine whose GPU onnxruntime-node reaches through Vulkan);
// elsewhere it says why the worker has no WebGPU provider and exits 1.
// SHOAL_BENCH_GPU_ROWS / _WIDTH / _LAYERS change the job's size.
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ApiClient } from '@shoal/node'
import { allClose, formatNpy, parseNpy, syntheticBatch } from '@shoal/runtime'
import { buildCalibrationModel } from '@shoal/runtime/calibration-model'
import { record, table } from '../record.mjs'
import { startNodeProcess, tempDir, waitFor } from '../lib.mjs'

const ROWS = Number(process.env.SHOAL_BENCH_GPU_ROWS ?? 4096)
const WIDTH = Number(process.env.SHOAL_BENCH_GPU_WIDTH ?? 2048)
const LAYERS = Number(process.env.SHOAL_BENCH_GPU_LAYERS ?? 8)
const PIECES = 16
const common = ['--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--ad-interval', '1000']

async function start (args) {
  const dataDir = await tempDir('shoal-bench-gpu-')
  const proc = startNodeProcess(['--data-dir', dataDir, ...common, ...args], { timeoutMs: 120_000 })
  const ready = await proc.ready
  return { proc, dataDir, ...ready, client: await ApiClient.connect(dataDir) }
}

async function stop (node) {
  node.proc.proc.kill('SIGTERM')
  await node.proc.exited
}

/** Runs the job twice on whatever worker the submitter sees (the first run fetches the model and creates sessions); returns the second. */
async function runJob (submitter, model, inputPath) {
  const once = async () => {
    const { jobId } = await submitter.client.submitJob({ model, inputs: { input: { path: inputPath } }, options: { rowsPerPiece: ROWS / PIECES } })
    let view
    await waitFor(async () => { view = await submitter.client.job(jobId); return view.state === 'done' || view.state === 'failed' }, 'the job', 600_000, 20)
    if (view.state !== 'done') throw new Error(`the job failed: ${view.error}`)
    return { jobId, view }
  }
  await once()
  const { jobId, view } = await once()
  const output = parseNpy(await submitter.client.output(jobId, 'output'))
  return { wallMs: view.progress.elapsedMs, perProvider: view.progress.perProvider, output }
}

const fmt = n => n >= 10 ? n.toFixed(0) : n.toFixed(2)

export async function run ({ record: save }) {
  const gflop = 2 * ROWS * WIDTH * WIDTH * LAYERS / 1e9
  process.stderr.write(`model: ${LAYERS} layers of ${WIDTH}x${WIDTH} MatMul+Relu; batch of ${ROWS} rows in ${PIECES} pieces (${fmt(gflop)} GFLOP a job)\n`)
  const work = await tempDir('shoal-bench-gpu-work-')
  const inputPath = join(work, 'x.npy')
  await writeFile(inputPath, formatNpy(syntheticBatch([ROWS, WIDTH], 7)))
  const modelBytes = buildCalibrationModel({ batch: 0, width: WIDTH, layers: LAYERS })

  // the submitter runs no pieces while a worker can (fallback mode), and has no GPU to offer
  const submitter = await start(['--no-gpu', '--cpu-threads', '1'])
  const rows = []
  const results = {}
  try {
    const { cid } = await submitter.client.addModel(modelBytes)
    for (const kind of ['webgpu', 'cpu']) {
      const worker = await start([...(kind === 'cpu' ? ['--no-gpu'] : []), '--max-concurrency', '1', '--bootstrap', submitter.addrs[0]])
      try {
        await waitFor(async () => (await submitter.client.peers()).some(p => p.peerId === worker.peerId), 'the submitter to see the worker', 60_000)
        const ad = (await submitter.client.peers()).find(p => p.peerId === worker.peerId)
        const advertised = ad.providers.map(p => `${p.name} ${Math.round(p.gflops)}`).join(', ')
        process.stderr.write(`${kind} worker advertises: ${advertised}${ad.gpu != null ? ` (GPU: ${ad.gpu})` : ''}\n`)
        if (kind === 'webgpu' && !ad.providers.some(p => p.name === 'webgpu')) {
          const status = await worker.client.status()
          const why = status.calibration.failed.map(f => `${f.name}: ${f.error}`).join('; ') || 'not probed'
          throw new Error(`the worker does not advertise WebGPU, so there is nothing to measure here (${why}). This benchmark needs a machine with a GPU that WebGPU can use.`)
        }
        const result = await runJob(submitter, cid, inputPath)
        const onKind = result.perProvider[kind] ?? 0
        process.stderr.write(`${kind}: ${result.wallMs} ms, pieces per provider ${JSON.stringify(result.perProvider)}\n`)
        if (onKind !== PIECES) throw new Error(`only ${onKind} of ${PIECES} pieces ran on ${kind}: ${JSON.stringify(result.perProvider)}`)
        results[kind] = result
        rows.push([kind === 'webgpu' ? 'WebGPU (GPU allowed)' : 'CPU (--no-gpu)', advertised, `${onKind}/${PIECES}`, `${result.wallMs} ms`, fmt(gflop / (result.wallMs / 1000))])
      } finally {
        await stop(worker)
      }
    }
  } finally {
    await stop(submitter)
  }
  const close = allClose(results.webgpu.output, results.cpu.output)
  const speedup = results.cpu.wallMs / results.webgpu.wallMs
  const markdown = [
    `**GPU**: one worker process with the GPU allowed, then one with \`--no-gpu\` (all cores for the CPU provider), each running the same job alone: a ${LAYERS}-layer ${WIDTH}-wide MLP over ${ROWS} rows in ${PIECES} pieces (${fmt(gflop)} GFLOP); second of two runs. The submitter (\`--no-gpu\`, one thread) runs no pieces.`,
    '',
    table(['worker', 'advertised (GFLOP/s)', 'pieces on it', 'job wall time', 'job GFLOP/s'], rows),
    '',
    `WebGPU against CPU: ${speedup.toFixed(2)}x. Outputs ${close.ok ? 'agree' : 'DIFFER'} within the cross-provider tolerance (rtol 1e-3, atol 1e-5): largest difference ${close.maxAbsDiff.toExponential(2)}${close.ok ? '' : `; ${close.reason}`}.`
  ].join('\n')
  process.stdout.write(markdown + '\n')
  // with SHOAL_INFERENCE_THREAD=0 (inherited by the node processes) sessions ran on each node's main thread
  const mainThread = process.env.SHOAL_INFERENCE_THREAD === '0'
  if (save) await record('gpu', `${mainThread ? 'SHOAL_INFERENCE_THREAD=0 ' : ''}pnpm bench gpu --record`, markdown + (mainThread ? '\n\nSessions ran on the nodes\' main threads (`SHOAL_INFERENCE_THREAD=0`), not on their inference threads.' : ''))
  if (!close.ok) process.exitCode = 1
}
