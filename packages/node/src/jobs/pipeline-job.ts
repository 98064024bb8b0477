import { describeCause, needsCheck, planPieces, Scheduler, TrustRecords } from '@shoal/scheduler'
import type { Assignment, FailureCause, Piece, Progress, SchedulerPeer } from '@shoal/scheduler'
import type { PipelineManifest, PipelineTensor } from '@shoal/protocol'
import { compareOutputs, concatRows, sliceRows } from '@shoal/runtime'
import type { Tensor } from '@shoal/runtime'
import { ASSUMED_FETCH_BYTES_PER_MS, MODEL_FETCH_SETUP_MS, MICRO_BATCHES_PER_STAGE, STAGE_WAIT_MS } from '../constants.js'
import type { PieceResult } from '../pieces/index.js'
import { batchRows, causeOf, commitmentOutputsHash, fixedBatchOf, localPeer } from './job.js'
import type { CreditedPiece, Verified } from '../credit/index.js'
import { JobError, SubmittedJob } from './job-base.js'
import type { JobOptions, JobProgress, JobResult, PieceAttempt, SubmitterDeps } from './job.js'
import { SerialChecks } from './verifier.js'
import type { VerificationView } from './verifier.js'

export interface PipelineJobDeps extends SubmitterDeps {
  /** The pipeline's CID. */
  cid: string
  manifest: PipelineManifest
  /** Remote peers that may take pieces of this stage's model now (hasModel: its ad lists the stage). */
  peers: (stageCid: string) => SchedulerPeer[]
  /** Whether this node holds a stage's model (only then can it run the stage itself). */
  holds: (stageCid: string) => boolean
  /** Gets a stage's model into this node's store (to check answers to it, under `spot`). */
  fetchStage?: (stageCid: string) => Promise<void>
  /** How long a stage may wait with no peer at all to serve it (default STAGE_WAIT_MS). */
  stageWaitMs?: number
}

/** A stage's part of a pipeline job, as `GET /v1/jobs/:id` shows it. */
export interface StageProgress {
  stage: number
  cid: string
  done: number
  inFlight: number
  /** Micro-batches run again on this stage after a copy failed (its inputs came from the boundary this node holds). */
  replays: number
  perPeer: Record<string, number>
  /** Micro-batches of this stage in flight on each peer now. */
  running: Record<string, number>
}

export interface PipelineProgress extends JobProgress {
  pipeline: {
    cid: string
    microBatches: number
    rowsPerMicroBatch: number
    stages: StageProgress[]
    /** Tensor bytes held here at most at once (micro-batch boundaries not yet consumed). */
    peakHeldBytes: number
  }
}

interface Stage {
  index: number
  cid: string
  inputs: PipelineTensor[]
  outputs: PipelineTensor[]
  scheduler: Scheduler
  /** Tensors of this stage's outputs no later stage reads (job outputs only). */
  lastReaders: Map<string, number>
}

/**
 * A batch through a pipeline of stages (docs/architecture.md, "Pipelines"): the batch is cut into
 * micro-batches, and each stage runs them in order as the stage before gives them, so that stage k
 * works on one micro-batch while stage k + 1 works on the one before. Every stage has its own
 * `Scheduler` (pieces are micro-batches; several peers may serve one stage, the fastest expected
 * first, by the time their answers took), fed with `add` as micro-batches become ready.
 *
 * Activations go back through this node between stages: it holds each micro-batch's tensors at every
 * stage boundary until the last stage that reads them has answered, so a stage host that dies (or
 * answers wrongly, or times out) costs a replay of its micro-batches on another host of the same
 * stage from the boundary held here, never a restart. A stage no peer serves (none holds or may fetch
 * its model, within `STAGE_WAIT_MS`) or whose pieces fail on every attempt fails the job, naming it.
 */
export class PipelineJob extends SubmittedJob {
  private readonly deps: PipelineJobDeps
  private readonly inputs: Record<string, Tensor>
  private readonly options: JobOptions
  private readonly now: () => number
  /** Pieces in flight, by `stage:microBatch@peer`: each with its stage and peer, and what stops it. */
  private readonly flights = new Map<string, { stage: number, peerId: string, controller: AbortController }>()
  private bytesSent = 0
  private bytesReceived = 0
  private directPieces = 0
  private readonly perProvider: Record<string, number> = {}
  private stages: Stage[] = []
  private microBatches: Piece[] = []
  /** Each micro-batch's tensors at the boundaries not yet consumed, by name. */
  private readonly held = new Map<number, Map<string, Tensor>>()
  private heldBytes = 0
  private peakHeldBytes = 0
  private readonly outputs = new Map<number, Record<string, Tensor>>()
  private readonly policy: 'off' | 'spot'
  private readonly trust: TrustRecords
  private readonly random: () => number
  private readonly checks = new SerialChecks()
  /** Peers proven wrong in this job: they get no more pieces. */
  private readonly excluded = new Set<string>()
  /** Each stage's answers kept from peers, by `stage:micro-batch`, for their receipts. */
  private readonly kept = new Map<string, { stage: number, pieceId: number, peerId: string, rows: number, verified: Verified, commitment?: Uint8Array }>()
  /** Each micro-batch's remote answers taken unchecked, by peer: run again here if that peer is caught. */
  private readonly unchecked = new Map<number, Set<string>>()
  private readonly verification = { checkedPieces: 0, extraRows: 0, mismatches: 0 }
  private state: JobProgress['state'] = 'planning'
  private startedAt = 0
  private rowsPerMicroBatch = 0

  constructor (deps: PipelineJobDeps, inputs: Record<string, Tensor>, options: JobOptions = {}) {
    super()
    this.deps = deps
    this.inputs = inputs
    this.options = options
    this.now = deps.now ?? (() => performance.now())
    this.policy = options.verify === 'off' ? 'off' : 'spot'
    this.trust = deps.trust ?? new TrustRecords(Date.now)
    this.random = deps.random ?? Math.random
  }

  get modelCid (): string {
    return this.deps.cid
  }

  /** Throws JobError if the inputs cannot feed the pipeline, or the job asks for what pipelines do not do. */
  validate (): void {
    this.check()
  }

  progress (): PipelineProgress {
    const now = this.now()
    const per = this.stages.map(s => s.scheduler.progress(now))
    const sum = (f: (p: Progress) => number): number => per.reduce((n, p) => n + f(p), 0)
    const perPeer: Record<string, number> = {}
    for (const p of per) for (const [peer, n] of Object.entries(p.perPeer)) perPeer[peer] = (perPeer[peer] ?? 0) + n
    const last = per[per.length - 1]
    const peers = new Set(this.stages.flatMap(s => this.stagePeers(s).map(p => p.peerId)))
    return {
      total: this.microBatches.length * this.stages.length,
      done: sum(p => p.done),
      // rows are done once the last stage has answered them
      totalRows: this.microBatches.reduce((n, m) => n + m.rows, 0),
      doneRows: last?.doneRows ?? 0,
      minPieceRows: this.microBatches.reduce((n, m) => Math.min(n, m.rows), this.microBatches[0]?.rows ?? 0),
      maxPieceRows: this.microBatches.reduce((n, m) => Math.max(n, m.rows), 0),
      pending: sum(p => p.pending),
      inFlight: sum(p => p.inFlight),
      retries: sum(p => p.retries),
      duplicates: sum(p => p.duplicates),
      perPeer,
      etaMs: last?.etaMs ?? null,
      jobId: this.id,
      bytesSent: this.bytesSent,
      bytesReceived: this.bytesReceived,
      directPieces: this.directPieces,
      perProvider: { ...this.perProvider },
      state: this.state,
      elapsedMs: this.startedAt === 0 ? 0 : Math.round(now - this.startedAt),
      peers: peers.size,
      rowsPerPiece: this.rowsPerMicroBatch,
      sized: false,
      failures: [...this.failures],
      failedAttempts: this.failedAttempts,
      verification: { ...this.verificationView(), canaryRows: 0 },
      pipeline: {
        cid: this.deps.cid,
        microBatches: this.microBatches.length,
        rowsPerMicroBatch: this.rowsPerMicroBatch,
        stages: this.stages.map((s, i) => ({ stage: i + 1, cid: s.cid, done: per[i].done, inFlight: per[i].inFlight, replays: per[i].retries, perPeer: per[i].perPeer, running: this.runningOn(s) })),
        peakHeldBytes: this.peakHeldBytes
      }
    }
  }

  private verificationView (): VerificationView {
    return { policy: this.policy, ...this.verification, excluded: [...this.excluded] }
  }

  private runningOn (stage: Stage): Record<string, number> {
    const running: Record<string, number> = {}
    for (const f of this.flights.values()) if (f.stage === stage.index) running[f.peerId] = (running[f.peerId] ?? 0) + 1
    return running
  }

  private check (): number {
    const { manifest } = this.deps
    if (this.options.verify === 'full') {
      throw new JobError('--verify full is not available for pipeline jobs: use spot (the default: this node checks stage answers against its own runs) or off')
    }
    if ((this.options.canaries ?? 0) > 0) throw new JobError('canary rows are not available for pipeline jobs')
    return batchRows(this.inputs, manifest.inputs)
  }

  private fixedBatch (): number | undefined {
    return fixedBatchOf(this.deps.manifest.inputs)
  }

  protected async execute (): Promise<JobResult> {
    this.startedAt = this.now()
    try {
      const rows = this.check()
      const stageCount = this.deps.manifest.stages.length
      // several micro-batches per stage keep every stage busy once the pipeline is full
      this.rowsPerMicroBatch = this.fixedBatch() ?? Math.min(rows, this.options.rowsPerPiece ?? Math.max(1, Math.ceil(rows / (MICRO_BATCHES_PER_STAGE * stageCount))))
      this.microBatches = planPieces(rows, this.rowsPerMicroBatch)
      if (this.policy === 'spot') await this.holdStages()
      this.plan()
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
   * Each stage's answers kept from peers, for their receipts (one job id per stage, as its pieces
   * had): a peer caught in the job gets none. Given to `onCredited` when the job ends, done or not.
   */
  private credit (): void {
    if (this.deps.onCredited == null || this.kept.size === 0) return
    for (const stage of this.stages) {
      const pieces: CreditedPiece[] = []
      for (const k of this.kept.values()) {
        if (k.stage !== stage.index || this.excluded.has(k.peerId)) continue
        const outputsSha256 = k.commitment != null ? commitmentOutputsHash(k.commitment) : undefined
        pieces.push({ pieceId: k.pieceId, peerId: k.peerId, rows: k.rows, verified: k.verified, ...(outputsSha256 != null ? { outputsSha256 } : {}) })
      }
      if (pieces.length === 0) continue
      this.deps.onCredited({ jobId: `${this.id}/${stage.index + 1}`, modelCid: stage.cid, unitsPerRow: stage.scheduler.measuredCost() ?? 1, pieces })
    }
  }

  private keep (stage: Stage, mb: Piece, peerId: string, verified: Verified, answer: PieceResult): void {
    this.kept.set(`${stage.index}:${mb.id}`, { stage: stage.index, pieceId: mb.id, peerId, rows: mb.rows, verified, ...(answer.commitment != null ? { commitment: answer.commitment.commitment } : {}) })
  }

  /** Under `spot` this node runs every stage to check answers: stages it lacks are fetched first. */
  private async holdStages (): Promise<void> {
    for (const [i, stage] of this.deps.manifest.stages.entries()) {
      if (this.deps.holds(stage.cid)) continue
      try {
        if (this.deps.fetchStage == null) throw new Error('this node cannot fetch it')
        await this.deps.fetchStage(stage.cid)
      } catch (err: any) {
        throw new JobError(`cannot check answers to stage ${i + 1} (${stage.cid}): this node does not hold it and fetching it failed (${String(err.message ?? err)}); run with --verify off to accept peers' answers unchecked`)
      }
    }
  }

  private plan (): void {
    const { manifest } = this.deps
    const lastRead = new Map<string, number>()
    manifest.stages.forEach((stage, i) => { for (const t of stage.inputs) lastRead.set(t.name, i) })
    this.stages = manifest.stages.map((stage, index) => ({
      index,
      cid: stage.cid,
      inputs: stage.inputs,
      outputs: stage.outputs,
      lastReaders: lastRead,
      scheduler: new Scheduler(index === 0 ? this.microBatches : [], {
        // no probe: speeds start from advertised throughput and follow the answers
        refMsPerRow: 1,
        refGflops: this.deps.localGflops,
        localPeerId: this.deps.localPeerId,
        local: this.options.local ?? 'share',
        maxAttempts: this.options.maxAttempts,
        timeoutFloorMs: this.options.timeoutFloorMs,
        endgame: this.options.endgame,
        total: this.microBatches.length,
        modelFetchMs: MODEL_FETCH_SETUP_MS + stage.bytes / ASSUMED_FETCH_BYTES_PER_MS
      })
    }))
    for (const mb of this.microBatches) {
      const held = new Map<string, Tensor>()
      for (const [name, t] of Object.entries(this.inputs)) held.set(name, sliceRows(t, mb.start, mb.rows))
      this.held.set(mb.id, held)
    }
  }

  private stagePeers (stage: Stage): SchedulerPeer[] {
    const local = this.deps.holds(stage.cid) ? [localPeer(this.deps)] : []
    return [...local, ...this.deps.peers(stage.cid).filter(p => !this.excluded.has(p.peerId))]
  }

  /**
   * A stage's peers with the slots the other stages leave them: a peer serving several stages has one
   * set of slots, and each stage's scheduler alone would fill it (measured: a worker of 2 slots serving
   * 3 stages was sent up to 6 pieces at once, refused the rest as OVERLOADED and was backed off for
   * seconds, and a 4-stage job ran slower than its stages one after another).
   */
  private peersFor (stage: Stage, servers = this.stagePeers(stage)): SchedulerPeer[] {
    const elsewhere = new Map<string, number>()
    for (const f of this.flights.values()) if (f.stage !== stage.index) elsewhere.set(f.peerId, (elsewhere.get(f.peerId) ?? 0) + 1)
    return servers.map(p => ({ ...p, slots: Math.max(0, p.slots - (elsewhere.get(p.peerId) ?? 0)) }))
  }

  private async schedule (): Promise<JobResult> {
    // each pass reads the peers (below): news of the mesh (every ad, every connection) only wakes the loop
    const unsubscribe = this.deps.onPeersChanged(() => { this.wake() })
    // since when each stage has had work waiting and no peer at all to serve it
    const unserved = new Map<number, number>()
    try {
      while (this.stages.some(s => s.scheduler.state === 'running')) {
        if (this.cancelled != null) throw new JobError(this.cancelled)
        const failed = this.stages.find(s => s.scheduler.state === 'failed')
        if (failed != null) throw new JobError(`stage ${failed.index + 1} of ${this.stages.length} (${failed.cid}) could not be served: ${failed.scheduler.error?.message ?? 'it failed'}`)
        const now = this.now()
        let wakeAt: number | undefined
        // the last stages first: a micro-batch further along frees its boundary sooner, and the pipeline drains
        for (const stage of [...this.stages].reverse()) {
          // the peer table is read once per stage and pass: the peers, then their slots left
          const servers = this.stagePeers(stage)
          stage.scheduler.setPeers(this.peersFor(stage, servers), now)
          const decision = stage.scheduler.next(now)
          for (const c of decision.cancel) this.flights.get(`${stage.index}:${c.pieceId}@${c.peerId}`)?.controller.abort()
          for (const a of decision.assign) this.dispatch(stage, a)
          const at = stage.scheduler.nextWakeAt(now)
          if (at != null) wakeAt = Math.min(wakeAt ?? at, at)
          const p = stage.scheduler.progress(now)
          if (p.pending > 0 && servers.every(peer => peer.slots <= 0)) {
            const since = unserved.get(stage.index) ?? now
            unserved.set(stage.index, since)
            const wait = this.deps.stageWaitMs ?? STAGE_WAIT_MS
            if (now - since >= wait) throw new JobError(`stage ${stage.index + 1} of ${this.stages.length} (${stage.cid}) has no peer to serve it: none that can take work holds its model or may fetch it, and this node does not hold it`)
            wakeAt = Math.min(wakeAt ?? since + wait, since + wait)
          } else {
            unserved.delete(stage.index)
          }
        }
        this.emit()
        if (!this.stages.some(s => s.scheduler.state === 'running')) break
        await new Promise<void>(resolve => {
          const timer = wakeAt == null ? undefined : setTimeout(resolve, Math.max(0, wakeAt - this.now()) + 1)
          this.wake = () => { clearTimeout(timer); resolve() }
        })
      }
      const failed = this.stages.find(s => s.scheduler.state === 'failed')
      if (failed != null) throw new JobError(`stage ${failed.index + 1} of ${this.stages.length} (${failed.cid}) could not be served: ${failed.scheduler.error?.message ?? 'it failed'}`)
    } finally {
      unsubscribe()
      for (const f of this.flights.values()) f.controller.abort()
    }
    try {
      await this.checks.settled()
      await this.rerunTainted()
    } catch (err: any) {
      throw new JobError(this.cancelled ?? err.message)
    }
    const outputs: Record<string, Tensor> = {}
    for (const output of this.deps.manifest.outputs) outputs[output.name] = concatRows(this.microBatches.map(mb => this.outputs.get(mb.id)![output.name]))
    return { jobId: this.id, outputs, progress: this.progress() }
  }

  private dispatch (stage: Stage, assignment: Assignment): void {
    const { pieceId, peerId, deadline } = assignment
    const mb = this.microBatches[pieceId]
    const key = `${stage.index}:${pieceId}@${peerId}`
    const controller = new AbortController()
    this.flights.set(key, { stage: stage.index, peerId, controller })
    const held = this.held.get(pieceId)!
    const inputs: Record<string, Tensor> = {}
    for (const t of stage.inputs) inputs[t.name] = held.get(t.name)!
    const remote = peerId !== this.deps.localPeerId
    if (remote) this.bytesSent += Object.values(inputs).reduce((n, t) => n + t.data.byteLength, 0)
    const startedAt = this.now()
    let outcome: PieceAttempt['outcome'] = 'failed'
    let reason: string | undefined
    const run = remote
      ? this.deps.runRemote(peerId, { jobId: `${this.id}/${stage.index + 1}`, pieceId, modelCid: stage.cid, inputs, deadlineMs: deadline - this.now(), maxResponseBytes: this.deps.maxResponseBytes }, controller.signal)
      : this.deps.runLocal(stage.cid, inputs, controller.signal)
    run.then(answer => {
      if (remote) this.bytesReceived += Object.values(answer.outputs).reduce((n, t) => n + t.data.byteLength, 0)
      if (answer.direct === true) this.directPieces++
      if (controller.signal.aborted) { outcome = 'cancelled'; return }
      const problem = this.checkOutputs(stage, answer.outputs, mb.rows)
      if (problem != null) {
        reason = describeCause(problem)
        stage.scheduler.failed(pieceId, peerId, problem, this.now())
        return
      }
      if (!stage.scheduler.succeeded(pieceId, peerId, this.now())) { outcome = 'duplicate'; return }
      outcome = 'done'
      this.perProvider[answer.provider] = (this.perProvider[answer.provider] ?? 0) + 1
      if (remote && this.policy === 'spot' && (this.excluded.has(peerId) || needsCheck('spot', this.trust.get(peerId).record, this.random))) {
        this.checkAnswer(stage, mb, peerId, inputs, answer)
        return
      }
      if (remote && this.policy === 'spot') {
        let peers = this.unchecked.get(mb.id)
        if (peers == null) this.unchecked.set(mb.id, peers = new Set())
        peers.add(peerId)
      }
      if (remote) this.keep(stage, mb, peerId, 'unchecked', answer)
      this.stageDone(stage, mb, answer.outputs)
    }, err => {
      if (controller.signal.aborted) { outcome = 'cancelled'; return }
      const cause = causeOf(err)
      reason = 'message' in cause ? describeCause(cause) : `${describeCause(cause)}: ${String(err.message ?? err)}`
      stage.scheduler.failed(pieceId, peerId, cause, this.now())
    }).finally(() => {
      this.flights.delete(key)
      if (outcome === 'failed') this.recordFailure(peerId, stage, pieceId, reason ?? 'unknown')
      const attempt: PieceAttempt = { pieceId: stage.index * this.microBatches.length + pieceId, peerId, rows: mb.rows, startedAt, endedAt: this.now(), outcome, ...(reason != null ? { reason } : {}) }
      this.emitAttempt(attempt)
      this.wake()
    })
  }

  /** Checks a peer's stage answer against this node's run; the micro-batch moves on once it is decided. */
  private checkAnswer (stage: Stage, mb: Piece, peer: string, inputs: Record<string, Tensor>, answer: PieceResult): void {
    this.checks.add(async () => {
      const reference = (await this.deps.runLocal(stage.cid, inputs, this.stopping.signal)).outputs
      this.verification.checkedPieces++
      this.verification.extraRows += mb.rows
      const names = stage.outputs.map(t => t.name)
      const pick = (outputs: Record<string, Tensor>): Record<string, Tensor> => Object.fromEntries(names.map(n => [n, outputs[n]]))
      const agreement = compareOutputs(pick(answer.outputs), pick(reference), { sameRuntime: false, tolerance: this.options.tolerance })
      if (agreement.agree) {
        if (!this.excluded.has(peer)) this.trust.verified(peer)
        this.keep(stage, mb, peer, 'spot', answer)
        this.stageDone(stage, mb, answer.outputs)
      } else {
        this.verification.mismatches++
        this.deps.log?.('micro-batch %d of stage %d from %s disagrees with this node\'s run - %s', mb.id, stage.index + 1, peer, agreement.reason)
        this.deps.onWrongAnswer?.({ jobId: this.id, pieceId: mb.id, modelCid: stage.cid, peerId: peer, ...(answer.commitment != null ? { commitment: answer.commitment } : {}) })
        this.catch(peer)
        this.stageDone(stage, mb, reference)
      }
      this.wake()
    }, why => `micro-batch ${mb.id} of stage ${stage.index + 1} (from ${peer}) could not be verified: ${why}`)
  }

  /** A peer proven wrong: recorded, kept from the rest of the job (every stage). */
  private catch (peer: string): void {
    if (this.excluded.has(peer)) return
    this.excluded.add(peer)
    this.trust.caught(peer)
    for (const s of this.stages) s.scheduler.setPeers(this.peersFor(s), this.now())
  }

  /**
   * The micro-batches a caught peer answered without a check, run again here through every stage from
   * the job's inputs, their outputs replaced (their boundaries were let go as the pipeline moved on).
   */
  private async rerunTainted (): Promise<void> {
    for (const mb of this.microBatches) {
      const peers = this.unchecked.get(mb.id)
      if (peers == null || ![...peers].some(p => this.excluded.has(p))) continue
      const held: Record<string, Tensor> = {}
      for (const [name, t] of Object.entries(this.inputs)) held[name] = sliceRows(t, mb.start, mb.rows)
      for (const stage of this.stages) {
        const inputs = Object.fromEntries(stage.inputs.map(t => [t.name, held[t.name]]))
        Object.assign(held, (await this.deps.runLocal(stage.cid, inputs, this.stopping.signal)).outputs)
        this.verification.extraRows += mb.rows
      }
      this.verification.checkedPieces++
      this.outputs.set(mb.id, Object.fromEntries(this.deps.manifest.outputs.map(o => [o.name, held[o.name]])))
    }
  }

  /** A micro-batch's stage answer was taken: its outputs join the boundary, the next stage gets the micro-batch, and what no later stage reads is let go. */
  private stageDone (stage: Stage, mb: Piece, outputs: Record<string, Tensor>): void {
    const held = this.held.get(mb.id)!
    const jobOutputs = new Set(this.deps.manifest.outputs.map(o => o.name))
    for (const t of stage.outputs) {
      // copied when the answer's buffer holds more than this tensor (a frame of several): only what is needed stays held
      const tensor = outputs[t.name]
      const kept = tensor.data.byteLength === tensor.data.buffer.byteLength ? tensor : { ...tensor, data: tensor.data.slice() }
      if (jobOutputs.has(t.name)) this.outputs.set(mb.id, { ...this.outputs.get(mb.id), [t.name]: kept })
      if ((stage.lastReaders.get(t.name) ?? -1) > stage.index) {
        held.set(t.name, kept)
        this.heldBytes += kept.data.byteLength
      }
    }
    for (const [name, t] of [...held]) {
      if ((stage.lastReaders.get(name) ?? -1) <= stage.index) {
        held.delete(name)
        // job inputs are views of the caller's tensors: they were never counted
        if (!Object.hasOwn(this.inputs, name)) this.heldBytes -= t.data.byteLength
      }
    }
    this.peakHeldBytes = Math.max(this.peakHeldBytes, this.heldBytes)
    const next = this.stages[stage.index + 1]
    if (next != null) next.scheduler.add([mb])
    else this.held.delete(mb.id)
  }

  /**
   * An answer is used only if it has every output of the stage the manifest lists, with its element
   * type, its rank and its fixed dimensions, and the micro-batch's rows where the manifest says
   * "batch". A refused answer is a failed attempt (BAD_ANSWER); the micro-batch goes to another peer.
   */
  private checkOutputs (stage: Stage, outputs: Record<string, Tensor>, rows: number): FailureCause | undefined {
    const refuse = (message: string): FailureCause => ({ kind: 'error', code: 'BAD_ANSWER', message })
    for (const want of stage.outputs) {
      const t = outputs[want.name]
      if (t == null) return refuse(`the answer lacks output "${want.name}"`)
      if (t.dtype !== want.dtype) return refuse(`output "${want.name}" is ${t.dtype}, the stage's is ${want.dtype}`)
      if (want.dims.length > 0 && (t.dims.length !== want.dims.length || want.dims.some((d, i) => (typeof d === 'number' && d > 0 && t.dims[i] !== d) || (d === 'batch' && t.dims[i] !== rows)))) {
        return refuse(`output "${want.name}" has shape [${t.dims.join(', ')}], the stage's is [${want.dims.join(', ')}] for ${rows} rows`)
      }
    }
    const jobOutputs = this.deps.manifest.outputs
    for (const want of jobOutputs) {
      const t = outputs[want.name]
      if (t != null && (t.dims.length === 0 || t.dims[0] !== rows)) return refuse(`output "${want.name}" has shape [${t.dims.join(', ')}] for a micro-batch of ${rows} rows`)
    }
    return undefined
  }

  private recordFailure (peerId: string, stage: Stage, piece: number, reason: string): void {
    this.addFailure({ peerId, piece, reason: `stage ${stage.index + 1}: ${reason}` })
    this.deps.log?.('job %s: micro-batch %d of stage %d on %s failed - %s', this.id, piece, stage.index + 1, peerId, reason)
  }
}
