import { randomUUID } from 'node:crypto'
import { needsCheck } from '@shoal/scheduler'
import type { RequestCandidate, RequestRouter, Route, TrustRecords } from '@shoal/scheduler'
import { compareOutputs } from '@shoal/runtime'
import type { ModelInfo, Tensor, Tolerance } from '@shoal/runtime'
import { OVERLOADED_RETRY_MAX_MS, OVERLOADED_RETRY_MS, REQUEST_MAX_TARGETS, REQUEST_TIMEOUT_MS } from '../constants.js'
import type { PieceRequest, PieceResult } from '../pieces/index.js'
import { batchRows, causeOf, shapeProblem } from './job.js'
import type { WrongAnswer } from './job.js'
import { JobError } from './job-base.js'

export interface RequestOptions {
  /** 'spot' (default): an answer from a peer whose record asks for it is checked against this node's run before it is returned; 'off': none is. */
  verify?: 'off' | 'spot'
  tolerance?: Tolerance
  /** Hedge after the chosen target's recent p95 (default true). */
  hedge?: boolean
  /** The whole request's deadline (default REQUEST_TIMEOUT_MS). */
  timeoutMs?: number
}

export interface RequestDeps {
  localPeerId: string
  /** This node may run it (it takes work and holds the model). */
  localCanRun: boolean
  model: ModelInfo
  candidates: () => RequestCandidate[]
  router: RequestRouter
  runRemote: (peerId: string, request: PieceRequest, signal: AbortSignal) => Promise<PieceResult>
  runLocal: (modelCid: string, inputs: Record<string, Tensor>, signal: AbortSignal) => Promise<PieceResult>
  maxResponseBytes: number
  /** Waits for room to send a request to this peer; resolves with the function that frees it. */
  admit?: (peerId: string, signal: AbortSignal) => Promise<() => void>
  trust: TrustRecords
  random?: () => number
  onWrongAnswer?: (wrong: WrongAnswer) => void
  /** A peer's answer was kept (for its receipt): the request's rows, the time from sending to the answer, whether it was checked. */
  onKept?: (kept: { peerId: string, rows: number, ms: number, checked: boolean }) => void
  now?: () => number
}

/** What a request answers (`shoal infer --json`, `POST /v1/infer`). */
export interface RequestResult {
  outputs: Record<string, Tensor>
  /** Who answered: a peer, or this node. */
  peerId: string
  /** A second copy was sent because the first target was slow. */
  hedged: boolean
  provider: string
  wallMs: number
  /** Targets that failed before the answer (each cost a retry, not an error). */
  failures: Array<{ peerId: string, reason: string }>
  /** The answer was checked against this node's run. */
  checked: boolean
}

/** Why the flights still running when a request ends are stopped (one reason for all: no exception built per abort). */
const REQUEST_ENDED = new JobError('the request has ended')

/**
 * One inference request: the whole batch to the target expected to answer first (`RequestRouter`), a
 * hedge to the next after that target's recent p95, the first valid answer wins and the other copy is
 * cancelled. A target that fails (error, disconnect, a malformed answer) costs a retry on the next
 * best, never an error, while any target is left (at most REQUEST_MAX_TARGETS tried). No planning and
 * no probe run: the inputs are checked against the model's declared inputs only.
 */
export async function runRequest (deps: RequestDeps, inputs: Record<string, Tensor>, options: RequestOptions = {}): Promise<RequestResult> {
  const now = deps.now ?? (() => performance.now())
  const rows = batchRows(inputs, deps.model.inputs)
  const started = now()
  const deadline = AbortSignal.timeout(options.timeoutMs ?? REQUEST_TIMEOUT_MS)
  const jobId = `request:${randomUUID()}`
  const tried = new Set<string>()
  const failures: RequestResult['failures'] = []
  const local: RequestCandidate[] = deps.localCanRun ? [{ peerId: deps.localPeerId, gflops: 0, hasModel: true, queueLength: 0 }] : []
  const flights = new Map<string, AbortController>()
  let hedged = false
  /** Times a target answered OVERLOADED. */
  let busy = 0

  const next = (): Route | undefined => {
    const routes = deps.router.rank([...local, ...deps.candidates()], rows, now(), tried, deps.localPeerId)
    return tried.size < REQUEST_MAX_TARGETS ? routes[0] : undefined
  }

  return await new Promise<RequestResult>((resolve, reject) => {
    let done = false
    let hedgeTimer: ReturnType<typeof setTimeout> | undefined
    const finish = (result?: RequestResult, error?: Error): void => {
      if (done) return
      done = true
      clearTimeout(hedgeTimer)
      deadline.removeEventListener('abort', onDeadline)
      for (const c of flights.values()) c.abort(REQUEST_ENDED)
      if (error != null) reject(error)
      else resolve(result!)
    }
    const onDeadline = (): void => { finish(undefined, new JobError(`no answer within ${options.timeoutMs ?? REQUEST_TIMEOUT_MS} ms${failures.length > 0 ? ` (${failures.map(f => `${f.peerId}: ${f.reason}`).join('; ')})` : ''}`)) }
    deadline.addEventListener('abort', onDeadline)

    const launch = (route: Route): void => {
      tried.add(route.peerId)
      const controller = new AbortController()
      flights.set(route.peerId, controller)
      const remote = route.peerId !== deps.localPeerId
      const sentAt = now()
      const signal = AbortSignal.any([controller.signal, deadline])
      deps.router.sent(route.peerId)
      const run = remote
        ? (async () => {
            // at most a peer's share of requests in flight to it: the rest wait here, not in streams it would refuse
            const release = await deps.admit?.(route.peerId, signal) ?? (() => {})
            try {
              return await deps.runRemote(route.peerId, { jobId, pieceId: 0, modelCid: deps.model.cid, inputs, deadlineMs: Math.max(1000, (options.timeoutMs ?? REQUEST_TIMEOUT_MS) - (now() - started)), maxResponseBytes: deps.maxResponseBytes }, signal)
            } finally {
              release()
            }
          })()
        : deps.runLocal(deps.model.cid, inputs, signal)
      void run.finally(() => { deps.router.ended(route.peerId) }).catch(() => {})
      run.then(async answer => {
        if (done || controller.signal.aborted) return
        const problem = answerProblem(deps.model, answer.outputs, rows)
        if (problem != null) throw new Error(`BAD_ANSWER: ${problem}`)
        deps.router.answered(route.peerId, rows, now() - sentAt)
        let outputs = pick(deps.model, answer.outputs)
        let checked = false
        if (remote && (options.verify ?? 'spot') === 'spot' && deps.localCanRun && needsCheck('spot', deps.trust.get(route.peerId).record, deps.random ?? Math.random)) {
          // a wrong answer must not reach the caller: this node's own run decides
          const reference = pick(deps.model, (await deps.runLocal(deps.model.cid, inputs, deadline)).outputs)
          checked = true
          if (compareOutputs(outputs, reference, { sameRuntime: false, tolerance: options.tolerance }).agree) {
            deps.trust.verified(route.peerId)
          } else {
            deps.trust.caught(route.peerId)
            deps.onWrongAnswer?.({ jobId, pieceId: 0, modelCid: deps.model.cid, peerId: route.peerId, ...(answer.commitment != null ? { commitment: answer.commitment } : {}) })
            outputs = reference
            finish({ outputs, peerId: deps.localPeerId, hedged, provider: 'cpu', wallMs: now() - started, failures: [...failures, { peerId: route.peerId, reason: 'a wrong answer (this node\'s run disagreed)' }], checked })
            return
          }
        }
        if (remote) deps.onKept?.({ peerId: route.peerId, rows, ms: now() - sentAt, checked })
        finish({ outputs, peerId: route.peerId, hedged, provider: answer.provider, wallMs: now() - started, failures, checked })
      }).catch((err: any) => {
        flights.delete(route.peerId)
        if (done) return
        const cause = causeOf(err)
        // busy (its slots taken by others' pieces): not a failure; asked again shortly, unless another copy runs
        if (cause.kind === 'overloaded' && flights.size === 0) {
          busy++
          tried.delete(route.peerId)
          setTimeout(() => { if (!done) launch(next() ?? route) }, Math.min(OVERLOADED_RETRY_MAX_MS, OVERLOADED_RETRY_MS * 2 ** Math.min(busy, 8)))
          return
        }
        failures.push({ peerId: route.peerId, reason: 'message' in cause ? `${cause.kind === 'error' ? `${cause.code}: ` : ''}${cause.message}` : `${cause.kind}: ${String(err?.message ?? err)}` })
        deps.router.failed(route.peerId, now())
        // a copy still running may answer; else the next target
        if (flights.size > 0) return
        const route2 = next()
        if (route2 == null) finish(undefined, new JobError(`every target failed: ${failures.map(f => `${f.peerId}: ${f.reason}`).join('; ')}`))
        else launch(route2)
      })
      if (options.hedge !== false && !hedged) {
        clearTimeout(hedgeTimer)
        hedgeTimer = setTimeout(() => {
          if (done || flights.size === 0) return
          const second = next()
          if (second == null) return
          hedged = true
          launch(second)
        }, deps.router.hedgeAfterMs(route))
      }
    }

    const first = next()
    if (first == null) {
      finish(undefined, new JobError('no peer can answer this request, and this node cannot run it (it takes no work, or lacks the model)'))
      return
    }
    launch(first)
  })
}

/** The model's outputs of an answer. */
function pick (model: ModelInfo, outputs: Record<string, Tensor>): Record<string, Tensor> {
  return Object.fromEntries(model.outputs.map(o => [o.name, outputs[o.name]]))
}

/** Why an answer does not fit the model and the request's rows, if it does not. */
function answerProblem (model: ModelInfo, outputs: Record<string, Tensor>, rows: number): string | undefined {
  for (const o of model.outputs) {
    const t = outputs[o.name]
    if (t == null) return `the answer lacks output "${o.name}"`
    if (o.dtype != null && t.dtype !== o.dtype) return `output "${o.name}" is ${t.dtype}, the model's is ${o.dtype}`
    const problem = shapeProblem(o, t, rows)
    if (problem != null) return problem
    if (t.dims.length === 0 || t.dims[0] !== rows) return `output "${o.name}" has shape [${t.dims.join(', ')}] for a request of ${rows} rows`
  }
  return undefined
}

/**
 * Requests in flight to each peer, at most `limit(peer)` at once; the others wait in order (or until
 * their signal aborts). A worker takes its advertised concurrency at once and refuses streams past 32
 * per connection: 64 requests sent at once to one worker lost 15 of them to closed streams.
 */
export class RequestSlots {
  private readonly peers = new Map<string, { used: number, waiting: Array<() => void> }>()

  constructor (private readonly limit: (peerId: string) => number) {}

  async acquire (peerId: string, signal: AbortSignal): Promise<() => void> {
    let state = this.peers.get(peerId)
    if (state == null) this.peers.set(peerId, state = { used: 0, waiting: [] })
    const s = state
    while (s.used >= Math.max(1, this.limit(peerId))) {
      signal.throwIfAborted()
      await new Promise<void>((resolve, reject) => {
        const wake = (): void => { signal.removeEventListener('abort', onAbort); resolve() }
        const onAbort = (): void => { s.waiting.splice(s.waiting.indexOf(wake), 1); reject(signal.reason) }
        s.waiting.push(wake)
        signal.addEventListener('abort', onAbort, { once: true })
      })
    }
    s.used++
    let released = false
    return () => {
      if (released) return
      released = true
      s.used--
      s.waiting.shift()?.()
      if (s.used === 0 && s.waiting.length === 0) this.peers.delete(peerId)
    }
  }
}
