import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { PROCESS_START_TIMEOUT_MS, PROCESS_REPLY_TIMEOUT_MS } from './constants.js'
import { SimError } from './errors.js'
import { modelProfiles, portableContext } from './hosts.js'
import type { HostContext, NodeCredit, SimHost } from './hosts.js'
import type { PlannedNode } from './plan.js'
import type { ChildMessage, ParentMessage } from './process-node.js'

const CHILD = fileURLToPath(new URL('./process-node.js', import.meta.url))

/**
 * A node in its own OS process (`shoal sim --processes`), driven over Node's IPC channel. A kill is a
 * SIGKILL: the process dies with its sockets, as a machine that loses power.
 */
export class ProcessHost implements SimHost {
  readonly name: string
  readonly peerId: string
  readonly addrs: string[]
  private readonly child: ChildProcess
  private readonly exited: Promise<void>
  private requests = 0
  private readonly waiting = new Map<number, (reply: ChildMessage) => void>()

  private constructor (name: string, child: ChildProcess, ready: { peerId: string, addrs: string[] }, exited: Promise<void>) {
    this.name = name
    this.child = child
    this.peerId = ready.peerId
    this.addrs = ready.addrs
    this.exited = exited
    child.on('message', (message: ChildMessage) => {
      if (message.type === 'peers' || message.type === 'credit') {
        this.waiting.get(message.id)?.(message)
        this.waiting.delete(message.id)
      }
    })
  }

  static async start (planned: PlannedNode, bootstrap: string[], ctx: HostContext): Promise<ProcessHost> {
    const child = fork(CHILD, [], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'advanced' })
    let stderr = ''
    child.stderr?.on('data', d => { stderr = (stderr + String(d)).slice(-4000) })
    const exited = new Promise<void>(resolve => child.once('exit', () => { resolve() }))
    const start: ParentMessage = {
      type: 'start',
      node: planned,
      bootstrap,
      context: portableContext(ctx),
      models: modelProfiles(ctx)
    }
    const ready = await new Promise<{ peerId: string, addrs: string[] }>((resolve, reject) => {
      const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new SimError(`${planned.name} did not start within ${PROCESS_START_TIMEOUT_MS} ms: ${stderr}`)) }, PROCESS_START_TIMEOUT_MS)
      child.on('message', (message: ChildMessage) => {
        if (message.type === 'ready') { clearTimeout(timer); resolve(message) }
        if (message.type === 'error') { clearTimeout(timer); reject(new SimError(`${planned.name} could not start: ${message.message}`)) }
      })
      void exited.then(() => { clearTimeout(timer); reject(new SimError(`${planned.name}'s process exited before it was ready: ${stderr}`)) })
      child.send(start)
    })
    return new ProcessHost(planned.name, child, ready, exited)
  }

  /** Asks the child; undefined when it does not answer in time (or is gone). */
  private async ask (type: 'peers' | 'credit'): Promise<ChildMessage | undefined> {
    const id = ++this.requests
    return await new Promise(resolve => {
      const timer = setTimeout(() => { this.waiting.delete(id); resolve(undefined) }, PROCESS_REPLY_TIMEOUT_MS)
      this.waiting.set(id, reply => { clearTimeout(timer); resolve(reply) })
      const message: ParentMessage = { type, id }
      if (!this.child.connected) { clearTimeout(timer); resolve(undefined); return }
      this.child.send(message)
    })
  }

  async knownPeers (): Promise<number> {
    const reply = await this.ask('peers')
    return reply?.type === 'peers' ? reply.count : 0
  }

  async credit (): Promise<NodeCredit | null> {
    const reply = await this.ask('credit')
    return reply?.type === 'credit' ? reply.credit : null
  }

  async kill (): Promise<void> {
    this.child.kill('SIGKILL')
    await this.exited
  }

  async leave (): Promise<void> {
    if (this.child.connected) {
      const message: ParentMessage = { type: 'leave' }
      this.child.send(message)
    }
    const timer = setTimeout(() => this.child.kill('SIGKILL'), PROCESS_REPLY_TIMEOUT_MS)
    await this.exited
    clearTimeout(timer)
  }
}
