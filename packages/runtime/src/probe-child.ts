/**
 * Measures one execution provider, in a process of its own: a provider that fails may abort the process
 * or print driver noise, and neither must reach the node. Reads a ProbeRequest as JSON from argv[2] and
 * prints one ProbeResult as JSON on stdout.
 */
import ort from 'onnxruntime-node'
import { buildCalibrationModel, calibrationFlops, CALIBRATION_SHAPE } from './calibration-model.js'
import type { ProbeRequest, ProbeResult } from './probe.js'

async function main (): Promise<ProbeResult> {
  const request: ProbeRequest = JSON.parse(process.argv[2] ?? '{}')
  const shape = CALIBRATION_SHAPE
  const session = await ort.InferenceSession.create(buildCalibrationModel(shape), {
    executionProviders: [request.provider],
    intraOpNumThreads: request.cpuThreads,
    logSeverityLevel: 3
  })
  const input = new Float32Array(shape.batch * shape.width)
  for (let i = 0; i < input.length; i++) input[i] = ((i * 2654435761) % 1000) / 1000 - 0.5
  const feeds = { input: new ort.Tensor('float32', input, [shape.batch, shape.width]) }

  // The first runs compile kernels and fill caches: keep them out of the rate.
  for (let i = 0; i < 2; i++) await session.run(feeds)
  let runs = 0
  const started = performance.now()
  while (runs < 3 || (performance.now() - started < request.measureMs && runs < 1000)) {
    const out = await session.run(feeds)
    const y = out.output.data as Float32Array
    if (!Number.isFinite(y[0])) throw new Error('calibration output is not finite')
    runs++
  }
  const seconds = (performance.now() - started) / 1000
  await session.release()
  return { provider: request.provider, ok: true, gflops: calibrationFlops(shape) * runs / seconds / 1e9, runs }
}

main().then(result => {
  process.stdout.write(JSON.stringify(result) + '\n')
  process.exit(0)
}, (err: Error) => {
  const request: ProbeRequest = JSON.parse(process.argv[2] ?? '{}')
  // ONNX Runtime prefixes its messages with a source path and a C++ lambda: keep the readable tail
  const message = String(err?.message ?? err).split('\n')[0].replace(/^.*(?:was false\.|\]) */, '')
  process.stdout.write(JSON.stringify({ provider: request.provider, ok: false, error: message }) + '\n')
  process.exit(0)
})
