/**
 * Which block of a model to ask of which provider, and what a provider's answers mean: plain data, no
 * I/O, time passed in. `BlockFetch` (fetch-engine.ts) drives it against a block exchange.
 *
 * Blocks are keyed by their multihash digest (base64), since that is what a received block is known
 * by. A block is `queued` (to ask), `inFlight` (asked of one provider), `storing` (arrived, being
 * checked and written) or `stored`. Each provider has the blocks it said it lacks (a provider still
 * fetching the model holds part of it) and its count of timeouts.
 */
export interface FetchLimits {
  /** Blocks asked at once in one fetch, across all its providers. */
  blocksInFlight: number
  /** Blocks asked of one provider at once. */
  blocksPerProvider: number
  /** A block a provider lacked is asked of it again after this long (once the want was forgotten). */
  refusalRetryMs: number
  /** Patience for one block until a few have shown how long they take. */
  blockTimeoutMs: number
  /** The least patience for one block, however fast recent ones came. */
  minBlockTimeoutMs: number
  /** A provider that misses this many blocks is dropped from the fetch. */
  timeoutsBeforeDrop: number
  /** Providers one fetch asks at most: a flood of provider records must not give it thousands of lanes. */
  maxProviders: number
}

interface Lack { at: number, forgotten: boolean }

interface Provider {
  lacks: Map<string, Lack>
  timeouts: number
  /** How long its recent blocks took from asking to arriving. */
  times: number[]
}

/** What a timed-out block means for its provider. */
export type TimeoutVerdict = { drop: false } | { drop: true, reason: string }

/** Recent block times kept for the adaptive timeout. */
const KEPT_BLOCK_TIMES = 32

export class FetchPlan {
  readonly limits: FetchLimits
  private readonly queue: string[] = []
  private readonly inFlight = new Set<string>()
  private readonly storing = new Set<string>()
  private readonly stored = new Set<string>()
  private readonly providers = new Map<string, Provider>()
  private readonly droppedPeers = new Map<string, string>()
  /** Bytes stored from each provider, in the order they first delivered. */
  private readonly servedBytes = new Map<string, number>()
  /** Providers that said they lack some block (named when the fetch stalls). */
  private readonly lackedBy = new Set<string>()
  /** When a block last arrived or a provider last joined: a fetch with neither for too long has stalled. */
  lastProgressAt: number
  /** Bytes that arrived again after a copy was here (wasted transfer). */
  duplicateBytes = 0

  constructor (limits: FetchLimits, now: number) {
    this.limits = limits
    this.lastProgressAt = now
  }

  /** Queues a block to be asked for (at the front: a block that came back from a failed ask). */
  enqueue (key: string, front = false): void {
    if (this.stored.has(key) || this.storing.has(key) || this.inFlight.has(key) || this.queue.includes(key)) return
    if (front) this.queue.unshift(key)
    else this.queue.push(key)
  }

  /** A new provider; false if it is known or was dropped. */
  addProvider (peer: string, now: number): boolean {
    if (this.providers.has(peer) || this.droppedPeers.has(peer) || this.providers.size >= this.limits.maxProviders) return false
    this.providers.set(peer, { lacks: new Map(), timeouts: 0, times: [] })
    this.lastProgressAt = now
    return true
  }

  /** Providers asked so far, dropped ones included. */
  get candidates (): number { return this.providers.size }

  isActive (peer: string): boolean { return this.providers.has(peer) && !this.droppedPeers.has(peer) }

  /** Enough is on its way: many providers must not mean a flood of blocks at once. */
  saturated (): boolean { return this.inFlight.size >= this.limits.blocksInFlight }

  /** Something is left to do: blocks queued, asked, or being stored. */
  unfinished (): boolean { return this.queue.length > 0 || this.inFlight.size > 0 || this.storing.size > 0 }

  /** Blocks asked and not yet answered. */
  get asking (): number { return this.inFlight.size }

  /**
   * The next queued block to ask `peer` for: the first it has not said it lacks, or said so at least
   * `refusalRetryMs` ago and the want was forgotten since. Marks it in flight.
   */
  take (peer: string, now: number): string | undefined {
    const lacks = this.providers.get(peer)?.lacks
    const i = lacks == null || lacks.size === 0
      ? (this.queue.length > 0 ? 0 : -1)
      : this.queue.findIndex(key => {
        const lack = lacks.get(key)
        return lack == null || (lack.forgotten && now - lack.at >= this.limits.refusalRetryMs)
      })
    if (i < 0) return undefined
    const key = this.queue.splice(i, 1)[0]
    lacks?.delete(key)
    this.inFlight.add(key)
    return key
  }

  /** The ask for `key` is over, whatever its outcome; a block not stored goes back to the front of the queue. */
  settle (key: string): void {
    this.inFlight.delete(key)
    if (!this.stored.has(key) && !this.storing.has(key)) this.enqueue(key, true)
  }

  /** A block from `peer` arrived `ms` after it was asked for. */
  timed (peer: string, ms: number): void {
    const times = this.providers.get(peer)?.times
    if (times == null) return
    times.push(ms)
    if (times.length > KEPT_BLOCK_TIMES) times.shift()
  }

  /**
   * Patience for one block from `peer`: generous until a few of its blocks have shown how long they
   * take, then 8 times their median. Each provider's own: a fast provider must not make a slow
   * volunteer's uplink look like a string of timeouts.
   */
  blockTimeout (peer: string): number {
    const { blockTimeoutMs, minBlockTimeoutMs } = this.limits
    const times = this.providers.get(peer)?.times ?? []
    if (times.length < 4) return blockTimeoutMs
    const median = [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)]
    return Math.min(blockTimeoutMs, Math.max(minBlockTimeoutMs, 8 * median))
  }

  /** A copy of the block is stored or on its way into the store. */
  isHere (key: string): boolean { return this.stored.has(key) || this.storing.has(key) }

  /**
   * A block arrived (or was found held). Returns false if a copy is here already; else the block is
   * being stored until `store` or `unstore` says how that went.
   */
  arrive (key: string): boolean {
    if (this.isHere(key)) return false
    const i = this.queue.indexOf(key)
    if (i >= 0) this.queue.splice(i, 1)
    this.storing.add(key)
    return true
  }

  /** The block is in the store. */
  store (key: string, from: string | null, bytes: number, now: number): void {
    this.storing.delete(key)
    this.stored.add(key)
    this.lastProgressAt = now
    if (from != null) this.servedBytes.set(from, (this.servedBytes.get(from) ?? 0) + bytes)
  }

  /** Storing the block failed (the fetch fails; the block stays queued for a later one). */
  unstore (key: string): void {
    this.storing.delete(key)
    this.enqueue(key, true)
  }

  /** `peer` said it lacks the block: ask others, and it again later, once the want was forgotten. */
  lacked (peer: string, key: string, now: number): void {
    this.lackedBy.add(peer)
    this.providers.get(peer)?.lacks.set(key, { at: now, forgotten: false })
  }

  /** Blocks `peer` lacked whose wants were not yet forgotten (cancelled at the exchange). */
  unforgotten (peer: string): string[] {
    return [...this.providers.get(peer)?.lacks ?? []].filter(([, lack]) => !lack.forgotten).map(([key]) => key)
  }

  /** The exchange forgot these wants: they may be asked of `peer` again after `refusalRetryMs`. */
  forgotten (peer: string, keys: string[]): void {
    const lacks = this.providers.get(peer)?.lacks
    for (const key of keys) {
      const lack = lacks?.get(key)
      if (lack != null) lack.forgotten = true
    }
  }

  /**
   * `peer` did not answer for a block in time (`failure` unset), or its stream failed (`failure` says
   * how): others are asked for the block; a provider that keeps missing is dropped.
   */
  timedOut (peer: string, key: string, block: string, timeoutMs: number, now: number, failure?: string): TimeoutVerdict {
    const provider = this.providers.get(peer)
    if (provider == null) return { drop: false }
    provider.timeouts++
    if (provider.timeouts >= this.limits.timeoutsBeforeDrop) {
      return {
        drop: true,
        reason: failure == null
          ? `no answer for ${provider.timeouts} blocks (the last, ${block}, within ${timeoutMs} ms)`
          : `${provider.timeouts} blocks failed (the last, ${block}: ${failure})`
      }
    }
    this.lacked(peer, key, now)
    return { drop: false }
  }

  /** Drops a provider from this fetch; false if it was dropped already. */
  drop (peer: string, reason: string): boolean {
    if (this.droppedPeers.has(peer)) return false
    this.droppedPeers.set(peer, reason)
    return true
  }

  /** Nothing arrived and no provider joined for longer than `patienceMs`. */
  stalled (now: number, patienceMs: number): boolean {
    return now - this.lastProgressAt > patienceMs
  }

  /** Why no one could provide the rest: who was dropped and why, who lacks what is left. */
  stallReasons (): string[] {
    const why = [...this.droppedPeers].map(([peer, reason]) => `${peer}: ${reason}`)
    const lacking = [...this.lackedBy].filter(p => !this.droppedPeers.has(p))
    if (lacking.length > 0) why.push(`${lacking.join(', ')}: lack the remaining blocks`)
    return why
  }

  /** Bytes each provider delivered, in the order they first did. */
  served (): Array<{ peerId: string, bytes: number }> {
    return [...this.servedBytes].map(([peerId, bytes]) => ({ peerId, bytes }))
  }

  dropped (): Array<{ peerId: string, reason: string }> {
    return [...this.droppedPeers].map(([peerId, reason]) => ({ peerId, reason }))
  }
}
