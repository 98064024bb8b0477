import { DEFAULT_MAX_SESSIONS } from './constants.js'
import { createRequire } from 'node:module'
import type { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-node'
import { byteLength, ITEM_SIZE } from './tensor.js'
import type { Dtype, Tensor } from './tensor.js'

type Ort = typeof import('onnxruntime-node')
let ortModule: Ort | undefined
function ort (): Ort {
  // loaded on first inference: the native library costs tens of MiB a node that never runs a model should not pay
  ortModule ??= createRequire(import.meta.url)('onnxruntime-node') as Ort
  return ortModule
}

const TYPED: Record<Dtype, new (buffer: ArrayBuffer, byteOffset: number, length: number) => ArrayBufferView> = {
  float32: Float32Array,
  float64: Float64Array,
  float16: Uint16Array,
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
  bool: Uint8Array
}

/** A Shoal tensor as ONNX Runtime's; copies only when the bytes are not aligned for their type. */
export function toOrtTensor (tensor: Tensor): OrtTensor {
  const size = ITEM_SIZE[tensor.dtype]
  let data = tensor.data
  // a copy (Uint8Array's: a Buffer's slice() is a view of the same bytes, at the same unaligned offset)
  if (data.byteOffset % size !== 0) data = Uint8Array.prototype.slice.call(data)
  const count = data.byteLength / size
  const typed = new TYPED[tensor.dtype](data.buffer as ArrayBuffer, data.byteOffset, count)
  return new (ort().Tensor)(tensor.dtype, typed as any, tensor.dims)
}

export function fromOrtTensor (value: OrtTensor, name: string): Tensor {
  const dtype = value.type as Dtype
  if (!Object.hasOwn(ITEM_SIZE, dtype)) throw new Error(`output "${name}" has type ${value.type}, which Shoal does not carry`)
  const view = value.data as ArrayBufferView
  const dims = value.dims.map(Number)
  const data = new Uint8Array(view.buffer, view.byteOffset, byteLength(dtype, dims))
  return { dtype, dims, data }
}

/** One piece's outputs, the execution provider that ran it, and its compute time. */
export interface PieceRun {
  outputs: Record<string, Tensor>
  provider: string
  computeMs: number
}

export interface PieceRunOptions {
  /**
   * The node's own run (a job's probe, its local pieces, its checks of peers' answers), not a peer's
   * piece: a model refused for what peers' pieces did (outliving a deadline a peer chose) still runs,
   * and its own deadline does not get the model refused for peers.
   */
  own?: boolean
  /**
   * The inputs' buffers are the runtime's to keep or move (the caller made them for this run and will
   * not touch them again): a runtime in another thread moves them there instead of copying.
   */
  owned?: boolean
  /**
   * Called once when the run starts (a runtime with a fixed number of threads may keep a run waiting
   * for one until then): a worker counts the pieces it has accepted and not yet started as its queue.
   */
  onStart?: () => void
  /**
   * The run is no longer wanted (its deadline passed). A runtime that can stop a run does (a child
   * process is killed); one that cannot lets it finish and drops the result.
   */
  signal?: AbortSignal
}

/** What a node needs to run pieces: ONNX Runtime sessions here, a calibrated delay in simulations. */
export interface PieceRuntime {
  run: (cid: string, load: () => Promise<Uint8Array>, inputs: Record<string, Tensor>, options?: PieceRunOptions) => Promise<PieceRun>
  close: () => Promise<void>
  /** Memory the runtime holds outside the node's own process (child processes), in bytes. */
  memoryBytes?: () => number
  /** The child processes where it runs models (their CPU time is the node's own, for --when-idle). */
  childPids?: () => number[]
}

export interface SessionCacheInit {
  /** Execution providers in order of preference: the first that loads the model is used. */
  providers: string[]
  cpuThreads: number
  /** Sessions kept open at most; the least recently used is released beyond it. */
  maxSessions?: number
}

/**
 * Test and simulation hook: a runtime whose runs take `slowdown` times their real compute time (the
 * extra spent waiting), so one machine can play a slower one. `close` closes the runtime it wraps.
 */
export function slowed (runtime: PieceRuntime, slowdown: number): PieceRuntime {
  if (!(slowdown > 1)) return runtime
  return {
    run: async (cid, load, inputs, options) => {
      const result = await runtime.run(cid, load, inputs, options)
      await new Promise(resolve => setTimeout(resolve, result.computeMs * (slowdown - 1)))
      return { ...result, computeMs: result.computeMs * slowdown }
    },
    close: async () => { await runtime.close() },
    memoryBytes: () => runtime.memoryBytes?.() ?? 0,
    childPids: () => runtime.childPids?.() ?? []
  }
}

interface Entry {
  session: Promise<{ session: InferenceSession, provider: string }>
  usedAt: number
}

/**
 * ONNX Runtime sessions, one per (model CID, provider), created on first use and kept for later pieces
 * of the same model: creating a session (graph optimisation, weight packing) often costs more than a
 * piece's compute.
 */
export class SessionCache implements PieceRuntime {
  private readonly entries = new Map<string, Entry>()
  private readonly init: Required<SessionCacheInit>
  private clock = 0

  constructor (init: SessionCacheInit) {
    this.init = { maxSessions: DEFAULT_MAX_SESSIONS, ...init }
  }

  /** The session for a model, creating it from `load()` (the model's bytes) on first use. */
  async session (cid: string, load: () => Promise<Uint8Array>): Promise<{ session: InferenceSession, provider: string }> {
    let entry = this.entries.get(cid)
    if (entry == null) {
      entry = { session: this.create(load), usedAt: ++this.clock }
      this.entries.set(cid, entry)
      entry.session.catch(() => this.entries.delete(cid))
      await this.evict()
    }
    entry.usedAt = ++this.clock
    return await entry.session
  }

  /** Runs one batch through a model; returns every output, and which provider ran it, and how long it took. */
  async run (cid: string, load: () => Promise<Uint8Array>, inputs: Record<string, Tensor>, options: PieceRunOptions = {}): Promise<PieceRun> {
    options.onStart?.()
    const { session, provider } = await this.session(cid, load)
    const feeds: Record<string, OrtTensor> = {}
    for (const [name, tensor] of Object.entries(inputs)) feeds[name] = toOrtTensor(tensor)
    const started = performance.now()
    const results = await session.run(feeds)
    const outputs: Record<string, Tensor> = {}
    for (const name of session.outputNames) outputs[name] = fromOrtTensor(results[name], name)
    return { outputs, provider, computeMs: performance.now() - started }
  }

  async close (): Promise<void> {
    const entries = [...this.entries.values()]
    this.entries.clear()
    await Promise.all(entries.map(async e => { await (await e.session.catch(() => undefined))?.session.release() }))
  }

  private async create (load: () => Promise<Uint8Array>): Promise<{ session: InferenceSession, provider: string }> {
    const bytes = await load()
    let lastError: unknown
    for (const provider of this.init.providers) {
      try {
        const session = await ort().InferenceSession.create(bytes, {
          executionProviders: [provider],
          intraOpNumThreads: this.init.cpuThreads,
          logSeverityLevel: 3
        })
        return { session, provider }
      } catch (err) {
        lastError = err
      }
    }
    throw lastError ?? new Error('no execution provider available')
  }

  private async evict (): Promise<void> {
    while (this.entries.size > this.init.maxSessions) {
      const [oldest] = [...this.entries.entries()].sort((a, b) => a[1].usedAt - b[1].usedAt)
      this.entries.delete(oldest[0])
      await (await oldest[1].session.catch(() => undefined))?.session.release()
    }
  }
}
