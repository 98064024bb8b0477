// Self-sizing pieces against fixed sizes, in shoal sim with delay compute: several jobs submitted at
// once by one node (the load that once made a timed probe read slow), on a mesh of 4 workers at full
// speed and 4 at half, 2 slots each. Each run in a fresh process (scripts/bench/_sizing-run.mjs).
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { record, table } from '../record.mjs'

const SEEDS = [1, 2]
const JOBS = 4
const BATCH = 1024
const MS_PER_ROW = 20
const SIZES = process.env.SHOAL_BENCH_SIZES != null ? process.env.SHOAL_BENCH_SIZES.split(',').map(s => s === 'auto' ? null : Number(s)) : [null, 1, 8, 32, 128]

async function once (options) {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./_sizing-run.mjs', import.meta.url)), JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', d => { out += d })
  await new Promise(resolve => child.on('exit', resolve))
  const r = JSON.parse(out.trim().split('\n').pop())
  if (r.states.join() !== 'done' || r.lost !== 0 || !r.correct) throw new Error(`a run did not finish right: ${JSON.stringify(r)}`)
  return r
}

export async function run ({ record: save }) {
  const results = []
  for (const rowsPerPiece of SIZES) {
    const runs = []
    for (const seed of SEEDS) runs.push(await once({ seed, rowsPerPiece, jobs: JOBS, batch: BATCH, msPerRow: MS_PER_ROW }))
    const mean = key => runs.reduce((n, r) => n + r[key], 0) / runs.length
    results.push({ rowsPerPiece, makespan: mean('makespanMs'), wall: mean('meanWallMs'), pieces: mean('pieces'), retries: runs.map(r => r.retries).join(' / '), duplicates: runs.map(r => r.duplicates).join(' / ') })
    process.stderr.write(`rowsPerPiece ${rowsPerPiece ?? 'self-sizing'}: ${runs.map(r => r.makespanMs).join(', ')} ms\n`)
  }
  const best = Math.min(...results.filter(r => r.rowsPerPiece != null).map(r => r.makespan))
  const ideal = JOBS * BATCH * MS_PER_ROW / (4 * 2 * 1 + 4 * 2 * 0.5)
  const markdown = `${JOBS} jobs of ${BATCH} rows submitted at once by one node (a generated model set to cost ${MS_PER_ROW} ms a row at speed 1; delay compute), on 4 workers at speed 1 and 4 at 0.5, 2 slots each; the submitting node computes only while no worker can. Mean of seeds ${SEEDS.join(' and ')}; all outputs checked. The ideal, every row at the mesh's combined speed with no overhead, is ${Math.round(ideal)} ms.\n\n` +
    table(['pieces', 'all jobs done', 'x best fixed', 'x ideal', 'mean job wall', 'pieces (4 jobs)', 'retries', 'duplicates'],
      results.map(r => [r.rowsPerPiece == null ? 'self-sizing' : `fixed ${r.rowsPerPiece} rows`, `${Math.round(r.makespan)} ms`, (r.makespan / best).toFixed(2), (r.makespan / ideal).toFixed(2), `${Math.round(r.wall)} ms`, Math.round(r.pieces), r.retries, r.duplicates]))
  process.stdout.write(markdown + '\n')
  if (save) await record('sizing', 'pnpm bench sizing --record', markdown)
}
