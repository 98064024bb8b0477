import { MAX_RECEIPT_BATCH_BYTES, MAX_RECEIPTS_PER_BATCH, Receipt, SignedReceipt } from '@shoal/protocol'
import { toString as uint8ArrayToString, fromString as uint8ArrayFromString } from 'uint8arrays'

/** One receipt this node holds for its work, as signed and as read. */
export interface EarnedReceipt {
  signed: SignedReceipt
  /** The submitter, as a peer id string. */
  submitter: string
  jobId: string
  pieceId: number
  rows: number
  work: number
  verified: Receipt.Verification
  issuedAtMs: number
}

/** What this node did for others, by its receipts. */
export interface EarnedSummary {
  receipts: number
  rows: number
  work: number
  submitters: number
  /** The newest receipt's time (ms since the epoch), or null. */
  lastAt: number | null
}

/** Most receipts one presentation shows of one signer: credit through any one signer is capped anyway. */
const PRESENT_PER_SIGNER = 16

/**
 * The receipts submitters signed for this node's work (docs/trust.md, "Credit"): its proof, shown to
 * the peers it asks for work (`toPresent`). Bounded (the oldest dropped first), a receipt kept once
 * (by submitter, job and piece), persisted by its owner (`toJSON`, `load`).
 */
export class EarnedReceipts {
  private readonly receipts = new Map<string, EarnedReceipt>()

  constructor (private readonly max: number) {}

  get size (): number {
    return this.receipts.size
  }

  /** Keeps a receipt already checked (docs/protocol.md 6.4); false if it was held already. */
  add (receipt: EarnedReceipt): boolean {
    const key = `${receipt.submitter}/${receipt.jobId}/${receipt.pieceId}`
    if (this.receipts.has(key)) return false
    this.receipts.set(key, receipt)
    while (this.receipts.size > this.max) this.receipts.delete(this.receipts.keys().next().value as string)
    return true
  }

  /**
   * What to show a peer: the receipts of most work, at most PRESENT_PER_SIGNER of one signer and
   * MAX_RECEIPTS_PER_BATCH in all, within a batch's size (with room for the frame's own fields).
   */
  toPresent (): SignedReceipt[] {
    const perSigner = new Map<string, number>()
    const chosen: SignedReceipt[] = []
    let bytes = 0
    for (const r of [...this.receipts.values()].sort((a, b) => b.work - a.work || b.issuedAtMs - a.issuedAtMs)) {
      if (chosen.length >= MAX_RECEIPTS_PER_BATCH) break
      const n = perSigner.get(r.submitter) ?? 0
      if (n >= PRESENT_PER_SIGNER) continue
      const size = SignedReceipt.encode(r.signed).byteLength + 4
      if (bytes + size > MAX_RECEIPT_BATCH_BYTES - 1024) break
      perSigner.set(r.submitter, n + 1)
      chosen.push(r.signed)
      bytes += size
    }
    return chosen
  }

  summary (): EarnedSummary {
    let rows = 0
    let work = 0
    let lastAt: number | null = null
    const submitters = new Set<string>()
    for (const r of this.receipts.values()) {
      rows += r.rows
      work += r.work
      submitters.add(r.submitter)
      lastAt = Math.max(lastAt ?? 0, r.issuedAtMs)
    }
    return { receipts: this.receipts.size, rows, work, submitters: submitters.size, lastAt }
  }

  /** Receipts by when they were signed, for a view over time: the newest `limit`. */
  recent (limit: number): EarnedReceipt[] {
    return [...this.receipts.values()].sort((a, b) => a.issuedAtMs - b.issuedAtMs).slice(-limit)
  }

  toJSON (): Array<{ receipt: string, signature: string }> {
    return [...this.receipts.values()].map(r => ({ receipt: uint8ArrayToString(r.signed.receipt, 'base64'), signature: uint8ArrayToString(r.signed.signature, 'base64') }))
  }

  /**
   * Takes what `toJSON` wrote, each receipt read by `read` (which checks it as on arrival, and
   * returns undefined for one to drop).
   */
  load (json: unknown, read: (signed: SignedReceipt) => EarnedReceipt | undefined): void {
    if (!Array.isArray(json)) return
    for (const item of json.slice(-this.max)) {
      if (typeof item?.receipt !== 'string' || typeof item?.signature !== 'string') continue
      try {
        const r = read({ receipt: uint8ArrayFromString(item.receipt, 'base64'), signature: uint8ArrayFromString(item.signature, 'base64') })
        if (r != null) this.add(r)
      } catch {}
    }
  }
}
