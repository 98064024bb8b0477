import {
  DEFAULT_BACKOFF_MS, DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_BACKOFF_MS, DEFAULT_MAX_COPIES, DEFAULT_PROBE_TIMEOUT_MS,
  DEFAULT_TIMEOUT_FACTOR, DEFAULT_TIMEOUT_FLOOR_MS, DEFAULT_WINDOW, OBSERVED_RESULTS, OVERLOAD_BACKOFF_MS
} from './constants.js'
import { sizePiece } from './plan.js'
import type { Piece, PieceSizing } from './plan.js'

/** A peer that may take pieces, as the peer table describes it. */
export interface SchedulerPeer {
  peerId: string
  /** Advertised throughput of its best provider; 0 if unknown. */
  gflops: number
  /** Pieces it accepts at once (its advertised concurrency); the scheduler's window caps it. */
  slots: number
  /**
   * Whether it holds the job's model (its ad lists it). One that does not must fetch it first: its first
   * piece is expected to take `modelFetchMs` longer. Unknown counts as held.
   */
  hasModel?: boolean
}

/** Why a piece did not come back from a peer. */
export type FailureCause =
  | { kind: 'disconnect' }
  | { kind: 'timeout' }
  /** The peer answered with an error; the piece may work elsewhere. */
  | { kind: 'error', code: string, message: string }
  /** The peer was busy: it backs off, but the piece has not failed. */
  | { kind: 'overloaded' }
  /**
   * The peer could not be reached at all (the piece never left): most likely it is gone and its ad has
   * not expired yet. Not the piece's fault; the peer backs off as after any failure.
   */
  | { kind: 'unreachable', message: string }
  /** The piece itself is bad (BAD_INPUT): no other peer will do better; the job fails now. */
  | { kind: 'fatal', code: string, message: string }

export interface Assignment {
  pieceId: number
  peerId: string
  /** Local clock time after which the scheduler gives up on this copy. */
  deadline: number
  /** An end-game copy of a piece already running elsewhere. */
  duplicate: boolean
}

export interface Cancellation {
  pieceId: number
  peerId: string
  reason: 'timeout' | 'superseded' | 'job-ended'
}

export interface Decision {
  assign: Assignment[]
  cancel: Cancellation[]
}

export interface JobFailure {
  pieceId: number
  attempts: Array<{ peerId: string, cause: FailureCause }>
  message: string
}

export interface Progress {
  /** Pieces: all the job will have, or (self-sizing) those cut so far, plus one while rows are left to cut. */
  total: number
  done: number
  /** Rows of the batch, and rows whose piece is done. */
  totalRows: number
  doneRows: number
  /** Rows of the smallest and the largest piece cut so far (0 before any). */
  minPieceRows: number
  maxPieceRows: number
  pending: number
  inFlight: number
  /** Pieces put back in the queue after a failure or timeout. */
  retries: number
  /** End-game copies started. */
  duplicates: number
  /** Pieces completed by each peer (the copy that won). */
  perPeer: Record<string, number>
  /** Estimated time to finish, from observed (else advertised) speeds of the current peers; null until a piece is done. */
  etaMs: number | null
}

export interface SchedulerOptions {
  /** Reference speed: ms per row measured on a node advertising `refGflops` (the submitter). */
  refMsPerRow: number
  refGflops: number
  /** The submitting node's own peer id, if it is among the peers. */
  localPeerId?: string
  /** 'share': the local node always takes pieces; 'fallback': only while no remote peer can. */
  local?: 'share' | 'fallback'
  maxAttempts?: number
  window?: number
  timeoutFactor?: number
  timeoutFloorMs?: number
  backoffMs?: number
  maxBackoffMs?: number
  endgame?: boolean
  maxCopies?: number
  /** Expected time for a peer without the model to fetch it (see SchedulerPeer.hasModel). */
  modelFetchMs?: number
  /**
   * Answers from different peers a piece needs before it is done: 1 (default) takes the first valid
   * answer; 2 (`--verify full`) runs every piece on two peers, never the same peer twice, and the
   * caller compares their answers (`ballot`, `agreed`, `disagreed`).
   */
  quorum?: number
  /** With a quorum above 1: the most answers one piece may collect before it fails unverified (default quorum + 1: a disagreement goes to one more peer). */
  maxAnswers?: number
  /**
   * With a quorum above 1: draws the peer of a piece's further copy, uniformly among every peer that may
   * ever take it, busy or not, and the copy waits for that peer (tests pass a seeded one; default
   * Math.random). The fastest peer gets a piece's first copy; were the second the next fastest, or
   * the first free, two colluding peers advertising high speeds and answering at once would answer
   * most pieces together and agree on wrong answers.
   */
  random?: () => number
  /**
   * Pieces the job will have in all, when they do not all exist at the start: a pipeline stage gets a
   * micro-batch's piece once the stage before has answered it (`add`). The job is done when this many
   * are; end-game copies wait until every piece has been added (before, an idle peer is idle because
   * the stage before is behind, not because the job is ending). Default: the pieces given.
   */
  total?: number
  /**
   * Self-sizing: the batch's rows are cut into pieces as peers take work, each sized for its peer
   * (`sizePiece`: factoring), instead of given up front. The pieces passed to the constructor must
   * then be none.
   */
  sizing?: PieceSizing
  /**
   * `refMsPerRow` is the model's measured cost (an earlier job, request or run of it), not a guess.
   * When it is a guess, a peer's first piece is a probe and gets at least `probeTimeoutMs`.
   */
  refKnown?: boolean
  probeTimeoutMs?: number
}

interface Flight {
  pieceId: number
  peerId: string
  startedAt: number
  /** Rows already in flight on its peer when it was assigned: a worker computes one piece at a time. */
  aheadRows: number
  expectedMs: number
  /** Of expectedMs, the part expected for fetching the model. */
  startupMs: number
  deadline: number
  duplicate: boolean
}

interface PeerState {
  peer: SchedulerPeer
  /**
   * Its last OBSERVED_RESULTS results: rows, and the time the peer was busy for each, from the later of
   * the piece's start and the peer's previous answer. A worker computes its pieces one at a time, so a
   * piece's time since its assignment also counts the wait behind the pieces ahead of it: with a window
   * of 2 that doubled every peer's estimate, and the ETA. Summing over several results also measures a
   * peer that computes pieces side by side by the rate at which they come back.
   */
  observed: Array<{ busyMs: number, rows: number }>
  /** When the peer last answered (a result or an error). */
  lastAnswerAt?: number
  consecutiveFailures: number
  /**
   * Answers of OVERLOADED in a row: a busy peer is healthy, only full (of other submitters' pieces),
   * so it waits a short, doubling while, not a failure's backoff.
   */
  overloads: number
  /**
   * Pieces this job may hold on the peer since it answered OVERLOADED: what it held then, one more per
   * answer after, up to the window. Jobs sharing a worker so settle on a share of its slots each
   * instead of all asking for all of them and being turned away over and over.
   */
  cap?: number
  backoffUntil: number
  /** It has completed a piece of this job, so it holds the model whatever its ad said. */
  proven: boolean
}

/**
 * Schedules the pieces of one batch job over a changing set of peers. Pure and deterministic: it never
 * reads a clock or does I/O; the caller reports what happened (results, failures, peer changes) and
 * asks `next(now)` what to do. See docs/architecture.md for the rules; in short:
 * - peers pull work: a peer with room in its window gets the next piece, fastest expected first, so
 *   faster peers take proportionally more; expected times start from advertised throughput and follow
 *   observed times as results arrive;
 * - a piece whose copy fails, times out or whose peer leaves goes back to the front of the queue; its
 *   peer backs off; after `maxAttempts` failed attempts the job fails naming the piece and the causes;
 * - a peer that does not hold the model is expected to spend `modelFetchMs` fetching it before its
 *   first piece, so peers that hold it are preferred unless they are that much busier or slower;
 * - end-game: with nothing left to assign, idle peers take copies of the in-flight pieces expected to
 *   finish last, if they would finish sooner; the first result wins and the other copies are cancelled.
 */
export class Scheduler {
  private readonly pieces: Map<number, Piece>
  private readonly options: Required<Omit<SchedulerOptions, 'localPeerId' | 'maxAnswers' | 'sizing'>> & { localPeerId?: string, maxAnswers: number, sizing?: PieceSizing }
  /** Self-sizing: rows cut into pieces so far (the next piece starts there). */
  private cutRows = 0
  private readonly pending: number[]
  private readonly done = new Map<number, string>()
  private readonly flights: Flight[] = []
  private readonly peers = new Map<string, PeerState>()
  private readonly attempts = new Map<number, Array<{ peerId: string, cause: FailureCause }>>()
  private readonly cancellations: Cancellation[] = []
  private retries = 0
  private duplicates = 0
  private failure?: JobFailure
  /** With a quorum: the peers whose answers to a piece are held, awaiting a verdict. */
  private readonly answers = new Map<number, string[]>()
  /** With a quorum: answers a piece needs now (the quorum, one more after each disagreement). */
  private readonly required = new Map<number, number>()
  /** With a quorum: every peer that answered a piece, its answer held or not: none answers it twice. */
  private readonly answeredBy = new Map<number, Set<string>>()
  /** With a quorum: disputed pieces that only the local node may take now (its answer decides). */
  private readonly arbitrated = new Set<number>()
  /** With a quorum: the peer drawn for a piece's further copy, which the copy waits for. */
  private readonly designated = new Map<number, string>()

  constructor (pieces: Piece[], options: SchedulerOptions) {
    this.pieces = new Map(pieces.map(p => [p.id, p]))
    this.pending = pieces.map(p => p.id)
    this.options = {
      local: 'fallback',
      maxAttempts: DEFAULT_MAX_ATTEMPTS,
      window: DEFAULT_WINDOW,
      timeoutFactor: DEFAULT_TIMEOUT_FACTOR,
      timeoutFloorMs: DEFAULT_TIMEOUT_FLOOR_MS,
      backoffMs: DEFAULT_BACKOFF_MS,
      maxBackoffMs: DEFAULT_MAX_BACKOFF_MS,
      endgame: true,
      maxCopies: DEFAULT_MAX_COPIES,
      modelFetchMs: 0,
      quorum: 1,
      random: Math.random,
      total: pieces.length,
      refKnown: true,
      probeTimeoutMs: DEFAULT_PROBE_TIMEOUT_MS,
      // an option given as undefined keeps its default
      ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as SchedulerOptions,
      maxAnswers: 0
    }
    const { quorum } = this.options
    if (!Number.isSafeInteger(quorum) || quorum < 1) throw new RangeError(`quorum must be a whole number of at least 1, not ${quorum}`)
    this.options.maxAnswers = Math.max(quorum, options.maxAnswers ?? (quorum > 1 ? quorum + 1 : 1))
    const sizing = options.sizing
    if (sizing != null) {
      if (pieces.length > 0) throw new RangeError('a self-sizing job cuts its own pieces: pass none')
      if (!Number.isSafeInteger(sizing.totalRows) || sizing.totalRows < 0) throw new RangeError(`invalid row count ${sizing.totalRows}`)
    }
  }

  /** Rows not yet cut into pieces (self-sizing; 0 otherwise). */
  private get uncut (): number {
    return this.options.sizing == null ? 0 : this.options.sizing.totalRows - this.cutRows
  }

  /** The piece of this id (self-sizing pieces exist once cut). */
  piece (pieceId: number): Piece | undefined {
    return this.pieces.get(pieceId)
  }

  /**
   * The model's cost as the answers measured it: the median over peers with results and an advertised
   * throughput of their observed ms per row times their GFLOP/s (ms per row on a node of 1 GFLOP/s).
   * Undefined before any such result.
   */
  measuredCost (): number | undefined {
    const costs = [...this.peers.values()]
      .filter(s => s.observed.length > 0 && s.peer.gflops > 0)
      .map(s => this.msPerRow(s) * s.peer.gflops)
      .sort((a, b) => a - b)
    if (costs.length === 0) return undefined
    const mid = Math.floor(costs.length / 2)
    return costs.length % 2 === 1 ? costs[mid] : (costs[mid - 1] + costs[mid]) / 2
  }

  /** Every piece cut so far, in row order. */
  allPieces (): Piece[] {
    return [...this.pieces.values()].sort((a, b) => a.start - b.start)
  }

  get state (): 'running' | 'done' | 'failed' {
    if (this.failure != null) return 'failed'
    return this.done.size === this.pieces.size && this.allExist() ? 'done' : 'running'
  }

  /** Every piece of the job exists: added (see `total`), or every row cut. */
  private allExist (): boolean {
    return this.options.sizing != null ? this.uncut === 0 : this.pieces.size >= this.options.total
  }

  /** Pieces that became ready to run (see SchedulerOptions.total): they join the back of the queue. */
  add (pieces: Piece[]): void {
    for (const piece of pieces) {
      if (this.pieces.has(piece.id)) throw new RangeError(`piece ${piece.id} is already in the job`)
      this.pieces.set(piece.id, piece)
      this.pending.push(piece.id)
    }
  }

  get error (): JobFailure | undefined {
    return this.failure
  }

  /** Which peer's copy of each piece won. */
  get winners (): ReadonlyMap<number, string> {
    return this.done
  }

  /** Replaces the set of peers. Pieces in flight on a peer that is gone fail as disconnected. */
  setPeers (peers: SchedulerPeer[], now: number): void {
    const present = new Set(peers.map(p => p.peerId))
    for (const flight of [...this.flights]) {
      if (!present.has(flight.peerId)) this.failed(flight.pieceId, flight.peerId, { kind: 'disconnect' }, now)
    }
    for (const id of [...this.peers.keys()]) if (!present.has(id)) this.peers.delete(id)
    for (const peer of peers) {
      const state = this.peers.get(peer.peerId)
      if (state != null) state.peer = peer
      else this.peers.set(peer.peerId, { peer, observed: [], consecutiveFailures: 0, overloads: 0, backoffUntil: 0, proven: false })
    }
  }

  /**
   * A copy of a piece came back valid. Returns whether to keep its answer. With a quorum of 1 the
   * first answer is the piece's (the other copies are cancelled at the next `next()`); with more, the
   * answer is held until the piece has as many as it needs (`ballot`), and the piece goes back in the
   * queue for another peer until then.
   */
  succeeded (pieceId: number, peerId: string, now: number): boolean {
    const flight = this.takeFlight(pieceId, peerId)
    if (flight == null || this.done.has(pieceId) || this.failure != null) return false
    const piece = this.pieces.get(pieceId)
    const state = this.peers.get(peerId)
    if (piece == null) return false
    if (this.options.quorum > 1 && this.ballot(pieceId) != null) return false
    if (state != null) {
      // a copy that was to include fetching the model says how fast the peer fetched, not computes
      if (flight.startupMs === 0) {
        const busyMs = Math.max(now - Math.max(flight.startedAt, state.lastAnswerAt ?? -Infinity), 0)
        state.observed.push({ busyMs, rows: Math.max(piece.rows, 1) })
        if (state.observed.length > OBSERVED_RESULTS) state.observed.shift()
      }
      state.lastAnswerAt = now
      state.consecutiveFailures = 0
      state.overloads = 0
      if (state.cap != null) state.cap = state.cap + 1 >= this.options.window ? undefined : state.cap + 1
      state.backoffUntil = 0
      state.proven = true
    }
    if (this.options.quorum === 1) {
      this.finish(pieceId, peerId)
      return true
    }
    const held = this.answers.get(pieceId) ?? []
    held.push(peerId)
    this.answers.set(pieceId, held)
    const by = this.answeredBy.get(pieceId) ?? new Set()
    by.add(peerId)
    this.answeredBy.set(pieceId, by)
    if (this.ballot(pieceId) != null) this.supersede(pieceId)
    else this.requeue(pieceId)
    return true
  }

  /**
   * With a quorum: the peers whose answers to this piece await the caller's verdict, once it has as
   * many as it needs, or the local node's (the submitter trusts its own run: it decides); else
   * undefined. The caller compares them and calls `agreed` or `disagreed`.
   */
  ballot (pieceId: number): string[] | undefined {
    return this.decidable(pieceId) ? [...this.answers.get(pieceId)!] : undefined
  }

  /** The verdict on a piece's ballot: these peers' answers agree (the first is the piece's winner). */
  agreed (pieceId: number, peers: string[]): void {
    if (this.done.has(pieceId) || this.failure != null || peers.length === 0) return
    this.finish(pieceId, peers[0])
    this.answers.delete(pieceId)
  }

  /**
   * The verdict on a piece's ballot: no answers agree enough to decide. The piece needs one more
   * answer: the local node's when it is among the peers and has not answered it (its answer decides,
   * whatever the number of answers), else another peer's; past `maxAnswers` the job fails, naming
   * the peers.
   */
  disagreed (pieceId: number): void {
    if (this.done.has(pieceId) || this.failure != null) return
    const needed = this.needed(pieceId) + 1
    const local = this.options.localPeerId
    const localState = local == null ? undefined : this.peers.get(local)
    if (local != null && localState != null && this.window(localState) > 0 && this.answeredBy.get(pieceId)?.has(local) !== true) {
      this.arbitrated.add(pieceId)
      this.required.set(pieceId, needed)
      this.requeue(pieceId)
      return
    }
    if (needed > this.options.maxAnswers) {
      const peers = [...(this.answeredBy.get(pieceId) ?? [])].join(', ')
      this.fail(pieceId, `piece ${this.describe(pieceId)} could not be verified: the answers of ${peers} disagree, and no ${this.options.maxAnswers} answers decide it`)
      return
    }
    this.required.set(pieceId, needed)
    this.requeue(pieceId)
  }

  /**
   * A held answer no longer counts (its peer was proven wrong on another piece): the piece needs an
   * answer from another peer instead. The peer never gets the piece again.
   */
  retract (pieceId: number, peerId: string): void {
    const held = this.answers.get(pieceId)
    if (held == null || this.done.has(pieceId)) return
    const index = held.indexOf(peerId)
    if (index < 0) return
    held.splice(index, 1)
    this.requeue(pieceId)
  }

  /** A copy of a piece failed. */
  failed (pieceId: number, peerId: string, cause: FailureCause, now: number): void {
    const flight = this.takeFlight(pieceId, peerId)
    if (flight == null || this.done.has(pieceId) || this.failure != null) return
    const state = this.peers.get(peerId)
    if (state != null) {
      // a peer that answered is no longer busy with this piece; one that timed out or left may be
      if (cause.kind === 'error' || cause.kind === 'overloaded' || cause.kind === 'fatal') state.lastAnswerAt = now
      if (cause.kind === 'overloaded') {
        state.overloads++
        state.cap = Math.max(1, this.inFlight(peerId))
        state.backoffUntil = now + Math.min(this.options.maxBackoffMs, OVERLOAD_BACKOFF_MS * 2 ** (state.overloads - 1), this.options.backoffMs)
      } else {
        state.overloads = 0
        state.consecutiveFailures++
        state.backoffUntil = now + Math.min(this.options.maxBackoffMs, this.options.backoffMs * 2 ** (state.consecutiveFailures - 1))
      }
    }
    // A crashed peer keeps its ad for up to three ad intervals; without this, each dead peer could
    // use up an attempt of the same piece, and a job losing as many peers as it allows attempts failed.
    if (cause.kind === 'overloaded' || cause.kind === 'unreachable') {
      // not the piece's fault: it goes back without using up an attempt
      this.requeue(pieceId)
      return
    }
    const attempts = this.attempts.get(pieceId) ?? []
    attempts.push({ peerId, cause })
    this.attempts.set(pieceId, attempts)
    if (cause.kind === 'fatal') {
      this.fail(pieceId, `piece ${this.describe(pieceId)} was refused by peer ${peerId}: ${cause.code}: ${cause.message}`)
      return
    }
    if (attempts.length >= this.options.maxAttempts) {
      const causes = attempts.map(a => `${a.peerId}: ${describeCause(a.cause)}`).join('; ')
      this.fail(pieceId, `piece ${this.describe(pieceId)} failed ${attempts.length} times (${causes})`)
      return
    }
    // another copy may still be running (end-game): then the piece is not lost
    if (this.requeue(pieceId)) this.retries++
  }

  /** What to do now: cancellations (timeouts, superseded copies, a finished job) and new assignments. */
  next (now: number): Decision {
    for (const flight of this.flights.filter(f => f.deadline <= now)) {
      this.cancellations.push({ pieceId: flight.pieceId, peerId: flight.peerId, reason: 'timeout' })
      this.failed(flight.pieceId, flight.peerId, { kind: 'timeout' }, now)
    }
    if (this.state !== 'running') {
      for (const flight of this.flights.splice(0)) {
        this.cancellations.push({ pieceId: flight.pieceId, peerId: flight.peerId, reason: 'job-ended' })
      }
      return { assign: [], cancel: this.cancellations.splice(0) }
    }
    const assign: Assignment[] = []
    for (let i = 0; i < this.pending.length && this.failure == null;) {
      const pieceId = this.pending[i]
      if (this.copiesNeeded(pieceId) <= 0) {
        this.pending.splice(i, 1)
        continue
      }
      const piece = this.pieces.get(pieceId)!
      const peer = this.furtherCopy(pieceId) ? this.designatedPeer(now, piece) : this.bestPeer(now, piece.rows, piece.id)
      if (peer != null) {
        assign.push(this.start(pieceId, peer, now, false))
        continue
      }
      // with a quorum of 1 every peer may take every piece: none usable for this one, none for any
      if (this.options.quorum === 1) break
      if (this.noPeerLeftFor(pieceId)) {
        const by = [...(this.answeredBy.get(pieceId) ?? [])].join(', ')
        this.fail(pieceId, `piece ${this.describe(pieceId)} could not be verified: it needs an answer from a peer other than ${by}, and no other peer is there`)
        break
      }
      i++
    }
    if (this.failure == null && this.pending.length === 0) this.cut(now, assign)
    if (this.failure != null) return this.next(now)
    // no end-game copies under a quorum: they would go to the fastest idle peers, and two colluders
    // could then answer a piece together after all, whatever peer the second copy was drawn for
    if (this.pending.length === 0 && this.options.endgame && this.options.quorum === 1 && this.allExist()) assign.push(...this.endgame(now))
    return { assign, cancel: this.cancellations.splice(0) }
  }

  /**
   * Self-sizing: while rows are left to cut, the usable peer that would start a new piece soonest gets
   * one sized for it. Under a quorum the piece then waits in the queue for its further copies.
   */
  private cut (now: number, assign: Assignment[]): void {
    const sizing = this.options.sizing
    if (sizing == null || this.uncut === 0) return
    const mesh = [...this.peers.values()].filter(s => this.window(s) > 0 && (this.options.local === 'share' || s.peer.peerId !== this.options.localPeerId || this.onlyLocal()))
    while (this.uncut > 0) {
      const best = this.bestPeer(now, 0)
      if (best == null) return
      const rows = sizePiece(sizing, {
        remainingRows: this.uncut,
        peer: { msPerRow: this.msPerRow(best), known: this.known(best) },
        mesh: (mesh.includes(best) ? mesh : [...mesh, best]).map(s => ({ msPerRow: this.msPerRow(s), window: this.window(s) }))
      })
      const piece: Piece = { id: this.pieces.size, start: this.cutRows, rows }
      this.cutRows += rows
      this.pieces.set(piece.id, piece)
      assign.push(this.start(piece.id, best, now, false))
      if (this.copiesNeeded(piece.id) > 0) {
        this.pending.push(piece.id)
        return
      }
    }
  }

  /** No remote peer may take pieces: the local node in fallback mode works alone. */
  private onlyLocal (): boolean {
    return ![...this.peers.values()].some(s => s.peer.peerId !== this.options.localPeerId && this.window(s) > 0)
  }

  /** Its speed for this model was measured (or the model's cost is known), not guessed. */
  private known (state: PeerState): boolean {
    return state.observed.length > 0 || this.options.refKnown
  }

  /**
   * The earliest time at which `next()` would act without being told anything: a deadline or a backoff
   * ending. The caller sets one timer for it instead of polling. A deadline counts even when it is
   * already past (`now` read after the last `next()`): the caller must then call `next()` at once.
   * Dropping past deadlines once left a job waiting forever on a piece whose deadline fell between
   * the two readings of the clock (a timer may fire a fraction of a millisecond early).
   */
  nextWakeAt (now: number): number | undefined {
    const times = [
      ...this.flights.map(f => f.deadline),
      ...[...this.peers.values()].map(p => p.backoffUntil).filter(t => t > now)
    ]
    return times.length > 0 ? Math.min(...times) : undefined
  }

  progress (now: number): Progress {
    const perPeer: Record<string, number> = {}
    for (const peerId of this.done.values()) perPeer[peerId] = (perPeer[peerId] ?? 0) + 1
    let remainingRows = this.uncut
    let doneRows = 0
    let minPieceRows = Infinity
    let maxPieceRows = 0
    for (const [id, piece] of this.pieces) {
      if (!this.done.has(id)) remainingRows += piece.rows
      else doneRows += piece.rows
      minPieceRows = Math.min(minPieceRows, piece.rows)
      maxPieceRows = Math.max(maxPieceRows, piece.rows)
    }
    // conservative: a peer's pieces in flight share its hardware, so its rate is one piece's rate
    const rowsPerMs = [...this.peers.values()]
      .filter(s => this.window(s) > 0)
      .reduce((sum, s) => sum + 1 / this.msPerRow(s), 0)
    return {
      total: this.options.sizing != null ? this.pieces.size + (this.uncut > 0 ? 1 : 0) : Math.max(this.options.total, this.pieces.size),
      done: this.done.size,
      totalRows: doneRows + remainingRows,
      doneRows,
      minPieceRows: maxPieceRows === 0 ? 0 : minPieceRows,
      maxPieceRows,
      pending: this.pending.length,
      inFlight: new Set(this.flights.map(f => f.pieceId)).size,
      retries: this.retries,
      duplicates: this.duplicates,
      perPeer,
      // before any piece came back, speeds are guesses: no ETA rather than a wrong one
      etaMs: remainingRows === 0 ? 0 : rowsPerMs > 0 && this.done.size > 0 ? Math.round(remainingRows / rowsPerMs) : null
    }
  }

  private describe (pieceId: number): string {
    const piece = this.pieces.get(pieceId)
    return piece == null ? String(pieceId) : `${pieceId} (rows ${piece.start}-${piece.start + piece.rows - 1})`
  }

  private fail (pieceId: number, message: string): void {
    this.failure = { pieceId, attempts: this.attempts.get(pieceId) ?? [], message }
  }

  /** The piece is done: `peerId`'s answer is its; the copies still running are cancelled. */
  private finish (pieceId: number, peerId: string): void {
    this.done.set(pieceId, peerId)
    this.supersede(pieceId)
  }

  private supersede (pieceId: number): void {
    for (const other of this.flights.filter(f => f.pieceId === pieceId)) {
      this.takeFlight(other.pieceId, other.peerId)
      this.cancellations.push({ pieceId, peerId: other.peerId, reason: 'superseded' })
    }
  }

  private decidable (pieceId: number): boolean {
    const held = this.answers.get(pieceId)
    if (this.options.quorum === 1 || this.done.has(pieceId) || held == null || held.length === 0) return false
    return held.length >= this.needed(pieceId) || (this.options.localPeerId != null && held.includes(this.options.localPeerId))
  }

  /** Answers this piece needs now. */
  private needed (pieceId: number): number {
    return this.required.get(pieceId) ?? this.options.quorum
  }

  /** Copies still to start for this piece: answers it needs, less those held and those running. */
  private copiesNeeded (pieceId: number): number {
    if (this.done.has(pieceId) || this.decidable(pieceId)) return 0
    const held = this.answers.get(pieceId)?.length ?? 0
    return this.needed(pieceId) - held - this.flights.filter(f => f.pieceId === pieceId).length
  }

  /** Puts a piece back at the front of the queue if it needs another copy; returns whether it did. */
  private requeue (pieceId: number): boolean {
    if (this.copiesNeeded(pieceId) <= 0 || this.pending.includes(pieceId)) return false
    this.pending.unshift(pieceId)
    return true
  }

  /** May this peer take this piece at all: it has not answered it and runs no copy of it (and it is the local node, for a piece in its arbitration). */
  private eligible (peerId: string, pieceId: number): boolean {
    if (this.answeredBy.get(pieceId)?.has(peerId) === true) return false
    if (this.arbitrated.has(pieceId) && peerId !== this.options.localPeerId) return false
    return this.options.quorum === 1 || !this.flights.some(f => f.pieceId === pieceId && f.peerId === peerId)
  }

  /** With a quorum: no peer there now could ever give this piece the answer it lacks, and none is computing it. */
  private noPeerLeftFor (pieceId: number): boolean {
    if (this.flights.some(f => f.pieceId === pieceId)) return false
    return ![...this.peers.values()].some(s => this.window(s) > 0 && this.eligible(s.peer.peerId, pieceId))
  }

  private takeFlight (pieceId: number, peerId: string): Flight | undefined {
    const index = this.flights.findIndex(f => f.pieceId === pieceId && f.peerId === peerId)
    return index < 0 ? undefined : this.flights.splice(index, 1)[0]
  }

  private msPerRow (state: PeerState): number {
    if (state.observed.length > 0) {
      const busyMs = state.observed.reduce((sum, o) => sum + o.busyMs, 0)
      const rows = state.observed.reduce((sum, o) => sum + o.rows, 0)
      return Math.max(busyMs / rows, 1e-6)
    }
    const { refMsPerRow, refGflops } = this.options
    return state.peer.gflops > 0 && refGflops > 0 ? refMsPerRow * refGflops / state.peer.gflops : refMsPerRow
  }

  /** Extra time before this peer's next piece can start: fetching the model, if it lacks it. */
  private startupMs (state: PeerState): number {
    return state.proven || state.peer.hasModel !== false ? 0 : this.options.modelFetchMs
  }

  private window (state: PeerState): number {
    return Math.max(0, Math.min(this.options.window, state.peer.slots, state.cap ?? Infinity))
  }

  private inFlight (peerId: string): number {
    return this.flights.filter(f => f.peerId === peerId).length
  }

  /** Rows of the copies in flight on this peer: work it must do before a piece given to it now. */
  private rowsInFlight (peerId: string): number {
    return this.flights.reduce((sum, f) => f.peerId === peerId ? sum + (this.pieces.get(f.pieceId)?.rows ?? 0) : sum, 0)
  }

  /**
   * May this peer get work now (this piece, when one is named)? The local node in fallback mode only
   * while no remote peer may.
   */
  private usable (state: PeerState, now: number, pieceId?: number): boolean {
    if (state.backoffUntil > now) return false
    if (this.inFlight(state.peer.peerId) >= this.window(state)) return false
    if (pieceId != null && !this.eligible(state.peer.peerId, pieceId)) return false
    if (state.peer.peerId === this.options.localPeerId && this.options.local === 'fallback' && (pieceId == null || !this.arbitrated.has(pieceId))) {
      // a peer that is only busy (it answered OVERLOADED) can, in a moment: the local node stays out
      return ![...this.peers.values()].some(s => s.peer.peerId !== this.options.localPeerId && (s.backoffUntil <= now || s.overloads > 0) && this.window(s) > 0 && (pieceId == null || this.eligible(s.peer.peerId, pieceId)))
    }
    return this.window(state) > 0
  }

  /** With a quorum: the piece already has an answer or a copy running, so this copy is a further one. */
  private furtherCopy (pieceId: number): boolean {
    return this.options.quorum > 1 && ((this.answers.get(pieceId)?.length ?? 0) > 0 || this.flights.some(f => f.pieceId === pieceId))
  }

  /**
   * The peer drawn for this piece's further copy if it may take it now. Drawn once, uniformly among the
   * peers that may ever take the piece (remote ones first: the local node in fallback mode only when
   * none is left), and drawn again only when that peer left, backs off after a failure, or cannot
   * take the piece.
   */
  private designatedPeer (now: number, piece: Piece): PeerState | undefined {
    const id = this.designated.get(piece.id)
    let state = id == null ? undefined : this.peers.get(id)
    // the local node in fallback mode was drawn while no remote peer could take the piece: once one can, draw again
    const localWhileRemote = state != null && state.peer.peerId === this.options.localPeerId && this.options.local === 'fallback' && !this.arbitrated.has(piece.id) &&
      [...this.peers.values()].some(s => s.peer.peerId !== this.options.localPeerId && this.window(s) > 0 && this.eligible(s.peer.peerId, piece.id))
    if (state == null || localWhileRemote || this.window(state) === 0 || state.backoffUntil > now || !this.eligible(state.peer.peerId, piece.id)) {
      const all = [...this.peers.values()].filter(s => this.window(s) > 0 && this.eligible(s.peer.peerId, piece.id)).sort((a, b) => a.peer.peerId.localeCompare(b.peer.peerId))
      const remote = all.filter(s => s.peer.peerId !== this.options.localPeerId)
      const candidates = this.options.local === 'fallback' && remote.length > 0 ? remote : all
      if (candidates.length === 0) return undefined
      state = candidates[Math.floor(this.options.random() * candidates.length)]
      this.designated.set(piece.id, state.peer.peerId)
    }
    return this.usable(state, now, piece.id) ? state : undefined
  }

  /**
   * The usable peer expected to finish a piece of `rows` rows (that piece, when named) first, counting
   * what it already has in flight; with 0 rows, the one that would start a new piece soonest.
   */
  private bestPeer (now: number, rows: number, pieceId?: number): PeerState | undefined {
    let best: PeerState | undefined
    let bestFinish = Infinity
    for (const state of this.peers.values()) {
      if (!this.usable(state, now, pieceId)) continue
      const finish = this.startupMs(state) + (this.rowsInFlight(state.peer.peerId) + rows) * this.msPerRow(state)
      if (finish < bestFinish || (finish === bestFinish && best != null && state.peer.peerId < best.peer.peerId)) {
        best = state
        bestFinish = finish
      }
    }
    return best
  }

  private start (pieceId: number, state: PeerState, now: number, duplicate: boolean): Assignment {
    const piece = this.pieces.get(pieceId)!
    if (this.designated.get(pieceId) === state.peer.peerId) this.designated.delete(pieceId)
    const startupMs = this.startupMs(state)
    const aheadRows = this.rowsInFlight(state.peer.peerId)
    const expectedMs = startupMs + (aheadRows + piece.rows) * this.msPerRow(state)
    const floor = this.known(state) ? this.options.timeoutFloorMs : Math.max(this.options.timeoutFloorMs, this.options.probeTimeoutMs)
    const deadline = now + Math.max(floor, Math.ceil(expectedMs * this.options.timeoutFactor))
    this.flights.push({ pieceId, peerId: state.peer.peerId, startedAt: now, aheadRows, expectedMs, startupMs, deadline, duplicate })
    if (duplicate) this.duplicates++
    return { pieceId, peerId: state.peer.peerId, deadline, duplicate }
  }

  /**
   * When a copy in flight should come back, with what we know now of its peer's speed. A copy already
   * overdue will take, as a best guess, as long again as it has run so far: it is late, and the longer
   * it is late the more a copy elsewhere is worth.
   */
  private expectedFinish (flight: Flight, now: number): number {
    const state = this.peers.get(flight.peerId)
    const rows = this.pieces.get(flight.pieceId)?.rows ?? 1
    const end = flight.startedAt + (state == null ? flight.expectedMs : flight.startupMs + (flight.aheadRows + rows) * this.msPerRow(state))
    return end > now ? end : now + (now - flight.startedAt)
  }

  /** Copies of the pieces expected to finish last, for idle peers that would finish them sooner. */
  private endgame (now: number): Assignment[] {
    const assign: Assignment[] = []
    const idle = [...this.peers.values()]
      .filter(s => this.usable(s, now))
      .sort((a, b) => this.msPerRow(a) - this.msPerRow(b) || a.peer.peerId.localeCompare(b.peer.peerId))
    for (const state of idle) {
      while (this.usable(state, now)) {
        const candidates = new Map<number, number>()
        for (const f of this.flights) {
          const finish = this.expectedFinish(f, now)
          candidates.set(f.pieceId, Math.min(candidates.get(f.pieceId) ?? Infinity, finish))
        }
        let chosen: number | undefined
        let latest = -Infinity
        for (const [pieceId, finish] of candidates) {
          const copies = this.flights.filter(f => f.pieceId === pieceId)
          // with a quorum, the copies a piece still needs do not count against the end-game's
          const extra = this.options.quorum > 1 ? this.needed(pieceId) - (this.answers.get(pieceId)?.length ?? 0) - 1 : 0
          if (copies.length >= this.options.maxCopies + extra || copies.some(f => f.peerId === state.peer.peerId) || !this.eligible(state.peer.peerId, pieceId)) continue
          const mine = now + this.startupMs(state) + (this.rowsInFlight(state.peer.peerId) + this.pieces.get(pieceId)!.rows) * this.msPerRow(state)
          if (mine < finish && (finish > latest || (finish === latest && pieceId < (chosen ?? Infinity)))) {
            chosen = pieceId
            latest = finish
          }
        }
        if (chosen == null) break
        assign.push(this.start(chosen, state, now, true))
      }
    }
    return assign
  }
}

export function describeCause (cause: FailureCause): string {
  switch (cause.kind) {
    case 'disconnect': return 'peer disconnected'
    case 'timeout': return 'timed out'
    case 'overloaded': return 'peer overloaded'
    case 'unreachable': return `peer unreachable: ${cause.message}`
    case 'error': case 'fatal': return `${cause.code}: ${cause.message}`
  }
}
