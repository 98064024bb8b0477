/**
 * Result verification, the policy (pure: plain data, time and randomness passed in). Which pieces a
 * submitter runs a second time, who wins when answers disagree, and what a peer proven wrong costs
 * itself. How two answers compare is @shoal/runtime's `compareOutputs`; the job that applies it all
 * is @shoal/node's.
 *
 * The model is BOINC's adaptive replication: a peer earns a record of consecutive verified results;
 * until the record is established every piece it returns is checked, after that a falling fraction,
 * never less than a floor; one wrong answer resets the record and excludes the peer for a time that
 * doubles with each offence.
 */

/** `off`: no piece checked. `spot`: adaptive re-runs. `full`: every piece on two different peers. */
export type VerifyPolicy = 'off' | 'spot' | 'full'

export const VERIFY_POLICIES: readonly VerifyPolicy[] = ['off', 'spot', 'full']

export interface SpotOptions {
  /** Consecutive verified results before a peer's pieces are checked less than always. */
  establishedAfter: number
  /** The least fraction of an established peer's pieces that is checked. */
  floor: number
}

/**
 * 10 verified results before any piece goes unchecked; then `10 / record` of the pieces, down to 5%
 * at a record of 200. A cheater corrupting a fraction f of its n pieces is caught with probability
 * 1 - (1 - r)^(f n), r the fraction checked: at the 5% floor, one corrupting 10% of 100 pieces is
 * caught in 40% of jobs, and surely before long, as each catch resets its record to "check everything".
 */
export const DEFAULT_SPOT: SpotOptions = { establishedAfter: 10, floor: 0.05 }

/** The fraction of a peer's pieces `spot` checks, given its record of consecutive verified results. */
export function checkFraction (record: number, options: SpotOptions = DEFAULT_SPOT): number {
  if (record < options.establishedAfter) return 1
  return Math.max(options.floor, options.establishedAfter / record)
}

/** Whether a piece this peer returned is to be checked. `random` in [0, 1). */
export function needsCheck (policy: VerifyPolicy, record: number, random: () => number, options: SpotOptions = DEFAULT_SPOT): boolean {
  if (policy === 'off') return false
  if (policy === 'full') return true
  const fraction = checkFraction(record, options)
  return fraction >= 1 || random() < fraction
}

/**
 * Of `count` answers to one piece, those that agree and those outvoted; null when no two agree (the
 * piece then goes to one more peer, or fails). `agree(i, j)` compares answers i and j (with
 * @shoal/runtime's `compareOutputs`). The winners are the answer that agrees with the most others
 * (the first such) and those others: with two answers that agree, both; with three of which two
 * agree, those two, the third outvoted. An answer within tolerance of a winner is never outvoted.
 */
export function majority (count: number, agree: (i: number, j: number) => boolean): { agreeing: number[], outvoted: number[] } | null {
  let best: number[] = []
  for (let i = 0; i < count; i++) {
    const group = [i]
    for (let j = 0; j < count; j++) if (j !== i && agree(i, j)) group.push(j)
    if (group.length > best.length) best = group
  }
  if (best.length < 2) return null
  const agreeing = best.sort((a, b) => a - b)
  const outvoted: number[] = []
  for (let i = 0; i < count; i++) if (!agreeing.includes(i)) outvoted.push(i)
  return { agreeing, outvoted }
}

export interface TrustOptions {
  /** A first offence excludes a peer this long; each further offence doubles it. */
  exclusionMs: number
  /** The longest exclusion. */
  maxExclusionMs: number
}

/** An hour for a first wrong answer, doubling to at most 30 days. */
export const DEFAULT_TRUST: TrustOptions = { exclusionMs: 60 * 60_000, maxExclusionMs: 30 * 24 * 60 * 60_000 }

/** What a submitter knows of one peer's answers. */
export interface PeerTrust {
  /** Consecutive answers verified correct (reset by a wrong one). */
  record: number
  /** Answers proven wrong, ever. */
  offences: number
  /** Excluded from this node's jobs until then (ms since the epoch; 0: not excluded). */
  excludedUntil: number
}

/**
 * Each peer's record with this node: kept by the submitter, persisted in its data dir (`toJSON`,
 * `fromJSON`), bounded in size (the peers with the least to remember are forgotten first).
 */
export class TrustRecords {
  private readonly peers = new Map<string, PeerTrust>()
  private readonly now: () => number
  private readonly options: TrustOptions
  private readonly maxPeers: number

  constructor (now: () => number, options: TrustOptions = DEFAULT_TRUST, maxPeers = 10_000) {
    this.now = now
    this.options = options
    this.maxPeers = maxPeers
  }

  get (peer: string): PeerTrust {
    return this.peers.get(peer) ?? { record: 0, offences: 0, excludedUntil: 0 }
  }

  /** An answer of this peer's was verified correct. */
  verified (peer: string): void {
    const t = this.get(peer)
    this.set(peer, { ...t, record: t.record + 1 })
  }

  /** An answer of this peer's was proven wrong: its record starts again, and it is excluded; returns until when. */
  caught (peer: string): number {
    const t = this.get(peer)
    const ms = Math.min(this.options.maxExclusionMs, this.options.exclusionMs * 2 ** t.offences)
    const until = this.now() + ms
    this.set(peer, { record: 0, offences: t.offences + 1, excludedUntil: until })
    return until
  }

  excluded (peer: string): boolean {
    return this.get(peer).excludedUntil > this.now()
  }

  toJSON (): Record<string, PeerTrust> {
    return Object.fromEntries(this.peers)
  }

  /** Takes records written by `toJSON`; entries that are not records are skipped. */
  load (json: unknown): void {
    if (json == null || typeof json !== 'object') return
    for (const [peer, value] of Object.entries(json as Record<string, unknown>)) {
      const v = value as Partial<PeerTrust> | null
      if (v == null || ![v.record, v.offences, v.excludedUntil].every(n => Number.isSafeInteger(n) && (n as number) >= 0)) continue
      this.set(peer, { record: v.record!, offences: v.offences!, excludedUntil: v.excludedUntil! })
    }
  }

  private set (peer: string, trust: PeerTrust): void {
    this.peers.delete(peer)
    this.peers.set(peer, trust)
    if (this.peers.size <= this.maxPeers) return
    // forget a peer with no offence first (its record is earned again), the least recently seen; then
    // one whose exclusion has ended; an exclusion still running only when every entry is one (the one
    // that ends soonest)
    const now = this.now()
    let victim: string | undefined
    let ended: string | undefined
    let soonest: [string, number] | undefined
    for (const [peer, t] of this.peers) {
      if (t.offences === 0) { victim = peer; break }
      if (ended == null && t.excludedUntil <= now) ended = peer
      if (soonest == null || t.excludedUntil < soonest[1]) soonest = [peer, t.excludedUntil]
    }
    this.peers.delete(victim ?? ended ?? soonest![0])
  }
}
