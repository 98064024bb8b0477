import type { ComponentLogger, Libp2pEvents, Logger, PeerId, PeerInfo, PeerStore, Startable, TypedEventTarget } from '@libp2p/interface'
import type { ConnectionManager } from '@libp2p/interface-internal'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'

export interface MeshKeeperInit {
  /** Bootstrap multiaddrs, each ending in /p2p/<peerId>. */
  bootstrap: string[]
  targetConnections: number
  intervalMs: number
}

export interface MeshKeeperComponents {
  connectionManager: ConnectionManager
  peerStore: PeerStore
  events: TypedEventTarget<Libp2pEvents>
  logger: ComponentLogger
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
  private timer?: ReturnType<typeof setInterval>

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

  start (): void {
    this.components.events.addEventListener('peer:discovery', this.onDiscovery)
    this.timer = setInterval(() => { void this.topUp() }, this.init.intervalMs)
  }

  afterStart (): void {
    void this.topUp()
  }

  stop (): void {
    this.components.events.removeEventListener('peer:discovery', this.onDiscovery)
    clearInterval(this.timer)
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

  private readonly onDiscovery = (evt: CustomEvent<PeerInfo>): void => {
    if (this.connected + this.dialing.size < this.init.targetConnections) this.dial(evt.detail.id)
  }

  private async topUp (): Promise<void> {
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
