import { serviceDependencies } from '@libp2p/interface'
import type { ComponentLogger, Libp2pEvents, Logger, PeerId, PeerInfo, PeerStore, Startable, TypedEventTarget } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'
import type { Identify } from '@libp2p/identify'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'

/** The peer with the larger id waits this long before dialling a peer both discovered (see onDiscovery). */
const SECOND_DIALER_DELAY_MS = 2000

/** First redial delay of a node without connections. */
const FIRST_RETRY_MS = 250

/** A connection this old whose peer has no live ad is deaf (see `closeDeaf`); never less than this. */
const MIN_DEAF_AFTER_MS = 10_000


export interface MeshKeeperInit {
  /** Bootstrap multiaddrs, each ending in /p2p/<peerId>. */
  bootstrap: string[]
  targetConnections: number
  intervalMs: number
  /**
   * A connection open this long to a peer with no live capacity ad in our peer table carries no
   * gossip: it is closed so that it is dialled afresh (unset: never).
   */
  deafAfterMs?: number
}

export interface MeshKeeperComponents {
  peerId: PeerId
  identify: Identify
  connectionManager: ConnectionManager
  peerStore: PeerStore
  events: TypedEventTarget<Libp2pEvents>
  logger: ComponentLogger
  /** The capacity service (mesh/capacity-service.ts): whose ads are live. */
  capacity: { peers: { get: (peerId: string) => unknown } }
}

/**
 * Keeps the node connected to enough of the mesh. libp2p 3 does not dial the peers its discovery finds;
 * this dials peers found by the DHT or mDNS until `targetConnections`, and while below it redials the
 * bootstrap peers (which may have started after us) and peers already in the peer store.
 */
export class MeshKeeper implements Startable {
  private readonly components: MeshKeeperComponents
  private readonly init: MeshKeeperInit
  private readonly log: Logger
  private readonly dialing = new Set<string>()
  private readonly bootstrap: Array<{ id: PeerId, addr: ReturnType<typeof multiaddr> }>
  private timer?: ReturnType<typeof setTimeout>
  private retryMs = FIRST_RETRY_MS
  private readonly waiting = new Set<ReturnType<typeof setTimeout>>()
  private running = false

  constructor (components: MeshKeeperComponents, init: MeshKeeperInit) {
    this.components = components
    this.init = init
    this.log = components.logger.forComponent('shoal:mesh-keeper')
    this.bootstrap = init.bootstrap.map(text => {
      const addr = multiaddr(text)
      return { id: peerIdFromString(addr.getComponents().findLast(c => c.name === 'p2p')?.value ?? ''), addr }
    })
  }

  readonly [Symbol.toStringTag] = '@shoal/mesh-keeper'
  readonly [serviceDependencies] = ['@libp2p/identify', '@shoal/capacity']

  start (): void {
    this.running = true
    this.components.events.addEventListener('peer:discovery', this.onDiscovery)
  }

  afterStart (): void {
    void this.tick()
  }

  stop (): void {
    this.running = false
    this.components.events.removeEventListener('peer:discovery', this.onDiscovery)
    clearTimeout(this.timer)
    for (const timer of this.waiting) clearTimeout(timer)
    this.waiting.clear()
  }

  /**
   * A node with no connection at all retries quickly (250 ms, doubling up to the interval): its
   * bootstrap peer may be starting too, or too busy to finish a handshake in time. A connected node
   * tops up every interval.
   */
  private async tick (): Promise<void> {
    try {
      await this.topUp()
    } catch (err) {
      // one bad round (a connection that throws while closing, a peer store error) must not end the
      // keeper: a node that stops keeping its connections drifts out of the mesh
      this.log.error('topping up connections failed - %e', err)
    }
    if (!this.running) return
    const alone = this.connected === 0
    const delay = alone ? this.retryMs : this.init.intervalMs
    this.retryMs = alone ? Math.min(this.retryMs * 2, this.init.intervalMs) : FIRST_RETRY_MS
    this.timer = setTimeout(() => { void this.tick() }, delay)
  }

  private get connected (): number {
    return this.components.connectionManager.getConnections().length
  }

  private dial (id: PeerId, addr?: ReturnType<typeof multiaddr>): void {
    const key = id.toString()
    if (this.dialing.has(key) || this.components.connectionManager.getConnections(id).length > 0) return
    this.dialing.add(key)
    this.components.connectionManager.openConnection(addr ?? id)
      .catch(err => { this.log('could not dial %p - %e', id, err) })
      .finally(() => this.dialing.delete(key))
  }

  /**
   * Two peers that discover each other at once would dial each other at once and end up with two
   * connections, whose gossipsub streams can then replace each other's and leave the pair deaf. The
   * peer with the smaller id dials at once; the other waits a moment and dials only if still unconnected.
   */
  private readonly onDiscovery = (evt: CustomEvent<PeerInfo>): void => {
    if (this.connected + this.dialing.size >= this.init.targetConnections) return
    const id = evt.detail.id
    if (this.components.peerId.toString() < id.toString()) {
      this.dial(id)
      return
    }
    const timer = setTimeout(() => {
      this.waiting.delete(timer)
      if (this.running && this.connected + this.dialing.size < this.init.targetConnections) this.dial(id)
    }, SECOND_DIALER_DELAY_MS)
    this.waiting.add(timer)
  }

  /**
   * A connection whose identify exchange failed (it times out after 5 s, which a machine starting many
   * nodes at once can exceed) stays open but useless: no protocols are known, so neither gossipsub nor
   * the DHT ever use it, and the node can sit isolated. Identify such connections again; close them
   * if that fails too, so that they are dialled afresh.
   */
  private async repairUnidentified (): Promise<void> {
    const now = Date.now()
    for (const connection of this.components.connectionManager.getConnections()) {
      if (connection.status !== 'open' || now - connection.timeline.open < this.init.intervalMs) continue
      const peer = await this.components.peerStore.get(connection.remotePeer).catch(() => undefined)
      if ((peer?.protocols.length ?? 0) > 0) continue
      this.log('identify again with %p', connection.remotePeer)
      try {
        await this.components.identify.identify(connection, { signal: AbortSignal.timeout(this.init.intervalMs) })
      } catch (err) {
        this.log('identify with %p failed again, closing - %e', connection.remotePeer, err)
        await connection.close().catch(() => connection.abort(new Error('identify failed')))
      }
    }
  }

  /**
   * A connection can be open yet carry no gossip: under load, one side's gossipsub outbound stream
   * may fail to open, and gossipsub does not retry; the node then never hears its peer's ads (seen in
   * a 20-process mesh on 2 cores: two nodes deaf for over a minute). A connection older than
   * `deafAfterMs` to a peer with no live ad is closed; the keeper dials again and the new
   * connection gets fresh streams.
   */
  private async closeDeaf (): Promise<void> {
    if (this.init.deafAfterMs == null) return
    const deafAfter = Math.max(MIN_DEAF_AFTER_MS, this.init.deafAfterMs)
    const hasLiveAd = (peer: string): boolean => this.components.capacity.peers.get(peer) != null
    const now = Date.now()
    for (const connection of this.components.connectionManager.getConnections()) {
      const age = now - connection.timeline.open
      const peer = connection.remotePeer.toString()
      if (connection.status !== 'open') continue
      // closing sooner (on a missing gossipsub subscription after 3 s) was tried: under load it closed
      // healthy connections whose subscriptions were merely late, and nodes ended up with none
      if (age < deafAfter || hasLiveAd(peer)) continue
      this.log('no gossip from %p over a connection open for %d ms: closing it to start afresh', connection.remotePeer, age)
      await connection.close().catch(err => connection.abort(err))
    }
  }

  private async topUp (): Promise<void> {
    await this.repairUnidentified()
    await this.closeDeaf()
    if (this.connected + this.dialing.size >= this.init.targetConnections) return
    for (const peer of this.bootstrap) this.dial(peer.id, peer.addr)
    const room = this.init.targetConnections - this.connected - this.dialing.size
    if (room <= 0) return
    try {
      const known = await this.components.peerStore.all({
        filters: [p => p.addresses.length > 0 && this.components.connectionManager.getConnections(p.id).length === 0]
      })
      for (const peer of known.slice(0, room)) this.dial(peer.id)
    } catch (err) {
      this.log('peer store unavailable - %e', err)
    }
  }
}

export function meshKeeper (init: MeshKeeperInit): (components: MeshKeeperComponents) => MeshKeeper {
  return (components) => new MeshKeeper(components, init)
}
