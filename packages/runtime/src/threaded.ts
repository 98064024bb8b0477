import { Worker } from 'node:worker_threads'
import type { PieceRun, PieceRunOptions, PieceRuntime, SessionCacheInit } from './session.js'
import type { FromHost as FromThread, ToHost as ToThread } from './session-host.js'
import { HostPool, onHostMessage } from './host-pool.js'
import type { HostSlot } from './host-pool.js'
import type { Tensor } from './tensor.js'

export interface ThreadedSessionsInit extends SessionCacheInit {
  /** Worker threads, each with its own sessions: pieces that compute at once (default 1). */
  threads?: number
}

/** How long close() waits for a thread to finish its piece and end. */
const CLOSE_WAIT_MS = 10_000

interface Slot extends HostSlot {
  worker: Worker
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
  private readonly pool = new HostPool<Slot>(() => Math.max(1, this.init.threads ?? 1), () => this.spawn())
  private readonly init: ThreadedSessionsInit
  private nextId = 0
  private closed = false

  constructor (init: ThreadedSessionsInit) {
    this.init = init
  }

  async run (cid: string, load: () => Promise<Uint8Array>, inputs: Record<string, Tensor>, options: PieceRunOptions = {}): Promise<PieceRun> {
    if (this.closed) throw new Error('the inference sessions are closed')
    const slot = await this.pool.acquire()
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
      this.pool.release(slot)
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
    const slots = this.pool.close()
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

  private spawn (): Slot {
    const { threads, ...cacheInit } = this.init
    const worker = new Worker(new URL('./session-thread.js', import.meta.url), { workerData: cacheInit })
    const slot: Slot = { worker, busy: false, calls: new Map() }
    worker.on('message', (m: FromThread) => { onHostMessage(slot, m, message => { slot.worker.postMessage(message satisfies ToThread) }) })
    // a thread that died fails its runs; the next run starts a new one
    worker.on('error', (err) => { this.pool.remove(slot, err, this.closed) })
    worker.on('exit', (code) => { this.pool.remove(slot, new Error(`the inference thread exited with code ${code}`), this.closed) })
    this.pool.slots.push(slot)
    return slot
  }
}
