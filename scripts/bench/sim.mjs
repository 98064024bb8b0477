// Benchmarks of shoal sim: job wall time against churn (0-50% of workers killed mid-job)
// and against the share of stragglers, and the largest mesh one process runs. Delay compute
// throughout: the figures are the mesh's (scheduling, retries, transfer), not this machine's cores.
// Writes docs/sim-sweeps.html (the plots) and, with --record, the tables into docs/benchmarks.md.
import { spawn } from 'node:child_process'
import { writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { renderSweeps } from '@shoal/sim'
import { record, table } from '../record.mjs'

const SEEDS = [1, 2]
const WORKERS = 10
const only = process.env.SHOAL_BENCH_SIM

/** One run in a fresh process (scripts/sim-run.mjs): runs share neither heap nor event loop. */
async function isolated (options) {
  const child = spawn(process.execPath, [fileURLToPath(new URL('../sim-run.mjs', import.meta.url)), JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', d => { out += d })
  await new Promise(resolve => child.on('exit', resolve))
  return JSON.parse(out.trim().split('\n').pop())
}

async function wall (options) {
  const r = await isolated(options)
  if (r.state !== 'done' || r.lost !== 0) throw new Error(`job ${r.state}, ${r.lost} lost pieces: ${r.error ?? ''}`)
  return r
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
    sections.push(`Job wall time against churn: ${WORKERS} workers (1 slot each; the client, which submits, runs pieces too whenever every worker is busy), one job of 2048 rows in pieces of 32 of a generated model set to cost 50 ms a row (delay compute: 1.6 s a piece, 128 bytes of input a row, so that compute and not moving inputs inside one process is what is measured), the given share of workers killed (no leaving ad) half-way through the job (at half the mean wall time without churn); mean of seeds ${SEEDS.join(' and ')}. Losing a share p of the workers half-way can at best cost 0.5 + 0.5 / (1 - p) times the time without churn (1.21 at 30%, 1.5 at 50%).\n\n` +
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
    // NxT: N nodes over T worker threads of the one process (--threads T)
    for (const size of (process.env.SHOAL_BENCH_SIM_SIZES ?? '25,50,100,50x2,100x2,150x2').split(',')) {
      const [nodes, threads = 1] = size.split('x').map(Number)
      const started = performance.now()
      const r = await isolated({ seed: 1, nodes, batch: 1024, threads })
      rows.push(r.state === 'not run'
        ? [nodes, threads, '-', '-', `did not run: ${r.error}`, '-', `${r.rssMiB} MiB`]
        : [nodes, threads, `${r.startupMs} ms`, `${r.convergenceMs} ms`, r.state + (r.error != null ? ` (${r.error.slice(0, 120)})` : ''), `${r.wallMs} ms`, `${r.rssMiB} MiB`])
      process.stderr.write(`size ${size}: ${rows.at(-1).join(' | ')} (${Math.round(performance.now() - started)} ms)\n`)
    }
    sections.push(`The largest mesh in one process (delay compute; the automatic ad interval, 200 ms a node within 1-20 s; simulated nodes' libp2p settings as in docs/simulation.md, "Large meshes"; the nodes on the main thread, or spread over worker threads with \`--threads\`; a job of 1024 rows once the mesh has converged, which with 32 pieces at 1.6 s on 1-slot workers cannot take less than about 1.6 s).\n\n` +
      table(['nodes', 'threads', 'start', 'convergence', 'job', 'job wall', 'RSS after'], rows))
  }
  const markdown = sections.join('\n\n')
  process.stdout.write(markdown + '\n')
  if (charts.length > 0) await writeFile(new URL('../../docs/sim-sweeps.html', import.meta.url), renderSweeps('shoal sim: wall time against churn and stragglers', charts))
  if (save) await record('sim', 'pnpm bench sim --record', markdown + '\n\nPlots: docs/sim-sweeps.html (written by the same command).')
}
