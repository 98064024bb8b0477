// One `shoal sim` run for scripts/bench/sizing.mjs, in a fresh process: prints one JSON line.
// argv[2]: {"seed":1,"rowsPerPiece":32|null,"jobs":4,"batch":1024}
import { parseScenario, runSimulation } from '@shoal/sim'

const { seed, rowsPerPiece, jobs, batch, msPerRow } = JSON.parse(process.argv[2])
const scenario = parseScenario(`
seed: ${seed}
duration: 5m
compute: delay
nodes:
  - { name: fast, count: 4, speed: 1, concurrency: 2 }
  - { name: slow, count: 4, speed: 0.5, concurrency: 2 }
workload:
  model:
    generated: { width: 32, layers: 1, msPerRow: ${msPerRow} }
  jobs:
    - { at: 0s, count: ${jobs}, every: 0s, batch: ${batch}, verify: off${rowsPerPiece != null ? `, rowsPerPiece: ${rowsPerPiece}` : ''} }
`)
let out
try {
  const m = await runSimulation(scenario, {})
  const ended = m.jobs.map(j => j.endedAtMs ?? NaN)
  out = {
    states: [...new Set(m.jobs.map(j => j.state))],
    lost: m.jobs.reduce((n, j) => n + j.lostPieces, 0),
    correct: m.jobs.every(j => j.correct !== false),
    makespanMs: Math.max(...ended) - Math.min(...m.jobs.map(j => j.submittedAtMs)),
    meanWallMs: Math.round(m.jobs.reduce((n, j) => n + (j.wallMs ?? NaN), 0) / m.jobs.length),
    pieces: m.jobs.reduce((n, j) => n + j.pieces, 0),
    retries: m.jobs.reduce((n, j) => n + j.retries, 0),
    duplicates: m.jobs.reduce((n, j) => n + j.duplicates, 0)
  }
} catch (err) {
  out = { states: ['not run'], error: String(err.message).split('\n')[0] }
}
process.stdout.write(JSON.stringify(out) + '\n')
process.exit(0)
