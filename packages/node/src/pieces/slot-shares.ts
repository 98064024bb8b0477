/**
 * Who may take one of a worker's slots: every slot while a single peer wants them, a fair share each
 * once others are waiting. A peer is waiting from the moment it is refused a slot until it gets one,
 * or until `waitMs` after its last refusal (a submitter backs off and comes back; one that stopped
 * asking stops counting). A piece already running is never interrupted: a peer holding more than its
 * share keeps what it holds, but gets no new slot while another peer waits, so the next free slot
 * goes to the waiting peer's next try. A lone submitter still fills every slot (its pipelining is
 * untouched); two submitters on two slots get one each; one peer sending piece after piece can no
 * longer keep everyone else out.
 * Per peer id: identities are free to mint, so this shares a worker among the peers it sees; weighing
 * them by what they gave is contribution credit's job. Pure: the caller passes the clock.
 */
export class SlotShares {
  private readonly held = new Map<string, number>()
  /** Peers refused a slot, by the time of their last refusal (oldest first). */
  private readonly waiting = new Map<string, number>()
  private total = 0

  constructor (
    private readonly slots: number,
    private readonly waitMs: number,
    private readonly maxWaiting = 4096
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
    if (this.total >= this.slots) {
      this.wait(peer, now)
      return `running ${this.total} pieces, the most this node takes at once`
    }
    const mine = this.holding(peer)
    const othersWaiting = this.waiting.size - (this.waiting.has(peer) ? 1 : 0)
    if (othersWaiting > 0 && mine > 0) {
      const wanting = new Set([...this.held.keys(), ...this.waiting.keys(), peer]).size
      const share = Math.ceil(this.slots / wanting)
      if (mine >= share) {
        this.wait(peer, now)
        return `${wanting} peers want this node's ${this.slots} slots and ${othersWaiting} of them ${othersWaiting === 1 ? 'waits' : 'wait'}: you hold ${mine}, your share, until one of them has had its turn`
      }
    }
    this.waiting.delete(peer)
    this.held.set(peer, mine + 1)
    this.total++
    return undefined
  }

  release (peer: string): void {
    const mine = this.holding(peer)
    if (mine <= 0) return
    if (mine === 1) this.held.delete(peer)
    else this.held.set(peer, mine - 1)
    this.total--
  }

  private wait (peer: string, now: number): void {
    // re-inserted, so that the map stays oldest first
    this.waiting.delete(peer)
    if (this.waiting.size >= this.maxWaiting) this.waiting.delete(this.waiting.keys().next().value as string)
    this.waiting.set(peer, now)
  }

  private expire (now: number): void {
    for (const [peer, since] of this.waiting) {
      if (now - since < this.waitMs) break
      this.waiting.delete(peer)
    }
  }
}
