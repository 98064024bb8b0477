import { majority, needsCheck } from '@shoal/scheduler'
import type { Scheduler, TrustRecords, VerifyPolicy } from '@shoal/scheduler'
import { compareOutputs } from '@shoal/runtime'
import type { Tensor, Tolerance } from '@shoal/runtime'
import type { SignedCommitment } from '../pieces/index.js'

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

/** What a job's verification did, and when a policy needs the job's pieces' answers. */
export interface Verifier {
  view: () => VerificationView
  /** Resolves once every check has ended; rejects, naming the piece, if one could not be made. */
  settled: () => Promise<void>
  /** A peer's answer to `pieceId` was proven wrong outside the policy (a canary row): it is caught. */
  convict: (pieceId: number, peer: string, commitment?: SignedCommitment) => void
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
  /** An answer proven wrong, with the worker's signed commitment to it when it sent one: evidence. */
  onWrongAnswer?: (pieceId: number, peer: string, commitment?: SignedCommitment) => void
  /** A peer's answer was verified by this node's run (its rows may serve as canaries). */
  onVerified?: (inputs: Record<string, Tensor>, outputs: Record<string, Tensor>, peer: string, pieceId: number) => void
  /** How far two answers' floating-point outputs may differ (default @shoal/runtime's VERIFY_TOLERANCE). */
  tolerance?: Tolerance
  log?: (format: string, ...args: unknown[]) => void
}

/**
 * Checks of a job's answers against this node's own runs, one at a time beside the job's pieces. The
 * first check that cannot be made is the job's failure (its message names the piece); later ones are
 * then skipped.
 */
export class SerialChecks {
  private queue: Promise<void> = Promise.resolve()
  private pending = 0
  failure?: Error

  /** Queues `check`; if it throws, `describe` turns the error into the job's failure. */
  add (check: () => Promise<void>, describe: (why: string) => string): void {
    this.pending++
    this.queue = this.queue.then(async () => {
      try {
        if (this.failure == null) await check()
      } catch (err: any) {
        this.failure ??= new Error(describe(String(err?.message ?? err)))
      } finally {
        this.pending--
      }
    })
  }

  /** Resolves once every check has ended; rejects with the first failure. */
  async settled (): Promise<void> {
    while (this.pending > 0) await this.queue
    if (this.failure != null) throw this.failure
  }
}

interface Accepted {
  peer: string
  rows: number
  inputs: Record<string, Tensor>
  outputs: Record<string, Tensor>
  /** Replaces the piece's outputs in the job's results. */
  replace: (outputs: Record<string, Tensor>) => void
  checked: boolean
  commitment?: SignedCommitment
}

/**
 * The `spot` policy of result verification for one job, with this node as the checker: each answer a
 * peer returns is checked against this node's own run of the same rows as often as the peer's record
 * says (every time for a peer without an established record); an answer that disagrees is replaced by
 * this node's, its peer is recorded as caught (excluded from this node's jobs for a while) and kept
 * from the rest of the job, and every other answer it gave in this job is checked too. Checks run one
 * at a time, beside the job's pieces; the job's outputs are joined only once every check has ended.
 */
export class PieceVerifier implements Verifier {
  private readonly init: PieceVerifierInit
  private readonly random: () => number
  private readonly accepted = new Map<number, Accepted>()
  private readonly caught = new Set<string>()
  private readonly checks = new SerialChecks()
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
    await this.checks.settled()
  }

  view (): VerificationView {
    return { policy: this.init.policy, checkedPieces: this.checkedPieces, extraRows: this.extraRows, mismatches: this.mismatches, excluded: [...this.caught] }
  }

  private check (pieceId: number, piece: Accepted): void {
    if (piece.checked) return
    piece.checked = true
    this.checks.add(async () => { await this.run(pieceId, piece) }, why => `piece ${pieceId} (from ${piece.peer}) could not be verified: ${why}`)
  }

  private async run (pieceId: number, piece: Accepted): Promise<void> {
    const reference = await this.init.runLocal(piece.inputs)
    this.checkedPieces++
    this.extraRows += piece.rows
    const agreement = compareOutputs(piece.outputs, reference, { sameRuntime: false, tolerance: this.init.tolerance })
    if (agreement.agree) {
      if (!this.caught.has(piece.peer)) this.init.trust.verified(piece.peer)
      this.init.onVerified?.(piece.inputs, reference, piece.peer, pieceId)
      return
    }
    this.mismatches++
    piece.replace(reference)
    this.init.log?.('piece %d from %s disagrees with this node\'s run - %s', pieceId, piece.peer, agreement.reason)
    this.init.onWrongAnswer?.(pieceId, piece.peer, piece.commitment)
    this.catch(piece.peer)
  }

  convict (pieceId: number, peer: string, commitment?: SignedCommitment): void {
    this.mismatches++
    this.init.log?.('piece %d from %s answered rows this node knew wrong (a canary)', pieceId, peer)
    this.init.onWrongAnswer?.(pieceId, peer, commitment)
    this.catch(peer)
  }

  /** A peer proven wrong: recorded, kept from the rest of the job, and every other answer it gave in the job is checked. */
  private catch (peer: string): void {
    if (this.caught.has(peer)) return
    this.caught.add(peer)
    this.init.trust.caught(peer)
    this.init.onCaught(peer)
    for (const [id, other] of this.accepted) if (other.peer === peer) this.check(id, other)
  }
}

export interface QuorumVerifierInit {
  trust: TrustRecords
  /** This node: its own answer decides a ballot it is in (it is the user's machine). */
  localPeerId: string
  /** The job's scheduler, with a quorum of 2 (it runs each piece on two peers). */
  scheduler: () => Pick<Scheduler, 'ballot' | 'agreed' | 'disagreed' | 'retract'> | undefined
  /** A piece's answer is decided: these are its outputs, and the peers whose answers they are (with `checked`: two or more agreed, or this node's run agreed). */
  onDecided: (pieceId: number, outputs: Record<string, Tensor>, winners: string[], checked: boolean) => void
  /** This node's own run of a piece: to check pieces two peers decided, once one of them is proven wrong. */
  runLocal: (pieceId: number) => Promise<Record<string, Tensor>>
  onCaught: (peer: string) => void
  onWrongAnswer?: (pieceId: number, peer: string, commitment?: SignedCommitment) => void
  /** A piece's answer was decided with this node's own answer among the winners (its rows may serve as canaries). */
  onVerified?: (pieceId: number, outputs: Record<string, Tensor>, peers: string[]) => void
  tolerance?: Tolerance
  log?: (format: string, ...args: unknown[]) => void
}

/**
 * The `full` policy of result verification for one job: the scheduler runs every piece on two
 * different peers, and their answers must agree. Answers that disagree go to a third peer and the
 * majority wins; the peer outvoted is proven wrong: excluded from the job (its answers still
 * undecided no longer count, and those pieces go to other peers) and recorded as caught. When this
 * node's own answer is in a ballot it decides it: answers that disagree with it are wrong, whatever
 * other peers say (two colluding peers cannot outvote the user's own machine).
 */
export class QuorumVerifier implements Verifier {
  private readonly init: QuorumVerifierInit
  /** Answers held for pieces not yet decided, with the commitments that came with them: piece -> peer -> answer. */
  private readonly held = new Map<number, Map<string, { outputs: Record<string, Tensor>, commitment?: SignedCommitment }>>()
  private readonly caught = new Set<string>()
  private readonly disputed = new Set<number>()
  private checkedPieces = 0
  private extraRows = 0
  /** Pieces decided by peers' answers alone, with the winners and outputs: checked here if a winner is later proven wrong. */
  private readonly decided = new Map<number, { winners: string[], outputs: Record<string, Tensor>, rechecked: boolean }>()
  private readonly checks = new SerialChecks()

  constructor (init: QuorumVerifierInit) {
    this.init = init
  }

  /** A peer's answer to `pieceId` was accepted by the scheduler: hold it, and decide the piece once it has its answers. */
  answer (pieceId: number, peer: string, rows: number, outputs: Record<string, Tensor>, commitment?: SignedCommitment): void {
    const answers = this.held.get(pieceId) ?? new Map()
    this.held.set(pieceId, answers)
    answers.set(peer, { outputs, commitment })
    if (answers.size > 1) this.extraRows += rows
    const scheduler = this.init.scheduler()
    const ballot = scheduler?.ballot(pieceId)
    if (scheduler == null || ballot == null) return
    const outputsOf = ballot.map(p => answers.get(p)!.outputs)
    const agree = (i: number, j: number): boolean => compareOutputs(outputsOf[i], outputsOf[j], { sameRuntime: false, tolerance: this.init.tolerance }).agree
    const local = ballot.indexOf(this.init.localPeerId)
    const verdict = local >= 0 ? this.besideLocal(ballot.length, local, agree) : majority(ballot.length, agree)
    if (verdict == null) {
      this.disputed.add(pieceId)
      this.init.log?.('piece %d: the answers of %s disagree; it goes to one more peer', pieceId, ballot.join(', '))
      scheduler.disagreed(pieceId)
      return
    }
    if (verdict.outvoted.length > 0) this.disputed.add(pieceId)
    const winners = verdict.agreeing.map(i => ballot[i])
    if (ballot.length > 1) this.checkedPieces++
    this.held.delete(pieceId)
    for (const i of verdict.outvoted) this.init.onWrongAnswer?.(pieceId, ballot[i], answers.get(ballot[i])!.commitment)
    scheduler.agreed(pieceId, winners)
    const decided = outputsOf[verdict.agreeing[0]]
    this.init.onDecided(pieceId, decided, winners, ballot.length > 1)
    // only this node's run earns a peer record or makes a canary: two colluding peers that agree
    // with each other must not raise each other's records
    if (local >= 0) {
      for (const w of winners) if (w !== this.init.localPeerId && !this.caught.has(w)) this.init.trust.verified(w)
      if (winners.length > 1) this.init.onVerified?.(pieceId, decided, winners)
    } else {
      this.decided.set(pieceId, { winners, outputs: decided, rechecked: false })
    }
    for (const i of verdict.outvoted) this.catch(ballot[i], pieceId)
  }

  /** Resolves once every recheck has ended; rejects, naming the piece, if one could not be made. */
  async settled (): Promise<void> {
    await this.checks.settled()
  }

  convict (pieceId: number, peer: string, commitment?: SignedCommitment): void {
    this.disputed.add(pieceId)
    this.init.onWrongAnswer?.(pieceId, peer, commitment)
    this.catch(peer, pieceId)
  }

  view (): VerificationView {
    return { policy: 'full', checkedPieces: this.checkedPieces, extraRows: this.extraRows, mismatches: this.disputed.size, excluded: [...this.caught] }
  }

  /** With this node's answer in the ballot: it and those that agree with it win, the others are outvoted. */
  private besideLocal (count: number, local: number, agree: (i: number, j: number) => boolean): { agreeing: number[], outvoted: number[] } {
    const agreeing = [local]
    const outvoted: number[] = []
    for (let i = 0; i < count; i++) if (i !== local) (agree(local, i) ? agreeing : outvoted).push(i)
    return { agreeing, outvoted }
  }

  private catch (peer: string, pieceId: number): void {
    if (peer === this.init.localPeerId || this.caught.has(peer)) return
    this.init.log?.('piece %d: %s was outvoted: it is excluded', pieceId, peer)
    this.caught.add(peer)
    this.init.trust.caught(peer)
    this.init.onCaught(peer)
    // its answers to pieces not yet decided no longer count
    for (const [id, answers] of this.held) {
      if (answers.delete(peer)) this.init.scheduler()?.retract(id, peer)
    }
    // pieces it won beside another peer only are checked here: that peer may have colluded
    for (const [id, piece] of this.decided) if (piece.winners.includes(peer)) this.recheck(id, piece)
  }

  private recheck (pieceId: number, piece: { winners: string[], outputs: Record<string, Tensor>, rechecked: boolean }): void {
    if (piece.rechecked) return
    piece.rechecked = true
    this.checks.add(async () => {
      const reference = await this.init.runLocal(pieceId)
      this.extraRows += Object.values(reference)[0]?.dims[0] ?? 0
      if (compareOutputs(piece.outputs, reference, { sameRuntime: false, tolerance: this.init.tolerance }).agree) return
      this.disputed.add(pieceId)
      this.init.onDecided(pieceId, reference, [this.init.localPeerId], true)
      this.init.log?.('piece %d, decided by %s, disagrees with this node\'s run', pieceId, piece.winners.join(', '))
      for (const w of piece.winners) this.catch(w, pieceId)
    }, why => `piece ${pieceId} (decided by ${piece.winners.join(', ')}) could not be verified: ${why}`)
  }
}
