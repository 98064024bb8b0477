/**
 * The child side of `shoal sim --processes`: one simulated node in this OS process, started and
 * questioned by the parent over Node's IPC channel.
 */
import type { ShoalNode } from '@shoal/node'
import { nodeCredit, preloadModels, simNode } from './hosts.js'
import type { HostContext, NodeCredit } from './hosts.js'
import type { ModelProfile } from './models.js'
import type { PlannedNode } from './plan.js'

export type ParentMessage =
  | { type: 'start', node: PlannedNode, bootstrap: string[], context: Omit<HostContext, 'models'>, models: Array<ModelProfile & { cid: string }> }
  | { type: 'peers' | 'credit', id: number }
  | { type: 'leave' }

export type ChildMessage =
  | { type: 'ready', peerId: string, addrs: string[] }
  | { type: 'error', message: string }
  | { type: 'peers', id: number, count: number }
  | { type: 'credit', id: number, credit: NodeCredit | null }

let node: ShoalNode | undefined

function send (message: ChildMessage): void {
  process.send?.(message)
}

process.on('message', (message: ParentMessage) => {
  void (async () => {
    switch (message.type) {
      case 'start': {
        try {
          // the delay runtime reads only a model's cost and output shapes
          const models = new Map(message.models.map(m => [m.cid, m]))
          node = await simNode(message.node, message.bootstrap, { ...message.context, models })
          await node.start()
          await preloadModels(node, { ...message.context, models })
          send({ type: 'ready', peerId: node.peerId, addrs: node.addrs })
        } catch (err: any) {
          send({ type: 'error', message: err.message })
          process.exit(1)
        }
        break
      }
      case 'peers':
        send({ type: 'peers', id: message.id, count: node?.libp2p.services.capacity.peers.size ?? 0 })
        break
      case 'credit':
        send({ type: 'credit', id: message.id, credit: node == null ? null : nodeCredit(node) })
        break
      case 'leave':
        await node?.stop().catch(() => {})
        process.exit(0)
    }
  })()
})

// the parent went away (it ended, or was killed): so does this node
process.on('disconnect', () => { process.exit(0) })
