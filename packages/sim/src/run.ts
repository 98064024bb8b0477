import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { SHOAL_VERSION } from '@shoal/node'
import type { Job, JobProgress, PipelineJob, PipelineProgress, ShoalNode } from '@shoal/node'
import { SessionCache, ThreadedSessions } from '@shoal/runtime'
import type { Tensor } from '@shoal/runtime'
import { CLIENT_TUNING, CONVERGENCE_TIMEOUT_MS, SAMPLE_INTERVAL_MS } from './constants.js'
import { SimError } from './errors.js'
import { effectiveSpeed, InProcessHost, nodeCredit, simNode } from './hosts.js'
import type { HostContext, NodeCredit, SimHost } from './hosts.js'
import { eventRecords, nodeMetrics, servedByGroup, throughput } from './metrics.js'
import type { AttemptRecord, JobMetrics, NodeRecord, SimMetrics, VerificationMetrics } from './metrics.js'
import { delayOutputs, delayPipelineOutputs, loadModel, loadPipeline, modelInputs, modelKey } from './models.js'
import type { ModelProfile, SimModel } from './models.js'
import { packageVersion } from './packages.js'
import { planScenario } from './plan.js'
import type { Plan, PlannedJob, PlannedNode } from './plan.js'
import { ProcessHost } from './process-host.js'
import { ThreadPool } from './thread-host.js'
import type { Scenario } from './scenario.js'

export interface SimOptions {
  /** The scenario file's name, for the report. */
  file?: string
  /** Each node in its own OS process (the submitting client stays in this one). */
  processes?: boolean
  /**
   * Spread the nodes over this many worker threads of this process (default 1: every node on the main
   * thread with the submitting client). One event loop is what limits the mesh one process holds.
   */
  threads?: number
  /** Progress lines for a person watching. */
  log?: (line: string) => void
}

/** The node that submits the scenario's jobs: it holds the models and never churns. */
const CLIENT: PlannedNode = { name: 'client', group: 'client', speed: 1, concurrency: 2, gpu: false, nat: false, initial: true }

/**
 * Waits `ms` (or until `signal` aborts). A timer may fire a fraction of a millisecond before
 * performance.now() says the time has come, so it is set again for what is left: a scenario event at
 * 1500 ms never happens at 1499.
 */
async function sleep (ms: number, signal?: AbortSignal): Promise<void> {
  const until = performance.now() + ms
  while (signal?.aborted !== true) {
    const left = until - performance.now()
    if (left <= 0) return
    await new Promise<void>(resolve => {
      const done = (): void => { clearTimeout(timer); signal?.removeEventListener('abort', done); resolve() }
      const timer = setTimeout(done, Math.ceil(left))
      signal?.addEventListener('abort', done, { once: true })
    })
  }
}

/**
 * Runs a scenario: starts the client and the initial nodes on loopback, waits for the mesh to converge,
 * then plays the plan's churn and jobs against the clock, and measures what happened.
 */
export async function runSimulation (scenario: Scenario, options: SimOptions = {}): Promise<SimMetrics> {
  const log = options.log ?? (() => {})
  const threads = options.threads ?? 1
  if (!Number.isInteger(threads) || threads < 1) throw new SimError(`threads must be a whole number of at least 1, not ${threads}`)
  if (threads > 1 && options.processes === true) throw new SimError('threads and processes exclude each other: with processes every node has its own already')
  const plan = planScenario(scenario)
  if ((options.processes === true || threads > 1) && plan.jobs.some(j => j.from != null)) {
    throw new SimError('jobs submitted by a node group (workload.jobs[].from) need every node in this process: run without --processes and --threads')
  }
  const workDir = await mkdtemp(join(os.tmpdir(), 'shoal-sim-'))
  const models = new Map<string, SimModel>()
  const byCid = new Map<string, ModelProfile>()
  for (const job of plan.jobs) {
    const key = modelKey(job.model, job.pipeline)
    if (models.has(key)) continue
    const baseKey = modelKey(job.model)
    let base = models.get(baseKey)
    if (base == null) {
      log(`loading ${baseKey} and measuring a row on this machine`)
      base = await loadModel(job.model)
      models.set(baseKey, base)
      byCid.set(base.info.cid, base)
      log(`  ${base.label}: ${base.info.cid}, ${base.bytes.byteLength} bytes, ${base.msPerRow.toFixed(3)} ms a row`)
    }
    if (job.pipeline == null) continue
    log(`cutting ${baseKey} into ${job.pipeline.stages} stages`)
    const pipeline = await loadPipeline(base, job.pipeline.stages, job.model.kind === 'generated' ? job.model.msPerRow : undefined)
    models.set(key, { ...base, key, label: `${base.label}, ${job.pipeline.stages} stages`, pipeline })
    for (const stage of pipeline.stages) byCid.set(stage.cid, stage)
    log(`  pipeline ${pipeline.cid}: stages of ${pipeline.stages.map(st => `${st.bytes.byteLength} bytes, ${st.msPerRow.toFixed(3)} ms a row`).join('; ')}`)
  }
  const ctx: HostContext = {
    workDir,
    compute: scenario.compute,
    adIntervalMs: scenario.adIntervalMs,
    models: byCid,
    maxSpeed: Math.max(1, ...plan.nodes.map(effectiveSpeed)),
    preload: scenario.models === 'preload',
    credit: scenario.credit,
    // one inference thread for every node of a one-process run: their pieces compute one at a time, as
    // they did on the shared event loop, but no longer stop it (gossip, transfers and timers go on)
    shared: scenario.compute === 'onnx' && options.processes !== true && threads === 1 ? new ThreadedSessions({ providers: ['cpu'], cpuThreads: 1 }) : undefined
  }
  const run = new Run(plan, ctx, { ...options, threads }, log)
  try {
    return await run.execute(scenario, models)
  } finally {
    await run.stopAll()
    await ctx.shared?.close()
    await rm(workDir, { recursive: true, force: true }).catch(() => {})
  }
}

class Run {
  private readonly plan: Plan
  private readonly ctx: HostContext
  private readonly options: SimOptions
  private readonly log: (line: string) => void
  private client?: ShoalNode
  private readonly hosts = new Map<string, SimHost>()
  private readonly pool?: ThreadPool
  private readonly records = new Map<string, NodeRecord>()
  private readonly nodeByPeer = new Map<string, string>()
  private readonly attempts: AttemptRecord[] = []
  private readonly outputs = new Map<string, Record<string, Tensor>>()
  private t0 = 0
  /** Jobs each group has submitted so far: the next goes to its next node up, in turn. */
  private readonly submittedBy = new Map<string, number>()
  /** Aborted when the run ends: events and jobs still waiting for their time do not happen. */
  private readonly ended = new AbortController()

  constructor (plan: Plan, ctx: HostContext, options: SimOptions, log: (line: string) => void) {
    this.plan = plan
    this.ctx = ctx
    this.options = options
    this.log = log
    if ((options.threads ?? 1) > 1) this.pool = new ThreadPool(options.threads!)
  }

  /** Scenario time now. */
  private now (): number {
    return Math.round(performance.now() - this.t0)
  }

  async execute (scenario: Scenario, models: Map<string, SimModel>): Promise<SimMetrics> {
    const launch = performance.now()
    this.t0 = launch
    const client = await simNode(CLIENT, [], this.ctx, CLIENT_TUNING)
    await client.start()
    this.client = client
    this.record(CLIENT, client.peerId)
    for (const model of models.values()) {
      if (model.pipeline == null) {
        await client.addModel(model.bytes)
        continue
      }
      for (const stage of model.pipeline.stages) await client.addModel(stage.bytes)
      await client.addPipeline(model.pipeline.manifest)
    }
    const initial = this.plan.nodes.filter(n => n.initial)
    this.log(`starting ${initial.length} nodes${this.options.processes === true ? ', each in its own process' : this.pool != null ? ` over ${this.options.threads!} threads` : ''}`)
    // a few at a time: hundreds of handshakes at once on two cores time out
    const batch = this.options.processes === true ? 4 : 8
    for (let i = 0; i < initial.length; i += batch) {
      await Promise.all(initial.slice(i, i + batch).map(async n => { await this.startNode(n) }))
    }
    const listening = performance.now()
    const startupMs = Math.round(listening - launch)
    this.log(`all ${initial.length + 1} nodes listening after ${startupMs} ms; waiting for every node to see every other`)
    await this.converge(initial.length + 1)
    const convergenceMs = Math.round(performance.now() - listening)
    this.log(`converged in ${convergenceMs} ms; scenario clock starts`)

    // scenario time 0 is now: nodes up before are up from 0
    this.t0 = performance.now()
    for (const record of this.records.values()) record.startedAtMs = 0
    const doneAt = new Map<number, number>()
    const eventsDone = this.plan.events.map(async (event, i) => {
      await sleep(event.atMs - this.now(), this.ended.signal)
      if (this.ended.signal.aborted) return
      await this.apply(event)
      doneAt.set(i, this.now())
    })
    const jobMetrics: JobMetrics[] = []
    const jobsDone = this.plan.jobs.map(async planned => {
      await sleep(planned.atMs - this.now(), this.ended.signal)
      if (this.ended.signal.aborted) return
      jobMetrics.push(await this.runJob(planned, models.get(modelKey(planned.model, planned.pipeline))!))
    })
    const everything = Promise.all([...eventsDone, ...jobsDone])
    const timedOut = await Promise.race([
      everything.then(() => false),
      sleep(scenario.durationMs - this.now(), this.ended.signal).then(() => true)
    ])
    this.ended.abort()
    const runMs = this.now()
    if (timedOut) {
      this.log(`the scenario's duration (${scenario.durationMs} ms) ran out; unfinished jobs are reported as such`)
      for (const job of client.listJobs()) job.cancel('the scenario ended')
    }
    // jobs cancelled by the end of the run report in later: what ended by now is what the run saw
    const jobs = [...jobMetrics]
    const finished = new Set(jobs.map(j => j.id))
    for (const planned of this.plan.jobs) {
      if (!finished.has(planned.id)) jobs.push(this.unfinished(planned))
    }
    jobs.sort((a, b) => Number(a.id.slice(4)) - Number(b.id.slice(4)))
    await this.verify(jobs, models)

    const nodes = [...this.records.values()]
    // what each node up at the end earned and gave
    const credit = new Map<string, NodeCredit | null>([['client', nodeCredit(client)]])
    await Promise.all([...this.hosts].map(async ([name, host]) => { credit.set(name, await host.credit().catch(() => null)) }))
    return {
      format: 'shoal-sim-metrics/1',
      scenario: { name: scenario.name, file: this.options.file ?? '', seed: scenario.seed, durationMs: scenario.durationMs },
      versions: versions(),
      computeMode: scenario.compute,
      processes: this.options.processes === true,
      threads: this.options.threads ?? 1,
      models: [...models.values()].map(m => ({ key: m.key, label: m.label, cid: m.info.cid, bytes: m.bytes.byteLength, msPerRow: Math.round(m.msPerRow * 1000) / 1000 })),
      nodes: nodes.length,
      startupMs,
      convergenceMs,
      runMs,
      lostPieces: jobs.reduce((n, j) => n + j.lostPieces, 0),
      jobs,
      served: servedByGroup(jobs),
      nodeStats: nodeMetrics(nodes, this.attempts, runMs).map(n => ({ ...n, credit: credit.get(n.name) ?? null })),
      events: eventRecords(this.plan, doneAt),
      attempts: this.attempts,
      throughput: throughput(this.attempts, runMs)
    }
  }

  private record (node: PlannedNode, peerId: string, thread?: number): void {
    const cheat = node.cheat != null ? { rate: node.cheat.rate, mode: node.cheat.mode } : undefined
    this.records.set(node.name, { name: node.name, group: node.group, peerId, startedAtMs: this.now(), stoppedAtMs: null, ...(thread != null ? { thread } : {}), ...(cheat != null ? { cheat } : {}), ...(node.nat ? { nat: true } : {}) })
    this.nodeByPeer.set(peerId, node.name)
  }

  private async startNode (node: PlannedNode): Promise<void> {
    const bootstrap = [this.client!.addrs[0]]
    const host: SimHost = this.options.processes === true
      ? await ProcessHost.start(node, bootstrap, this.ctx)
      : this.pool != null
        ? await this.pool.start(node, bootstrap, this.ctx)
        : await InProcessHost.start(node, bootstrap, this.ctx)
    this.hosts.set(node.name, host)
    this.record(node, host.peerId, host.thread)
  }

  /** Waits until every node up has a live ad from every other (the client included). */
  private async converge (total: number): Promise<void> {
    const deadline = performance.now() + CONVERGENCE_TIMEOUT_MS
    while (true) {
      const counts = await Promise.all([this.client!.libp2p.services.capacity.peers.size, ...[...this.hosts.values()].map(async h => await h.knownPeers())])
      if (counts.every(c => c >= total - 1)) return
      if (performance.now() > deadline) {
        const short = counts.filter(c => c < total - 1).length
        throw new SimError(`the mesh did not converge within ${CONVERGENCE_TIMEOUT_MS} ms: ${short} of ${total} nodes still miss peers (fewest known: ${Math.min(...counts)} of ${total - 1})`)
      }
      await sleep(SAMPLE_INTERVAL_MS)
    }
  }

  private async apply (event: Plan['events'][number]): Promise<void> {
    const planned = this.plan.nodes.find(n => n.name === event.node)!
    if (event.kind === 'join') {
      await this.startNode(planned)
      this.log(`${(this.now() / 1000).toFixed(1)} s: ${event.node} joined`)
      return
    }
    const host = this.hosts.get(event.node)
    if (host == null) return
    this.hosts.delete(event.node)
    const record = this.records.get(event.node)!
    record.stoppedAtMs = this.now()
    record.end = event.kind
    this.log(`${(this.now() / 1000).toFixed(1)} s: ${event.node} ${event.kind === 'kill' ? 'killed' : 'left'}`)
    await (event.kind === 'kill' ? host.kill() : host.leave()).catch(() => {})
  }

  /** The node that submits a job: the client, or the next node up of the job's group, in turn. */
  private submitterOf (planned: PlannedJob): { name: string, node: ShoalNode } | string {
    if (planned.from == null) return { name: 'client', node: this.client! }
    const up = [...this.hosts.values()]
      .filter((h): h is InProcessHost => h instanceof InProcessHost && this.records.get(h.name)?.group === planned.from)
      .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }))
    if (up.length === 0) return `no node of group "${planned.from}" is up to submit it`
    const turn = this.submittedBy.get(planned.from) ?? 0
    this.submittedBy.set(planned.from, turn + 1)
    const host = up[turn % up.length]
    return { name: host.name, node: host.node }
  }

  private async runJob (planned: PlannedJob, model: SimModel): Promise<JobMetrics> {
    const submittedAtMs = this.now()
    const submitter = this.submitterOf(planned)
    if (typeof submitter === 'string') return { ...this.unfinished(planned), state: 'failed', error: submitter, submittedAtMs, endedAtMs: submittedAtMs, wallMs: 0 }
    const client = submitter.node
    let job: Job | PipelineJob
    try {
      await holdModel(client, model)
      job = client.submitJob(model.pipeline?.cid ?? model.info.cid, modelInputs(model, planned.batch, planned.inputSeed), { ...planned.options, local: 'fallback' })
    } catch (err: any) {
      return { ...this.unfinished(planned), state: 'failed', error: err.message, submittedAtMs, endedAtMs: submittedAtMs, wallMs: 0 }
    }
    const t0 = this.t0
    job.onPieceAttempt(a => {
      this.attempts.push({
        job: planned.id,
        piece: a.pieceId,
        node: this.nodeByPeer.get(a.peerId) ?? a.peerId,
        rows: a.rows,
        startMs: Math.round(a.startedAt - t0),
        endMs: Math.round(a.endedAt - t0),
        outcome: a.outcome,
        ...(a.reason != null ? { reason: a.reason } : {})
      })
    })
    job.onProgress(p => {
      for (const peerId of p.verification.excluded) {
        const record = this.records.get(this.nodeByPeer.get(peerId) ?? '')
        if (record == null || record.excludedAtMs != null) continue
        record.excludedAtMs = this.now()
        this.log(`${(record.excludedAtMs / 1000).toFixed(1)} s: ${record.name} excluded by ${planned.id} for a wrong answer`)
      }
    })
    this.log(`${(submittedAtMs / 1000).toFixed(1)} s: ${planned.id} submitted (${planned.batch} rows${planned.options.verify != null && planned.options.verify !== 'off' ? `, verify ${planned.options.verify}` : ''})`)
    let error: string | undefined
    try {
      const result = await job.run()
      this.outputs.set(planned.id, result.outputs)
    } catch (err: any) {
      error = err.message
    }
    const endedAtMs = this.now()
    const p: JobProgress & { pipeline?: PipelineProgress['pipeline'] } = job.progress()
    const state = error == null ? 'done' : 'failed'
    this.log(`${(endedAtMs / 1000).toFixed(1)} s: ${planned.id} ${state} after ${endedAtMs - submittedAtMs} ms (${p.done}/${p.total} pieces, ${p.retries} retries, ${p.duplicates} duplicates)${error != null ? `: ${error}` : ''}`)
    return {
      id: planned.id,
      from: planned.from ?? 'client',
      submitter: submitter.name,
      model: model.key,
      batch: planned.batch,
      inputSeed: planned.inputSeed,
      submittedAtMs,
      endedAtMs,
      wallMs: endedAtMs - submittedAtMs,
      state,
      ...(error != null ? { error } : {}),
      pieces: p.total,
      piecesDone: p.done,
      retries: p.retries,
      duplicates: p.duplicates,
      bytesSent: p.bytesSent,
      bytesReceived: p.bytesReceived,
      bytesMoved: p.bytesSent + p.bytesReceived,
      lostPieces: p.total - p.done,
      correct: null,
      verification: this.verificationOf(p.verification),
      ...(p.pipeline != null ? { pipeline: { stages: p.pipeline.stages.length, microBatches: p.pipeline.microBatches, replays: p.pipeline.stages.map(st => st.replays) } } : {})
    }
  }

  private verificationOf (v: JobProgress['verification']): VerificationMetrics {
    return { ...v, excluded: v.excluded.map(id => this.nodeByPeer.get(id) ?? id) }
  }

  private unfinished (planned: PlannedJob): JobMetrics {
    return {
      id: planned.id, from: planned.from ?? 'client', submitter: null, model: modelKey(planned.model, planned.pipeline), batch: planned.batch, inputSeed: planned.inputSeed,
      submittedAtMs: planned.atMs, endedAtMs: null, wallMs: null, state: 'unfinished',
      pieces: 0, piecesDone: 0, retries: 0, duplicates: 0, bytesSent: 0, bytesReceived: 0, bytesMoved: 0, lostPieces: 0, correct: null,
      verification: { policy: planned.options.verify ?? 'spot', checkedPieces: 0, extraRows: 0, mismatches: 0, excluded: [], canaryRows: 0 }
    }
  }

  /**
   * Each finished job's outputs against one run of its whole batch: with real compute ONNX Runtime's,
   * with delay compute the stand-in outputs it computes from the rows.
   */
  private async verify (jobs: JobMetrics[], models: Map<string, SimModel>): Promise<void> {
    // the nodes' shared cache already holds each model's session; with nodes in other processes, a new one
    const sessions = this.ctx.compute === 'onnx' ? this.ctx.shared ?? new SessionCache({ providers: ['cpu'], cpuThreads: 1 }) : undefined
    try {
      for (const job of jobs) {
        const outputs = this.outputs.get(job.id)
        if (outputs == null) continue
        const model = models.get(job.model)!
        const inputs = modelInputs(model, job.batch, job.inputSeed)
        // a pipeline's answer is the whole model's (ONNX Runtime), or its stages' stand-ins one after another (delay)
        const reference = sessions != null
          ? (await sessions.run(model.info.cid, async () => model.bytes, inputs)).outputs
          : model.pipeline != null ? delayPipelineOutputs(model.pipeline, model.info.outputs.map(o => o.name), inputs, job.batch) : delayOutputs(model, inputs, job.batch)
        job.correct = Object.entries(reference).every(([name, t]) => {
          const got = outputs[name]
          return got != null && got.dims.join() === t.dims.join() && Buffer.from(got.data).equals(Buffer.from(t.data))
        })
      }
    } finally {
      if (sessions != null && sessions !== this.ctx.shared) await sessions.close()
    }
  }

  async stopAll (): Promise<void> {
    this.ended.abort()
    await Promise.all([...this.hosts.values()].map(async h => { await h.leave().catch(() => {}) }))
    this.hosts.clear()
    await this.pool?.close()
    await this.client?.stop().catch(() => {})
  }
}

/** A node submits only jobs of models in its store: a group's node gets the job's model (its stages and manifest) first. */
async function holdModel (node: ShoalNode, model: SimModel): Promise<void> {
  if (model.pipeline == null) {
    if (!node.models.has(model.info.cid)) await node.addModel(model.bytes)
    return
  }
  for (const stage of model.pipeline.stages) if (!node.models.has(stage.cid)) await node.addModel(stage.bytes)
  await node.addPipeline(model.pipeline.manifest)
}

function versions (): SimMetrics['versions'] {
  // libp2p and onnxruntime-node are dependencies of the node and runtime packages, found from there
  return {
    shoal: SHOAL_VERSION,
    node: process.version,
    libp2p: packageVersion('libp2p', import.meta.resolve('@shoal/node')),
    onnxruntime: packageVersion('onnxruntime-node', import.meta.resolve('@shoal/runtime'))
  }
}
