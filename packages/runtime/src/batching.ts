import { DEFAULT_MAX_SESSIONS } from './constants.js'
import { concatRows, sliceRows } from './tensor.js'
import type { Tensor } from './tensor.js'
import type { PieceRun, PieceRunOptions, PieceRuntime } from './session.js'

export interface BatchingInit {
  /** How long a small piece waits for others of the same model and shape to run with (0: never). */
  windowMs: number
  /** Pieces of more rows run alone. */
  maxPieceRows: number
  /** The most rows one batched run takes. */
  maxRows: number
  /** Whether the model's inputs and outputs all leave the batch axis free (only such models are batched). */
  batchable: (cid: string) => boolean
  /** Told of each batched run: how many pieces it joined. */
  onBatch?: (pieces: number) => void
}

interface Waiting {
  inputs: Record<string, Tensor>
  rows: number
  options: PieceRunOptions
  resolve: (run: PieceRun) => void
  reject: (err: unknown) => void
}

interface Group {
  cid: string
  load: () => Promise<Uint8Array>
  members: Waiting[]
  rows: number
  timer?: ReturnType<typeof setTimeout>
}

/**
 * Dynamic batching: small pieces of the same model, with inputs of the same names, types and dimensions
 * after the batch axis, that arrive while the runtime beneath is busy run as one call of it once it is
 * free (their rows joined along axis 0), and each gets its own rows of the outputs back. A piece that
 * finds the runtime idle runs at once: batching adds no wait to a lone request (measured: waiting the
 * window for every piece doubled a lone request's overhead through the mesh, 2.3 to 4.4 ms). A piece
 * waits at most `windowMs` for the runtime to be free; a group that reaches `maxRows` runs at once. If
 * the joined run fails, or an output does not keep the batch axis, each piece runs alone, so that one
 * piece never fails another. The node's own runs (`own`) and pieces of models that fix their batch
 * axis always run alone.
 */
export class BatchingRuntime implements PieceRuntime {
  private readonly groups = new Map<string, Group>()
  /** Calls of the runtime beneath in progress. */
  private running = 0
  /** Models run last, most recent last (SESSIONS_KEPT of them): those whose sessions the runtime beneath keeps. */
  private readonly recent: string[] = []

  constructor (private readonly inner: PieceRuntime, private readonly init: BatchingInit) {}

  get memoryBytes (): (() => number) | undefined {
    return this.inner.memoryBytes?.bind(this.inner)
  }

  get childPids (): (() => number[]) | undefined {
    return this.inner.childPids?.bind(this.inner)
  }

  async run (cid: string, load: () => Promise<Uint8Array>, inputs: Record<string, Tensor>, options: PieceRunOptions = {}): Promise<PieceRun> {
    const tensors = Object.values(inputs)
    const rows = tensors[0]?.dims[0] ?? 0
    if (this.init.windowMs <= 0 || options.own === true || rows < 1 || rows > this.init.maxPieceRows || tensors.some(t => t.dims.length === 0 || t.dims[0] !== rows) || !this.init.batchable(cid)) {
      return await this.call(cid, load, inputs, options)
    }
    const key = `${cid}|${Object.entries(inputs).sort(([a], [b]) => a.localeCompare(b)).map(([name, t]) => `${name}:${t.dtype}:${t.dims.slice(1).join('x')}`).join(',')}`
    // an idle runtime takes the piece now: there is nothing to wait for
    if (this.running === 0 && !this.groups.has(key)) return await this.call(cid, load, inputs, options)
    return await new Promise<PieceRun>((resolve, reject) => {
      let group = this.groups.get(key)
      if (group != null && group.rows + rows > this.init.maxRows) {
        this.flush(key)
        group = undefined
      }
      if (group == null) {
        group = { cid, load, members: [], rows: 0 }
        this.groups.set(key, group)
        const g = group
        g.timer = setTimeout(() => { if (this.groups.get(key) === g) this.flush(key) }, this.init.windowMs)
      }
      group.members.push({ inputs, rows, options, resolve, reject })
      group.rows += rows
      if (group.rows >= this.init.maxRows) this.flush(key)
    })
  }

  /** A call of the runtime beneath; when it leaves the runtime idle, the pieces waiting run. */
  private async call (cid: string, load: () => Promise<Uint8Array>, inputs: Record<string, Tensor>, options: PieceRunOptions): Promise<PieceRun> {
    this.running++
    try {
      const run = await this.inner.run(cid, load, inputs, options)
      const at = this.recent.indexOf(cid)
      if (at >= 0) this.recent.splice(at, 1)
      this.recent.push(cid)
      if (this.recent.length > DEFAULT_MAX_SESSIONS) this.recent.shift()
      return run
    } finally {
      this.running--
      if (this.running === 0) for (const key of [...this.groups.keys()]) this.flush(key)
    }
  }

  private flush (key: string): void {
    const group = this.groups.get(key)
    if (group == null) return
    this.groups.delete(key)
    clearTimeout(group.timer)
    void this.runGroup(group)
  }

  private async runGroup (group: Group): Promise<void> {
    const { cid, load, members } = group
    const alone = (m: Waiting): void => { this.call(cid, load, m.inputs, m.options).then(m.resolve, m.reject) }
    // pieces whose deadline passed while they waited do not hold the others up
    const live = members.filter(m => m.options.signal?.aborted !== true)
    for (const m of members) if (!live.includes(m)) m.reject(m.options.signal?.reason ?? new Error('the piece was stopped while it waited'))
    if (live.length === 0) return
    if (live.length === 1) {
      alone(live[0])
      return
    }
    const joined: Record<string, Tensor> = {}
    for (const name of Object.keys(live[0].inputs)) joined[name] = concatRows(live.map(m => m.inputs[name]))
    // stopped only when every piece in it is
    const controller = new AbortController()
    let stopped = 0
    for (const m of live) {
      m.options.signal?.addEventListener('abort', () => { if (++stopped === live.length) controller.abort(m.options.signal?.reason) }, { once: true })
    }
    let run: PieceRun
    try {
      run = await this.call(cid, load, joined, { owned: true, signal: controller.signal, onStart: () => { for (const m of live) m.options.onStart?.() } })
    } catch {
      for (const m of live) alone(m)
      return
    }
    const total = live.reduce((n, m) => n + m.rows, 0)
    if (Object.values(run.outputs).some(t => t.dims.length === 0 || t.dims[0] !== total)) {
      for (const m of live) alone(m)
      return
    }
    this.init.onBatch?.(live.length)
    let start = 0
    for (const m of live) {
      const outputs: Record<string, Tensor> = {}
      for (const [name, t] of Object.entries(run.outputs)) outputs[name] = sliceRows(t, start, m.rows)
      start += m.rows
      m.resolve({ outputs, provider: run.provider, computeMs: run.computeMs })
    }
  }

  /**
   * The models this runtime ran most recently, newest first: those whose sessions a session cache of
   * DEFAULT_MAX_SESSIONS keeps (a process restarted after a kill has lost them until they run again).
   */
  recentModels (): string[] {
    return [...this.recent].reverse()
  }

  async close (): Promise<void> {
    for (const key of [...this.groups.keys()]) this.flush(key)
    await this.inner.close()
  }
}
