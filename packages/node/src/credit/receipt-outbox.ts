import { MAX_RECEIPTS_PER_BATCH } from '@shoal/protocol'
import type { ReceiptBatch, SignedReceipt } from '@shoal/protocol'

export interface ReceiptOutboxInit {
  /** Sends one batch to a peer (its own deadline); a batch that fails is not sent again. */
  send: (peer: string, batch: ReceiptBatch) => Promise<void>
  /** Batches to one peer are at least this far apart: a receiver reads one per RECEIPT_MIN_INTERVAL_MS and refuses the rest. */
  spacingMs: number
  /** Issued receipts waiting for one peer (the oldest dropped first). */
  maxPerPeer: number
  /** Peers with receipts waiting (the peer waiting longest dropped first). */
  maxPeers: number
  now?: () => number
  log?: (format: string, ...args: unknown[]) => void
}

interface Box {
  issued: SignedReceipt[]
  presented?: SignedReceipt[]
  lastSentAt: number
  sending: boolean
  timer?: ReturnType<typeof setTimeout>
}

/**
 * What this node has to send each peer over `/shoal/receipt/1.0.0` (docs/protocol.md 6.4): receipts
 * it signed for the peer's work, and its own receipts to show the peer. One batch at a time to a
 * peer, `spacingMs` apart, so that two jobs ending at once, or a job's receipts and the next job's
 * presentation, are not refused as too frequent; what waits meanwhile goes in the next batch (at most
 * 128 receipts; a presentation alone, first). Bounded per peer and in peers.
 */
export class ReceiptOutbox {
  private readonly boxes = new Map<string, Box>()
  private readonly sends = new Set<Promise<void>>()
  private readonly now: () => number
  private closed = false

  constructor (private readonly init: ReceiptOutboxInit) {
    this.now = init.now ?? Date.now
  }

  /** Receipts signed for `peer`'s work, to send it. */
  issue (peer: string, receipts: SignedReceipt[]): void {
    const box = this.box(peer)
    if (box == null) return
    box.issued.push(...receipts)
    if (box.issued.length > this.init.maxPerPeer) box.issued.splice(0, box.issued.length - this.init.maxPerPeer)
    this.schedule(peer)
  }

  /** This node's receipts, to show `peer` (replaces a presentation not yet sent). */
  present (peer: string, receipts: SignedReceipt[]): void {
    const box = this.box(peer)
    if (box == null) return
    box.presented = receipts
    this.schedule(peer)
  }

  /** Receipts waiting for `peer`, not yet sent. */
  waiting (peer: string): number {
    const box = this.boxes.get(peer)
    return box == null ? 0 : box.issued.length + (box.presented?.length ?? 0)
  }

  /** Sends nothing more; resolves once the batches on their way have ended. What still waits is dropped. */
  async close (): Promise<void> {
    this.closed = true
    for (const box of this.boxes.values()) clearTimeout(box.timer)
    this.boxes.clear()
    await Promise.allSettled([...this.sends])
  }

  private box (peer: string): Box | undefined {
    if (this.closed) return undefined
    let box = this.boxes.get(peer)
    if (box == null) {
      if (this.boxes.size >= this.init.maxPeers) {
        const [oldest, dropped] = this.boxes.entries().next().value as [string, Box]
        clearTimeout(dropped.timer)
        this.boxes.delete(oldest)
      }
      box = { issued: [], lastSentAt: -Infinity, sending: false }
      this.boxes.set(peer, box)
    }
    return box
  }

  private schedule (peer: string): void {
    const box = this.boxes.get(peer)
    if (box == null || box.sending || box.timer != null) return
    const wait = box.lastSentAt + this.init.spacingMs - this.now()
    if (wait > 0) {
      box.timer = setTimeout(() => { box.timer = undefined; this.schedule(peer) }, wait)
      box.timer.unref?.()
      return
    }
    let batch: ReceiptBatch
    if (box.presented != null) {
      batch = { issued: [], presented: box.presented }
      box.presented = undefined
    } else {
      batch = { issued: box.issued.splice(0, MAX_RECEIPTS_PER_BATCH), presented: [] }
    }
    if (batch.issued.length === 0 && batch.presented.length === 0) {
      this.boxes.delete(peer)
      return
    }
    box.sending = true
    const run = this.init.send(peer, batch)
      .catch(err => { this.init.log?.('receipts to %s: %s', peer, err.message ?? err) })
      .finally(() => {
        box.sending = false
        box.lastSentAt = this.now()
        if (this.boxes.get(peer) === box) this.schedule(peer)
      })
    this.sends.add(run)
    void run.finally(() => this.sends.delete(run))
  }
}
