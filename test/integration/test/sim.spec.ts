import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Ajv } from 'ajv'
import { describe, expect, it } from 'vitest'
import { METRICS_SCHEMA, parseScenario, runSimulation, writeOutputs } from '@shoal/sim'
import type { Scenario, SimMetrics } from '@shoal/sim'
import { runCli, tempDir } from './helpers.js'

const EXAMPLES = fileURLToPath(new URL('../../../examples/scenarios/', import.meta.url))
const validateMetrics = new Ajv({ allErrors: true }).compile(METRICS_SCHEMA)

/**
 * An example in a form CI can afford on two cores: at most 4 nodes a group (6 for the 50-node mesh),
 * at most 3 jobs of at most 128 rows, pieces of at most 16 rows. Churn, speeds, GPU groups, compute
 * mode and timings stay as the example has them.
 */
function reduced (scenario: Scenario): Scenario {
  const cap = scenario.groups.reduce((n, g) => n + g.count, 0) >= 50 ? 6 : 4
  return {
    ...scenario,
    groups: scenario.groups.map(g => ({ ...g, count: Math.min(g.count, cap) })),
    jobs: scenario.jobs.map(j => ({ ...j, count: Math.min(j.count, 3), batch: Math.min(j.batch, 128), rowsPerPiece: Math.min(j.rowsPerPiece ?? 16, 16) })),
    adIntervalMs: 500
  }
}

async function example (name: string): Promise<Scenario> {
  return parseScenario(await readFile(join(EXAMPLES, name), 'utf8'), name)
}

function expectClean (metrics: SimMetrics): void {
  expect(validateMetrics(metrics), JSON.stringify(validateMetrics.errors)).toBe(true)
  expect(metrics.jobs.map(j => [j.id, j.state, j.lostPieces])).toEqual(metrics.jobs.map(j => [j.id, 'done', 0]))
  expect(metrics.lostPieces).toBe(0)
  for (const job of metrics.jobs) expect(job.piecesDone).toBe(job.pieces)
  // every verified or honest job's outputs equal one local run of the whole batch (ONNX Runtime's, or
  // the delay compute's stand-in)
  const cheaters = metrics.nodeStats.some(n => n.cheat != null)
  for (const job of metrics.jobs) if (!cheaters || job.verification.policy !== 'off') expect(job.correct).toBe(true)
}

describe('shoal sim: the example scenarios, reduced', async () => {
  const names = (await readdir(EXAMPLES)).filter(f => f.endsWith('.yaml')).sort()

  it('ships the nine documented examples', () => {
    expect(names).toEqual(['cheaters.yaml', 'churn-30.yaml', 'flash-crowd.yaml', 'free-riders.yaml', 'gpu-mix.yaml', 'mesh-50.yaml', 'pipeline.yaml', 'steady.yaml', 'stragglers.yaml'])
  })

  // cheaters.yaml and free-riders.yaml have their own tests below (one run of either costs 10 s)
  for (const name of names.filter(n => n !== 'cheaters.yaml' && n !== 'free-riders.yaml')) {
    it(`${name} finishes every job with no lost piece; metrics and report are written`, async () => {
      const scenario = reduced(await example(name))
      const metrics = await runSimulation(scenario, { file: name })
      expectClean(metrics)
      const planned = scenario.groups.reduce((n, g) => n + g.count, 0)
      expect(metrics.nodes).toBeGreaterThanOrEqual(planned + 1)
      expect(metrics.computeMode).toBe(scenario.compute)
      // every planned churn event happened
      expect(metrics.events.every(e => e.doneAtMs != null)).toBe(true)
      const dir = await tempDir('shoal-sim-out-')
      const files = await writeOutputs(dir, metrics)
      expect(JSON.parse(await readFile(files.metrics, 'utf8'))).toEqual(JSON.parse(JSON.stringify(metrics)))
      const html = await readFile(files.report, 'utf8')
      for (const id of ['timeline', 'throughput', 'jobs']) expect(html).toContain(`<svg id="${id}"`)
    }, 120_000)
  }
})

describe('shoal sim: pipelines', () => {
  it('pipeline.yaml: a model in 4 stages, stage hosts killed mid-run: every job exact, replays counted per stage, stages in the report', async () => {
    const scenario = reduced(await example('pipeline.yaml'))
    expect(scenario.jobs.every(j => j.pipeline?.stages === 4)).toBe(true)
    const metrics = await runSimulation(scenario, { file: 'pipeline.yaml' })
    expectClean(metrics)
    for (const job of metrics.jobs) {
      expect(job.pipeline).toMatchObject({ stages: 4 })
      expect(job.pipeline!.replays).toHaveLength(4)
      // every micro-batch went through every stage
      expect(job.pieces).toBe(job.pipeline!.microBatches * 4)
    }
    expect(metrics.events.filter(e => e.kind === 'kill').length).toBeGreaterThan(0)
    const html = await readFile((await writeOutputs(await tempDir('shoal-sim-out-'), metrics)).report, 'utf8')
    expect(html).toContain('stages (replayed on each)')
    expect(html).toMatch(/<td>4 \(\d+ \/ \d+ \/ \d+ \/ \d+\)<\/td>/)
  }, 120_000)

  it('refuses a pipeline job asking for full verification, naming the field', () => {
    expect(() => parseScenario(`nodes: [{ count: 2 }]
workload:
  jobs:
    - { at: 0s, batch: 8, verify: full, pipeline: { stages: 2 } }
`, 'p.yaml')).toThrow(/workload.jobs\[0\].verify.*spot checks only/)
  })
})

describe('shoal sim: nodes behind routers', () => {
  it('a nat group refuses inbound connections and tells no address, and still does pieces over the connections it opens', async () => {
    const scenario = parseScenario(`seed: 5
duration: 1m
compute: delay
adInterval: 500ms
nodes:
  - { name: open, count: 2 }
  - { name: home, count: 3, nat: true }
workload:
  model:
    generated: { width: 16, layers: 1, msPerRow: 2 }
  jobs:
    - { at: 0s, batch: 192, rowsPerPiece: 8, verify: off }
`, 'nat.yaml')
    expect(scenario.groups.map(g => g.nat)).toEqual([false, true])
    const metrics = await runSimulation(scenario, { file: 'nat.yaml' })
    expectClean(metrics)
    const home = metrics.nodeStats.filter(n => n.group === 'home')
    expect(home.every(n => n.nat)).toBe(true)
    expect(home.reduce((s, n) => s + n.piecesDone, 0)).toBeGreaterThan(0)
    expect(metrics.nodeStats.filter(n => n.group === 'open').every(n => !n.nat)).toBe(true)
  }, 120_000)
})

describe('shoal sim: cheating nodes', () => {
  it('cheaters.yaml: verified jobs are exact and exclude every cheater caught; honest nodes are never excluded', async () => {
    const scenario = reduced(await example('cheaters.yaml'))
    const metrics = await runSimulation(scenario, { file: 'cheaters.yaml' })
    expectClean(metrics)
    const honest = metrics.nodeStats.filter(n => n.group === 'honest')
    const cheaters = metrics.nodeStats.filter(n => n.cheat != null)
    expect(cheaters.map(n => n.name).sort()).toEqual(['lazy-0', 'perturb-0', 'zeros-0'])
    for (const n of honest) expect(n.excludedAtMs).toBeNull()
    const excluded = new Set(metrics.jobs.flatMap(j => j.verification.excluded))
    for (const n of honest) expect(excluded.has(n.name)).toBe(false)
    // a cheater excluded has the time of it; the zeros cheater (half its pieces) is caught in the first job
    for (const n of cheaters) expect(n.excludedAtMs != null).toBe(excluded.has(n.name))
    expect(excluded.has('zeros-0')).toBe(true)
    const [spot, , full] = metrics.jobs
    expect(spot.verification.policy).toBe('spot')
    expect(spot.verification.mismatches).toBeGreaterThan(0)
    expect(full.verification).toMatchObject({ policy: 'full' })
    expect(full.verification.checkedPieces).toBeGreaterThan(0)
    const files = await writeOutputs(await tempDir('shoal-sim-out-'), metrics)
    const html = await readFile(files.report, 'utf8')
    expect(html).toContain('excluded at')
    expect(html).toContain('⊘')
  }, 120_000)
})

describe('shoal sim: contributors and free riders', () => {
  it('free-riders.yaml: jobs come from the groups\' nodes in turn; free riders serve nothing and earn nothing, contributors earn receipts; the report says who got served', async () => {
    const scenario = reduced(await example('free-riders.yaml'))
    const metrics = await runSimulation(scenario, { file: 'free-riders.yaml' })
    expectClean(metrics)
    const from = metrics.jobs.map(j => [j.from, j.submitter])
    expect(from.filter(([f]) => f === 'contributor').map(([, n]) => n).sort()).toEqual(['contributor-0', 'contributor-0', 'contributor-1', 'contributor-1', 'contributor-2', 'contributor-3'])
    expect(from.filter(([f]) => f === 'freerider').map(([, n]) => n).sort()).toEqual(['freerider-0', 'freerider-1', 'freerider-2'])
    const riders = metrics.nodeStats.filter(n => n.group === 'freerider')
    const contributors = metrics.nodeStats.filter(n => n.group === 'contributor')
    for (const r of riders) expect([r.piecesDone, r.credit?.earnedReceipts]).toEqual([0, 0])
    // each that submitted signed receipts for the contributors' work
    for (const r of riders.filter(r => from.some(([, n]) => n === r.name))) expect(r.credit!.issuedWork).toBeGreaterThan(0)
    expect(contributors.every(c => c.piecesDone > 0 && c.credit!.earnedReceipts > 0)).toBe(true)
    expect(metrics.served.map(s => [s.from, s.jobs, s.done])).toEqual([['contributor', 6, 6], ['freerider', 3, 3]])
    const html = await readFile((await writeOutputs(await tempDir('shoal-sim-out-'), metrics)).report, 'utf8')
    expect(html).toContain('<h2>Who got served</h2>')
    // free riders cannot submit from other processes' nodes: a clear error, not a silent client job
    await expect(runSimulation(scenario, { threads: 2 })).rejects.toThrow(/need every node in this process/)
  }, 120_000)
})

describe('shoal sim: reproducible and measured', () => {
  it('the same scenario and seed twice: the same churn events and workload', async () => {
    const scenario = reduced(await example('churn-30.yaml'))
    scenario.compute = 'delay'
    const first = await runSimulation(scenario)
    const second = await runSimulation(scenario)
    const churn = (m: SimMetrics): unknown => m.events.map(e => [e.atMs, e.kind, e.node])
    const workload = (m: SimMetrics): unknown => m.jobs.map(j => [j.id, j.batch, j.inputSeed, j.model])
    expect(churn(second)).toEqual(churn(first))
    expect(workload(second)).toEqual(workload(first))
    expect((churn(first) as unknown[]).length).toBeGreaterThan(0)
    expectClean(first)
    expectClean(second)
  }, 120_000)

  it('a killed worker mid-job: its pieces are retried elsewhere and the output is still exact', async () => {
    const scenario = parseScenario(`
seed: 2
nodes:
  - { count: 3, concurrency: 1 }
churn:
  events:
    - { at: 300ms, leave: 1, mode: kill }
workload:
  model:
    generated: { width: 64, layers: 2 }
  jobs:
    - { at: 0s, batch: 96, rowsPerPiece: 4 }
`)
    // slow enough that the kill lands while pieces run
    scenario.groups[0].speed = 0.002
    const metrics = await runSimulation(scenario)
    expectClean(metrics)
    const killed = metrics.events[0].node
    expect(metrics.nodeStats.find(n => n.name === killed)?.end).toBe('kill')
    expect(metrics.attempts.some(a => a.node === killed && a.outcome === 'failed')).toBe(true)
    expect(metrics.jobs[0].retries).toBeGreaterThan(0)
  }, 120_000)
})

/**
 * `workers` one-slot workers at speed 0.01 with 1 ms rows: a piece of 4 rows takes 400 ms, 12 pieces
 * about 1.6 s on 3 workers, so a worker killed at 600 ms dies mid-job.
 */
function killMidJob (seed: number, workers: number): Scenario {
  return parseScenario(`
seed: ${seed}
compute: delay
nodes:
  - { count: ${workers}, concurrency: 1, speed: 0.01 }
churn:
  events:
    - { at: 600ms, leave: 1, mode: kill }
workload:
  model:
    generated: { width: 64, layers: 2, msPerRow: 1 }
  jobs:
    - { at: 0s, batch: 48, rowsPerPiece: 4 }
`)
}

describe('shoal sim: processes and links', () => {
  it('--processes: each node its own OS process; one SIGKILLed mid-job, nothing lost', async () => {
    const metrics = await runSimulation(killMidJob(6, 3), { processes: true })
    expect(metrics.processes).toBe(true)
    expectClean(metrics)
    const killed = metrics.events[0].node
    expect(metrics.events[0].doneAtMs).not.toBeNull()
    expect(metrics.nodeStats.find(n => n.name === killed)?.end).toBe('kill')
    // the killed process's pieces were done by others
    expect(metrics.attempts.filter(a => a.outcome === 'done').every(a => a.node !== killed || a.endMs <= metrics.events[0].doneAtMs!)).toBe(true)
  }, 120_000)

  it('--threads 2: the nodes run on two worker threads of this process; one killed mid-job, nothing lost', async () => {
    const metrics = await runSimulation(killMidJob(7, 4), { threads: 2 })
    expect(metrics.threads).toBe(2)
    expectClean(metrics)
    // round-robin: two nodes on each thread; the client (no thread) stays on the main one
    const workers = metrics.nodeStats.filter(n => n.name !== 'client')
    expect(workers.map(n => n.thread).sort()).toEqual([1, 1, 2, 2])
    expect(metrics.nodeStats.find(n => n.name === 'client')?.thread).toBeUndefined()
    // nodes on both threads ran pieces for the client on the main thread
    const ran = new Set(metrics.attempts.filter(a => a.outcome === 'done' && a.node !== 'client').map(a => workers.find(w => w.name === a.node)?.thread))
    expect(ran).toEqual(new Set([1, 2]))
    const killed = metrics.events[0].node
    expect(metrics.nodeStats.find(n => n.name === killed)?.end).toBe('kill')
    expect(metrics.attempts.filter(a => a.outcome === 'done').every(a => a.node !== killed || a.endMs <= metrics.events[0].doneAtMs!)).toBe(true)
  }, 120_000)

  it('threads and processes exclude each other; threads must be a whole number', async () => {
    const scenario = parseScenario('nodes:\n  - { count: 1 }\nworkload:\n  jobs:\n    - { at: 0s, batch: 4 }\n')
    await expect(runSimulation(scenario, { threads: 2, processes: true })).rejects.toThrow(/exclude each other/)
    await expect(runSimulation(scenario, { threads: 0 })).rejects.toThrow(/whole number of at least 1/)
  })

  it('a group\'s link latency delays every piece to and from its nodes', async () => {
    const scenario = parseScenario(`
seed: 8
compute: delay
nodes:
  - { name: far, count: 2, network: { latency: 300ms } }
workload:
  model:
    generated: { width: 32, layers: 1 }
  jobs:
    - { at: 0s, batch: 16, rowsPerPiece: 4 }
`)
    const metrics = await runSimulation(scenario)
    expectClean(metrics)
    const remote = metrics.attempts.filter(a => a.outcome === 'done' && a.node !== 'client')
    expect(remote.length).toBeGreaterThan(0)
    // 300 ms each way, enforced by the worker before it reads on and before it answers
    for (const a of remote) expect(a.endMs - a.startMs).toBeGreaterThanOrEqual(600)
  }, 120_000)
})

describe('shoal sim: the end of a run', () => {
  it('at its duration the run stops: a job still running is cancelled and reported unfinished', async () => {
    // 8 pieces of 1 row at 1 s a row on 2 one-slot workers: at least 4 s of work, in a run of 1.5 s
    const scenario = parseScenario(`
duration: 1500ms
compute: delay
nodes:
  - { count: 2, concurrency: 1 }
workload:
  model:
    generated: { width: 32, layers: 1, msPerRow: 1000 }
  jobs:
    - { at: 0s, batch: 8, rowsPerPiece: 1 }
`)
    const metrics = await runSimulation(scenario)
    expect(metrics.jobs.map(j => [j.id, j.state, j.wallMs])).toEqual([['job-0', 'unfinished', null]])
    expect(metrics.runMs).toBeGreaterThanOrEqual(1500)
    expect(validateMetrics(metrics), JSON.stringify(validateMetrics.errors)).toBe(true)
  }, 60_000)
})

describe('shoal sim: the command', () => {
  it('a malformed scenario is refused with its lines and fields, exit 2', async () => {
    const dir = await tempDir('shoal-sim-cli-')
    const file = join(dir, 'bad.yaml')
    await (await import('node:fs/promises')).writeFile(file, 'nodes:\n  - count: 2\n    speeed: 3\nworkload:\n  jobs:\n    - { at: soon, batch: 4 }\n')
    const { code, stderr } = await runCli(['sim', file, '--out', join(dir, 'out')])
    expect(code).toBe(2)
    expect(stderr).toContain('line 3, nodes[0].speeed: unknown field "speeed"')
    expect(stderr).toContain('line 6, workload.jobs[0].at: expected a duration')
  })

  it('--threads takes a whole number of at least 1 and not with --processes, exit 2', async () => {
    const dir = await tempDir('shoal-sim-cli-')
    const file = join(EXAMPLES, 'steady.yaml')
    const zero = await runCli(['sim', file, '--out', join(dir, 'out'), '--threads', '0'])
    expect(zero.code).toBe(2)
    expect(zero.stderr).toContain('--threads is a whole number of at least 1, not "0"')
    const both = await runCli(['sim', file, '--out', join(dir, 'out'), '--threads', '2', '--processes'])
    expect(both.code).toBe(2)
    expect(both.stderr).toContain('--threads and --processes exclude each other')
  })

  it('--json prints the summary: jobs, nodes, convergence, compute mode', async () => {
    const dir = await tempDir('shoal-sim-cli-')
    const file = join(dir, 'tiny.yaml')
    await (await import('node:fs/promises')).writeFile(file, 'seed: 3\ncompute: delay\nnodes:\n  - count: 2\nworkload:\n  model: { generated: { width: 32, layers: 1 } }\n  jobs:\n    - { at: 0s, batch: 16, rowsPerPiece: 4 }\n')
    const { code, stdout, stderr } = await runCli(['sim', file, '--out', join(dir, 'out'), '--json'])
    expect(code, stderr).toBe(0)
    const out = JSON.parse(stdout)
    expect(out).toMatchObject({ nodes: 3, computeMode: 'delay', lostPieces: 0 })
    expect(out.convergenceMs).toBeGreaterThanOrEqual(0)
    expect(out.jobs[0]).toMatchObject({ id: 'job-0', pieces: 4, lostPieces: 0, retries: expect.any(Number), duplicates: expect.any(Number), wallMs: expect.any(Number) })
    expect(stderr).toContain('converged in')
    const metrics = JSON.parse(await readFile(join(dir, 'out', 'metrics.json'), 'utf8'))
    expect(validateMetrics(metrics)).toBe(true)
    expect(await readFile(join(dir, 'out', 'report.html'), 'utf8')).toContain('<svg id="timeline"')
  })
})
