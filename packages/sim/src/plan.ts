import type { ChurnMode, GroupSpec, JobSpec, ModelSpec, Scenario } from './scenario.js'

/** A node of the simulated mesh. Nodes that join later are fresh nodes (new identity, empty store). */
export interface PlannedNode {
  name: string
  group: string
  speed: number
  concurrency: number
  gpu: boolean
  network?: GroupSpec['network']
  /** Up from the start, or started by a join event. */
  initial: boolean
}

export interface PlannedEvent {
  atMs: number
  kind: ChurnMode | 'join'
  node: string
}

export interface PlannedJob {
  id: string
  atMs: number
  model: ModelSpec
  batch: number
  /** Seeds the job's synthetic inputs. */
  inputSeed: number
  options: Pick<JobSpec, 'rowsPerPiece' | 'targetPieceMs' | 'maxAttempts' | 'endgame'>
}

/** Everything that will happen in a run, fixed in advance by the scenario and its seed. */
export interface Plan {
  seed: number
  nodes: PlannedNode[]
  events: PlannedEvent[]
  jobs: PlannedJob[]
}

/** mulberry32: a small, well-mixed 32-bit generator; the same seed gives the same stream everywhere. */
export function seededRandom (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

interface Decision { atMs: number, order: number, apply: () => void }

/**
 * Turns a scenario into its plan: the nodes, every churn event with the node it hits, and every job
 * with its inputs' seed. Pure: the same scenario gives the same plan, and the run follows the plan.
 * Nodes to remove are drawn from those up at that moment, so a plan never kills a node twice.
 */
export function planScenario (scenario: Scenario): Plan {
  const random = seededRandom(scenario.seed)
  const nodes: PlannedNode[] = []
  const up = new Map<string, PlannedNode>()
  const counters = new Map<string, number>()
  const groups = new Map(scenario.groups.map(g => [g.name, g]))
  const addNode = (group: GroupSpec, initial: boolean): PlannedNode => {
    const n = counters.get(group.name) ?? 0
    counters.set(group.name, n + 1)
    const node: PlannedNode = { name: `${group.name}-${n}`, group: group.name, speed: group.speed, concurrency: group.concurrency, gpu: group.gpu, network: group.network, initial }
    nodes.push(node)
    up.set(node.name, node)
    return node
  }
  for (const group of scenario.groups) for (let i = 0; i < group.count; i++) addNode(group, true)

  const events: PlannedEvent[] = []
  const pending: Decision[] = []
  let order = 0
  const schedule = (atMs: number, apply: () => void): void => { pending.push({ atMs, order: order++, apply }) }
  const remove = (atMs: number, node: PlannedNode, mode: ChurnMode): void => {
    up.delete(node.name)
    events.push({ atMs, kind: mode, node: node.name })
  }
  const join = (atMs: number, group: GroupSpec): void => {
    events.push({ atMs, kind: 'join', node: addNode(group, false).name })
  }
  /** `count` distinct nodes up now, drawn with the seeded generator (in name order, so draws are stable). */
  const draw = (candidates: PlannedNode[], count: number): PlannedNode[] => {
    const pool = [...candidates].sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }))
    const chosen: PlannedNode[] = []
    while (chosen.length < count && pool.length > 0) chosen.push(pool.splice(Math.floor(random() * pool.length), 1)[0])
    return chosen
  }

  for (const event of scenario.churn.events) {
    schedule(event.atMs, () => {
      const inGroup = [...up.values()].filter(n => event.group == null || n.group === event.group)
      if (event.leave != null) {
        const count = 'count' in event.leave ? event.leave.count : Math.round(inGroup.length * event.leave.percent / 100)
        for (const node of draw(inGroup, count)) remove(event.atMs, node, event.mode)
      }
      if (event.join != null) {
        const group = groups.get(event.group ?? scenario.groups[0].name)!
        for (let i = 0; i < event.join; i++) join(event.atMs, group)
      }
    })
  }
  const churn = scenario.churn.random
  if (churn != null && churn.rate > 0) {
    for (let t = churn.fromMs + churn.perMs; t <= churn.untilMs; t += churn.perMs) {
      const atMs = t
      schedule(atMs, () => {
        const failing = [...up.values()]
          .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }))
          .filter(() => random() < churn.rate)
        for (const node of failing) {
          remove(atMs, node, churn.mode)
          if (churn.rejoinAfterMs != null && atMs + churn.rejoinAfterMs <= scenario.durationMs) {
            const group = groups.get(node.group)!
            schedule(atMs + churn.rejoinAfterMs, () => join(atMs + churn.rejoinAfterMs!, group))
          }
        }
      })
    }
  }
  while (pending.length > 0) {
    pending.sort((a, b) => a.atMs - b.atMs || a.order - b.order)
    pending.shift()!.apply()
  }

  const jobs: PlannedJob[] = []
  for (const spec of scenario.jobs) {
    for (let i = 0; i < spec.count; i++) {
      jobs.push({
        id: `job-${jobs.length}`,
        atMs: spec.atMs + i * spec.everyMs,
        model: spec.model,
        batch: spec.batch,
        inputSeed: Math.floor(random() * 0xffffffff),
        options: { rowsPerPiece: spec.rowsPerPiece, targetPieceMs: spec.targetPieceMs, maxAttempts: spec.maxAttempts, endgame: spec.endgame }
      })
    }
  }
  jobs.sort((a, b) => a.atMs - b.atMs)
  jobs.forEach((job, i) => { job.id = `job-${i}` })
  return { seed: scenario.seed, nodes, events, jobs }
}
