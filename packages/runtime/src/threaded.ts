import { Worker } from 'node:worker_threads'
import type { PieceRun, PieceRunOptions, PieceRuntime, SessionCacheInit } from './session.js'
import type { FromHost as FromThread, ToHost as ToThread } from './session-host.js'
import type { Tensor } from './tensor.js'

export interface ThreadedSessionsInit extends SessionCacheInit {
  /** Worker threads, each with its own sessions: pieces that compute at once (default 1). */
  threads?: number
}

/** How long close() waits for a thread to finish its piece and end. */
const CLOSE_WAIT_MS = 10_000

interface Call {
  load: () => Promise<Uint8Array>
  resolve: (run: PieceRun) => void
  reject: (err: Error) => void
}

interface Slot {
  worker: Worker
  busy: boolean
  calls: Map<number, Call>
}

/**
 * ONNX Runtime sessions in worker threads. The Node binding runs a session synchronously on the
 * calling thread: on the main thread a piece blocked the node's event loop for its whole compute (no
 * capacity ads, no transfers of the next piece, no answers to peers), and a piece long enough made
 * peers expire the node from their tables. Here each thread keeps its own SessionCache; a run
 * borrows an idle thread (or waits for one), the inputs are copied to it, the outputs moved back, and
 * the model's bytes are asked of `load` only when that thread has no session for the model.
 */
export class ThreadedSessions implements PieceRuntime {
  private readonly slots: Slot[] = []
  private readonly waiting: Array<{ resolve: (slot: Slot) => void, reject: (err: Error) => void }> = []
  private readonly init: ThreadedSessionsInit
  private nextId = 0
  private closed = false

  constructor (init: ThreadedSessionsInit) {
    this.init = init
  }

  async run (cid: string, load: () => Promise<Uint8Array>, inputs: Record<string, Tensor>, options: PieceRunOptions = {}): Promise<PieceRun> {
    if (this.closed) throw new Error('the inference sessions are closed')
    const slot = await this.acquire()
    try {
      // closed while this run waited: nothing may reach a thread after its 'close'
      if (this.closed) throw new Error('the inference sessions are closed')
      options.onStart?.()
      return await new Promise<PieceRun>((resolve, reject) => {
        const id = ++this.nextId
        slot.calls.set(id, { load, resolve, reject })
        // each input moved to the thread in a buffer of its own: the caller's own when it gave them up
        // (`owned`) and each fills its whole buffer, else a copy (the caller's may be a view into a whole
        // batch or a Node Buffer pool, whose slice() is no copy: not ours to move)
        const own: Record<string, Tensor> = {}
        for (const [name, t] of Object.entries(inputs)) {
          const whole = options.owned === true && t.data.byteOffset === 0 && t.data.byteLength === t.data.buffer.byteLength && !(t.data.buffer instanceof SharedArrayBuffer)
          own[name] = { dtype: t.dtype, dims: t.dims, data: whole ? t.data : new Uint8Array(t.data) }
        }
        const message: ToThread = { type: 'run', id, cid, inputs: own }
        slot.worker.postMessage(message, Object.values(own).map(t => t.data.buffer as ArrayBuffer))
      })
    } finally {
      this.release(slot)
    }
  }

  /**
   * Releases the sessions and ends the threads. A thread that is running a piece (ONNX Runtime cannot
   * be interrupted, and terminating a thread inside it aborts the process) finishes it first, releases
   * its sessions and says so; only then is it terminated. If that takes longer than CLOSE_WAIT_MS,
   * close() returns and leaves the thread to finish, no longer keeping the process alive.
   */
  async close (): Promise<void> {
    this.closed = true
    for (const waiter of this.waiting.splice(0)) waiter.reject(new Error('the inference sessions are closed'))
    const slots = this.slots.splice(0)
    await Promise.all(slots.map(async slot => {
      const closed = await new Promise<boolean>(resolve => {
        const timer = setTimeout(() => { slot.worker.unref(); resolve(false) }, CLOSE_WAIT_MS)
        slot.worker.on('message', (m: FromThread) => { if (m.type === 'closed') { clearTimeout(timer); resolve(true) } })
        slot.worker.once('exit', () => { clearTimeout(timer); resolve(false) })
        slot.worker.postMessage({ type: 'close' } satisfies ToThread)
      })
      if (closed) await slot.worker.terminate()
    }))
  }

  private get maxThreads (): number {
    return Math.max(1, this.init.threads ?? 1)
  }

  private async acquire (): Promise<Slot> {
    const idle = this.slots.find(s => !s.busy)
    if (idle != null) {
      idle.busy = true
      return idle
    }
    if (this.slots.length < this.maxThreads) {
      const slot = this.spawn()
      slot.busy = true
      return slot
    }
    return await new Promise((resolve, reject) => this.waiting.push({ resolve, reject }))
  }

  private release (slot: Slot): void {
    // a thread that died is gone; lose() has handed a new one to the next in line
    if (!this.slots.includes(slot)) return
    const next = this.waiting.shift()
    if (next != null) next.resolve(slot)
    else slot.busy = false
  }

  private spawn (): Slot {
    const { threads, ...cacheInit } = this.init
    const worker = new Worker(new URL('./session-thread.js', import.meta.url), { workerData: cacheInit })
    const slot: Slot = { worker, busy: false, calls: new Map() }
    worker.on('message', (m: FromThread) => { this.onMessage(slot, m) })
    worker.on('error', (err) => { this.lose(slot, err) })
    worker.on('exit', (code) => { this.lose(slot, new Error(`the inference thread exited with code ${code}`)) })
    this.slots.push(slot)
    return slot
  }

  private onMessage (slot: Slot, m: FromThread): void {
    if (m.type === 'load') {
      const call = slot.calls.get(m.id)
      if (call == null) return
      call.load().then(bytes => {
        slot.worker.postMessage({ type: 'model', id: m.id, bytes } satisfies ToThread)
      }, (err: any) => {
        slot.worker.postMessage({ type: 'model', id: m.id, error: String(err?.message ?? err) } satisfies ToThread)
      })
    } else if (m.type === 'result' || m.type === 'error') {
      const call = slot.calls.get(m.id)
      slot.calls.delete(m.id)
      if (call == null) return
      if (m.type === 'result') {
        call.resolve({ outputs: m.outputs, provider: m.provider, computeMs: m.computeMs })
      } else {
        const err = new Error(m.message)
        err.name = m.name
        call.reject(err)
      }
    }
  }

  /** A thread that died fails its runs; the next run starts a new one. */
  private lose (slot: Slot, err: Error): void {
    const i = this.slots.indexOf(slot)
    if (i >= 0) this.slots.splice(i, 1)
    for (const call of slot.calls.values()) call.reject(err)
    slot.calls.clear()
    if (!this.closed && this.waiting.length > 0 && this.slots.length < this.maxThreads) {
      const next = this.waiting.shift()!
      const fresh = this.spawn()
      fresh.busy = true
      next.resolve(fresh)
    }
  }
}
