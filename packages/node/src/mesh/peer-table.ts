import type { Capacity } from '@shoal/protocol'
import {
  AD_EXPIRY_INTERVALS, MAX_AD_AGE_MS, MAX_COUNTED_AD_INTERVAL_MS, MAX_AD_CLOCK_SKEW_MS, MAX_PEER_TABLE_ENTRIES, TOMBSTONE_TTL_MS
} from '../constants.js'

/** A live peer as this node sees it. */
export interface PeerEntry {
  capacity: Capacity
  /** Local clock time the latest ad arrived: expiry is measured on our clock, never the publisher's. */
  receivedAt: number
  firstSeenAt: number
}

export type PeerEvent =
  | { type: 'join', peerId: string, entry: PeerEntry }
  | { type: 'update', peerId: string, entry: PeerEntry }
  | { type: 'leave', peerId: string, reason: 'left' | 'expired' }

/**
 * Why an ad was not taken. `reject`: the publisher misbehaved (gossipsub penalises whoever sent it);
 * `ignore`: the ad is merely late or old, which honest relays can cause, so nobody is penalised.
 */
export type Verdict =
  | { action: 'accept' }
  | { action: 'reject' | 'ignore', reason: 'forged' | 'replayed' | 'stale' | 'future' | 'self' | 'full' }

export interface PeerTableInit {
  /** Milliseconds on a monotonic-enough clock; injected so that tests control time. */
  now: () => number
  /** Our own peer id: our ads come back through gossip and are not a peer. */
  self: string
  expiryIntervals?: number
  maxAgeMs?: number
  maxClockSkewMs?: number
  maxEntries?: number
}

/**
 * The node's live view of the mesh: the latest valid capacity ad of every peer. Pure logic over plain
 * data and an injected clock; the capacity service feeds it ads and calls `expire` on a timer.
 *
 * Rules (docs/protocol.md): an ad is taken only if its signer is the peer it describes, its sequence
 * number is higher than any seen from that peer (also after the peer left), and its timestamp is
 * neither older than `maxAgeMs` nor further ahead than `maxClockSkewMs`. An entry expires when no ad
 * arrived for `expiryIntervals` times the interval the publisher announced; a leaving ad removes it at once.
 */
export class PeerTable {
  private readonly entries = new Map<string, PeerEntry>()
  /** Last sequence number of peers that left or expired, with when to forget it. */
  private readonly tombstones = new Map<string, { seq: number, until: number }>()
  private readonly listeners = new Set<(event: PeerEvent) => void>()
  private readonly init: Required<PeerTableInit>

  constructor (init: PeerTableInit) {
    this.init = {
      expiryIntervals: AD_EXPIRY_INTERVALS,
      maxAgeMs: MAX_AD_AGE_MS,
      maxClockSkewMs: MAX_AD_CLOCK_SKEW_MS,
      maxEntries: MAX_PEER_TABLE_ENTRIES,
      ...init
    }
  }

  /** Subscribe to join/update/leave events; returns the function that unsubscribes. */
  onEvent (listener: (event: PeerEvent) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Decides whether an ad, signed by `signer`, may enter the table. Changes nothing. */
  check (capacity: Capacity, signer: string): Verdict {
    const now = this.init.now()
    if (capacity.peerId !== signer) return { action: 'reject', reason: 'forged' }
    if (capacity.peerId === this.init.self) return { action: 'ignore', reason: 'self' }
    const lastSeq = this.entries.get(signer)?.capacity.seq ?? this.tombstones.get(signer)?.seq ?? 0
    if (capacity.seq <= lastSeq) return { action: 'ignore', reason: 'replayed' }
    if (capacity.timestampMs < now - this.init.maxAgeMs) return { action: 'ignore', reason: 'stale' }
    if (capacity.timestampMs > now + this.init.maxClockSkewMs) return { action: 'ignore', reason: 'future' }
    if (!this.entries.has(signer) && !capacity.leaving && this.entries.size >= this.init.maxEntries) return { action: 'ignore', reason: 'full' }
    return { action: 'accept' }
  }

  /** Takes an ad that `check` accepted. */
  apply (capacity: Capacity): void {
    const now = this.init.now()
    const { peerId } = capacity
    const previous = this.entries.get(peerId)
    if (capacity.leaving) {
      this.tombstones.set(peerId, { seq: capacity.seq, until: now + TOMBSTONE_TTL_MS })
      if (previous != null) {
        this.entries.delete(peerId)
        this.emit({ type: 'leave', peerId, reason: 'left' })
      }
      return
    }
    this.tombstones.delete(peerId)
    const entry: PeerEntry = { capacity, receivedAt: now, firstSeenAt: previous?.firstSeenAt ?? now }
    this.entries.set(peerId, entry)
    this.emit({ type: previous == null ? 'join' : 'update', peerId, entry })
  }

  /** Removes entries whose publisher missed too many refreshes; returns the peers removed. */
  expire (): string[] {
    const now = this.init.now()
    const expired: string[] = []
    for (const [peerId, entry] of this.entries) {
      // an ad's announced interval counts up to MAX_COUNTED_AD_INTERVAL_MS: a forged ad announcing 10
      // minutes kept a peer listed for 30 after its last word
      if (now - entry.receivedAt > Math.min(entry.capacity.intervalMs, MAX_COUNTED_AD_INTERVAL_MS) * this.init.expiryIntervals) {
        this.entries.delete(peerId)
        this.tombstones.set(peerId, { seq: entry.capacity.seq, until: now + TOMBSTONE_TTL_MS })
        expired.push(peerId)
        this.emit({ type: 'leave', peerId, reason: 'expired' })
      }
    }
    for (const [peerId, tombstone] of this.tombstones) {
      if (tombstone.until < now) this.tombstones.delete(peerId)
    }
    return expired
  }

  get (peerId: string): PeerEntry | undefined {
    return this.entries.get(peerId)
  }

  get size (): number {
    return this.entries.size
  }

  /** Every live entry, with how long ago its last ad arrived. */
  list (): Array<PeerEntry & { lastSeenMs: number }> {
    const now = this.init.now()
    return [...this.entries.values()].map(entry => ({ ...entry, lastSeenMs: now - entry.receivedAt }))
  }

  /** Forget everything (at stop): peers are not told, as they are not leaving. */
  clear (): void {
    this.entries.clear()
    this.tombstones.clear()
  }

  private emit (event: PeerEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event)
      } catch {
        // a listener's bug must not corrupt the table or starve the other listeners
      }
    }
  }
}
