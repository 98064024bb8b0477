import { MIN_AD_INTERVAL_MS } from '@shoal/protocol'
import { MAX_COUNTED_AD_INTERVAL_MS } from '@shoal/node'
import { Ajv } from 'ajv'
import type { ErrorObject } from 'ajv'
import { LineCounter, parseDocument } from 'yaml'
import type { Document } from 'yaml'
import { AD_INTERVAL_PER_NODE_MS, DEFAULT_CONCURRENCY, MAX_AUTO_AD_INTERVAL_MS, MIN_AUTO_AD_INTERVAL_MS, DEFAULT_DURATION_MS, DEFAULT_GENERATED_MODEL, DEFAULT_RANDOM_CHURN_PER_MS, DEFAULT_SEED } from './constants.js'
import { ScenarioError } from './errors.js'
import type { ScenarioProblem } from './errors.js'
import { SCENARIO_SCHEMA } from './scenario-schema.js'

export type ChurnMode = 'kill' | 'leave'

export interface GroupSpec {
  name: string
  count: number
  /** Relative compute speed: 2 runs a piece in half the time of 1. */
  speed: number
  concurrency: number
  gpu: boolean
  /** Behind a router that forwards no port: refuses inbound connections, tells no address. */
  nat: boolean
  /** false: a free rider, which submits jobs (`workload.jobs[].from`) and takes no pieces. */
  serve: boolean
  network?: { latencyMs: number, bytesPerSecond: number | null }
  /** The group's nodes answer wrong: a share `rate` of their pieces, each way `mode` says. */
  cheat?: CheatSpec
}

/**
 * `zeros`: outputs of zeros; `perturb`: every float output value times 1 + 1e-3; `lazy`: the outputs
 * of an earlier piece of the same shape, or zeros when there is none.
 */
export type CheatMode = 'zeros' | 'perturb' | 'lazy'

export interface CheatSpec {
  rate: number
  mode: CheatMode
}

export type ModelSpec =
  | { kind: 'generated', width: number, layers: number, /** Delay compute: this cost per row instead of the measured one. */ msPerRow?: number }
  | { kind: 'package', name: string, file: string, rowShape?: number[] }

export interface JobSpec {
  /** The group whose nodes submit it, in turn (undefined: the client). */
  from?: string
  atMs: number
  count: number
  everyMs: number
  model: ModelSpec
  batch: number
  rowsPerPiece?: number
  maxPieceMs?: number
  maxAttempts?: number
  endgame?: boolean
  /** Result verification (docs/trust.md); default spot, as for `shoal run`. */
  verify?: 'off' | 'spot' | 'full'
  /** Canary rows per remote piece (docs/trust.md); default 0. */
  canaries?: number
  /** Run the model as a pipeline of this many stages (`shoal model split`), each stage a model of its own. */
  pipeline?: { stages: number }
}

export interface ChurnEventSpec {
  atMs: number
  /** undefined: any group. */
  group?: string
  leave?: { count: number } | { percent: number }
  join?: number
  mode: ChurnMode
}

export interface Scenario {
  name: string
  description: string
  seed: number
  durationMs: number
  compute: 'onnx' | 'delay'
  adIntervalMs: number
  /** Workers serve waiting submitters by their contribution credit (default); false: in turn. */
  credit: boolean
  /** preload: every node holds the models from the start; fetch: workers get them through the swarm. */
  models: 'preload' | 'fetch'
  groups: GroupSpec[]
  churn: {
    events: ChurnEventSpec[]
    random?: { rate: number, perMs: number, mode: ChurnMode, rejoinAfterMs?: number, fromMs: number, untilMs: number }
  }
  jobs: JobSpec[]
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** "500ms" -> 500, "2m" -> 120000; a number is already milliseconds. */
export function parseDuration (value: number | string): number {
  if (typeof value === 'number') return value
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/.exec(value)
  if (match == null) throw new Error(`"${value}" is not a duration`)
  return Math.round(Number(match[1]) * DURATION_UNITS[match[2]])
}

const RATE_UNITS: Record<string, number> = { bit: 1 / 8, kbit: 1e3 / 8, mbit: 1e6 / 8, gbit: 1e9 / 8, B: 1, kB: 1e3, MB: 1e6, GB: 1e9 }

/** "100mbit" -> 12500000 bytes per second; a number is already bytes per second. */
export function parseRate (value: number | string): number {
  if (typeof value === 'number') return value
  const match = /^\s*(\d+(?:\.\d+)?)\s*(bit|kbit|mbit|gbit|B|kB|MB|GB)(\/s)?\s*$/.exec(value)
  if (match == null) throw new Error(`"${value}" is not a rate`)
  return Number(match[1]) * RATE_UNITS[match[2]]
}

const ajv = new Ajv({ allErrors: true, verbose: true, strict: true })
// our own annotation: the message for a field whose alternatives (anyOf) all failed
ajv.addKeyword({ keyword: 'errorMessage', schemaType: 'string' })
const validate = ajv.compile(SCENARIO_SCHEMA)

/**
 * Reads a scenario file's text: YAML, checked against the schema, every problem reported with the
 * field's path and its line. Throws ScenarioError listing them all.
 */
export function parseScenario (text: string, file = 'scenario'): Scenario {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  const lineOf = (offset: number | undefined): number => offset == null ? 1 : lineCounter.linePos(offset).line
  if (doc.errors.length > 0) {
    throw new ScenarioError(file, doc.errors.map(e => ({ path: '', line: lineOf(e.pos[0]), message: `not valid YAML: ${e.message.split('\n')[0]}` })))
  }
  const raw: unknown = doc.toJS()
  if (raw == null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ScenarioError(file, [{ path: '', line: 1, message: 'a scenario is a YAML mapping with at least "nodes" and "workload"' }])
  }
  if (validate(raw) !== true) {
    throw new ScenarioError(file, describeErrors(validate.errors ?? [], doc, lineOf))
  }
  const problems: ScenarioProblem[] = []
  const scenario = normalise(raw as any)
  for (const problem of checkMeaning(scenario)) {
    problems.push({ ...problem, line: lineOf(nodeAt(doc, problem.path)?.range?.[0]) })
  }
  if (problems.length > 0) throw new ScenarioError(file, problems)
  return scenario
}

/** The YAML node at a path like "workload.jobs[2].batch", for its line. */
function nodeAt (doc: Document, path: string): { range?: [number, number, number] | null } | undefined {
  const keys = path.split(/\.|\[(\d+)\]/).filter(k => k != null && k !== '').map(k => /^\d+$/.test(k) ? Number(k) : k)
  for (let n = keys.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(keys.slice(0, n), true)
    if (node != null && typeof node === 'object' && 'range' in (node as object)) return node as any
  }
  return undefined
}

function pathOf (instancePath: string): string {
  return instancePath.split('/').slice(1).map(p => /^\d+$/.test(p) ? `[${p}]` : `.${p}`).join('').replace(/^\./, '')
}

function describeErrors (errors: ErrorObject[], doc: Document, lineOf: (offset: number | undefined) => number): ScenarioProblem[] {
  const problems = new Map<string, ScenarioProblem>()
  // the branches of an anyOf each fail with their own error; the anyOf's message says it for all of them
  const anyOfPaths = new Set(errors.filter(e => e.keyword === 'anyOf').map(e => e.instancePath))
  for (const error of errors) {
    if (error.keyword !== 'anyOf' && anyOfPaths.has(error.instancePath)) continue
    let path = pathOf(error.instancePath)
    let message: string
    switch (error.keyword) {
      case 'additionalProperties': {
        const extra = String(error.params.additionalProperty)
        const known = Object.keys((error.parentSchema as any)?.properties ?? {})
        path = path === '' ? extra : `${path}.${extra}`
        message = `unknown field "${extra}"${known.length > 0 ? ` (known here: ${known.join(', ')})` : ''}`
        break
      }
      case 'required':
        message = `missing field "${String(error.params.missingProperty)}"`
        break
      case 'anyOf':
        message = `expected ${String((error.parentSchema as any)?.errorMessage ?? 'another kind of value')}, got ${JSON.stringify(error.data)}`
        break
      case 'enum':
        message = `expected one of ${(error.params.allowedValues as unknown[]).map(v => JSON.stringify(v)).join(', ')}, got ${JSON.stringify(error.data)}`
        break
      case 'minProperties': case 'maxProperties':
        message = path.endsWith('model') ? 'a model is exactly one of "generated" or "package"' : `${error.message ?? 'wrong number of fields'}`
        break
      default:
        message = `${error.message ?? 'invalid'}${typeof error.data !== 'object' ? `, got ${JSON.stringify(error.data)}` : ''}`
    }
    const line = lineOf(nodeAt(doc, path)?.range?.[0])
    problems.set(`${path}:${message}`, { path, line, message })
  }
  return [...problems.values()].sort((a, b) => a.line - b.line)
}

function normalise (raw: any): Scenario {
  const defaultModel = raw.workload.model
  const groups: GroupSpec[] = raw.nodes.map((g: any, i: number) => ({
    name: g.name ?? (raw.nodes.length === 1 ? 'node' : `group${i}`),
    count: g.count,
    speed: g.speed ?? 1,
    concurrency: g.concurrency ?? DEFAULT_CONCURRENCY,
    gpu: g.gpu ?? false,
    nat: g.nat ?? false,
    serve: g.serve ?? true,
    network: g.network == null
      ? undefined
      : { latencyMs: parseDuration(g.network.latency ?? 0), bytesPerSecond: g.network.bandwidth == null ? null : parseRate(g.network.bandwidth) },
    ...(g.cheat != null ? { cheat: { rate: g.cheat.rate, mode: g.cheat.mode ?? 'zeros' } } : {})
  }))
  const durationMs = parseDuration(raw.duration ?? DEFAULT_DURATION_MS)
  const random = raw.churn?.random
  return {
    name: raw.name ?? 'scenario',
    description: raw.description ?? '',
    seed: raw.seed ?? DEFAULT_SEED,
    durationMs,
    compute: raw.compute ?? 'onnx',
    adIntervalMs: raw.adInterval != null
      ? parseDuration(raw.adInterval)
      : Math.min(MAX_AUTO_AD_INTERVAL_MS, Math.max(MIN_AUTO_AD_INTERVAL_MS, AD_INTERVAL_PER_NODE_MS * groups.reduce((n, g) => n + g.count, 0))),
    credit: raw.credit ?? true,
    models: raw.workload.models ?? 'preload',
    groups,
    churn: {
      events: (raw.churn?.events ?? []).map((e: any) => ({
        atMs: parseDuration(e.at),
        group: e.group,
        leave: e.leave == null ? undefined : typeof e.leave === 'number' ? { count: e.leave } : { percent: Number(String(e.leave).replace('%', '')) },
        join: e.join,
        mode: e.mode ?? 'kill'
      })),
      random: random == null
        ? undefined
        : {
            rate: random.rate,
            perMs: parseDuration(random.per ?? DEFAULT_RANDOM_CHURN_PER_MS),
            mode: random.mode ?? 'kill',
            rejoinAfterMs: random.rejoinAfter == null ? undefined : parseDuration(random.rejoinAfter),
            fromMs: parseDuration(random.from ?? 0),
            untilMs: parseDuration(random.until ?? durationMs)
          }
    },
    jobs: raw.workload.jobs.map((j: any) => ({
      ...(j.from != null ? { from: j.from } : {}),
      atMs: parseDuration(j.at),
      count: j.count ?? 1,
      everyMs: parseDuration(j.every ?? 0),
      model: modelSpec(j.model ?? defaultModel),
      batch: j.batch,
      rowsPerPiece: j.rowsPerPiece,
      maxPieceMs: j.maxPieceMs,
      maxAttempts: j.maxAttempts,
      endgame: j.endgame,
      verify: j.verify,
      canaries: j.canaries,
      ...(j.pipeline != null ? { pipeline: { stages: j.pipeline.stages } } : {})
    }))
  }
}

function modelSpec (raw: any): ModelSpec {
  if (raw?.package != null) return { kind: 'package', name: raw.package.name, file: raw.package.file, rowShape: raw.package.rowShape }
  return { kind: 'generated', width: raw?.generated?.width ?? DEFAULT_GENERATED_MODEL.width, layers: raw?.generated?.layers ?? DEFAULT_GENERATED_MODEL.layers, msPerRow: raw?.generated?.msPerRow }
}

/** What the schema cannot say: names that must exist, percentages, times inside the run. */
function checkMeaning (s: Scenario): Array<Omit<ScenarioProblem, 'line'>> {
  const problems: Array<Omit<ScenarioProblem, 'line'>> = []
  const names = new Set<string>()
  s.groups.forEach((g, i) => {
    if (names.has(g.name)) problems.push({ path: `nodes[${i}].name`, message: `group name "${g.name}" is used twice` })
    names.add(g.name)
  })
  s.churn.events.forEach((e, i) => {
    const path = `churn.events[${i}]`
    if (e.group != null && !names.has(e.group)) problems.push({ path: `${path}.group`, message: `no node group is named "${e.group}" (groups: ${[...names].join(', ')})` })
    if (e.leave == null && e.join == null) problems.push({ path, message: 'a churn event says "leave" or "join"' })
    if (e.leave != null && e.join != null) problems.push({ path, message: 'a churn event either leaves or joins, not both: write two events' })
    if (e.leave != null && 'percent' in e.leave && (e.leave.percent <= 0 || e.leave.percent > 100)) problems.push({ path: `${path}.leave`, message: `a percentage of nodes is in (0, 100], got ${e.leave.percent}%` })
    if (e.atMs > s.durationMs) problems.push({ path: `${path}.at`, message: `at ${e.atMs} ms is after the scenario's duration (${s.durationMs} ms)` })
  })
  s.jobs.forEach((j, i) => {
    if (j.model.kind === 'generated' && j.model.msPerRow != null && s.compute !== 'delay') problems.push({ path: `workload.jobs[${i}].model.generated.msPerRow`, message: 'a set cost per row needs compute: delay (ONNX Runtime takes what it takes)' })
    const last = j.atMs + (j.count - 1) * j.everyMs
    if (last > s.durationMs) problems.push({ path: `workload.jobs[${i}].at`, message: `the job${j.count > 1 ? 's start until' : ' starts at'} ${last} ms, after the scenario's duration (${s.durationMs} ms)` })
    if (j.pipeline != null && j.verify === 'full') problems.push({ path: `workload.jobs[${i}].verify`, message: 'pipeline jobs are verified by spot checks only: say spot (the default) or off' })
    if (j.pipeline != null && (j.canaries ?? 0) > 0) problems.push({ path: `workload.jobs[${i}].canaries`, message: 'pipeline jobs take no canary rows' })
    if (j.from != null && !names.has(j.from)) problems.push({ path: `workload.jobs[${i}].from`, message: `no node group is named "${j.from}" (groups: ${[...names].join(', ')})` })
    if (j.rowsPerPiece != null && j.rowsPerPiece > j.batch) problems.push({ path: `workload.jobs[${i}].rowsPerPiece`, message: `rowsPerPiece (${j.rowsPerPiece}) is larger than the batch (${j.batch})` })
  })
  if (s.adIntervalMs < MIN_AD_INTERVAL_MS || s.adIntervalMs > MAX_COUNTED_AD_INTERVAL_MS) problems.push({ path: 'adInterval', message: `an ad interval is between ${MIN_AD_INTERVAL_MS} ms and ${MAX_COUNTED_AD_INTERVAL_MS} ms, got ${s.adIntervalMs} ms` })
  const random = s.churn.random
  if (random != null && random.untilMs < random.fromMs) problems.push({ path: 'churn.random.until', message: 'until is before from' })
  return problems
}
