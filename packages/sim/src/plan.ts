import type { CheatSpec, ChurnMode, GroupSpec, JobSpec, ModelSpec, Scenario } from './scenario.js'

/** A node of the simulated mesh. Nodes that join later are fresh nodes (new identity, empty store). */
export interface PlannedNode {
  name: string
  group: string
  speed: number
  concurrency: number
  gpu: boolean
  /** Behind a router (refuses inbound connections; reached over the ones it opens). */
  nat: boolean
  /** false: it takes no pieces (a free rider); it may submit jobs. */
  serve?: boolean
  network?: GroupSpec['network']
  /** Up from the start, or started by a join event. */
  initial: boolean
  /** It answers wrong sometimes, with its own seed for which pieces. */
  cheat?: CheatSpec & { seed: number }
}

export interface PlannedEvent {
  atMs: number
  kind: ChurnMode | 'join'
  node: string
}

export interface PlannedJob {
  id: string
  /** The group whose nodes submit it (in turn, among those up then); undefined: the client. */
  from?: string
  atMs: number
  model: ModelSpec
  batch: number
  /** Seeds the job's synthetic inputs. */
  inputSeed: number
  options: Pick<JobSpec, 'rowsPerPiece' | 'maxPieceMs' | 'maxAttempts' | 'endgame' | 'verify' | 'canaries'>
  /** The model runs as a pipeline of this many stages. */
  pipeline?: { stages: number }
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

/** FNV-1a of a name: a stable 32-bit number for it. */
function hashName (name: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619)
  return h >>> 0
}

/**
 * Turns a scenario into its plan: the nodes, every churn event with the node it hits, and every job
 * with its inputs' seed. Pure: the same scenario gives the same plan, and the run follows the plan.
 * Nodes to remove are drawn from those up at that moment, so a plan never kills a node twice.
 */
export function planScenario (scenario: Scenario): Plan {
  return new Planner(scenario).plan()
}

/**
 * The plan in the making: the initial nodes first, then the churn decisions played in time order
 * (each may draw nodes, or schedule a rejoin), then the jobs. The seeded generator is drawn from in
 * that order, so that a plan depends on the scenario alone.
 */
class Planner {
  private readonly scenario: Scenario
  private readonly random: () => number
  private readonly groups: Map<string, GroupSpec>
  private readonly nodes: PlannedNode[] = []
  /** The nodes up at the moment being planned. */
  private readonly up = new Map<string, PlannedNode>()
  private readonly counters = new Map<string, number>()
  private readonly events: PlannedEvent[] = []
  private readonly pending: Decision[] = []
  private order = 0

  constructor (scenario: Scenario) {
    this.scenario = scenario
    this.random = seededRandom(scenario.seed)
    this.groups = new Map(scenario.groups.map(g => [g.name, g]))
  }

  plan (): Plan {
    for (const group of this.scenario.groups) for (let i = 0; i < group.count; i++) this.addNode(group, true)
    this.scheduleChurnEvents()
    this.scheduleRandomChurn()
    while (this.pending.length > 0) {
      this.pending.sort((a, b) => a.atMs - b.atMs || a.order - b.order)
      this.pending.shift()!.apply()
    }
    return { seed: this.scenario.seed, nodes: this.nodes, events: this.events, jobs: this.planJobs() }
  }

  private addNode (group: GroupSpec, initial: boolean): PlannedNode {
    const n = this.counters.get(group.name) ?? 0
    this.counters.set(group.name, n + 1)
    const node: PlannedNode = { name: `${group.name}-${n}`, group: group.name, speed: group.speed, concurrency: group.concurrency, gpu: group.gpu, nat: group.nat, network: group.network, initial, ...(group.serve ? {} : { serve: false }) }
    // a cheater's seed comes from its name, not from the generator: adding one leaves the rest of the plan as it was
    if (group.cheat != null) node.cheat = { ...group.cheat, seed: (this.scenario.seed ^ hashName(node.name)) >>> 0 }
    this.nodes.push(node)
    this.up.set(node.name, node)
    return node
  }

  private schedule (atMs: number, apply: () => void): void {
    this.pending.push({ atMs, order: this.order++, apply })
  }

  private remove (atMs: number, node: PlannedNode, mode: ChurnMode): void {
    this.up.delete(node.name)
    this.events.push({ atMs, kind: mode, node: node.name })
  }

  private join (atMs: number, group: GroupSpec): void {
    this.events.push({ atMs, kind: 'join', node: this.addNode(group, false).name })
  }

  /** Nodes up now, in name order (so that draws are stable). */
  private upByName (): PlannedNode[] {
    return [...this.up.values()].sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }))
  }

  /** `count` distinct nodes of `candidates`, drawn with the seeded generator. */
  private draw (candidates: PlannedNode[], count: number): PlannedNode[] {
    const pool = [...candidates].sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }))
    const chosen: PlannedNode[] = []
    while (chosen.length < count && pool.length > 0) chosen.push(pool.splice(Math.floor(this.random() * pool.length), 1)[0])
    return chosen
  }

  /** The scenario's listed churn events: nodes of a group leave (a count or a percentage) or join. */
  private scheduleChurnEvents (): void {
    const { scenario } = this
    for (const event of scenario.churn.events) {
      this.schedule(event.atMs, () => {
        const inGroup = [...this.up.values()].filter(n => event.group == null || n.group === event.group)
        if (event.leave != null) {
          const count = 'count' in event.leave ? event.leave.count : Math.round(inGroup.length * event.leave.percent / 100)
          for (const node of this.draw(inGroup, count)) this.remove(event.atMs, node, event.mode)
        }
        if (event.join != null) {
          const group = this.groups.get(event.group ?? scenario.groups[0].name)!
          for (let i = 0; i < event.join; i++) this.join(event.atMs, group)
        }
      })
    }
  }

  /** Random churn: every `perMs`, each node up fails with probability `rate`, and rejoins later if asked. */
  private scheduleRandomChurn (): void {
    const churn = this.scenario.churn.random
    if (churn == null || churn.rate <= 0) return
    for (let t = churn.fromMs + churn.perMs; t <= churn.untilMs; t += churn.perMs) {
      const atMs = t
      this.schedule(atMs, () => {
        for (const node of this.upByName().filter(() => this.random() < churn.rate)) {
          this.remove(atMs, node, churn.mode)
          if (churn.rejoinAfterMs != null && atMs + churn.rejoinAfterMs <= this.scenario.durationMs) {
            const group = this.groups.get(node.group)!
            this.schedule(atMs + churn.rejoinAfterMs, () => this.join(atMs + churn.rejoinAfterMs!, group))
          }
        }
      })
    }
  }

  /** Every job, in submission order, each with the seed of its inputs. */
  private planJobs (): PlannedJob[] {
    const jobs: PlannedJob[] = []
    for (const spec of this.scenario.jobs) {
      for (let i = 0; i < spec.count; i++) {
        jobs.push({
          id: `job-${jobs.length}`,
          ...(spec.from != null ? { from: spec.from } : {}),
          atMs: spec.atMs + i * spec.everyMs,
          model: spec.model,
          batch: spec.batch,
          inputSeed: Math.floor(this.random() * 0xffffffff),
          options: { rowsPerPiece: spec.rowsPerPiece, maxPieceMs: spec.maxPieceMs, maxAttempts: spec.maxAttempts, endgame: spec.endgame, verify: spec.verify, canaries: spec.canaries },
          ...(spec.pipeline != null ? { pipeline: spec.pipeline } : {})
        })
      }
    }
    jobs.sort((a, b) => a.atMs - b.atMs)
    jobs.forEach((job, i) => { job.id = `job-${i}` })
    return jobs
  }
}
