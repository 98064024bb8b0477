import { needsCheck } from '@shoal/scheduler'
import type { TrustRecords, VerifyPolicy } from '@shoal/scheduler'
import { compareOutputs } from '@shoal/runtime'
import type { Tensor } from '@shoal/runtime'

/** What a job's verification did (`GET /v1/jobs/:id`, `shoal run --json`). */
export interface VerificationView {
  policy: VerifyPolicy
  /** Pieces whose answer was checked against this node's own run. */
  checkedPieces: number
  /** Rows this node computed to check answers. */
  extraRows: number
  /** Answers that disagreed with this node's run (their peer is then excluded). */
  mismatches: number
  /** Peers proven wrong during this job. */
  excluded: string[]
}

export interface PieceVerifierInit {
  policy: VerifyPolicy
  /** The node's records of its peers (shared by its jobs). */
  trust: TrustRecords
  random?: () => number
  /** This node's own run of a piece's inputs: the reference an answer is checked against. */
  runLocal: (inputs: Record<string, Tensor>) => Promise<Record<string, Tensor>>
  /** A peer was proven wrong: the job gives it no more pieces. */
  onCaught: (peer: string) => void
  log?: (format: string, ...args: unknown[]) => void
}

interface Accepted {
  peer: string
  rows: number
  inputs: Record<string, Tensor>
  outputs: Record<string, Tensor>
  /** Replaces the piece's outputs in the job's results. */
  replace: (outputs: Record<string, Tensor>) => void
  checked: boolean
}

/**
 * The `spot` policy of result verification for one job, with this node as the checker: each answer a
 * peer returns is checked against this node's own run of the same rows as often as the peer's record
 * says (every time for a peer without an established record); an answer that disagrees is replaced by
 * this node's, its peer is recorded as caught (excluded from this node's jobs for a while) and kept
 * from the rest of the job, and every other answer it gave in this job is checked too. Checks run one
 * at a time, beside the job's pieces; the job's outputs are joined only once every check has ended.
 */
export class PieceVerifier {
  private readonly init: PieceVerifierInit
  private readonly random: () => number
  private readonly accepted = new Map<number, Accepted>()
  private readonly caught = new Set<string>()
  private queue: Promise<void> = Promise.resolve()
  private pending = 0
  private failure?: Error
  private checkedPieces = 0
  private extraRows = 0
  private mismatches = 0

  constructor (init: PieceVerifierInit) {
    this.init = init
    this.random = init.random ?? Math.random
  }

  /** A peer's answer was accepted for `pieceId`: check it now if the policy says so. */
  accept (pieceId: number, answer: Omit<Accepted, 'checked'>): void {
    const piece = { ...answer, checked: false }
    this.accepted.set(pieceId, piece)
    if (this.init.policy === 'off') return
    const record = this.init.trust.get(answer.peer).record
    if (this.caught.has(answer.peer) || needsCheck(this.init.policy, record, this.random)) this.check(pieceId, piece)
  }

  /** Resolves once every check has ended; rejects, naming the piece, if one could not be made. */
  async settled (): Promise<void> {
    while (this.pending > 0) await this.queue
    if (this.failure != null) throw this.failure
  }

  view (): VerificationView {
    return { policy: this.init.policy, checkedPieces: this.checkedPieces, extraRows: this.extraRows, mismatches: this.mismatches, excluded: [...this.caught] }
  }

  private check (pieceId: number, piece: Accepted): void {
    if (piece.checked) return
    piece.checked = true
    this.pending++
    this.queue = this.queue.then(async () => {
      try {
        await this.run(pieceId, piece)
      } catch (err: any) {
        this.failure ??= new Error(`piece ${pieceId} (from ${piece.peer}) could not be verified: ${String(err?.message ?? err)}`)
      } finally {
        this.pending--
      }
    })
  }

  private async run (pieceId: number, piece: Accepted): Promise<void> {
    if (this.failure != null) return
    const reference = await this.init.runLocal(piece.inputs)
    this.checkedPieces++
    this.extraRows += piece.rows
    const agreement = compareOutputs(piece.outputs, reference, { sameRuntime: false })
    if (agreement.agree) {
      if (!this.caught.has(piece.peer)) this.init.trust.verified(piece.peer)
      return
    }
    this.mismatches++
    piece.replace(reference)
    this.init.log?.('piece %d from %s disagrees with this node\'s run - %s', pieceId, piece.peer, agreement.reason)
    if (this.caught.has(piece.peer)) return
    this.caught.add(piece.peer)
    this.init.trust.caught(piece.peer)
    this.init.onCaught(piece.peer)
    // every other answer it gave in this job is suspect
    for (const [id, other] of this.accepted) if (other.peer === piece.peer) this.check(id, other)
  }
}
