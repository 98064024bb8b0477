/**
 * How far a node trusts each peer to serve model blocks: plain data over an injected clock. A peer that
 * sent a bad block or timed out gets strikes; strikes fade with time; a peer with too many is not asked
 * at all until they fade. Providers are tried best standing first.
 */
export type Strike = 'bad-block' | 'timeout'

/** Weight of each strike: a bad block is proof of a broken or hostile peer, a timeout may be bad luck. With the default threshold (4), two bad blocks, or four timeouts close together, exclude a peer for a while. */
export const STRIKE_WEIGHT: Record<Strike, number> = { 'bad-block': 3, timeout: 1 }

export interface StandingOptions {
  /** A strike's weight halves every this many ms. */
  halfLifeMs: number
  /** A peer whose strikes weigh this much or more is not asked. */
  excludeAt: number
}

export const DEFAULT_STANDING: StandingOptions = { halfLifeMs: 10 * 60_000, excludeAt: 4 }

export class Standing {
  private readonly strikes = new Map<string, { weight: number, at: number }>()
  private readonly options: StandingOptions
  private readonly now: () => number

  constructor (now: () => number = Date.now, options: StandingOptions = DEFAULT_STANDING) {
    this.now = now
    this.options = options
  }

  /** Current weight of a peer's strikes (0: clean). */
  weight (peerId: string): number {
    const s = this.strikes.get(peerId)
    if (s == null) return 0
    const weight = s.weight * Math.pow(0.5, (this.now() - s.at) / this.options.halfLifeMs)
    if (weight < 0.01) {
      this.strikes.delete(peerId)
      return 0
    }
    return weight
  }

  strike (peerId: string, why: Strike): void {
    this.strikes.set(peerId, { weight: this.weight(peerId) + STRIKE_WEIGHT[why], at: this.now() })
  }

  excluded (peerId: string): boolean {
    return this.weight(peerId) >= this.options.excludeAt
  }

  /** Peers not excluded, best standing first (stable for equal standing). */
  rank (peerIds: string[]): string[] {
    return peerIds
      .filter(p => !this.excluded(p))
      .map((p, i) => ({ p, i, w: this.weight(p) }))
      .sort((a, b) => a.w - b.w || a.i - b.i)
      .map(x => x.p)
  }

  /** Peers with strikes, for the node's status. */
  list (): Array<{ peerId: string, weight: number }> {
    return [...this.strikes.keys()].map(peerId => ({ peerId, weight: this.weight(peerId) })).filter(s => s.weight > 0)
  }
}
