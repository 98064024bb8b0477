import { DEFAULT_HEDGE_FLOOR_MS, DEFAULT_LATENCY_WINDOW, DEFAULT_ROUND_TRIP_MS, REQUEST_BACKOFF_MS, REQUEST_MAX_BACKOFF_MS } from './constants.js'

/**
 * Where a single inference request goes (docs/architecture.md, "Requests"): pure code over plain data,
 * times passed in. A request is sent whole to the target with the lowest expected latency, this node
 * included; if no answer came within that target's recent p95, a second copy goes to the next best
 * (hedging), and the first answer wins.
 */

/** A peer that may answer a request, as the peer table describes it. */
export interface RequestCandidate {
  peerId: string
  /** Advertised throughput of its best provider; 0 if unknown. */
  gflops: number
  /** Its ad lists the model (else it fetches it first). */
  hasModel: boolean
  /** Pieces waiting behind the one it computes, as its ad says. */
  queueLength: number
  /** Its ad says it keeps a session of the model open (no session to open first). */
  warm?: boolean
}

export interface RouterOptions {
  /** This node's measured (or assumed) ms per row of the model, and its advertised throughput: the reference speeds start from. */
  refMsPerRow: number
  refGflops: number
  /** Expected time for a peer without the model to fetch it. */
  modelFetchMs: number
  /** Expected time for a target that never answered this model to open a session of it (it may have none warm). */
  coldStartMs?: number
  /** Assumed round trip of a peer never measured. */
  defaultRoundTripMs?: number
  /** The least wait before a hedge (a p95 of a few ms would hedge every request). */
  hedgeFloorMs?: number
  /** Latencies kept per target. */
  window?: number
}

export interface Route {
  peerId: string
  expectedMs: number
}

interface TargetState {
  /** Recent latencies, ms per row answered (whole request time over its rows). */
  msPerRow: number[]
  /** Recent whole latencies, for the hedge's p95. */
  latencies: number[]
  consecutiveFailures: number
  backoffUntil: number
  /** Requests sent to it and not answered yet (from this router's node). */
  inFlight: number
}

/**
 * Chooses targets for the requests of one model, learning from each answer. Before a target has
 * answered, its expected latency is a round trip, plus opening a session (`coldStartMs`, unless its ad
 * says the session is warm), plus the
 * rows at this node's speed scaled by advertised throughput for itself and its queue, plus a model
 * fetch if it lacks the model; afterwards the median of its recent answers per row (which includes its
 * round trip and queueing as they were).
 */
export class RequestRouter {
  private readonly options: Required<RouterOptions>
  private readonly targets = new Map<string, TargetState>()

  constructor (options: RouterOptions) {
    this.options = { defaultRoundTripMs: DEFAULT_ROUND_TRIP_MS, hedgeFloorMs: DEFAULT_HEDGE_FLOOR_MS, window: DEFAULT_LATENCY_WINDOW, coldStartMs: 0, ...options }
  }

  private state (peerId: string): TargetState {
    let s = this.targets.get(peerId)
    if (s == null) this.targets.set(peerId, s = { msPerRow: [], latencies: [], consecutiveFailures: 0, backoffUntil: 0, inFlight: 0 })
    return s
  }

  /** A request went to a target: until it ends (`ended`), the next ones expect to queue behind it. */
  sent (peerId: string): void {
    this.state(peerId).inFlight++
  }

  /** A request to a target ended (answered, failed or cancelled). */
  ended (peerId: string): void {
    const s = this.state(peerId)
    s.inFlight = Math.max(0, s.inFlight - 1)
  }

  /** A target answered `rows` rows in `ms` (from sending to the answer). */
  answered (peerId: string, rows: number, ms: number): void {
    const s = this.state(peerId)
    s.msPerRow.push(ms / Math.max(1, rows))
    s.latencies.push(ms)
    if (s.msPerRow.length > this.options.window) s.msPerRow.shift()
    if (s.latencies.length > this.options.window) s.latencies.shift()
    s.consecutiveFailures = 0
    s.backoffUntil = 0
  }

  /** A target failed (an error, a disconnect, a timeout): passed over for a while. */
  failed (peerId: string, now: number): void {
    const s = this.state(peerId)
    s.consecutiveFailures++
    s.backoffUntil = now + Math.min(REQUEST_MAX_BACKOFF_MS, REQUEST_BACKOFF_MS * 2 ** (s.consecutiveFailures - 1))
  }

  /** Expected time to answer `rows` rows at this target. */
  expectedMs (candidate: RequestCandidate, rows: number, local = false): number {
    const s = this.targets.get(candidate.peerId)
    // requests of ours it is still answering go first: a target that answers fast stops being the
    // best once enough are queued at it (else every request of a stream went to one peer)
    const ahead = s?.inFlight ?? 0
    if (s != null && s.msPerRow.length > 0) return median(s.msPerRow) * rows * (1 + ahead)
    const speed = candidate.gflops > 0 && this.options.refGflops > 0 ? this.options.refGflops / candidate.gflops : 1
    const perRow = this.options.refMsPerRow * speed
    const one = (local ? 0 : this.options.defaultRoundTripMs) + (candidate.warm === true ? 0 : this.options.coldStartMs) + (candidate.queueLength + 1) * perRow * rows + (candidate.hasModel ? 0 : this.options.modelFetchMs)
    return one * (1 + ahead)
  }

  /**
   * The targets for a request of `rows` rows, best first: those not backing off (unless none is), not
   * in `exclude`. `local`, when given, is this node (expected without a round trip).
   */
  rank (candidates: RequestCandidate[], rows: number, now: number, exclude: ReadonlySet<string> = new Set(), localPeerId?: string): Route[] {
    const open = candidates.filter(c => !exclude.has(c.peerId))
    const ready = open.filter(c => (this.targets.get(c.peerId)?.backoffUntil ?? 0) <= now)
    const pool = ready.length > 0 ? ready : open
    return pool
      .map(c => ({ peerId: c.peerId, expectedMs: this.expectedMs(c, rows, c.peerId === localPeerId) }))
      .sort((a, b) => a.expectedMs - b.expectedMs || a.peerId.localeCompare(b.peerId))
  }

  /**
   * How long to wait for a target's answer before hedging: its recent p95 (at least the floor), or
   * twice its expected time while it has fewer than 4 answers to judge from.
   */
  hedgeAfterMs (route: Route): number {
    const s = this.targets.get(route.peerId)
    const p95 = s != null && s.latencies.length >= 4 ? percentile(s.latencies, 95) : 2 * route.expectedMs
    return Math.max(this.options.hedgeFloorMs, p95)
  }
}

function median (values: number[]): number {
  return percentile(values, 50)
}

function percentile (values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p / 100 * sorted.length))]
}
