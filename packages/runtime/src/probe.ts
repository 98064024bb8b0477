import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { PROBE_MEASURE_MS, PROBE_TIMEOUT_MS } from './constants.js'

export interface ProbeRequest {
  provider: string
  cpuThreads: number
  measureMs: number
}

export type ProbeResult =
  | { provider: string, ok: true, gflops: number, runs: number }
  | { provider: string, ok: false, error: string }

export interface ProbeOptions {
  cpuThreads: number
  /** Time spent measuring each provider after warm-up. */
  measureMs?: number
  /** A provider that has not answered by then counts as not working. */
  timeoutMs?: number
}

const probeChild = fileURLToPath(new URL('./probe-child.js', import.meta.url))

/**
 * Execution providers this build of ONNX Runtime carries. Only bundled ones can work without extra
 * downloads (CUDA and TensorRT need libraries onnxruntime-node's install script would fetch).
 */
export function bundledProviders (): string[] {
  const require = createRequire(import.meta.url)
  const ort = require('onnxruntime-node') as typeof import('onnxruntime-node')
  return ort.listSupportedBackends().filter(b => b.bundled).map(b => b.name)
}

/**
 * Runs the calibration model on one provider in a child process and reports whether it really worked
 * and how fast. A provider's name in ONNX Runtime's list proves nothing: WebGPU is listed everywhere but
 * works only where a GPU adapter does.
 */
export async function probeProvider (provider: string, options: ProbeOptions): Promise<ProbeResult> {
  const request: ProbeRequest = { provider, cpuThreads: options.cpuThreads, measureMs: options.measureMs ?? PROBE_MEASURE_MS }
  return await new Promise(resolve => {
    execFile(process.execPath, [probeChild, JSON.stringify(request)], {
      timeout: options.timeoutMs ?? PROBE_TIMEOUT_MS,
      maxBuffer: 1024 * 1024
    }, (err, stdout) => {
      const line = stdout.trim().split('\n').pop() ?? ''
      try {
        const result = JSON.parse(line) as ProbeResult
        if (result.provider === provider) {
          resolve(result)
          return
        }
      } catch {}
      const why = err?.killed === true ? `no answer within ${options.timeoutMs ?? PROBE_TIMEOUT_MS} ms` : (err?.message ?? 'no result').split('\n')[0]
      resolve({ provider, ok: false, error: why })
    })
  })
}
