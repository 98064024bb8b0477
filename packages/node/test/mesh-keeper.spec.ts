import { defaultLogger } from '@libp2p/logger'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { MeshKeeper } from '../src/mesh/mesh-keeper.js'
import type { MeshKeeperComponents } from '../src/mesh/mesh-keeper.js'

describe('MeshKeeper', () => {
  it('keeps topping up after a round that throws (the keeper must not end for good)', async () => {
    const peerId = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const other = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    let rounds = 0
    const dialled: string[] = []
    const components = {
      peerId,
      identify: {} as any,
      logger: defaultLogger(),
      events: { addEventListener: () => {}, removeEventListener: () => {} } as any,
      connectionManager: {
        // the first round's look at the connections throws, as a closing connection once did
        getConnections: () => { if (rounds++ === 0) throw new Error('boom'); return [] },
        openConnection: async (target: any) => { dialled.push(target.toString()); throw new Error('unreachable') }
      } as any,
      peerStore: { all: async () => [{ id: other, addresses: [{}] }], get: async () => undefined } as any
    } satisfies MeshKeeperComponents
    const keeper = new MeshKeeper(components, { bootstrap: [], targetConnections: 4, intervalMs: 50 })
    keeper.start()
    keeper.afterStart()
    try {
      const deadline = Date.now() + 5000
      while (dialled.length === 0 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 10))
      expect(dialled).toContain(other.toString())
    } finally {
      keeper.stop()
    }
  })
})
