/**
 * How many peers new to the table one relaying peer may introduce in a window. An ad is signed by its
 * own peer, so a forger can mint any number of identities and relay their ads over one connection:
 * thousands of them once filled tables and stalled jobs. A relay past its quota has further
 * newcomers' ads ignored until the window turns; ads of peers already known, and ads a peer publishes
 * itself, are never counted. Pure: the caller passes the clock.
 */
export class RelayQuota {
  private readonly windows = new Map<string, { start: number, count: number }>()

  constructor (private readonly limit: number, private readonly windowMs: number, private readonly maxRelays = 10_000) {}

  /** Counts one newcomer introduced by `relay`; false if the relay is past its quota. */
  take (relay: string, now: number): boolean {
    let window = this.windows.get(relay)
    if (window == null || now - window.start >= this.windowMs) {
      if (this.windows.size >= this.maxRelays) this.prune(now)
      window = { start: now, count: 0 }
      this.windows.set(relay, window)
    }
    if (window.count >= this.limit) return false
    window.count++
    return true
  }

  private prune (now: number): void {
    for (const [relay, window] of this.windows) if (now - window.start >= this.windowMs) this.windows.delete(relay)
    // every window still open: forget the oldest rather than grow without bound
    if (this.windows.size >= this.maxRelays) this.windows.delete(this.windows.keys().next().value as string)
  }
}
