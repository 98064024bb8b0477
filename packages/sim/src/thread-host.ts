import { Worker } from 'node:worker_threads'
import { PROCESS_REPLY_TIMEOUT_MS, PROCESS_START_TIMEOUT_MS } from './constants.js'
import { SimError } from './errors.js'
import { modelProfiles, portableContext } from './hosts.js'
import type { HostContext, SimHost } from './hosts.js'
import type { PlannedNode } from './plan.js'
import type { FromThread, ToThread } from './thread-node.js'

const THREAD = new URL('./thread-node.js', import.meta.url)

/** Distributive Omit: each variant of the union keeps its own fields. */
type Request = ToThread extends infer T ? T extends ToThread ? Omit<T, 'id'> : never : never

/** One worker thread and the requests waiting for its replies. */
class SimThread {
  readonly worker: Worker
  private requests = 0
  private readonly waiting = new Map<number, (reply: FromThread) => void>()
  private failure?: Error

  constructor () {
    this.worker = new Worker(THREAD)
    this.worker.on('message', (reply: FromThread) => {
      this.waiting.get(reply.id)?.(reply)
      this.waiting.delete(reply.id)
    })
    this.worker.on('error', err => { this.failure = err; this.failAll() })
    this.worker.on('exit', () => { this.failure ??= new SimError('a simulation thread exited'); this.failAll() })
  }

  private failAll (): void {
    for (const [id, resolve] of this.waiting) resolve({ type: 'error', id, message: this.failure!.message })
    this.waiting.clear()
  }

  /** Sends a request; the reply, or an `error` reply when the thread fails or does not answer in time. */
  async ask (request: Request, timeoutMs: number): Promise<FromThread> {
    const id = ++this.requests
    if (this.failure != null) return { type: 'error', id, message: this.failure.message }
    return await new Promise(resolve => {
      const timer = setTimeout(() => {
        this.waiting.delete(id)
        resolve({ type: 'error', id, message: `no answer within ${timeoutMs} ms` })
      }, timeoutMs)
      this.waiting.set(id, reply => { clearTimeout(timer); resolve(reply) })
      this.worker.postMessage({ ...request, id })
    })
  }
}

/**
 * `shoal sim --threads N`: the nodes spread round-robin over N worker threads of this process, so that
 * a run uses N cores (a single event loop is what limits the mesh size in one process; docs/simulation.md).
 * A kill stops a node as a crash would (no leaving ad, connections cut), as in one thread.
 */
export class ThreadPool {
  private readonly threads: SimThread[]
  private next = 0

  constructor (count: number) {
    this.threads = Array.from({ length: count }, () => new SimThread())
  }

  async start (planned: PlannedNode, bootstrap: string[], ctx: HostContext): Promise<SimHost> {
    const index = this.next++ % this.threads.length
    const thread = this.threads[index]
    const reply = await thread.ask({
      type: 'start',
      node: planned,
      bootstrap,
      context: portableContext(ctx),
      models: modelProfiles(ctx)
    }, PROCESS_START_TIMEOUT_MS)
    if (reply.type !== 'ready') throw new SimError(`${planned.name} could not start: ${reply.type === 'error' ? reply.message : reply.type}`)
    const name = planned.name
    const stop = async (type: 'kill' | 'leave'): Promise<void> => { await thread.ask({ type, name }, PROCESS_REPLY_TIMEOUT_MS) }
    return {
      name,
      peerId: reply.peerId,
      addrs: reply.addrs,
      thread: index + 1,
      knownPeers: async () => {
        const r = await thread.ask({ type: 'peers', name }, PROCESS_REPLY_TIMEOUT_MS)
        return r.type === 'peers' ? r.count : 0
      },
      credit: async () => {
        const r = await thread.ask({ type: 'credit', name }, PROCESS_REPLY_TIMEOUT_MS)
        return r.type === 'credit' ? r.credit : null
      },
      kill: async () => { await stop('kill') },
      leave: async () => { await stop('leave') }
    }
  }

  /** Stops the nodes still up in every thread, then the threads. */
  async close (): Promise<void> {
    await Promise.all(this.threads.map(async t => {
      await t.ask({ type: 'close' }, PROCESS_REPLY_TIMEOUT_MS)
      await t.worker.terminate()
    }))
  }
}
