import { TopicValidatorResult } from '@libp2p/gossipsub'
import type { GossipSub, Message } from '@libp2p/gossipsub'
import { serviceCapabilities, serviceDependencies } from '@libp2p/interface'
import type { ComponentLogger, Logger, PeerId, PeerStore, Startable } from '@libp2p/interface'
import { multiaddr, CODE_P2P } from '@multiformats/multiaddr'
import type { AddressManager } from '@libp2p/interface-internal'
import { CAPACITY_TOPIC, decodeCapacityAd, encodeCapacityAd, InvalidMessageError, MAX_AD_ADDRS } from '@shoal/protocol'
import type { Capacity } from '@shoal/protocol'
import { EARLY_AD_JITTER_MS, EARLY_AD_MIN_DELAY_MS, LEAVE_FLUSH_MS, LEAVE_TIMEOUT_MS, MAX_NEW_PEERS_PER_RELAY, NEWCOMER_ANSWERS, RELAY_QUOTA_WINDOW_MS, SHOAL_VERSION } from '../constants.js'
import { RelayQuota } from './relay-quota.js'
import { PeerTable } from './peer-table.js'
import type { Hardware } from './hardware.js'

/** What the node knows about itself; the service adds identity, addresses, sequence and time. */
export type LocalCapacity = Pick<Capacity, 'gpu' | 'providers' | 'limits' | 'freeSlots' | 'queueLength' | 'models' | 'warmModels' | 'paused' | 'listedOnly' | 'refusedModels'> & { hardware: Hardware }

export interface CapacityServiceInit {
  intervalMs: number
  /** Called each time an ad is built, so the ad always carries current free slots and queue. */
  local: () => LocalCapacity
  now?: () => number
  /** Uniform in [0, 1): decides whether this node answers a newcomer (injectable, like the clock). */
  random?: () => number
}

export interface CapacityServiceComponents {
  peerId: PeerId
  peerStore: PeerStore
  addressManager: AddressManager
  logger: ComponentLogger
  pubsub: GossipSub
}

/**
 * Whether a node that knows `knownPeers` peers answers a newcomer with an early ad, given a uniform
 * draw in [0, 1): with probability NEWCOMER_ANSWERS / knownPeers, always in a mesh that small.
 */
export function answersNewcomer (draw: number, knownPeers: number): boolean {
  return draw * Math.max(1, knownPeers) < NEWCOMER_ANSWERS
}

/** Ads refused since start, by reason: malformed, oversized, bad-field, forged, replayed, stale, future, ... */
export type RefusedAds = Record<string, number>

/**
 * Publishes this node's capacity ad on `shoal/capacity/1` every `intervalMs` and whenever something
 * changes, validates every ad that arrives (size, schema, signer, sequence, age) and keeps the peer table.
 */
export class CapacityService implements Startable {
  readonly peers: PeerTable
  readonly refused: RefusedAds = {}
  private readonly relays = new RelayQuota(MAX_NEW_PEERS_PER_RELAY, RELAY_QUOTA_WINDOW_MS)
  private readonly components: CapacityServiceComponents
  private readonly init: CapacityServiceInit
  private readonly log: Logger
  private readonly now: () => number
  private readonly random: () => number
  /** Starts at the clock so that it keeps increasing across restarts without being stored. */
  private seq: number
  private timer?: ReturnType<typeof setInterval>
  private adTimer?: ReturnType<typeof setInterval>
  private publishSoon?: ReturnType<typeof setTimeout>
  private started = false

  constructor (components: CapacityServiceComponents, init: CapacityServiceInit) {
    this.components = components
    this.init = init
    this.now = init.now ?? Date.now
    this.log = components.logger.forComponent('shoal:capacity')
    this.seq = this.now()
    this.random = init.random ?? Math.random
    this.peers = new PeerTable({ now: this.now, self: components.peerId.toString() })
    this.peers.onEvent(event => { if (event.type === 'join') this.answerNewcomer() })
  }

  /**
   * A newcomer knows nobody's ad yet: answering its first ad (or its subscription) with ours lets it
   * learn the mesh in one round trip instead of waiting up to a whole interval. Every ad reaches every
   * node, so if every node answered every newcomer, n nodes joining would cost n^3 deliveries (a
   * 50-node mesh starting in one process never settled); each node answers with probability
   * NEWCOMER_ANSWERS / (peers it knows), so a newcomer gets about that many answers whatever the
   * mesh's size, and the rest of the ads at their next tick. In a mesh of up to that many nodes,
   * every node answers.
   */
  private answerNewcomer (): void {
    if (answersNewcomer(this.random(), this.peers.size)) this.changed()
  }

  readonly [Symbol.toStringTag] = '@shoal/capacity'
  readonly [serviceCapabilities] = ['@shoal/capacity']
  readonly [serviceDependencies] = ['@libp2p/pubsub']

  start (): void {}

  /** After start: gossipsub starts alongside us and takes subscriptions only once it runs. */
  afterStart (): void {
    const { pubsub } = this.components
    pubsub.topicValidators.set(CAPACITY_TOPIC, this.validate)
    pubsub.subscribe(CAPACITY_TOPIC)
    pubsub.addEventListener('subscription-change', this.onSubscriptionChange)
    // A sweep every half interval bounds how late an expiry is noticed to half an interval.
    this.timer = setInterval(() => { this.peers.expire() }, Math.max(50, Math.floor(this.init.intervalMs / 2)))
    // Ads exactly every interval: receivers expire us after three intervals, so gaps must not stretch.
    this.adTimer = setInterval(() => { this.publish() }, this.init.intervalMs)
    this.started = true
    this.publish()
  }

  /** Stops publishing without a leaving ad, as a crashed node would (simulations' abrupt kill). */
  silence (): void {
    this.started = false
    clearInterval(this.timer)
    clearInterval(this.adTimer)
    clearTimeout(this.publishSoon)
  }

  /** The leaving ad goes out while gossipsub and connections still run. */
  async beforeStop (): Promise<void> {
    if (!this.started) return
    this.silence()
    await Promise.race([
      (async () => {
        await this.send(this.buildAd(true)).catch(() => {})
        // gossipsub's publish returns once the ad is queued on each peer's stream, not once it is
        // written; the connections close right after, and on a busy machine the goodbye was lost
        await new Promise(resolve => setTimeout(resolve, LEAVE_FLUSH_MS).unref())
      })(),
      new Promise(resolve => setTimeout(resolve, LEAVE_TIMEOUT_MS).unref())
    ])
  }

  stop (): void {
    this.silence()
    const { pubsub } = this.components
    pubsub.removeEventListener('subscription-change', this.onSubscriptionChange)
    pubsub.topicValidators.delete(CAPACITY_TOPIC)
    this.peers.clear()
  }

  /** This node's ad as it would be published now. */
  current (): Capacity {
    return this.buildAd(false, false)
  }

  /**
   * Publish soon: for changes peers should see before the next tick (free slots, models, a newcomer).
   * Early ads are spaced at least `intervalMs / 4` apart and jittered, so that a burst of changes (a
   * flash crowd joining) costs each node at most a few extra ads per interval, not one per change.
   */
  changed (): void {
    if (!this.started || this.publishSoon != null) return
    const earliest = this.lastPublished + Math.floor(this.init.intervalMs / 4)
    const delay = Math.max(EARLY_AD_MIN_DELAY_MS, earliest - this.now()) + Math.floor(Math.random() * EARLY_AD_JITTER_MS)
    this.publishSoon = setTimeout(() => {
      this.publishSoon = undefined
      this.publish()
    }, delay)
  }

  private lastPublished = 0

  private publish (): void {
    if (!this.started) return
    this.lastPublished = this.now()
    this.send(this.buildAd(false)).catch(err => {
      this.log.error('could not publish capacity ad - %e', err)
    })
  }

  private async send (ad: Capacity): Promise<void> {
    await this.components.pubsub.publish(CAPACITY_TOPIC, encodeCapacityAd(ad))
  }

  private buildAd (leaving: boolean, advance = true): Capacity {
    const local = this.init.local()
    const addrs = this.components.addressManager.getAddresses()
      .map(ma => ma.decapsulateCode(CODE_P2P).toString())
      .slice(0, MAX_AD_ADDRS)
    return {
      peerId: this.components.peerId.toString(),
      version: SHOAL_VERSION,
      addrs,
      cpu: local.hardware.cpu,
      memory: local.hardware.memory,
      os: local.hardware.os,
      arch: local.hardware.arch,
      gpu: local.gpu,
      providers: local.providers,
      limits: local.limits,
      freeSlots: local.freeSlots,
      queueLength: local.queueLength,
      models: local.models,
      warmModels: local.warmModels ?? [],
      paused: local.paused ?? false,
      listedOnly: local.listedOnly ?? false,
      refusedModels: local.refusedModels ?? [],
      seq: advance ? ++this.seq : this.seq,
      timestampMs: this.now(),
      intervalMs: this.init.intervalMs,
      leaving
    }
  }

  /**
   * A newcomer subscribed: tell it about us now rather than at the next tick. A peer whose ad we hold
   * is no newcomer (it reconnected, or dialled us for work): answering every new connection this way
   * made connection churn in a large mesh an ad storm.
   */
  private readonly onSubscriptionChange = (evt: CustomEvent<{ peerId: PeerId, subscriptions: Array<{ topic: string, subscribe: boolean }> }>): void => {
    if (this.peers.get(evt.detail.peerId.toString()) != null) return
    if (evt.detail.subscriptions.some(s => s.topic === CAPACITY_TOPIC && s.subscribe)) this.answerNewcomer()
  }

  private refuse (reason: string, result: TopicValidatorResult): TopicValidatorResult {
    this.refused[reason] = (this.refused[reason] ?? 0) + 1
    return result
  }

  /** gossipsub's topic validator: runs before an ad is delivered or forwarded to anyone. */
  private readonly validate = (propagationSource: PeerId, message: Message): TopicValidatorResult => {
    if (message.type !== 'signed') return this.refuse('unsigned', TopicValidatorResult.Reject)
    let capacity: Capacity
    try {
      capacity = decodeCapacityAd(message.data)
    } catch (err) {
      const reason = err instanceof InvalidMessageError ? err.reason : 'malformed'
      this.log('refused ad from %p: %s', message.from, (err as Error).message)
      return this.refuse(reason, TopicValidatorResult.Reject)
    }
    const verdict = this.peers.check(capacity, message.from.toString())
    if (verdict.action !== 'accept') {
      if (verdict.reason === 'self') return TopicValidatorResult.Ignore
      this.log('refused ad from %p: %s', message.from, verdict.reason)
      return this.refuse(verdict.reason, verdict.action === 'reject' ? TopicValidatorResult.Reject : TopicValidatorResult.Ignore)
    }
    // a newcomer relayed by another peer counts against that relay's quota
    const relay = propagationSource.toString()
    if (this.peers.get(capacity.peerId) == null && !capacity.leaving && relay !== capacity.peerId && !this.relays.take(relay, this.now())) {
      return this.refuse('relay-limit', TopicValidatorResult.Ignore)
    }
    this.peers.apply(capacity)
    if (!capacity.leaving && capacity.addrs.length > 0) {
      // a peer known only through gossip can then be dialled for work; the ad is signed by that peer,
      // so these are addresses it claims for itself
      this.components.peerStore.merge(message.from, { multiaddrs: capacity.addrs.map(a => multiaddr(a)) })
        .catch(err => { this.log('could not record addresses of %p - %e', message.from, err) })
    }
    return TopicValidatorResult.Accept
  }
}

export function capacityService (init: CapacityServiceInit): (components: CapacityServiceComponents) => CapacityService {
  return (components) => new CapacityService(components, init)
}
