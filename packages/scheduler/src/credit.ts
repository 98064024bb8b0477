/**
 * Contribution credit (docs/trust.md, "Credit"): what each peer has done for this node, by which a
 * worker orders the submitters waiting for its slots. Pure: plain data and an injected clock.
 *
 * A peer's credit with this node is first the work it did for this node itself: the receipts this
 * node signed for it (direct reciprocity). Receipts other nodes signed for its work count too, but
 * only through signers this node has itself received work from, and only so much: a signer passes on
 * at most `flowShare` of its own direct credit here, shared among every peer that presents receipts
 * of it. So identities that only sign for each other (a ring of Sybils, however many) pass on
 * nothing, and one that did real work passes on at most a share of that. All credit decays by half
 * every `halfLifeMs`: what a peer did long ago counts less than what it does now.
 */

/** How a node weighs credit, and how much it remembers. */
export interface CreditOptions {
  /** Credit halves every so many ms. */
  halfLifeMs: number
  /** The share of a signer's own direct credit it may pass on to the peers whose receipts it signed. */
  flowShare: number
  /** Peers whose direct credit is remembered (the least credited forgotten first). */
  maxPeers: number
  /** Peers whose presented receipts are remembered (the least recently presented forgotten first). */
  maxPresenters: number
  /** Signers remembered for one presenter (the ones vouching for the least forgotten first). */
  maxSignersPerPresenter: number
}

export const DEFAULT_CREDIT: CreditOptions = {
  halfLifeMs: 7 * 24 * 60 * 60 * 1000,
  flowShare: 0.5,
  maxPeers: 4096,
  maxPresenters: 1024,
  maxSignersPerPresenter: 128
}

/** A value decaying by half every half-life, as of `at` (ms). */
interface Decayed {
  value: number
  at: number
}

/** One receipt a peer presented: who signed it, the work it states, when it was signed (ms). */
export interface PresentedReceipt {
  signer: string
  work: number
  at: number
}

/** A peer's credit with this node, in work units now. */
export interface PeerCredit {
  peerId: string
  direct: number
  transitive: number
}

/** What `toJSON` writes: decayed values as of their time. */
export interface CreditFile {
  direct: Record<string, Decayed>
  presented: Record<string, Record<string, Decayed>>
}

export class CreditLedger {
  private readonly directs = new Map<string, Decayed>()
  /** presenter -> signer -> the work that signer's receipts state for the presenter */
  private readonly presented = new Map<string, Map<string, Decayed>>()
  /** signer -> what every presenter's receipts of it state, together */
  private readonly vouched = new Map<string, Decayed>()
  private readonly options: CreditOptions

  constructor (private readonly now: () => number, options: Partial<CreditOptions> = {}, private readonly self?: string) {
    this.options = { ...DEFAULT_CREDIT, ...options }
  }

  /** `peer` did `work` units for this node (this node signed a receipt for it). */
  given (peer: string, work: number, at = this.now()): void {
    if (peer === this.self || !(work > 0) || !Number.isFinite(work)) return
    const now = this.now()
    const d = this.decay(this.directs.get(peer), now)
    this.directs.delete(peer)
    this.directs.set(peer, { value: d + this.decay({ value: work, at }, now), at: now })
    if (this.directs.size > this.options.maxPeers) this.forgetLeastCredited()
  }

  /**
   * What `presenter` showed of its work for others: receipts, each signed by someone else for it.
   * It replaces what the peer presented before (receipts shown twice count once).
   */
  present (presenter: string, receipts: PresentedReceipt[]): void {
    const now = this.now()
    const bySigner = new Map<string, number>()
    for (const r of receipts) {
      if (r.signer === presenter || r.signer === this.self || !(r.work > 0) || !Number.isFinite(r.work)) continue
      bySigner.set(r.signer, (bySigner.get(r.signer) ?? 0) + this.decay({ value: r.work, at: Math.min(r.at, now) }, now))
    }
    const kept = [...bySigner].sort((a, b) => b[1] - a[1]).slice(0, this.options.maxSignersPerPresenter)
    this.withdraw(presenter, now)
    if (kept.length === 0) return
    const entry = new Map(kept.map(([signer, value]) => [signer, { value, at: now }]))
    this.presented.set(presenter, entry)
    for (const [signer, value] of kept) this.vouched.set(signer, { value: this.decay(this.vouched.get(signer), now) + value, at: now })
    if (this.presented.size > this.options.maxPresenters) this.withdraw(this.presented.keys().next().value as string, now)
  }

  /** The work `peer` did for this node itself, decayed to now. */
  direct (peer: string): number {
    return this.decay(this.directs.get(peer), this.now())
  }

  /** What receipts `peer` presented count here: each signer's, capped by its share of the signer's direct credit. */
  transitive (peer: string): number {
    const entry = this.presented.get(peer)
    if (entry == null) return 0
    const now = this.now()
    let sum = 0
    for (const [signer, v] of entry) {
      const capacity = this.options.flowShare * this.decay(this.directs.get(signer), now)
      if (capacity <= 0) continue
      const mine = this.decay(v, now)
      const all = Math.max(mine, this.decay(this.vouched.get(signer), now))
      sum += mine * Math.min(1, capacity / all)
    }
    return sum
  }

  /** `peer`'s credit with this node: direct plus transitive, in work units now. */
  credit (peer: string): number {
    return this.direct(peer) + this.transitive(peer)
  }

  /** Every peer with credit here, the most credited first. */
  peers (): PeerCredit[] {
    const ids = new Set([...this.directs.keys(), ...this.presented.keys()])
    return [...ids].map(peerId => ({ peerId, direct: this.direct(peerId), transitive: this.transitive(peerId) }))
      .filter(p => p.direct + p.transitive > 0)
      .sort((a, b) => (b.direct + b.transitive) - (a.direct + a.transitive))
  }

  toJSON (): CreditFile {
    return {
      direct: Object.fromEntries(this.directs),
      presented: Object.fromEntries([...this.presented].map(([p, m]) => [p, Object.fromEntries(m)]))
    }
  }

  /** Takes what `toJSON` wrote; entries that are not decayed values are skipped. */
  load (json: unknown): void {
    const file = json as Partial<CreditFile> | null
    if (file == null || typeof file !== 'object') return
    const now = this.now()
    for (const [peer, v] of Object.entries(file.direct ?? {})) {
      if (isDecayed(v)) this.given(peer, v.value, Math.min(v.at, now))
    }
    for (const [presenter, signers] of Object.entries(file.presented ?? {})) {
      if (signers == null || typeof signers !== 'object') continue
      const receipts = Object.entries(signers).filter(([, v]) => isDecayed(v)).map(([signer, v]) => ({ signer, work: (v as Decayed).value, at: (v as Decayed).at }))
      this.present(presenter, receipts)
    }
  }

  private withdraw (presenter: string, now: number): void {
    const old = this.presented.get(presenter)
    if (old == null) return
    this.presented.delete(presenter)
    for (const [signer, v] of old) {
      const left = this.decay(this.vouched.get(signer), now) - this.decay(v, now)
      if (left > 1e-9) this.vouched.set(signer, { value: left, at: now })
      else this.vouched.delete(signer)
    }
  }

  private forgetLeastCredited (): void {
    const now = this.now()
    let victim: string | undefined
    let least = Infinity
    for (const [peer, v] of this.directs) {
      const value = this.decay(v, now)
      if (value < least) { least = value; victim = peer }
    }
    if (victim != null) this.directs.delete(victim)
  }

  private decay (v: Decayed | undefined, now: number): number {
    if (v == null) return 0
    return v.value * 2 ** (-Math.max(0, now - v.at) / this.options.halfLifeMs)
  }
}

function isDecayed (v: unknown): v is Decayed {
  const d = v as Partial<Decayed> | null
  return d != null && typeof d === 'object' && typeof d.value === 'number' && Number.isFinite(d.value) && d.value > 0 && typeof d.at === 'number' && Number.isFinite(d.at)
}
