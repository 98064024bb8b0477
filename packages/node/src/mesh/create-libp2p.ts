import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { autoNAT } from '@libp2p/autonat'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import { uPnPNAT } from '@libp2p/upnp-nat'
import { gossipsub } from '@libp2p/gossipsub'
import { preSharedKey } from '@libp2p/pnet'
import type { GossipSub } from '@libp2p/gossipsub'
import { createTopicScoreParams } from '@libp2p/gossipsub/score'
import { identify } from '@libp2p/identify'
import type { Identify } from '@libp2p/identify'
import type { PrivateKey } from '@libp2p/interface'
import { kadDHT, passthroughMapper, removePrivateAddressesMapper } from '@libp2p/kad-dht'
import type { KadDHT } from '@libp2p/kad-dht'
import { mdns } from '@libp2p/mdns'
import { ping } from '@libp2p/ping'
import type { Ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { webSockets } from '@libp2p/websockets'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import { isLinkLocal, isLoopback, isPrivate } from '@libp2p/utils'
import { CAPACITY_TOPIC, MAX_FRAME_BYTES } from '@shoal/protocol'
import { createLibp2p } from 'libp2p'
import { toString } from 'uint8arrays/to-string'
import type { Libp2p } from 'libp2p'
import { capacityService } from './capacity-service.js'
import type { CapacityService, CapacityServiceInit } from './capacity-service.js'
import { AD_EXPIRY_INTERVALS, DHT_PROTOCOL, LOOPBACK_ALLOW, MDNS_SERVICE_TAG, MESH_KEEPER_INTERVAL_MS, TARGET_CONNECTIONS } from '../constants.js'
import { directChannelService, inferenceService } from '../pieces/index.js'
import type { DirectChannelService, InferenceService, InferenceServiceInit } from '../pieces/index.js'
import { meshKeeper } from './mesh-keeper.js'
import { swarmKeyFile, swarmKeyFingerprint } from './swarm-key.js'
import type { MeshKeeper } from './mesh-keeper.js'
import { modelSwarm, nameRecordSelectors, nameRecordValidators, nameService } from '../models/index.js'
import type { ModelSwarm, ModelSwarmInit, NameService, NameServiceInit } from '../models/index.js'
import type { NodeConfig } from '../config.js'

export type ShoalServices = {
  identify: Identify
  ping: Ping
  dht: KadDHT
  pubsub: GossipSub
  capacity: CapacityService
  meshKeeper: MeshKeeper
  inference: InferenceService
  direct: DirectChannelService
  swarm: ModelSwarm
  names: NameService
}

export type ShoalLibp2p = Libp2p<ShoalServices>

export interface CreateShoalLibp2pInit {
  privateKey: PrivateKey
  config: Pick<NodeConfig, 'listen' | 'announce' | 'bootstrap' | 'mdns' | 'lan' | 'adIntervalMs' | 'direct' | 'directPort' | 'swarmKeyBytes' | 'relay' | 'relayMaxReservations' | 'upnp'>
  capacity: Omit<CapacityServiceInit, 'intervalMs'>
  inference: InferenceServiceInit
  swarm: ModelSwarmInit
  names: NameServiceInit
  /** Tests shorten the keeper's redial period. */
  meshKeeperIntervalMs?: number
  /** Many nodes sharing one machine's cores (`shoal sim`); defaults are those of a volunteer's node. */
  tuning?: MeshTuning
  /** Test hook: false makes the direct channel refuse reuse, as a node from before it could. */
  directReuse?: boolean
  /**
   * Peers this node will not connect with for now (those its jobs excluded for a wrong answer): their
   * connections are refused both ways, and their gossip score is lowered below gossipsub's gossip
   * threshold (no gossip with them, out of the mesh).
   */
  refuse?: (peerId: string) => boolean
}

/** gossipsub's application-specific score of a refused peer: times its weight (10), -20, below the gossip threshold (-10) and above the publish threshold (-50). */
export const REFUSED_APP_SCORE = -2

/**
 * Settings for a node that shares a machine with many others (`shoal sim` runs up to hundreds on two
 * cores). There a busy event loop, not the network, makes replies late: libp2p's connection monitor
 * then closes healthy connections whose ping was merely slow, handshakes time out, and the
 * reconnections cost more of the CPU that was short (docs/simulation.md, "Large meshes").
 */
export interface MeshTuning {
  /** Connections the mesh keeper dials up to (default TARGET_CONNECTIONS). */
  targetConnections?: number
  /** libp2p's connection monitor: a ping on every connection every 10 s, closing those that fail (default on). */
  connectionMonitor?: boolean
  /** Timeout of a dial and of an inbound connection's handshake (default libp2p's, 10 s). */
  handshakeTimeoutMs?: number
  /**
   * Refuse inbound connections beyond this many, before their handshake (default: no limit). Without
   * it every newcomer's DHT queries and keeper connect it to the oldest nodes, which end up connected
   * to nearly everyone.
   */
  maxInboundConnections?: number
  /**
   * Behave as a node behind a router that forwards no port (`shoal sim`'s `nat: true`): refuse every
   * inbound connection before its handshake, and tell no address. It is reached over the
   * connections it opens.
   */
  behindNat?: boolean
  /**
   * gossipsub's mesh degree D (default 6). Each ad reaches a node from about D mesh peers: in a
   * 40-node mesh in one process, nodes received every ad 7.5 times, and those copies, not the first,
   * were most of the gossip work.
   */
  gossipDegree?: number
  /**
   * gossipsub's flood publishing (default on): a node sends its own ads to every subscribed peer, not
   * only its mesh, which guards against being eclipsed on the open internet; on one machine it is
   * only more copies.
   */
  floodPublish?: boolean
}

/**
 * Scoring on the ad topic counts one thing only: ads this node rejected (docs/protocol.md 3.3; an
 * ignored ad, a replay say, costs nothing). Each costs its deliverer 10 x (rejected ads)^2 of score,
 * the count decaying by 10% a second: one rejected ad stops gossip to that peer for a few seconds
 * (threshold -10), three put it on the graylist (-80). Mesh-delivery and first-delivery scoring stay
 * off: ads are a few a minute per peer, too few for delivery rates to tell honest peers apart.
 */
const CAPACITY_TOPIC_SCORE = createTopicScoreParams({
  topicWeight: 1,
  timeInMeshWeight: 0,
  firstMessageDeliveriesWeight: 0,
  meshMessageDeliveriesWeight: 0,
  meshFailurePenaltyWeight: 0,
  invalidMessageDeliveriesWeight: -10,
  invalidMessageDeliveriesDecay: 0.9
})

/** gossipsub's mesh bounds for a degree d, in the proportions of its defaults (D 6, Dlo 4, Dhi 12). */
function gossipDegree (d: number): { D: number, Dlo: number, Dhi: number, Dlazy: number, Dscore: number, Dout: number } {
  return { D: d, Dlo: Math.max(1, d - 2), Dhi: 2 * d, Dlazy: d, Dscore: Math.min(4, d), Dout: Math.min(2, Math.floor(d / 2), Math.max(0, d - 3)) }
}

/**
 * Spots copies of a gossip message before its signature is checked. Without it gossipsub checks the
 * signature of every copy (each ad reaches a node from up to a dozen mesh peers) before its seen-cache
 * drops the duplicates: `shoal sim` profiles of 30-100 nodes in one process showed signature checks as
 * the largest single cost (about 30% of the CPU).
 * Under StrictSign a message is named by its author and sequence number (gossipsub's own message id);
 * an id enters the cache only after a copy passed validation, so a forged copy seen first is still
 * checked and refused, and the genuine one after it is not mistaken for a duplicate.
 */
function adCopyId (message: { from?: Uint8Array, seqno?: Uint8Array }): string {
  return `${toString(message.from ?? new Uint8Array(), 'base64')}/${toString(message.seqno ?? new Uint8Array(), 'base64')}`
}

function inbound (node: ShoalLibp2p | undefined): number {
  return node?.getConnections().filter(c => c.direction === 'inbound').length ?? 0
}

/**
 * The libp2p host of a Shoal node. Defaults are those of an internet node (libp2p's connection limits,
 * gossipsub scoring, private addresses kept out of the DHT); three relaxations make a mesh of many nodes
 * on one machine work (each measured on loopback meshes):
 * - connections from loopback skip the per-host inbound rate limit (only this machine can use them);
 * - gossipsub does not penalise many peers sharing 127.0.0.1 (likewise);
 * - with `lan` (automatic when every listen address is loopback), the DHT keeps private and loopback
 *   addresses, which an internet node must not hand out.
 */
export async function createShoalLibp2p (init: CreateShoalLibp2pInit): Promise<ShoalLibp2p> {
  const { config } = init
  const tuning = init.tuning ?? {}
  const refuse = init.refuse ?? (() => false)
  const handshake = tuning.handshakeTimeoutMs != null ? { dialTimeout: tuning.handshakeTimeoutMs, addressDialTimeout: tuning.handshakeTimeoutMs, inboundUpgradeTimeout: tuning.handshakeTimeoutMs } : {}
  // the gater counts the node's own connections, which exist only once libp2p is built
  let node: ShoalLibp2p | undefined
  node = await createLibp2p({
    privateKey: init.privateKey,
    start: false,
    addresses: {
      // a node that may sit behind a router (outside LAN mode, no address announced) also takes a
      // reservation on a relay it finds (a connected peer serving the relay protocol), and tells the
      // relayed address
      listen: relayClient(config) ? [...config.listen, '/p2p-circuit'] : config.listen,
      ...(config.announce.length > 0 ? { announce: config.announce } : {}),
      // what the node tells others (its ads, identify): outside LAN mode only addresses others can use,
      // never a loopback, private or link-local one (a relayed address starts with its relay's)
      announceFilter: tuning.behindNat === true ? () => [] : config.lan ? (addrs: Multiaddr[]) => addrs : usableAddresses
    },
    transports: [tcp(), webSockets(), circuitRelayTransport()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    // a private mesh: every connection is encrypted with the pre-shared key first (pnet), so a node
    // without it cannot connect, and on a LAN only nodes with the key find each other
    ...(config.swarmKeyBytes != null ? { connectionProtector: preSharedKey({ psk: swarmKeyFile(config.swarmKeyBytes) }) } : {}),
    peerDiscovery: config.mdns ? [mdns({ serviceTag: config.swarmKeyBytes != null ? MDNS_SERVICE_TAG.replace('_shoal.', `_shoal-${swarmKeyFingerprint(config.swarmKeyBytes)}.`) : MDNS_SERVICE_TAG })] : [],
    connectionManager: { allow: LOOPBACK_ALLOW, ...handshake },
    connectionMonitor: { enabled: tuning.connectionMonitor ?? true },
    connectionGater: {
      ...(tuning.behindNat === true
        ? { denyInboundConnection: () => true }
        : tuning.maxInboundConnections == null ? {} : { denyInboundConnection: () => inbound(node) >= tuning.maxInboundConnections! }),
      // by peer id before a dial, and once the handshake names the peer both ways (a dial by address)
      denyDialPeer: (peerId) => refuse(peerId.toString()),
      denyInboundEncryptedConnection: (peerId) => refuse(peerId.toString()),
      denyOutboundEncryptedConnection: (peerId) => refuse(peerId.toString())
    },
    services: {
      identify: identify(),
      ping: ping(),
      // confirms this node's public addresses by having peers dial them back, and answers peers' requests
      autoNAT: autoNAT(),
      // upgrades a relayed connection to a direct one where the routers allow (TCP hole punching)
      dcutr: dcutr(),
      // opt-in: the router maps a public port to this node; the volunteer asked, so the mapped address is told at once
      ...(config.upnp ? { upnp: uPnPNAT({ autoConfirmAddress: true }) } : {}),
      ...(config.relay !== 'off'
        ? {
            relay: circuitRelayServer({
              reservations: {
                maxReservations: config.relayMaxReservations,
                // unlimited: no data or time limit on the connections it relays, so pieces may cross them
                applyDefaultLimit: config.relay === 'limited'
              }
            })
          }
        : {}),
      dht: kadDHT({
        protocol: DHT_PROTOCOL,
        clientMode: false,
        peerInfoMapper: config.lan ? passthroughMapper : removePrivateAddressesMapper,
        validators: nameRecordValidators,
        selectors: nameRecordSelectors
      }),
      pubsub: gossipsub({
        globalSignaturePolicy: 'StrictSign',
        // an ad published before any peer subscribed is simply not seen; the next tick reaches them
        allowPublishToZeroTopicPeers: true,
        scoreParams: {
          IPColocationFactorWhitelist: new Set(['127.0.0.1', '::1']),
          topics: { [CAPACITY_TOPIC]: CAPACITY_TOPIC_SCORE },
          appSpecificScore: (peerId) => refuse(peerId) ? REFUSED_APP_SCORE : 0
        },
        fastMsgIdFn: adCopyId,
        ...(tuning.gossipDegree != null ? gossipDegree(tuning.gossipDegree) : {}),
        ...(tuning.floodPublish != null ? { floodPublish: tuning.floodPublish } : {})
      }),
      capacity: capacityService({ ...init.capacity, intervalMs: config.adIntervalMs }),
      inference: inferenceService(init.inference),
      swarm: modelSwarm(init.swarm),
      names: nameService(init.names),
      direct: directChannelService({ enabled: config.direct, host: directHost(config.listen), port: config.directPort, maxFrameBytes: MAX_FRAME_BYTES, reuse: init.directReuse }),
      meshKeeper: meshKeeper({
        bootstrap: config.bootstrap,
        targetConnections: tuning.targetConnections ?? TARGET_CONNECTIONS,
        intervalMs: init.meshKeeperIntervalMs ?? MESH_KEEPER_INTERVAL_MS,
        deafAfterMs: config.adIntervalMs * AD_EXPIRY_INTERVALS
      })
    }
  }) as ShoalLibp2p
  return node
}

/** Whether a node reserves a relay slot: outside LAN mode, with no address of its own announced. */
export function relayClient (config: Pick<NodeConfig, 'lan' | 'announce'>): boolean {
  return !config.lan && config.announce.length === 0
}

/** Addresses a peer elsewhere on the internet can use: not loopback, private or link-local. */
export function usableAddresses (addrs: Multiaddr[]): Multiaddr[] {
  return addrs.filter(a => !isPrivate(a) && !isLoopback(a) && !isLinkLocal(a))
}

/** The direct channel listens on the host of the first TCP listen address (all interfaces if none names one). */
export function directHost (listen: string[]): string {
  for (const addr of listen) {
    const components = multiaddr(addr).getComponents()
    const ip = components.find(c => c.name === 'ip4' || c.name === 'ip6')
    if (ip?.value != null && components.some(c => c.name === 'tcp') && !components.some(c => c.name === 'ws' || c.name === 'wss')) return ip.value
  }
  return '0.0.0.0'
}
