import type { NodeCredit } from './hosts.js'
import { THROUGHPUT_BUCKETS } from './constants.js'
import type { Plan, PlannedEvent } from './plan.js'
import type { CheatSpec } from './scenario.js'

/** What a job's result verification did (as `shoal run --json` reports it). */
export interface VerificationMetrics {
  policy: 'off' | 'spot' | 'full'
  checkedPieces: number
  extraRows: number
  mismatches: number
  /** Nodes (by name) proven wrong during the job. */
  excluded: string[]
  /** Canary rows sent (rows whose answers the client knew). */
  canaryRows: number
}

/** Times are milliseconds of scenario time: 0 is when the initial mesh had converged and the clock started. */
export interface JobMetrics {
  id: string
  /** The group that submitted it (`client`: the simulation's client node). */
  from: string
  /** The node that submitted it (null: it never was). */
  submitter: string | null
  model: string
  batch: number
  inputSeed: number
  submittedAtMs: number
  endedAtMs: number | null
  /** From submission to the last output (null while unfinished). */
  wallMs: number | null
  state: 'done' | 'failed' | 'unfinished'
  error?: string
  pieces: number
  piecesDone: number
  retries: number
  duplicates: number
  bytesSent: number
  bytesReceived: number
  /** Input and output bytes moved between nodes for this job. */
  bytesMoved: number
  /** Pieces of a finished job without a result: must be 0. */
  lostPieces: number
  /** Outputs equal, byte for byte, to one run of the whole batch (ONNX Runtime, or the delay compute's stand-in); null: not checked. */
  correct: boolean | null
  verification: VerificationMetrics
  /** A pipeline job: its stages, micro-batches, and the micro-batches replayed on each stage after a stage host failed. */
  pipeline?: { stages: number, microBatches: number, replays: number[] }
}

export interface NodeMetrics {
  name: string
  /** What it earned and gave by the end of the run (null: it was down then). */
  credit?: NodeCredit | null
  group: string
  peerId: string
  /** Intervals of scenario time the node was up. */
  up: Array<{ fromMs: number, toMs: number }>
  upMs: number
  /** Share of its up time with at least one piece in flight on it, as its submitter saw it. */
  busyFraction: number
  piecesDone: number
  piecesFailed: number
  /** How it went down, if it did. */
  end?: 'kill' | 'leave'
  /** With `--threads`, the worker thread (1..N) it ran on. */
  thread?: number
  /** How its group cheats (null: honest). */
  cheat: CheatSpec | null
  /** Behind a router (the group's `nat`). */
  nat: boolean
  /** When a job first excluded it for a wrong answer (null: never). */
  excludedAtMs: number | null
}

export interface AttemptRecord {
  job: string
  piece: number
  node: string
  rows: number
  startMs: number
  endMs: number
  outcome: 'done' | 'duplicate' | 'failed' | 'cancelled'
  reason?: string
}

export interface EventRecord extends PlannedEvent {
  /** When it really happened (scenario time); null if the run ended first. */
  doneAtMs: number | null
}

export interface SimMetrics {
  format: 'shoal-sim-metrics/1'
  scenario: { name: string, file: string, seed: number, durationMs: number }
  versions: { shoal: string, node: string, libp2p: string, onnxruntime: string }
  computeMode: 'onnx' | 'delay'
  processes: boolean
  /** Worker threads the nodes ran on (1: the main thread). */
  threads: number
  /** Per model: the measured cost of a row on this machine (the delay mode's unit). */
  models: Array<{ key: string, label: string, cid: string, bytes: number, msPerRow: number }>
  /** Nodes that ran at some point, the submitting client included. */
  nodes: number
  /** Starting the initial nodes, until every one listened. */
  startupMs: number
  /** From every initial node listening until every node had every other's ad. */
  convergenceMs: number
  /** Scenario time until the run ended. */
  runMs: number
  lostPieces: number
  jobs: JobMetrics[]
  /** Each submitting group's jobs: how many, and how long they took (`servedByGroup`). */
  served: ServedRecord[]
  nodeStats: NodeMetrics[]
  events: EventRecord[]
  attempts: AttemptRecord[]
  /** Rows completed per second, in equal buckets over the run. */
  throughput: Array<{ fromMs: number, toMs: number, rowsPerSecond: number }>
}

/** How each submitting group's jobs were served: how many ended, and their wall times. */
export interface ServedRecord {
  from: string
  jobs: number
  done: number
  meanWallMs: number | null
  maxWallMs: number | null
  /** When its first job was submitted and its last ended, in scenario time. */
  firstSubmittedMs: number
  lastEndedMs: number | null
}

/** Per submitting group (the client included), in order of first submission. Pure. */
export function servedByGroup (jobs: JobMetrics[]): ServedRecord[] {
  const groups = new Map<string, JobMetrics[]>()
  for (const j of [...jobs].sort((a, b) => a.submittedAtMs - b.submittedAtMs)) groups.set(j.from, [...(groups.get(j.from) ?? []), j])
  return [...groups].map(([from, list]) => {
    const walls = list.filter(j => j.state === 'done' && j.wallMs != null).map(j => j.wallMs!)
    const ends = list.flatMap(j => j.endedAtMs != null ? [j.endedAtMs] : [])
    return {
      from,
      jobs: list.length,
      done: walls.length,
      meanWallMs: walls.length === 0 ? null : Math.round(walls.reduce((a, b) => a + b, 0) / walls.length),
      maxWallMs: walls.length === 0 ? null : Math.max(...walls),
      firstSubmittedMs: list[0].submittedAtMs,
      lastEndedMs: ends.length === 0 ? null : Math.max(...ends)
    }
  })
}

/** The part of the metrics `shoal sim --json` prints: everything but the per-attempt and per-node detail. */
export function summary (metrics: SimMetrics): Omit<SimMetrics, 'attempts' | 'nodeStats' | 'throughput'> {
  const { attempts, nodeStats, throughput, ...rest } = metrics
  return rest
}

/** Length of the union of intervals (pieces overlapping on one node count once). */
export function unionLength (intervals: Array<[number, number]>): number {
  const sorted = [...intervals].sort((a, b) => a[0] - b[0])
  let total = 0
  let end = -Infinity
  for (const [from, to] of sorted) {
    if (to <= end) continue
    total += to - Math.max(from, end)
    end = to
  }
  return total
}

export interface NodeRecord {
  name: string
  group: string
  peerId: string
  startedAtMs: number
  stoppedAtMs: number | null
  end?: 'kill' | 'leave'
  thread?: number
  cheat?: CheatSpec
  excludedAtMs?: number
  nat?: boolean
}

/** Per-node figures from the nodes' lives and every piece attempt. Pure. */
export function nodeMetrics (nodes: NodeRecord[], attempts: AttemptRecord[], runMs: number): NodeMetrics[] {
  return nodes.map(n => {
    const fromMs = Math.max(0, n.startedAtMs)
    const toMs = Math.max(fromMs, n.stoppedAtMs ?? runMs)
    const mine = attempts.filter(a => a.node === n.name)
    const busy = unionLength(mine.map(a => [Math.max(a.startMs, fromMs), Math.min(a.endMs, toMs)] as [number, number]).filter(([a, b]) => b > a))
    const upMs = toMs - fromMs
    return {
      name: n.name,
      group: n.group,
      peerId: n.peerId,
      up: [{ fromMs, toMs }],
      upMs,
      busyFraction: upMs > 0 ? Math.round(busy / upMs * 1000) / 1000 : 0,
      piecesDone: mine.filter(a => a.outcome === 'done').length,
      piecesFailed: mine.filter(a => a.outcome === 'failed').length,
      ...(n.end != null ? { end: n.end } : {}),
      ...(n.thread != null ? { thread: n.thread } : {}),
      cheat: n.cheat ?? null,
      nat: n.nat === true,
      excludedAtMs: n.excludedAtMs ?? null
    }
  })
}

/** Rows completed per second in `buckets` equal slices of the run. Pure. */
export function throughput (attempts: AttemptRecord[], runMs: number, buckets = THROUGHPUT_BUCKETS): SimMetrics['throughput'] {
  const width = Math.max(runMs, 1) / buckets
  const rows = new Array<number>(buckets).fill(0)
  for (const a of attempts) {
    if (a.outcome !== 'done') continue
    rows[Math.min(buckets - 1, Math.max(0, Math.floor(a.endMs / width)))] += a.rows
  }
  return rows.map((r, i) => ({ fromMs: Math.round(i * width), toMs: Math.round((i + 1) * width), rowsPerSecond: Math.round(r / (width / 1000) * 100) / 100 }))
}

/** The planned events with when each happened. */
export function eventRecords (plan: Plan, doneAt: Map<number, number>): EventRecord[] {
  return plan.events.map((e, i) => ({ ...e, doneAtMs: doneAt.get(i) ?? null }))
}
