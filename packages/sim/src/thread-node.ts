/**
 * A worker thread of `shoal sim --threads N`: it runs many simulated nodes, started, questioned and
 * stopped by the main thread over the worker's message port. Nodes in one thread share its event loop,
 * as nodes in one process do; threads let a run use more than one core.
 */
import { parentPort } from 'node:worker_threads'
import type { ShoalNode } from '@shoal/node'
import { SessionCache } from '@shoal/runtime'
import { nodeCredit, preloadModels, simNode } from './hosts.js'
import type { HostContext, NodeCredit } from './hosts.js'
import type { ModelProfile } from './models.js'
import type { PlannedNode } from './plan.js'

export type ToThread =
  | { type: 'start', id: number, node: PlannedNode, bootstrap: string[], context: Omit<HostContext, 'models' | 'shared'>, models: Array<ModelProfile & { cid: string }> }
  | { type: 'peers' | 'credit', id: number, name: string }
  | { type: 'kill' | 'leave', id: number, name: string }
  | { type: 'close', id: number }

export type FromThread =
  | { type: 'ready', id: number, peerId: string, addrs: string[] }
  | { type: 'error', id: number, message: string }
  | { type: 'peers', id: number, count: number }
  | { type: 'credit', id: number, credit: NodeCredit | null }
  | { type: 'done', id: number }

const nodes = new Map<string, ShoalNode>()
/** With real compute, one session cache for the thread's nodes (as for nodes in one process). */
let shared: SessionCache | undefined

function reply (message: FromThread): void {
  parentPort?.postMessage(message)
}

async function handle (message: ToThread): Promise<void> {
  switch (message.type) {
    case 'start': {
      try {
        const models = new Map(message.models.map(m => [m.cid, m]))
        if (message.context.compute === 'onnx') shared ??= new SessionCache({ providers: ['cpu'], cpuThreads: 1 })
        const ctx: HostContext = { ...message.context, models, shared }
        const node = await simNode(message.node, message.bootstrap, ctx)
        await node.start()
        nodes.set(message.node.name, node)
        await preloadModels(node, ctx)
        reply({ type: 'ready', id: message.id, peerId: node.peerId, addrs: node.addrs })
      } catch (err: any) {
        reply({ type: 'error', id: message.id, message: err.message })
      }
      return
    }
    case 'peers':
      reply({ type: 'peers', id: message.id, count: nodes.get(message.name)?.libp2p.services.capacity.peers.size ?? 0 })
      return
    case 'credit': {
      const node = nodes.get(message.name)
      reply({ type: 'credit', id: message.id, credit: node == null ? null : nodeCredit(node) })
      return
    }
    case 'kill':
    case 'leave': {
      const node = nodes.get(message.name)
      nodes.delete(message.name)
      await (message.type === 'kill' ? node?.kill() : node?.stop())?.catch(() => {})
      reply({ type: 'done', id: message.id })
      return
    }
    case 'close':
      await Promise.all([...nodes.values()].map(async n => { await n.stop().catch(() => {}) }))
      nodes.clear()
      await shared?.close()
      reply({ type: 'done', id: message.id })
  }
}

parentPort?.on('message', (message: ToThread) => { void handle(message) })
