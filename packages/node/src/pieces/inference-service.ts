import { serviceDependencies } from '@libp2p/interface'
import type { ComponentLogger, Logger, PeerId, Startable } from '@libp2p/interface'
import type { Registrar } from '@libp2p/interface-internal'
import {
  AnswerCommitment, commitmentPayload, INFER_PROTOCOL, InferRequest, InferResponse, InvalidMessageError, MAX_HEADER_FRAME_BYTES, MAX_ID_LENGTH,
  sha256Of, toTensorInfo, validateTensorInfos
} from '@shoal/protocol'
import type { TensorHeader, TensorInfo } from '@shoal/protocol'
import { mismatchWithModel, SandboxError } from '@shoal/runtime'
import { raceSignal } from 'race-signal'
import type { PieceRuntime, Tensor } from '@shoal/runtime'
import { DEFAULT_MAX_PIECE_MS, FETCH_ANSWER_MARGIN_MS, HEADER_TIMEOUT_MS, INPUT_IDLE_MS, MAX_INBOUND_INFER_STREAMS, MIN_INPUT_BYTES_PER_S, NEWCOMER_SHARE, PRIORITY_HOLD_MS, SLOT_KEEP_MS, SLOT_QUEUE_MS, SLOT_QUEUE_PER_SLOT, SLOT_WAIT_MS } from '../constants.js'
import { drainData, readDataParts, readMessage, streamChannel, writeMessageAndData } from './frames.js'
import type { Channel } from './frames.js'
import type { NodeMetrics } from '../metrics.js'
import { isModelCid } from '../models/index.js'
import type { ModelStore } from '../models/index.js'
import { SlotShares } from './slot-shares.js'

const Code = InferResponse.Code

export interface InferenceServiceInit {
  maxConcurrency: number
  maxRequestBytes: number
  /** The longest a piece may hold a slot, whatever `deadline_ms` asks (default DEFAULT_MAX_PIECE_MS). */
  maxPieceMs?: number
  /** How long an admitted piece's inputs may pause (default INPUT_IDLE_MS; tests shorten it). */
  inputIdleMs?: number
  /**
   * The volunteer's memory limit (--max-memory; 0: none): no piece starts while the node's memory in
   * use plus the piece's inputs would exceed it, and a piece whose inputs alone exceed it is refused.
   */
  maxMemoryBytes: number
  /** The node's memory in use now: its process's resident set (tests inject their own). */
  memoryInUse?: () => number
  store: ModelStore
  sessions: PieceRuntime
  /** Called when the number of pieces running changes (the capacity ad's free slots). */
  onLoadChange?: () => void
  /** Simulation hook: piece traffic to and from this node as over a slower, longer link. */
  shaping?: LinkShape
  /** Where pieces are counted (`GET /metrics`). */
  metrics?: NodeMetrics
  /** Signs with the node's key: every OK answer carries a signed commitment (docs/protocol.md 6.3). Without it answers are unsigned. */
  sign?: (payload: Uint8Array) => Promise<Uint8Array>
  /** A submitter's contribution credit with this node: contended slots go to the most credited first (slot-shares.ts). */
  priority?: (peer: string) => number
  /**
   * Why this node takes no new pieces now (paused, or outside its volunteer's hours, idleness or
   * power: serving-gate.ts); undefined while it does. Running pieces always finish.
   */
  notServing?: () => string | undefined
  /** Whether its volunteer lets it serve this model (preferences.ts). */
  servesModel?: (cid: string) => boolean
}

/**
 * An emulated link for a simulated node (`shoal sim`'s per-group network): each direction of a piece
 * waits `latencyMs` plus its bytes at `bytesPerSecond` (null: no bandwidth limit) before it moves.
 */
export interface LinkShape {
  latencyMs: number
  bytesPerSecond: number | null
}

function linkDelay (shape: LinkShape | undefined, bytes: number, signal: AbortSignal): Promise<void> | undefined {
  if (shape == null) return undefined
  const ms = shape.latencyMs + (shape.bytesPerSecond == null ? 0 : bytes * 1000 / shape.bytesPerSecond)
  if (ms <= 0) return undefined
  return new Promise<void>((resolve, reject) => {
    const onAbort = (): void => { clearTimeout(timer); reject(new PieceError(Code.DEADLINE_EXCEEDED, 'deadline passed on the (simulated) link')) }
    const timer = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve() }, ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

export interface InferenceServiceComponents {
  registrar: Registrar
  logger: ComponentLogger
  /** The direct data channel (direct-channel.ts), which carries pieces off the libp2p connection too. */
  direct: { serve: (protocol: string, handler: (channel: Channel, peer: PeerId) => Promise<void>) => void }
  /**
   * The model swarm (models/model-swarm.ts): gets a model this node lacks into the store, with the
   * piece's submitter as a provider. Not tied to any piece: a fetch outlives the piece that started it.
   */
  swarm: { fetchForPeer: (cid: string, peer: string) => Promise<unknown> }
}

/** A piece refused or failed, with the code the wire protocol carries. */
export class PieceError extends Error {
  override name = 'PieceError'
  constructor (readonly code: InferResponse.Code, message: string) {
    super(message)
  }
}

/**
 * The worker side of batch jobs: serves /shoal/infer/1.0.0 (run one piece). Runs at most
 * `maxConcurrency` pieces at once and answers OVERLOADED past that, or when the free slots are kept
 * for peers turned away before (slot-shares.ts); a model it lacks is fetched through the model swarm,
 * with the peer that sent the piece among the providers.
 */
export class InferenceService implements Startable {
  private readonly components: InferenceServiceComponents
  private readonly init: InferenceServiceInit
  private readonly log: Logger
  private readonly slots: SlotShares
  private waitingPieces = 0
  /** Pieces waiting for a slot (their headers read), in arrival order. */
  private readonly queued: Array<{ peer: string, inputBytes: number, granted: (ok: boolean) => void }> = []

  constructor (components: InferenceServiceComponents, init: InferenceServiceInit) {
    this.components = components
    this.init = init
    this.slots = new SlotShares(init.maxConcurrency, SLOT_WAIT_MS, SLOT_KEEP_MS, undefined, init.priority, NEWCOMER_SHARE)
    this.log = components.logger.forComponent('shoal:inference')
  }

  readonly [Symbol.toStringTag] = '@shoal/inference'
  readonly [serviceDependencies] = ['@shoal/direct-channel', '@shoal/swarm']

  get running (): number {
    return this.slots.running
  }

  get freeSlots (): number {
    if (this.init.notServing?.() != null) return 0
    return Math.max(0, this.init.maxConcurrency - this.slots.running)
  }

  /**
   * Pieces accepted that have not started computing: receiving their inputs, waiting for their model,
   * or waiting for an inference thread (the capacity ad's `queue_length`).
   */
  get queueLength (): number {
    return this.waitingPieces
  }

  async start (): Promise<void> {
    const limits = { maxInboundStreams: MAX_INBOUND_INFER_STREAMS, maxOutboundStreams: MAX_INBOUND_INFER_STREAMS }
    await this.components.registrar.handle(INFER_PROTOCOL, (stream, connection) => { void this.serve(streamChannel(stream), connection.remotePeer) }, limits)
    // the same pieces over a direct connection, once its ticket named this protocol
    this.components.direct.serve(INFER_PROTOCOL, async (channel, peer) => { await this.serve(channel, peer) })
  }

  async stop (): Promise<void> {
    await this.components.registrar.unhandle(INFER_PROTOCOL)
    // pieces waiting for a slot are answered OVERLOADED: they may run elsewhere
    for (const entry of this.queued.splice(0)) entry.granted(false)
  }

  /** Serves one piece on `channel` (a libp2p stream or a direct connection) for `remotePeer`. */
  async serve (channel: Channel, remotePeer: PeerId): Promise<void> {
    const started = performance.now()
    const lp = channel.frames
    let signal = AbortSignal.timeout(HEADER_TIMEOUT_MS)
    let request: InferRequest
    let inputs: TensorHeader[]
    try {
      request = await readMessage(lp, InferRequest, signal, 'infer request')
      if (request.jobId.length > MAX_ID_LENGTH || request.modelCid.length > MAX_ID_LENGTH) throw new InvalidMessageError('bad-field', 'job id or model CID too long')
      // models are known by their canonical CID string: another encoding of the same CID would be fetched as a stranger
      if (!isModelCid(request.modelCid)) throw new InvalidMessageError('bad-field', `model_cid "${request.modelCid}" is not a model CID in canonical form ("bafkrei..." or "bafybei...", docs/protocol.md 7.1)`)
      inputs = validateTensorInfos(request.inputs, this.init.maxRequestBytes, 'infer request')
    } catch (err: any) {
      this.log('refused a piece from %p: BAD_INPUT - %s', remotePeer, err.message)
      await this.answer(channel, { code: Code.BAD_INPUT, message: err.message }, signal)
      return
    }
    const total = inputs.reduce((n, t) => n + t.byteLength, 0)
    let refusal = this.init.servesModel?.(request.modelCid) === false
      ? { code: Code.MODEL_UNAVAILABLE, message: `this node's volunteer does not serve model ${request.modelCid} (--serve-model, --refuse-model)` }
      : this.admit(remotePeer.toString(), total)
    // every slot taken: the piece waits a moment for one, rather than idle a slot that frees meanwhile
    if (refusal?.slot === true && await this.waitForSlot(remotePeer.toString(), total, signal)) refusal = undefined
    if (refusal != null) {
      this.log('refused piece %d of job %s from %p: %s - %s', request.pieceId, request.jobId, remotePeer, refusal.code, refusal.message)
      await drainData(lp, total, signal).catch(() => {})
      await this.answer(channel, refusal, signal)
      return
    }
    this.waitingPieces++
    let waiting = true
    const computing = (): void => {
      if (!waiting) return
      waiting = false
      this.waitingPieces--
      this.init.onLoadChange?.()
    }
    this.init.onLoadChange?.()
    const release = this.init.store.use(request.modelCid)
    const deadlineMs = Math.min(Math.max(1, request.deadlineMs), this.init.maxPieceMs ?? DEFAULT_MAX_PIECE_MS)
    signal = AbortSignal.timeout(deadlineMs)
    try {
      // one buffer per input, which the inference thread can then take over without a copy
      const data = await this.readInputs(lp, inputs.map(t => t.byteLength), total, signal)
      this.init.metrics?.workerTensorBytes.inc({ direction: 'in', channel: channel.kind }, total)
      await linkDelay(this.init.shaping, total, signal)
      const tensors: Record<string, Tensor> = {}
      inputs.forEach((t, i) => { tensors[t.name] = { dtype: t.dtype, dims: t.dims, data: data[i] } })
      // before the run: the inference thread may take the buffers over
      const inputsSha256 = this.init.sign != null ? sha256Of(data) : undefined
      await this.ensureModel(request.modelCid, remotePeer, deadlineMs, signal)
      const info = this.init.store.info(request.modelCid)!
      const mismatch = mismatchWithModel(info, inputs)
      if (mismatch != null) throw new PieceError(Code.BAD_INPUT, mismatch)
      const result = await this.init.sessions.run(request.modelCid, async () => await this.init.store.bytes(request.modelCid), tensors, { owned: true, onStart: computing, signal })
      if (signal.aborted) throw new PieceError(Code.DEADLINE_EXCEEDED, `the piece took longer than its ${deadlineMs} ms deadline`)
      const outputs = Object.entries(result.outputs)
      const outputBytes = outputs.reduce((n, [, t]) => n + t.data.byteLength, 0)
      await linkDelay(this.init.shaping, outputBytes, signal)
      const infos = outputs.map(([name, t]) => toTensorInfo({ name, dtype: t.dtype, dims: t.dims, byteLength: t.data.byteLength }))
      const response = {
        code: Code.OK,
        message: '',
        outputs: infos,
        computeMs: Math.round(result.computeMs),
        computeUs: Math.min(0xffffffff, Math.round(result.computeMs * 1000)),
        provider: result.provider
      }
      const signed = inputsSha256 != null ? await this.commit(request, inputsSha256, infos, outputs.map(([, t]) => t.data)) : undefined
      // a commitment repeats the outputs' list: with very many long output names it would push the
      // header over its limit, and then the answer goes unsigned rather than not at all
      const fits = signed != null && InferResponse.encode({ ...response, ...signed }).byteLength <= MAX_HEADER_FRAME_BYTES
      await this.answer(channel, fits ? { ...response, ...signed } : response, signal, outputs.map(([, t]) => t.data))
      this.init.metrics?.pieceComputed({
        rows: inputs[0]?.dims[0] ?? 0,
        provider: result.provider,
        computeMs: result.computeMs,
        outputBytes,
        channel: channel.kind,
        seconds: (performance.now() - started) / 1000
      })
    } catch (err: any) {
      const code = err instanceof PieceError
        ? err.code
        : err instanceof InvalidMessageError
          ? Code.BAD_INPUT
          // no process to run it in (the machine's fault): busy, try again or elsewhere
          : err instanceof SandboxError && err.kind === 'unavailable'
            ? Code.OVERLOADED
            // a model the sandbox killed, that crashed it or took too much memory: this node will not run it for now
            : err instanceof SandboxError && err.kind !== 'deadline' ? Code.MODEL_UNAVAILABLE : signal.aborted ? Code.DEADLINE_EXCEEDED : Code.INTERNAL
      this.log('piece %d of job %s failed - %s', request.pieceId, request.jobId, err.message)
      await this.answer(channel, { code, message: err.message }, AbortSignal.timeout(HEADER_TIMEOUT_MS))
    } finally {
      release()
      computing()
      const now = Date.now()
      this.slots.release(remotePeer.toString(), now)
      // a submitter of more credit than any waiting keeps its slot a moment for its next piece
      const self = remotePeer.toString()
      if (this.queued.length > 0 && !this.queued.some(q => q.peer === self) && this.slots.reserveFor(self, this.queued.map(q => q.peer), now + PRIORITY_HOLD_MS)) {
        setTimeout(() => { this.grantWaiting() }, PRIORITY_HOLD_MS + 1).unref?.()
      } else {
        this.grantWaiting()
      }
      this.init.onLoadChange?.()
    }
  }

  /**
   * Waits up to SLOT_QUEUE_MS for a slot (at most SLOT_QUEUE_PER_SLOT pieces per slot wait, at least
   * 8, and a peer's no more than the node's slots); true once one is granted to it.
   */
  private async waitForSlot (peer: string, inputBytes: number, signal: AbortSignal): Promise<boolean> {
    const max = Math.max(8, this.init.maxConcurrency * SLOT_QUEUE_PER_SLOT)
    if (this.queued.length >= max || this.queued.filter(q => q.peer === peer).length >= Math.max(1, this.init.maxConcurrency)) return false
    return await new Promise<boolean>(resolve => {
      const entry = {
        peer,
        inputBytes,
        granted: (ok: boolean) => {
          clearTimeout(timer)
          signal.removeEventListener('abort', giveUp)
          resolve(ok)
        }
      }
      const giveUp = (): void => {
        const i = this.queued.indexOf(entry)
        if (i >= 0) this.queued.splice(i, 1)
        entry.granted(false)
      }
      const timer = setTimeout(giveUp, SLOT_QUEUE_MS)
      signal.addEventListener('abort', giveUp, { once: true })
      this.queued.push(entry)
      // a slot may be free but kept for peers turned away before: those come first, within SLOT_KEEP_MS
    })
  }

  /** Free slots go to waiting pieces at once: the submitter of most credit first (slot-shares.ts `pick`). */
  private grantWaiting (): void {
    while (this.queued.length > 0 && this.slots.free(Date.now()) && this.init.notServing?.() == null) {
      const i = this.slots.pick(this.queued.map(q => q.peer))
      const [entry] = this.queued.splice(i, 1)
      if (this.memoryRefusal(entry.inputBytes) != null) {
        entry.granted(false)
        continue
      }
      this.slots.grant(entry.peer, Date.now(), this.queued.some(q => q.peer !== entry.peer))
      entry.granted(true)
    }
  }

  /**
   * Reads an admitted piece's inputs, as long as they keep coming: each frame within INPUT_IDLE_MS of
   * the last, all of them within INPUT_IDLE_MS + total / MIN_INPUT_BYTES_PER_S (and the piece's
   * deadline). A client that sends a header and then trickles or nothing would otherwise hold a slot
   * until a deadline of its own choosing.
   */
  private async readInputs (lp: Channel['frames'], sizes: number[], total: number, deadline: AbortSignal): Promise<Uint8Array[]> {
    const stalled = new AbortController()
    const idleMs = this.init.inputIdleMs ?? INPUT_IDLE_MS
    const budgetMs = idleMs + Math.ceil(total * 1000 / MIN_INPUT_BYTES_PER_S)
    let timer: ReturnType<typeof setTimeout> | undefined
    const stall = (): PieceError => new PieceError(Code.DEADLINE_EXCEEDED, `the piece's inputs stopped arriving (nothing for ${idleMs} ms)`)
    let lastFrameAt = performance.now()
    const watch = (): void => {
      lastFrameAt = performance.now()
      clearTimeout(timer)
      timer = setTimeout(() => { stalled.abort(stall()) }, idleMs)
    }
    const slow = AbortSignal.timeout(budgetMs)
    watch()
    try {
      return await readDataParts(lp, sizes, AbortSignal.any([deadline, stalled.signal, slow]), 'infer request', watch)
    } catch (err) {
      if (stalled.signal.aborted && !deadline.aborted) throw stalled.signal.reason
      // both limits passed (a loaded machine fires timers late, in either order): nothing coming at all is the stall
      if (slow.aborted && !deadline.aborted && performance.now() - lastFrameAt >= idleMs) throw stall()
      if (slow.aborted && !deadline.aborted) throw new PieceError(Code.DEADLINE_EXCEEDED, `the piece's ${total} bytes of inputs arrived slower than ${MIN_INPUT_BYTES_PER_S} bytes/s`)
      throw err
    } finally {
      clearTimeout(timer)
    }
  }

  /**
   * Takes a slot for a piece of `peer` with `inputBytes` of inputs, or says why it cannot start now:
   * inputs bigger than the memory limit itself (BAD_INPUT, as for --max-request-size: this node never
   * will), or the memory limit, no free slot, or free slots kept for peers turned away before
   * (OVERLOADED: not the piece's fault, later or elsewhere it may run).
   */
  private admit (peer: string, inputBytes: number): { code: InferResponse.Code, message: string, slot?: true } | undefined {
    const resting = this.init.notServing?.()
    if (resting != null) return { code: Code.OVERLOADED, message: `this node takes no new pieces now: ${resting}` }
    const memory = this.memoryRefusal(inputBytes)
    if (memory != null) return memory
    const busy = this.slots.take(peer, Date.now())
    return busy == null ? undefined : { code: Code.OVERLOADED, message: busy, slot: true }
  }

  /** Why the memory limit keeps a piece of `inputBytes` out now, if it does. */
  private memoryRefusal (inputBytes: number): { code: InferResponse.Code, message: string } | undefined {
    const limit = this.init.maxMemoryBytes
    if (limit <= 0) return undefined
    if (inputBytes > limit) {
      return { code: Code.BAD_INPUT, message: `the piece's ${inputBytes} bytes of inputs are over this node's memory limit of ${limit} bytes (--max-memory)` }
    }
    // the node's own process and the sandbox's children, where the models run
    const inUse = (this.init.memoryInUse ?? (() => process.memoryUsage.rss() + (this.init.sessions.memoryBytes?.() ?? 0)))()
    if (inUse + inputBytes > limit) {
      return { code: Code.OVERLOADED, message: `using ${inUse} bytes of memory; with this piece's ${inputBytes} bytes of inputs that is over its limit of ${limit} bytes (--max-memory)` }
    }
    return undefined
  }

  /** The signed commitment to an answer (docs/protocol.md 6.3). */
  private async commit (request: InferRequest, inputsSha256: Uint8Array<ArrayBuffer>, outputs: TensorInfo[], data: Uint8Array[]): Promise<{ commitment: Uint8Array<ArrayBuffer>, commitmentSignature: Uint8Array<ArrayBuffer> }> {
    const commitment = AnswerCommitment.encode({ jobId: request.jobId, pieceId: request.pieceId, modelCid: request.modelCid, inputsSha256, outputs, outputsSha256: sha256Of(data) })
    const signature = await this.init.sign!(commitmentPayload(commitment))
    return { commitment: new Uint8Array(commitment), commitmentSignature: new Uint8Array(signature) }
  }

  private async answer (channel: Channel, response: Partial<InferResponse> & { code: InferResponse.Code, message: string }, signal: AbortSignal, data: Uint8Array[] = []): Promise<void> {
    this.init.metrics?.workerPieces.inc({ outcome: String(response.code).toLowerCase() })
    try {
      await writeMessageAndData(channel.frames, InferResponse, { outputs: [], computeMs: 0, computeUs: 0, provider: '', commitment: new Uint8Array(0), commitmentSignature: new Uint8Array(0), ...response }, data, signal)
      // after an error nothing more on this connection: the client may still be sending the piece's data
      await channel.close({ signal, final: response.code !== Code.OK })
    } catch (err: any) {
      // the submitter went away (it cancelled a superseded copy, or left): nothing to tell anyone
      channel.abort(err)
    }
  }

  /**
   * The model is in the store, or is fetched through the swarm (the submitter first among providers).
   * The fetch goes on past this piece's deadline: when the deadline is near and the model is still on
   * its way, the piece is answered OVERLOADED (not the piece's fault, so the submitter does not count
   * it as a failed attempt) a little before the deadline, and the next piece finds the model here or
   * the fetch further along. Tying the fetch to the piece made every worker of a fresh mesh restart
   * its fetch on each attempt, and large jobs failed while their model was still spreading.
   */
  private async ensureModel (cid: string, from: PeerId, deadlineMs: number, signal: AbortSignal): Promise<void> {
    if (this.init.store.has(cid)) return
    const answerBy = AbortSignal.any([signal, AbortSignal.timeout(Math.max(1, Math.floor(deadlineMs - Math.min(FETCH_ANSWER_MARGIN_MS, deadlineMs / 10))))])
    try {
      // the fetch goes on when the piece stops waiting for it
      await raceSignal(this.components.swarm.fetchForPeer(cid, from.toString()), answerBy)
    } catch (err: any) {
      if (answerBy.aborted) throw new PieceError(Code.OVERLOADED, `still fetching model ${cid} when the piece's deadline came; the fetch goes on, so try again shortly`)
      // too many fetches under way: busy, not the piece's fault
      if (err?.name === 'FetchBusyError') throw new PieceError(Code.OVERLOADED, `model ${cid} is not here and no fetch can start now: ${err.message as string}`)
      throw new PieceError(Code.MODEL_UNAVAILABLE, `model ${cid} is not here and fetching it failed: ${err.message}`)
    }
  }
}

export function inferenceService (init: InferenceServiceInit): (components: InferenceServiceComponents) => InferenceService {
  return (components) => new InferenceService(components, init)
}
