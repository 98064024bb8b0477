import type { PieceRun } from './session.js'
import type { FromHost, ToHost } from './session-host.js'

/** A run waiting for its session host's answer. */
export interface HostCall {
  load: () => Promise<Uint8Array>
  resolve: (run: PieceRun) => void
  reject: (err: Error) => void
}

/** One session host (a worker thread or a child process) and the runs it has been given. */
export interface HostSlot {
  busy: boolean
  calls: Map<number, HostCall>
}

/**
 * The session hosts of ThreadedSessions and ProcessSessions: at most `max()` of them, each running one
 * piece at a time; a run borrows an idle host, starts a new one, or waits in line for one.
 */
export class HostPool<S extends HostSlot> {
  readonly slots: S[] = []
  private readonly waiting: Array<{ resolve: (slot: S) => void, reject: (err: Error) => void }> = []

  constructor (private readonly max: () => number, private readonly spawn: () => S) {}

  async acquire (): Promise<S> {
    const idle = this.slots.find(s => !s.busy)
    if (idle != null) {
      idle.busy = true
      return idle
    }
    if (this.slots.length < this.max()) return this.fresh()
    return await new Promise((resolve, reject) => this.waiting.push({ resolve, reject }))
  }

  release (slot: S): void {
    // a host that died is gone; remove() has handed a new one to the next in line
    if (!this.slots.includes(slot)) return
    const next = this.waiting.shift()
    if (next != null) next.resolve(slot)
    else slot.busy = false
  }

  /**
   * Takes a host that died or was ended out of the pool, fails its runs with `err`, and starts a new
   * one for the next run in line (unless `closed`). False if the host was no longer in the pool.
   */
  remove (slot: S, err: Error, closed: boolean): boolean {
    // its runs fail even when the pool no longer holds it (closing): else they would wait forever
    for (const call of slot.calls.values()) call.reject(err)
    slot.calls.clear()
    const i = this.slots.indexOf(slot)
    if (i < 0) return false
    this.slots.splice(i, 1)
    if (!closed && this.waiting.length > 0 && this.slots.length < this.max()) this.waiting.shift()!.resolve(this.fresh())
    return true
  }

  /** Ends the pool: runs waiting for a host fail; returns the hosts, for the caller to end. */
  close (): S[] {
    for (const waiter of this.waiting.splice(0)) waiter.reject(new Error('the inference sessions are closed'))
    return this.slots.splice(0)
  }

  private fresh (): S {
    const slot = this.spawn()
    slot.busy = true
    return slot
  }
}

/**
 * What the node does with a message from a session host: a request for a model's bytes is answered
 * through `send`; a result or an error settles its run.
 */
export function onHostMessage (slot: HostSlot, m: FromHost, send: (message: ToHost) => void): void {
  if (m.type === 'load') {
    const call = slot.calls.get(m.id)
    if (call == null) return
    call.load().then(bytes => {
      send({ type: 'model', id: m.id, bytes })
    }, (err: any) => {
      send({ type: 'model', id: m.id, error: String(err?.message ?? err) })
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
