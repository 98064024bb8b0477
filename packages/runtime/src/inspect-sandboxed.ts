import { rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { DEFAULT_MAX_MODEL_BYTES, INSPECT_TIMEOUT_MS, MIN_INSPECT_HEAP_BYTES } from './constants.js'
import { ModelRejectedError, SandboxError } from './errors.js'
import type { FromInspector, ToInspector } from './inspect-process.js'
import { checkModelSize } from './model.js'
import type { ModelInfo } from './model.js'
import { scanModel } from './model-scan.js'
import { childCpuMs, spawnSandboxChild } from './sandbox-child.js'

export interface InspectInChildOptions {
  maxBytes?: number
  /** The bytes' CID, when the caller has computed it already. */
  cid?: string
  /**
   * The memory the inspecting process may hold (0: none beyond the sandbox's minimum): its JavaScript
   * heap, where a decoded model lives, is limited to this (at least MIN_INSPECT_HEAP_BYTES).
   */
  memoryLimitBytes?: number
  /** How long the inspection may take before its process is killed (default INSPECT_TIMEOUT_MS). */
  timeoutMs?: number
  /**
   * An inspection stopped at its time limit is the model's fault only if its process had the CPU for
   * at least this share of the limit (default 0.25): one that got less ran on a machine too busy to
   * judge the model by (Linux, where /proc tells; elsewhere every timeout is the model's).
   */
  blameCpuShare?: number
  /** Starts the child (tests start one that fails, idles or spins). */
  spawnChild?: typeof spawnSandboxChild
}

const DEFAULT_BLAME_CPU_SHARE = 0.25

/**
 * `inspectModel` in a sandboxed child process of its own (sandbox-child.ts), started for this model
 * and ended after it: decoding a model a stranger sent is the first thing that runs on it, and a
 * decode that takes the heap, crashes or never ends takes only that process. The size limit and the
 * wire-level count of nodes and tensors run here first, on the node's side, so that nothing over the
 * limits is even copied to the child. Such a failure is a ModelRejectedError 'too-complex'; the
 * model's own faults keep their reasons. Costs a process start (100-140 ms here: docs/benchmarks.md)
 * and a copy of the bytes.
 */
export async function inspectModelInChild (bytes: Uint8Array, options: InspectInChildOptions = {}): Promise<ModelInfo> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_MODEL_BYTES
  const timeoutMs = options.timeoutMs ?? INSPECT_TIMEOUT_MS
  // one pass over the bytes, no allocation: a model past the limits costs no process
  checkModelSize(bytes.byteLength, maxBytes)
  scanModel(bytes)
  const script = fileURLToPath(new URL('./inspect-process.js', import.meta.url))
  const limit = options.memoryLimitBytes ?? 0
  const heap = limit > 0 ? [`--max-old-space-size=${Math.ceil(Math.max(MIN_INSPECT_HEAP_BYTES, limit) / 2 ** 20)}`] : []
  const { child, cwd, lastWords } = (options.spawnChild ?? spawnSandboxChild)(script, { memoryLimitBytes: limit, cpuOnly: true, nodeOptions: heap })
  try {
    return await new Promise<ModelInfo>((resolve, reject) => {
      const timer = setTimeout(() => {
        const cpuMs = childCpuMs(child.pid)
        child.kill('SIGKILL')
        if (cpuMs != null && cpuMs < (options.blameCpuShare ?? DEFAULT_BLAME_CPU_SHARE) * timeoutMs) {
          reject(new SandboxError('unavailable', `inspecting the model got ${Math.round(cpuMs)} ms of CPU in ${timeoutMs} ms: the machine is too busy to judge it; the model is not refused (try again)`))
        } else {
          reject(new ModelRejectedError('too-complex', `inspecting the model took longer than ${timeoutMs} ms; it was stopped`))
        }
      }, timeoutMs)
      child.on('message', (m: FromInspector) => {
        clearTimeout(timer)
        if (m.type === 'info') resolve(m.info)
        else if (m.name === 'ModelRejectedError') reject(new ModelRejectedError(m.reason as ModelRejectedError['reason'], m.message))
        else reject(Object.assign(new Error(m.message), { name: m.name }))
      })
      // no process to inspect with (EAGAIN: too many processes; ENOMEM): the machine's fault, not the model's
      child.on('error', (err: NodeJS.ErrnoException) => {
        clearTimeout(timer)
        reject(new SandboxError('unavailable', `could not start a process to inspect the model (${err.code ?? err.message}); the model is not refused (try again)`))
      })
      // 'close', not 'exit': a process's last message may be delivered after its 'exit' event
      child.on('close', (code, signal) => {
        clearTimeout(timer)
        const why = lastWords()
        // (a no-op once the answer came)
        reject(new ModelRejectedError('too-complex', `inspecting the model ended its process (${signal ?? `exit code ${String(code)}`}${why === '' ? '' : `: ${why}`}); a model that cannot be decoded within the sandbox's limits is refused`))
      })
      const unsent = (err: Error): void => { reject(new SandboxError('unavailable', `could not hand the model to the inspecting process (${err.message}); the model is not refused (try again)`)) }
      try {
        child.send({ bytes, maxBytes, cid: options.cid } satisfies ToInspector, err => { if (err != null) unsent(err) })
      } catch (err: any) {
        unsent(err)
      }
    })
  } finally {
    child.kill('SIGKILL')
    rmSync(cwd, { recursive: true, force: true })
  }
}
