import type { AbortOptions, ComponentLogger, Connection, PeerId, Stream, StreamHandler, StreamHandlerOptions, Topology } from '@libp2p/interface'
import type { ConnectionManager, Registrar } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * The part of a libp2p node that the block exchanges use (bitswap's network layer and
 * /shoal/block/1.0.0), built from a service's components: each method is what libp2p's own does,
 * which forwards to the registrar or the connection manager.
 */
export interface SwarmHost {
  peerId: PeerId
  logger: ComponentLogger
  handle: (protocols: string | string[], handler: StreamHandler, options?: StreamHandlerOptions) => Promise<void>
  unhandle: (protocols: string | string[]) => Promise<void>
  register: (protocol: string, topology: Topology) => Promise<string>
  unregister: (id: string) => void
  dial: (peer: PeerId | Multiaddr, options?: AbortOptions) => Promise<Connection>
  dialProtocol: (peer: PeerId, protocols: string | string[], options?: AbortOptions) => Promise<Stream>
  getConnections: (peer?: PeerId) => Connection[]
  isDialable: (addr: Multiaddr | Multiaddr[], options?: AbortOptions) => Promise<boolean>
}

export interface SwarmHostComponents {
  peerId: PeerId
  logger: ComponentLogger
  registrar: Registrar
  connectionManager: ConnectionManager
}

export function swarmHost (components: SwarmHostComponents): SwarmHost {
  const { registrar, connectionManager } = components
  return {
    peerId: components.peerId,
    logger: components.logger,
    // libp2p takes one protocol or several (bitswap hands over several), the registrar one at a time
    handle: async (protocols, handler, options) => { await Promise.all([protocols].flat().map(async p => { await registrar.handle(p, handler, options) })) },
    unhandle: async protocols => { await Promise.all([protocols].flat().map(async p => { await registrar.unhandle(p) })) },
    register: async (protocol, topology) => await registrar.register(protocol, topology),
    unregister: id => { registrar.unregister(id) },
    // userland dials take top priority in libp2p's dial queue, as libp2p.dial gives them
    dial: async (peer, options) => await connectionManager.openConnection(peer, { priority: 75, ...options }),
    dialProtocol: async (peer, protocols, options) => await connectionManager.openStream(peer, [protocols].flat(), options),
    getConnections: peer => connectionManager.getConnections(peer),
    isDialable: async (addr, options) => await connectionManager.isDialable(addr, options)
  }
}
