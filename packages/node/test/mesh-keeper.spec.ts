import { defaultLogger } from '@libp2p/logger'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import { describe, expect, it } from 'vitest'
import { identify } from '@libp2p/identify'
import { createLibp2p } from 'libp2p'
import { MeshKeeper, meshKeeper } from '../src/mesh/mesh-keeper.js'
import type { MeshKeeperComponents } from '../src/mesh/mesh-keeper.js'

describe('MeshKeeper', () => {
  it('declares what it needs: a node assembled without the capacity service fails at creation, naming it', async () => {
    const error = await createLibp2p({
      start: false,
      services: { identify: identify(), meshKeeper: meshKeeper({ bootstrap: [], targetConnections: 1, intervalMs: 1000 }) }
    }).catch(err => err)
    expect(error.name).toBe('UnmetServiceDependenciesError')
    expect(error.message).toMatch(/"@shoal\/mesh-keeper" required capability "@shoal\/capacity"/)
  })

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
      peerStore: { all: async () => [{ id: other, addresses: [{}] }], get: async () => undefined } as any,
      capacity: { peers: { get: () => undefined } }
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

  async function ids (n: number): Promise<PeerId[]> {
    return (await Promise.all(Array.from({ length: n }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))))).sort((a, b) => a.toString() < b.toString() ? -1 : 1)
  }

  /** A keeper over fake libp2p parts: `connections` is what the connection manager has open. */
  function keeperOf (self: PeerId, init: Partial<ConstructorParameters<typeof MeshKeeper>[1]>, state: { connections: any[], known: PeerId[], identify?: () => Promise<void>, liveAds?: string[] }): { keeper: MeshKeeper, dialled: string[], identified: string[] } {
    const dialled: string[] = []
    const identified: string[] = []
    const components = {
      peerId: self,
      identify: { identify: async (c: any) => { identified.push(c.remotePeer.toString()); await state.identify?.() } } as any,
      logger: defaultLogger(),
      events: { addEventListener: () => {}, removeEventListener: () => {} } as any,
      connectionManager: {
        getConnections: (peer?: PeerId) => state.connections.filter(c => peer == null || c.remotePeer.equals(peer)),
        openConnection: async (target: any) => { dialled.push(target.toString()); return await new Promise(() => {}) }
      } as any,
      peerStore: {
        all: async (query: any) => state.known.map(id => ({ id, addresses: [{}] })).filter(p => (query?.filters ?? []).every((f: any) => f(p))),
        get: async (id: PeerId) => ({ protocols: state.connections.find(c => c.remotePeer.equals(id))?.protocols ?? [] })
      } as any,
      capacity: { peers: { get: (peer: string) => state.liveAds?.includes(peer) === true ? {} : undefined } }
    } satisfies MeshKeeperComponents
    return { keeper: new MeshKeeper(components, { bootstrap: [], targetConnections: 3, intervalMs: 1000, ...init }), dialled, identified }
  }

  const connection = (remotePeer: PeerId, ageMs: number, protocols = ['/meshsub/1.2.0']): any => {
    const c: any = { remotePeer, status: 'open', protocols, timeline: { open: Date.now() - ageMs }, closed: false }
    c.close = async () => { c.closed = true; c.status = 'closed' }
    c.abort = () => { c.closed = true }
    return c
  }

  it('dials known peers it is not connected to, up to its target, never one twice', async () => {
    const [self, connected, ...others] = await ids(6)
    const { keeper, dialled } = keeperOf(self, { targetConnections: 3 }, { connections: [connection(connected, 100)], known: [connected, ...others] })
    await (keeper as any).topUp()
    // one connection open, target 3: two dials, to peers not connected
    expect(dialled).toHaveLength(2)
    expect(dialled).not.toContain(connected.toString())
    await (keeper as any).topUp()
    // both dials still under way: they count toward the target
    expect(dialled).toHaveLength(2)
  })

  it('on discovery, the peer with the smaller id dials at once; the other waits', async () => {
    const [small, large] = await ids(2)
    const a = keeperOf(small, {}, { connections: [], known: [] })
    a.keeper.start()
    ;(a.keeper as any).onDiscovery(new CustomEvent('peer:discovery', { detail: { id: large, multiaddrs: [] } }))
    expect(a.dialled).toEqual([large.toString()])
    const b = keeperOf(large, {}, { connections: [], known: [] })
    b.keeper.start()
    ;(b.keeper as any).onDiscovery(new CustomEvent('peer:discovery', { detail: { id: small, multiaddrs: [] } }))
    expect(b.dialled).toEqual([])
    a.keeper.stop()
    b.keeper.stop()
  })

  it('closes a connection that has carried no ad for longer than deafAfterMs, and keeps the others', async () => {
    const [self, deaf, heard, young] = await ids(4)
    const connections = [connection(deaf, 20_000), connection(heard, 20_000), connection(young, 1_000)]
    const { keeper } = keeperOf(self, { deafAfterMs: 10_000, targetConnections: 3 }, { connections, known: [], liveAds: [heard.toString()] })
    await (keeper as any).topUp()
    expect(connections.map(c => c.closed)).toEqual([true, false, false])
  })

  it('identifies again a connection whose peer has no known protocols, and closes it if that fails too', async () => {
    const [self, mute, fine] = await ids(3)
    const connections = [connection(mute, 5_000, []), connection(fine, 5_000)]
    const { keeper, identified } = keeperOf(self, { targetConnections: 2 }, { connections, known: [], identify: async () => { throw new Error('timed out') } })
    await (keeper as any).topUp()
    expect(identified).toEqual([mute.toString()])
    expect(connections.map(c => c.closed)).toEqual([true, false])
  })
})
