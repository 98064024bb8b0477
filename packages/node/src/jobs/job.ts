import { describeCause, planPieces, Scheduler, TrustRecords } from '@shoal/scheduler'
import type { Assignment, FailureCause, Piece, PieceSizing, Progress, SchedulerPeer, VerifyPolicy } from '@shoal/scheduler'
import { AnswerCommitment, InferResponse } from '@shoal/protocol'
import { compareOutputs, concatRows, mismatchWithModel, rowBytes, sliceRows, TOLERANCE_SCALE, VERIFY_TOLERANCE } from '@shoal/runtime'
import type { Dtype, ModelInfo, Tensor, Tolerance } from '@shoal/runtime'
import { ASSUMED_FETCH_BYTES_PER_MS, MAX_SIZED_PIECE_BYTES, MODEL_FETCH_SETUP_MS, PROBE_TIMEOUT_MS } from '../constants.js'
import type { ModelCosts } from './model-costs.js'
import { PieceError, isMalformedAnswer, PeerUnreachableError } from '../pieces/index.js'
import type { PieceRequest, PieceResult, SignedCommitment } from '../pieces/index.js'
import { JobError, SubmittedJob } from './job-base.js'
import { CanaryPool, placeCanaries, shapeOf, splitCanaries, withCanaries } from './canaries.js'
import type { CanaryPlan } from './canaries.js'
import { OutputRegions } from './output-regions.js'
import type { CreditedJob, CreditedPiece, Verified } from '../credit/index.js'
import type { RowLayout } from './output-regions.js'
import { PieceVerifier, QuorumVerifier } from './verifier.js'
import type { VerificationView, Verifier } from './verifier.js'

export { JobError }

export interface JobOptions {
  /**
   * 'share' (default): this node takes pieces as a peer does, when it would finish one first (by its
   * measured speed against the peers'), with the slots it is not using for peers' pieces; 'fallback'
   * (peers only): it runs pieces only while no peer can.
   */
  local?: 'share' | 'fallback'
  /**
   * Rows per piece. Default: pieces size themselves as the job runs (factoring: large while much is
   * left, smaller towards the end, each sized for its peer's measured speed; `sizePiece` in
   * @shoal/scheduler).
   */
  rowsPerPiece?: number
  /** Self-sizing pieces: none is sized to take longer than this on its peer (default DEFAULT_MAX_PIECE_MS). */
  maxPieceMs?: number
  maxAttempts?: number
  timeoutFloorMs?: number
  endgame?: boolean
  /**
   * Result verification: 'spot' (default) checks answers against this node's own run, every answer
   * of a peer without an established record and a falling fraction of the others; 'off' accepts every
   * well-formed answer; 'full' runs every piece on two different peers whose answers must agree
   * (docs/trust.md).
   */
  verify?: VerifyPolicy
  /** How far two answers' floating-point outputs may differ and still agree (default @shoal/runtime's VERIFY_TOLERANCE). */
  tolerance?: Tolerance
  /**
   * Canary rows per remote piece (default 0): rows whose answers this node already knows (from its own
   * runs and answers it verified, of the same model) mixed into the piece at random places; a wrong
   * answer to one proves the peer wrong without a second run (docs/trust.md). At most MAX_CANARIES.
   */
  canaries?: number
}

/** The most canary rows a piece may carry. */
export const MAX_CANARIES = 8

/** What a job needs of the node that submits it (batch and pipeline jobs alike). */
export interface SubmitterDeps {
  localPeerId: string
  localGflops: number
  localSlots: number
  /** This node's slots in use for peers' pieces now: its own pieces get only the rest. */
  localBusy?: () => number
  /** Subscribe to changes of the peers that can take pieces; returns the unsubscribe function. */
  onPeersChanged: (listener: () => void) => () => void
  runRemote: (peerId: string, request: PieceRequest, signal: AbortSignal) => Promise<PieceResult>
  runLocal: (modelCid: string, inputs: Record<string, Tensor>, signal: AbortSignal) => Promise<PieceResult>
  maxResponseBytes: number
  /** The node's records of its peers' verified and wrong answers (shared by its jobs). */
  trust?: TrustRecords
  /** Draws for `spot` (tests pass a seeded one). */
  random?: () => number
  /** What earlier jobs measured a row of each model to cost (shared by the node's jobs): sizes pieces without a timed run. */
  costs?: ModelCosts
  /** An answer of this job proven wrong, with its worker's signed commitment when it sent one (the node keeps it as evidence). */
  onWrongAnswer?: (wrong: WrongAnswer) => void
  /** The job ended: the pieces whose peers' answers it kept, for their receipts (credit/credit-keeper.ts). */
  onCredited?: (job: CreditedJob) => void
  now?: () => number
  /** Debug log (`shoal:job`): every failed attempt and why. */
  log?: (format: string, ...args: unknown[]) => void
}

export interface JobDeps extends SubmitterDeps {
  model: ModelInfo
  /** Remote peers that can take pieces now. */
  peers: () => SchedulerPeer[]
  /** Rows whose answers the node knows, shared by its jobs (canaries); default: the job's own. */
  canaries?: CanaryPool
}

/** An answer proven wrong by verification. */
export interface WrongAnswer {
  jobId: string
  pieceId: number
  modelCid: string
  peerId: string
  /** The worker's signed commitment to it (docs/protocol.md 6.3), when it sent one. */
  commitment?: SignedCommitment
}

/** A failed attempt of a piece on a peer, as `GET /v1/jobs/:id` and `shoal run --json` show it. */
export interface PieceFailure {
  peerId: string
  piece: number
  /** Why: the worker's error code and message, a refused answer (`BAD_ANSWER: ...`), a timeout, a disconnect. */
  reason: string
}

export interface JobProgress extends Progress {
  jobId: string
  /** Input bytes sent to peers and output bytes received from them (pieces run here move nothing). */
  bytesSent: number
  bytesReceived: number
  /** Remote pieces answered over a direct data channel rather than a libp2p stream (docs/protocol.md 6.1). */
  directPieces: number
  /** Pieces completed per execution provider ("cpu", "webgpu"; "delay" in simulations). */
  perProvider: Record<string, number>
  state: 'planning' | 'running' | 'done' | 'failed'
  elapsedMs: number
  /** Peers (this node included) that can take pieces. */
  peers: number
  /** Rows per piece when fixed (the model's batch, or `rowsPerPiece`); for self-sizing pieces, the largest so far. */
  rowsPerPiece: number
  /** Pieces sized themselves as the job ran (see JobOptions.rowsPerPiece). */
  sized: boolean
  /** Failed attempts, the first MAX_LISTED_FAILURES of them: what a worker's operator needs to see why its answers are refused. */
  failures: PieceFailure[]
  /** Every failed attempt, listed or not. */
  failedAttempts: number
  verification: VerificationView & {
    /** Canary rows sent in remote pieces (rows whose answers this node knew). */
    canaryRows: number
  }
}

/** One attempt of a piece on a peer, as the submitter saw it: from dispatch to answer. */
export interface PieceAttempt {
  pieceId: number
  peerId: string
  rows: number
  startedAt: number
  endedAt: number
  /** done: its result was used; duplicate: another attempt finished first; cancelled: stopped by the scheduler. */
  outcome: 'done' | 'duplicate' | 'failed' | 'cancelled'
  /** Why a failed attempt failed. */
  reason?: string
}

export interface JobResult {
  jobId: string
  outputs: Record<string, Tensor>
  progress: JobProgress
}

/** The batch size its inputs fix (the first fixed axis 0), else undefined. */
export function fixedBatchOf (inputs: Pick<ModelInfo, 'inputs'>['inputs']): number | undefined {
  return inputs.map(i => i.dims[0]).find((d): d is number => typeof d === 'number' && d > 0)
}

/**
 * The batch size of a job's inputs, once they agree with each other on axis 0 and fit the model's
 * inputs (`mismatchWithModel`); a JobError says what is wrong. A model whose batch axis is fixed at n
 * takes pieces of exactly n rows: the batch must divide.
 */
export function batchRows (tensors: Record<string, Tensor>, inputs: Pick<ModelInfo, 'inputs'>['inputs']): number {
  const entries = Object.entries(tensors)
  if (entries.length === 0) throw new JobError('no inputs given')
  for (const [name, t] of entries) if (t.dims.length === 0) throw new JobError(`input "${name}" is a scalar: it has no batch axis to split`)
  const rows = entries[0][1].dims[0]
  const differ = entries.find(([, t]) => t.dims[0] !== rows)
  if (differ != null) throw new JobError(`inputs disagree on the batch size (axis 0): "${entries[0][0]}" has ${rows} rows, "${differ[0]}" has ${differ[1].dims[0]}`)
  if (rows === 0) throw new JobError('the batch is empty (0 rows)')
  const fixed = fixedBatchOf(inputs)
  if (fixed != null && rows % fixed !== 0) throw new JobError(`the model's batch axis is fixed at ${fixed} rows; ${rows} rows cannot be cut into such pieces`)
  const mismatch = mismatchWithModel({ inputs }, entries.map(([name, t]) => ({ name, dtype: t.dtype, dims: fixed != null ? [fixed, ...t.dims.slice(1)] : t.dims })))
  if (mismatch != null) throw new JobError(mismatch)
  return rows
}

/**
 * Why an answer's output has another shape than it must, if it does: its dimensions after the batch
 * axis as this node's own run gave them (`probed`), else as far as the model fixes them (never as an
 * earlier answer: a wrong first answer would make the honest ones refused). The batch axis is the
 * caller's to check.
 */
export function shapeProblem (output: ModelInfo['outputs'][number], t: Tensor, rows: number, probed?: number[]): string | undefined {
  if (probed != null) {
    if (t.dims.slice(1).join() === probed.join()) return undefined
    return `output "${output.name}" has shape [${t.dims.join(', ')}] where [${[rows, ...probed].join(', ')}] was expected`
  }
  if (output.dims.length === 0) return undefined
  const fixed = (d: number | string, i: number): boolean => i > 0 && typeof d === 'number' && d > 0
  if (t.dims.length !== output.dims.length || output.dims.some((d, i) => fixed(d, i) && t.dims[i] !== d)) {
    return `output "${output.name}" has shape [${t.dims.join(', ')}], the model's is [${output.dims.join(', ')}]`
  }
  return undefined
}

/** The outputs hash a worker's encoded commitment states, if it decodes. */
export function commitmentOutputsHash (commitment: Uint8Array): Uint8Array | undefined {
  try {
    const hash = AnswerCommitment.decode(commitment).outputsSha256
    return hash.byteLength === 32 ? hash : undefined
  } catch {
    return undefined
  }
}

/** The submitting node as a peer of its own jobs: the slots it does not use for peers' pieces now. */
export function localPeer (deps: SubmitterDeps): SchedulerPeer {
  return { peerId: deps.localPeerId, gflops: deps.localGflops, slots: Math.max(0, deps.localSlots - (deps.localBusy?.() ?? 0)) }
}

/** What a failed piece run means to the scheduler. */
export function causeOf (err: any): FailureCause {
  if (err instanceof PeerUnreachableError) return { kind: 'unreachable', message: err.message }
  if (isMalformedAnswer(err)) return { kind: 'error', code: 'BAD_ANSWER', message: err.message }
  if (err instanceof PieceError) {
    const Code = InferResponse.Code
    if (err.code === Code.OVERLOADED) return { kind: 'overloaded' }
    // the submitter checked the inputs against the model before the job: a worker that refuses them
    // (its own size or memory limits, or a faulty or hostile peer) fails this attempt, not the job
    if (err.code === Code.BAD_INPUT) return { kind: 'error', code: 'BAD_INPUT', message: err.message }
    const code = Object.entries(Code).find(([, v]) => v === err.code)?.[0] ?? 'INTERNAL'
    return { kind: 'error', code, message: err.message }
  }
  return { kind: 'disconnect' }
}

/**
 * One batch job, submitted on this node: checks the inputs against the model, cuts the batch into
 * pieces along axis 0, hands them to peers through the scheduler, and joins the outputs in order.
 */
export class Job extends SubmittedJob {
  private readonly deps: JobDeps
  private readonly inputs: Record<string, Tensor>
  private readonly options: JobOptions
  private readonly now: () => number
  private bytesSent = 0
  private bytesReceived = 0
  private directPieces = 0
  private readonly perProvider: Record<string, number> = {}
  private readonly flights = new Map<string, AbortController>()
  private readonly results = new Map<number, Record<string, Tensor>>()
  /** Each output's dimensions after the batch axis, from this node's probe run (when it ran). */
  private readonly outputShapes = new Map<string, number[]>()
  /** Each output's bytes per row, from the same run. */
  private readonly probedOutputs = new Map<string, number>()
  /** Each output's dtype, from the same run. */
  private readonly probedDtypes = new Map<string, Dtype>()
  /** The job's outputs, into which answers are read in place (when their layout is known). */
  private regions?: OutputRegions
  /** Whose answer each piece's outputs are, and how it was verified: receipts for the peers' (docs/trust.md, "Credit"). */
  private readonly kept = new Map<number, { peers: string[], verified: Verified, commitment?: Uint8Array }>()
  private readonly verifier: Verifier
  private readonly canaryPool: CanaryPool
  private readonly random: () => number
  private canaryRows = 0
  /** Under `spot`: checks answers against this node's runs. */
  private readonly spot?: PieceVerifier
  /** Under `full`: holds each piece's answers until two agree. */
  private readonly quorum?: QuorumVerifier
  /** Peers proven wrong during this job: no more pieces go to them. */
  private readonly excluded = new Set<string>()
  private scheduler?: Scheduler
  private pieces: Piece[] = []
  private state: JobProgress['state'] = 'planning'
  private startedAt = 0
  private rowsPerPiece = 0
  /** Self-sizing pieces: the scheduler cuts them (undefined: `pieces` are fixed). */
  private sizing?: PieceSizing
  /** A row's cost on this node, from earlier jobs' measurements of the model; a guess of 1 ms (to be corrected by observation) when none. */
  private msPerRow = 1
  private costKnown = false

  constructor (deps: JobDeps, inputs: Record<string, Tensor>, options: JobOptions = {}) {
    super()
    this.deps = deps
    this.inputs = inputs
    this.options = options
    this.now = deps.now ?? (() => performance.now())
    const policy: VerifyPolicy = options.verify ?? 'spot'
    const trust = deps.trust ?? new TrustRecords(Date.now)
    this.canaryPool = deps.canaries ?? new CanaryPool()
    this.random = deps.random ?? Math.random
    const model = deps.model.cid
    const onCaught = (peer: string): void => {
      this.excluded.add(peer)
      this.scheduler?.setPeers(this.allPeers(), this.now())
      this.wake()
    }
    const onWrongAnswer = (pieceId: number, peerId: string, commitment?: SignedCommitment): void => {
      deps.onWrongAnswer?.({ jobId: this.id, pieceId, modelCid: deps.model.cid, peerId, ...(commitment != null ? { commitment } : {}) })
    }
    if (policy === 'full') {
      this.verifier = this.quorum = new QuorumVerifier({
        onWrongAnswer,
        trust,
        localPeerId: deps.localPeerId,
        scheduler: () => this.scheduler,
        onDecided: (pieceId, outputs, winners, checked) => {
          this.results.set(pieceId, outputs)
          this.kept.set(pieceId, { peers: winners, verified: checked ? 'quorum' : 'unchecked' })
        },
        runLocal: async pieceId => (await deps.runLocal(deps.model.cid, this.pieceInputs(this.piece(pieceId)), this.stopping.signal)).outputs,
        onVerified: (pieceId, outputs, peers) => { if (this.wantsCanaries()) this.canaryPool.add(model, this.pieceInputs(this.piece(pieceId)), outputs, peers) },
        onCaught,
        tolerance: options.tolerance,
        log: deps.log
      })
    } else {
      this.verifier = this.spot = new PieceVerifier({
        onWrongAnswer,
        policy,
        trust,
        random: deps.random,
        runLocal: async inputs => (await deps.runLocal(deps.model.cid, inputs, this.stopping.signal)).outputs,
        onVerified: (inputs, outputs, peer, pieceId) => {
          const kept = this.kept.get(pieceId)
          if (kept?.peers[0] === peer) kept.verified = 'spot'
          if (this.wantsCanaries()) this.canaryPool.add(model, inputs, outputs, [peer])
        },
        onCaught,
        tolerance: options.tolerance,
        log: deps.log
      })
    }
  }

  progress (): JobProgress {
    const p = this.scheduler?.progress(this.now()) ?? { total: 0, done: 0, totalRows: 0, doneRows: 0, minPieceRows: 0, maxPieceRows: 0, pending: 0, inFlight: 0, retries: 0, duplicates: 0, perPeer: {}, etaMs: null }
    return { ...p, jobId: this.id, bytesSent: this.bytesSent, bytesReceived: this.bytesReceived, directPieces: this.directPieces, perProvider: { ...this.perProvider }, state: this.state, elapsedMs: this.startedAt === 0 ? 0 : Math.round(this.now() - this.startedAt), peers: this.allPeers().length, rowsPerPiece: this.sizing != null ? p.maxPieceRows : this.rowsPerPiece, sized: this.sizing != null, failures: [...this.failures], failedAttempts: this.failedAttempts, verification: { ...this.verifier.view(), canaryRows: this.canaryRows } }
  }

  protected async execute (): Promise<JobResult> {
    this.startedAt = this.now()
    try {
      await this.plan(this.check())
      const result = await this.schedule()
      this.state = 'done'
      this.emit()
      return result
    } catch (err) {
      this.state = 'failed'
      this.emit()
      throw err
    } finally {
      this.credit()
    }
  }

  /**
   * The pieces whose peers' answers the job kept, for their receipts: a peer proven wrong in the job
   * gets none, and a piece decided by this node's own run is nobody's. Given to `onCredited` when
   * the job ends, done or not (what was kept was work done).
   */
  private credit (): void {
    if (this.deps.onCredited == null || this.scheduler == null || this.kept.size === 0) return
    const rows = new Map((this.sizing != null ? this.scheduler.allPieces() : this.pieces).map(p => [p.id, p.rows]))
    const pieces: CreditedPiece[] = []
    const wrong = new Set([...this.excluded, ...this.verifier.view().excluded])
    for (const [pieceId, kept] of this.kept) {
      for (const peerId of kept.peers) {
        if (peerId === this.deps.localPeerId || wrong.has(peerId)) continue
        const outputsSha256 = kept.commitment != null && kept.peers.length === 1 ? commitmentOutputsHash(kept.commitment) : undefined
        pieces.push({ pieceId, peerId, rows: rows.get(pieceId) ?? 0, verified: kept.verified, ...(outputsSha256 != null ? { outputsSha256 } : {}) })
      }
    }
    const unitsPerRow = this.scheduler.measuredCost() ?? this.deps.costs?.msPerRow(this.deps.model.cid, 1) ?? 1
    this.deps.onCredited({ jobId: this.id, modelCid: this.deps.model.cid, unitsPerRow, pieces: pieces.filter(p => p.rows > 0) })
  }

  get modelCid (): string {
    return this.deps.model.cid
  }

  /** Throws JobError if the inputs cannot feed the model (so an API can refuse before accepting the job). */
  validate (): void {
    this.check()
  }

  /** The batch size, after checking that the inputs agree with each other and with the model. */
  private check (): number {
    return batchRows(this.inputs, this.deps.model.inputs)
  }

  /** The model's batch size if its inputs fix it, else undefined. */
  private fixedBatch (): number | undefined {
    return fixedBatchOf(this.deps.model.inputs)
  }

  /**
   * Fixed pieces when the model's batch or `rowsPerPiece` fixes their size; else self-sizing ones,
   * which the scheduler cuts as peers take work. One row run here first (unless the size is fixed and
   * the outputs' shapes are too) catches inputs the model refuses before any peer sees them; it is not
   * timed: on a busy node it reads slow, and pieces sized from it come out far too small. A row's cost comes
   * from what earlier jobs measured of this model, else peers' first pieces measure it.
   */
  private async plan (rows: number): Promise<void> {
    const fixed = this.fixedBatch()
    const chosen = fixed ?? (this.options.rowsPerPiece != null ? Math.min(this.options.rowsPerPiece, rows) : undefined)
    if (chosen == null || this.hasOpenOutputDims()) await this.probe(Math.min(fixed ?? 1, rows))
    const layout = this.rowLayout()
    // a model of fixed batch pads pieces, and under `full` several answers to a piece are kept at once
    if (layout != null && fixed == null && this.quorum == null) this.regions = new OutputRegions(layout, rows)
    if (chosen != null) {
      this.rowsPerPiece = chosen
      this.pieces = planPieces(rows, chosen)
      return
    }
    const cost = this.deps.costs?.msPerRow(this.deps.model.cid, this.deps.localGflops)
    if (cost != null) {
      this.msPerRow = cost
      this.costKnown = true
    }
    this.sizing = { totalRows: rows, maxPieceMs: this.options.maxPieceMs, maxRows: Math.max(1, Math.floor(MAX_SIZED_PIECE_BYTES / this.bytesPerRow())) }
  }

  /**
   * Each output's row layout, as this node's probe run showed it, or as the model fixes it; undefined
   * if some output has neither (its answers are then read into buffers of their own and joined).
   */
  private rowLayout (): Map<string, RowLayout> | undefined {
    const layout = new Map<string, RowLayout>()
    for (const o of this.deps.model.outputs) {
      const probed = this.outputShapes.get(o.name)
      const dtype = this.probedDtypes.get(o.name) ?? o.dtype
      const dims = probed ?? (o.dims.length > 0 && o.dims.slice(1).every(d => typeof d === 'number' && d > 0) ? o.dims.slice(1) as number[] : undefined)
      if (dtype == null || dims == null) return undefined
      layout.set(o.name, { dtype, dims })
    }
    return layout
  }

  /** Input and output bytes of one row (outputs as the probe run gave them). */
  private bytesPerRow (): number {
    const inputs = Object.values(this.inputs).reduce((n, t) => n + rowBytes(t), 0)
    let outputs = 0
    for (const t of this.probedOutputs.values()) outputs += t
    return Math.max(1, inputs + outputs)
  }

  /** The piece of this id: fixed, or cut by the scheduler. */
  private piece (pieceId: number): Piece {
    return this.sizing != null ? this.scheduler!.piece(pieceId)! : this.pieces[pieceId]
  }

  /** Some output has a dimension after the batch axis that the model does not fix, or no known shape. */
  private hasOpenOutputDims (): boolean {
    // an output of unknown rank (no shape in the model) leaves every dimension open
    return this.deps.model.outputs.some(o => o.dims.length === 0 || o.dims.slice(1).some(d => typeof d !== 'number' || d <= 0))
  }

  /**
   * Runs the first `rows` rows here and records each output's dimensions after the batch axis: what
   * every answer's must be (this node's own run: no peer can set them). Shows at once a model that
   * drops the batch axis, and inputs the model refuses, before any peer is asked.
   */
  private async probe (rows: number): Promise<void> {
    const probe: Record<string, Tensor> = {}
    for (const [name, t] of Object.entries(this.inputs)) probe[name] = sliceRows(t, 0, rows)
    let outputs: Record<string, Tensor>
    try {
      outputs = (await this.deps.runLocal(this.deps.model.cid, probe, AbortSignal.any([AbortSignal.timeout(PROBE_TIMEOUT_MS), this.stopping.signal]))).outputs
    } catch (err: any) {
      if (this.cancelled != null) throw new JobError(this.cancelled)
      throw new JobError(`the model does not run on these inputs: ${err.message}`)
    }
    if (this.wantsCanaries()) this.canaryPool.add(this.deps.model.cid, probe, outputs, [this.deps.localPeerId])
    for (const [name, t] of Object.entries(outputs)) {
      if (t.dims.length === 0 || t.dims[0] !== rows) throw new JobError(`NOT_SPLITTABLE: output "${name}" has shape [${t.dims.join(', ')}] for ${rows === 1 ? 'one row' : `${rows} rows`}: the model does not keep the batch axis, so its batch cannot be split`)
      this.outputShapes.set(name, t.dims.slice(1))
      this.probedOutputs.set(name, rowBytes(t))
      this.probedDtypes.set(name, t.dtype)
    }
  }

  private allPeers (): SchedulerPeer[] {
    return [localPeer(this.deps), ...this.deps.peers().filter(p => !this.excluded.has(p.peerId))]
  }

  private async schedule (): Promise<JobResult> {
    const scheduler = new Scheduler(this.sizing != null ? [] : this.pieces, {
      sizing: this.sizing,
      refKnown: this.sizing == null || this.costKnown,
      refMsPerRow: this.msPerRow,
      refGflops: this.deps.localGflops,
      localPeerId: this.deps.localPeerId,
      local: this.options.local ?? 'share',
      maxAttempts: this.options.maxAttempts,
      timeoutFloorMs: this.options.timeoutFloorMs,
      endgame: this.options.endgame,
      quorum: this.quorum != null ? 2 : 1,
      random: this.random,
      // a peer without the model fetches it first: a guess from its size at a modest swarm rate
      modelFetchMs: MODEL_FETCH_SETUP_MS + this.deps.model.bytes / ASSUMED_FETCH_BYTES_PER_MS
    })
    this.scheduler = scheduler
    this.state = 'running'
    let peers = this.allPeers()
    scheduler.setPeers(peers, this.now())
    // told of every ad and connection in the mesh: the job acts only when its own peers changed
    const unsubscribe = this.deps.onPeersChanged(() => {
      const now = this.allPeers()
      if (samePeers(now, peers)) return
      peers = now
      scheduler.setPeers(peers, this.now())
      this.wake()
    })
    try {
      let busy = this.deps.localBusy?.() ?? 0
      while (scheduler.state === 'running') {
        if (this.cancelled != null) throw new JobError(this.cancelled)
        // the slots this node gives peers' pieces are not its own jobs' to take
        const nowBusy = this.deps.localBusy?.() ?? 0
        if (nowBusy !== busy) {
          busy = nowBusy
          peers = this.allPeers()
          scheduler.setPeers(peers, this.now())
        }
        const decision = scheduler.next(this.now())
        for (const c of decision.cancel) this.flights.get(`${c.pieceId}@${c.peerId}`)?.abort()
        for (const a of decision.assign) this.dispatch(a)
        this.emit()
        if (scheduler.state !== 'running') break
        const wakeAt = scheduler.nextWakeAt(this.now())
        await new Promise<void>(resolve => {
          const timer = wakeAt == null ? undefined : setTimeout(resolve, Math.max(0, wakeAt - this.now()) + 1)
          this.wake = () => { clearTimeout(timer); resolve() }
        })
      }
      for (const c of scheduler.next(this.now()).cancel) this.flights.get(`${c.pieceId}@${c.peerId}`)?.abort()
    } finally {
      unsubscribe()
      for (const controller of this.flights.values()) controller.abort()
    }
    if (scheduler.state === 'failed') throw new JobError(scheduler.error?.message ?? 'the job failed')
    // the outputs are joined once every check of an answer has ended (some may replace answers)
    try {
      await this.verifier.settled()
    } catch (err: any) {
      throw new JobError(this.cancelled ?? err.message)
    }
    const pieces = this.sizing != null ? scheduler.allPieces() : this.pieces
    const names = this.deps.model.outputs.map(o => o.name)
    let outputs: Record<string, Tensor>
    if (this.regions != null) {
      // (every exchange was aborted above: none writes into the outputs any more)
      outputs = this.regions.join(pieces, this.results, names)
    } else {
      outputs = {}
      for (const name of names) outputs[name] = concatRows(pieces.map(p => this.results.get(p.id)![name]))
    }
    const cost = scheduler.measuredCost()
    if (cost != null) this.deps.costs?.record(this.deps.model.cid, cost)
    return { jobId: this.id, outputs, progress: this.progress() }
  }

  private dispatch (assignment: Assignment): void {
    const { pieceId, peerId, deadline } = assignment
    const piece = this.piece(pieceId)
    const key = `${pieceId}@${peerId}`
    const controller = new AbortController()
    this.flights.set(key, controller)
    const inputs = this.pieceInputs(piece)
    const remote = peerId !== this.deps.localPeerId
    const canaries = remote ? this.canaryPlan(piece, peerId) : undefined
    const sent = canaries != null ? withCanaries(inputs, canaries) : inputs
    if (canaries != null) this.canaryRows += canaries.positions.length
    if (remote) this.bytesSent += Object.values(sent).reduce((n, t) => n + t.data.byteLength, 0)
    const startedAt = this.now()
    let outcome: PieceAttempt['outcome'] = 'failed'
    let reason: string | undefined
    // an answer without canaries may be read straight into the job's outputs
    const regions = remote && canaries == null ? this.regions : undefined
    let inPlace = false
    const run = !remote
      ? this.deps.runLocal(this.deps.model.cid, inputs, controller.signal)
      : this.deps.runRemote(peerId, {
        jobId: this.id,
        pieceId,
        modelCid: this.deps.model.cid,
        inputs: sent,
        deadlineMs: deadline - this.now(),
        maxResponseBytes: this.deps.maxResponseBytes,
        ...(regions != null
          ? {
              into: headers => {
                const views = this.results.has(pieceId) ? undefined : regions.claim(piece, headers)
                inPlace = views != null
                return views
              }
            }
          : {})
      }, controller.signal)
    run.then(answer => {
      if (remote) this.bytesReceived += Object.values(answer.outputs).reduce((n, t) => n + t.data.byteLength, 0)
      if (answer.direct === true) this.directPieces++
      if (controller.signal.aborted) { outcome = 'cancelled'; return }
      const { result: taken, problem: canaryProblem } = this.takeCanaries(answer, canaries, pieceId, peerId, piece)
      const problem = canaryProblem ?? this.checkOutputs(taken.outputs, piece, remote)
      // only the model's outputs are kept (and compared): a peer's extra outputs are ignored, and do not hold memory
      // (an answer read in place has the model's outputs and nothing else)
      const result = problem == null && !inPlace ? { ...taken, outputs: this.modelOutputs(taken.outputs) } : taken
      if (problem != null) {
        reason = describeCause(problem)
        this.scheduler?.failed(pieceId, peerId, problem, this.now())
      } else if (this.scheduler?.succeeded(pieceId, peerId, this.now()) === true) {
        if (this.quorum != null) {
          this.quorum.answer(pieceId, peerId, piece.rows, result.outputs, result.commitment)
        } else {
          this.results.set(pieceId, result.outputs)
          this.kept.set(pieceId, { peers: [peerId], verified: canaries != null ? 'canary' : 'unchecked', ...(result.commitment != null ? { commitment: result.commitment.commitment } : {}) })
          if (!remote && this.wantsCanaries()) this.canaryPool.add(this.deps.model.cid, inputs, result.outputs, [peerId])
          const replace = (outputs: Record<string, Tensor>): void => {
            this.results.set(pieceId, outputs)
            this.kept.set(pieceId, { peers: [this.deps.localPeerId], verified: 'unchecked' })
          }
          if (remote) this.spot?.accept(pieceId, { peer: peerId, rows: piece.rows, inputs, outputs: result.outputs, replace, commitment: result.commitment })
        }
        this.perProvider[result.provider] = (this.perProvider[result.provider] ?? 0) + 1
        outcome = 'done'
      } else {
        outcome = 'duplicate'
      }
    }, err => {
      if (controller.signal.aborted) { outcome = 'cancelled'; return }
      const cause = causeOf(err)
      // the scheduler's wording, with the error's own text where the cause does not carry it
      reason = 'message' in cause ? describeCause(cause) : `${describeCause(cause)}: ${String(err.message ?? err)}`
      this.scheduler?.failed(pieceId, peerId, cause, this.now())
    }).finally(() => {
      this.flights.delete(key)
      if (outcome === 'failed') this.recordFailure(peerId, pieceId, reason ?? 'unknown')
      const attempt: PieceAttempt = { pieceId, peerId, rows: piece.rows, startedAt, endedAt: this.now(), outcome, ...(reason != null ? { reason } : {}) }
      this.emitAttempt(attempt)
      this.wake()
    })
  }

  /** The model's outputs of an answer, copied out when the answer's buffer holds much more than they need. */
  private modelOutputs (outputs: Record<string, Tensor>): Record<string, Tensor> {
    const kept: Record<string, Tensor> = {}
    for (const o of this.deps.model.outputs) kept[o.name] = outputs[o.name]
    const bytes = Object.values(kept).reduce((n, t) => n + t.data.byteLength, 0)
    const buffers = new Set(Object.values(outputs).map(t => t.data.buffer))
    const held = [...buffers].reduce((n, b) => n + b.byteLength, 0)
    if (held <= bytes * 1.25 + 4096) return kept
    for (const [name, t] of Object.entries(kept)) kept[name] = { dtype: t.dtype, dims: t.dims, data: t.data.slice() }
    return kept
  }

  private pieceInputs (piece: Piece): Record<string, Tensor> {
    const inputs: Record<string, Tensor> = {}
    for (const [name, t] of Object.entries(this.inputs)) inputs[name] = sliceRows(t, piece.start, piece.rows)
    return inputs
  }

  /** The job asks for canaries, and the model's batch axis is free to take extra rows. */
  private wantsCanaries (): boolean {
    return (this.options.canaries ?? 0) > 0 && this.fixedBatch() == null
  }

  /** Canary rows for a piece to `peer`, if the job wants them and the pool has rows the peer did not compute. */
  private canaryPlan (piece: Piece, peer: string): CanaryPlan | undefined {
    if (!this.wantsCanaries()) return undefined
    // every piece's inputs have the job's dimensions after the batch axis
    const rows = this.canaryPool.draw(this.deps.model.cid, Math.min(MAX_CANARIES, this.options.canaries ?? 0), peer, this.random, shapeOf(this.inputs))
    return rows.length === 0 ? undefined : placeCanaries(piece.rows, rows, this.random)
  }

  /**
   * An answer to a piece sent with canaries: its own rows, once every canary row's answer agrees with
   * the one this node knows. A wrong one proves the peer wrong (the attempt fails and the verifier
   * catches it); a wrong number of rows is refused as any answer of the wrong shape.
   */
  private takeCanaries (answer: PieceResult, plan: CanaryPlan | undefined, pieceId: number, peerId: string, piece: Piece): { result: PieceResult, problem?: FailureCause } {
    if (plan == null) return { result: answer }
    const refuse = (message: string): FailureCause => ({ kind: 'error', code: 'BAD_ANSWER', message })
    const split = splitCanaries(answer.outputs, plan, piece.rows)
    if (split == null) return { result: answer, problem: refuse(`an output does not have the ${piece.rows + plan.positions.length} rows sent`) }
    const names = this.deps.model.outputs.map(o => o.name)
    const pick = (t: Record<string, Tensor>): Record<string, Tensor> => Object.fromEntries(names.filter(n => t[n] != null).map(n => [n, t[n]]))
    for (const [i, row] of plan.rows.entries()) {
      // the row's answer is judged as its whole piece's would be: near zero, by a share of that piece's largest output
      const base = this.options.tolerance ?? VERIFY_TOLERANCE
      const agreement = compareOutputs(pick(split.canaries[i]), pick(row.outputs), { sameRuntime: false, tolerance: { rtol: base.rtol, atol: base.atol + TOLERANCE_SCALE * row.scale } })
      if (!agreement.agree) {
        this.verifier.convict(pieceId, peerId, answer.commitment)
        return { result: answer, problem: refuse('the answer to a row whose answer this node knew is wrong') }
      }
    }
    return { result: { ...answer, outputs: split.outputs } }
  }

  /** Why a peer's output does not have the dimensions after the batch axis it must have, if it does not. */

  private recordFailure (peerId: string, piece: number, reason: string): void {
    this.addFailure({ peerId, piece, reason })
    this.deps.log?.('job %s: piece %d on %s failed - %s', this.id, piece, peerId, reason)
  }

  /**
   * An answer is used only if it has every output of the model, by name, with the model's element
   * type, the batch axis of the piece and the other dimensions of the answers already used: else the
   * pieces could not be joined into what one machine returns. Outputs the model does not have are
   * ignored. A refused answer is a failed attempt (BAD_ANSWER) and the piece goes to another peer. Only
   * this node's own run can show that the model drops the batch axis (NOT_SPLITTABLE, the job fails):
   * from a peer, a wrong row count is that peer's failure.
   */
  private checkOutputs (outputs: Record<string, Tensor>, piece: Piece, remote: boolean): FailureCause | undefined {
    const refuse = (message: string): FailureCause => ({ kind: 'error', code: 'BAD_ANSWER', message })
    for (const output of this.deps.model.outputs) {
      const t = outputs[output.name]
      if (t == null) return refuse(`the answer lacks output "${output.name}"`)
      if (output.dtype != null && t.dtype !== output.dtype) return refuse(`output "${output.name}" is ${t.dtype}, the model's is ${output.dtype}`)
      // a peer's other dimensions: as this node's probe run gave them, else as far as the model fixes
      // them (never as an earlier answer: a wrong first answer would make the honest ones refused)
      const problem = remote ? shapeProblem(output, t, piece.rows, this.outputShapes.get(output.name)) : undefined
      if (problem != null) return refuse(problem)
      if (t.dims.length === 0 || t.dims[0] !== piece.rows) {
        const message = `output "${output.name}" has shape [${t.dims.join(', ')}] for a piece of ${piece.rows} rows`
        if (remote) return refuse(message)
        return { kind: 'fatal', code: 'NOT_SPLITTABLE', message: `${message}: the model does not keep the batch axis, so its batch cannot be split` }
      }
    }
    return undefined
  }
}

/** The same peers, in the same order, with the same slots, speed and model. */
function samePeers (a: SchedulerPeer[], b: SchedulerPeer[]): boolean {
  return a.length === b.length && a.every((p, i) => {
    const q = b[i]
    return p.peerId === q.peerId && p.slots === q.slots && p.gflops === q.gflops && p.hasModel === q.hasModel
  })
}
