/**
 * Who may take one of a worker's free slots. A peer refused a slot waits for one: the next slots to
 * free are kept for the waiting peers, in turn, so that a peer sending piece after piece cannot keep
 * everyone else out (a lone submitter still fills every slot; two submitters on two slots alternate).
 * A peer waits from its refusal until it gets a slot, or until `waitMs` after its last refusal (a
 * submitter backs off and comes back; one that stopped asking stops counting). A slot kept for
 * waiting peers is kept at most `keepMs`: if none of them comes for it by then, the waiting peers are
 * forgotten and the slot goes to whoever asks (a peer that only pretends to wait costs a worker
 * `keepMs` of one slot, not its slots). Pieces already running are never interrupted.
 * Per peer id: identities are free to mint, so this shares a worker among the peers it sees.
 *
 * With `priority` (a peer's contribution credit with this node), slots wanted by more waiting peers
 * than are free go to the waiting peers of most credit first, except that one such slot in every
 * `1 / newcomerShare` goes to the peer of no credit that has waited longest: a newcomer can start
 * earning however busy the worker. Only peers still asking rank (refused within `askingMs`, longer
 * than a submitter backs off after OVERLOADED): a slot is not held for one whose job has ended. A slot
 * that nobody else waits for goes to whoever asks: no peer is turned away for having no credit while a
 * slot is idle. Pure: the caller passes the clock.
 */
export class SlotShares {
  private readonly held = new Map<string, number>()
  /** Peers refused a slot, by the time of their last refusal (oldest first). */
  private readonly waiting = new Map<string, number>()
  private total = 0
  /** Since when a slot has been free while peers wait (null: none is). */
  private keptSince: number | null = null

  /** Slots given while more peers waited than slots were free (the newcomers' turn comes round in these). */
  private contended = 0
  /** A free slot kept a moment for the peer that released it (`reserveFor`). */
  private reservation?: { peer: string, until: number }

  constructor (
    private readonly slots: number,
    private readonly waitMs: number,
    private readonly keepMs: number,
    private readonly maxWaiting = 4096,
    private readonly priority?: (peer: string) => number,
    private readonly newcomerShare = 0.15,
    private readonly askingMs = 1500
  ) {}

  /** Slots in use. */
  get running (): number {
    return this.total
  }

  /** What `peer` holds now. */
  holding (peer: string): number {
    return this.held.get(peer) ?? 0
  }

  /**
   * Takes a slot for `peer`, or says why it cannot have one now (and counts it as waiting). A slot
   * taken is given back with `release`.
   */
  take (peer: string, now: number): string | undefined {
    this.expire(now)
    if (this.reservation != null && now < this.reservation.until) {
      if (this.reservation.peer !== peer) {
        this.wait(peer, now)
        return 'the free slot is kept a moment for a peer that did more work for this node; try again shortly'
      }
      this.reservation = undefined
      this.hold(peer)
      return undefined
    }
    this.reservation = undefined
    if (this.total >= this.slots) {
      this.wait(peer, now)
      return `running ${this.total} pieces, the most this node takes at once`
    }
    const others = this.waiting.size - (this.waiting.has(peer) ? 1 : 0)
    const free = this.slots - this.total
    // a peer that waited takes its slot; any other only a slot beyond those kept for the waiting
    if (!this.waiting.has(peer) && others >= free) {
      this.wait(peer, now)
      return `the free slot${free === 1 ? ' is' : 's are'} kept for ${others === 1 ? 'a peer' : `${others} peers`} turned away before you; try again shortly`
    }
    if (this.priority != null && this.waiting.has(peer) && this.waiting.size > free) {
      const first = this.firstInLine(free, peer, now)
      if (first.size >= free && !first.has(peer)) {
        this.wait(peer, now)
        return `the free slot${free === 1 ? ' is' : 's are'} kept for peers that did more work for this node; try again shortly`
      }
      this.contended++
    }
    this.hold(peer)
    return undefined
  }

  /**
   * Of requests waiting at this node for a slot now (`askers`, in their arrival order), the one a free
   * slot goes to: the asker of most credit (the earliest among equals), except that one such grant in
   * every `1 / newcomerShare` goes to the earliest asker of no credit; without priority, the earliest.
   */
  pick (askers: string[]): number {
    if (this.priority == null || askers.length < 2) return 0
    const credit = askers.map(p => this.priority!(p))
    if (new Set(askers).size > 1 && this.newcomersTurn()) {
      const newcomer = credit.findIndex(c => !(c > 0))
      if (newcomer >= 0) return newcomer
    }
    let best = 0
    for (let i = 1; i < askers.length; i++) if (credit[i] > credit[best]) best = i
    return best
  }

  /** Gives `peer` a free slot now (a waiting request `pick` chose); `contended` when others waited with it. */
  grant (peer: string, now: number, contended: boolean): void {
    this.expire(now)
    if (contended) this.contended++
    this.hold(peer)
  }

  /** `peer` takes a slot: it no longer waits, and the slots stop being kept once nobody does or none is free. */
  private hold (peer: string): void {
    this.waiting.delete(peer)
    this.held.set(peer, this.holding(peer) + 1)
    this.total++
    if (this.waiting.size === 0 || this.total >= this.slots) this.keptSince = null
  }

  /** This contended grant is the newcomers' (one in every `1 / newcomerShare`). */
  private newcomersTurn (): boolean {
    const every = Math.max(1, Math.round(1 / this.newcomerShare))
    return this.contended % every === every - 1
  }

  /** Whether a slot is free for a waiting piece now: not all taken, none kept a moment for one peer. */
  free (now: number): boolean {
    if (this.reservation != null && now >= this.reservation.until) this.reservation = undefined
    return this.total < this.slots && this.reservation == null
  }

  /**
   * `peer` just released a slot while `askers` wait: keeps it for `peer` until `until` when its credit
   * is above every asker's (and it is not the newcomers' turn). True if it did.
   */
  reserveFor (peer: string, askers: string[], until: number): boolean {
    if (this.priority == null || this.total >= this.slots) return false
    const mine = this.priority(peer)
    if (!(mine > 0)) return false
    const credit = askers.map(p => this.priority!(p))
    if (this.newcomersTurn() && credit.some(c => !(c > 0))) return false
    if (credit.some(c => c >= mine)) return false
    this.reservation = { peer, until }
    return true
  }

  release (peer: string, now: number): void {
    const mine = this.holding(peer)
    if (mine <= 0) return
    if (mine === 1) this.held.delete(peer)
    else this.held.set(peer, mine - 1)
    this.total--
    if (this.waiting.size > 0) this.keptSince ??= now
  }

  /**
   * The waiting peers the next `free` slots are kept for: the most credited first (the longest
   * waiting among equals), with the newcomers' turn in every `1 / newcomerShare` contended slot.
   */
  private firstInLine (free: number, asker: string, now: number): Set<string> {
    // only peers still asking rank: one that stopped (its job ended) must not hold a slot it will never take
    const asking = [...this.waiting].filter(([p, at]) => p === asker || now - at <= this.askingMs).map(([p]) => p)
    const credit = new Map(asking.map(p => [p, this.priority!(p)]))
    // the waiting map is oldest first; sort is stable
    const order = [...asking].sort((a, b) => credit.get(b)! - credit.get(a)!)
    if (this.newcomersTurn()) {
      const newcomer = asking.find(p => !(credit.get(p)! > 0))
      if (newcomer != null) order.unshift(newcomer)
    }
    return new Set(order.slice(0, free))
  }

  private wait (peer: string, now: number): void {
    // re-inserted, so that the map stays oldest first
    this.waiting.delete(peer)
    if (this.waiting.size >= this.maxWaiting) this.waiting.delete(this.waiting.keys().next().value as string)
    this.waiting.set(peer, now)
  }

  private expire (now: number): void {
    if (this.keptSince != null && now - this.keptSince >= this.keepMs) {
      // nobody came for the kept slots: they are anyone's again
      this.waiting.clear()
      this.keptSince = null
      return
    }
    for (const [peer, since] of this.waiting) {
      if (now - since < this.waitMs) break
      this.waiting.delete(peer)
    }
    if (this.waiting.size === 0) this.keptSince = null
  }
}
