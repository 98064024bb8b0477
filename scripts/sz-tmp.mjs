import { parseScenario, runSimulation } from '@shoal/sim'
const [rpp, seed] = process.argv.slice(2)
const scenario = parseScenario(`
seed: ${seed}
duration: 5m
compute: delay
nodes:
  - { name: fast, count: 4, speed: 1, concurrency: 2 }
  - { name: slow, count: 4, speed: 0.5, concurrency: 2 }
workload:
  model:
    generated: { width: 32, layers: 1, msPerRow: 20 }
  jobs:
    - { at: 0s, count: 4, every: 0s, batch: 1024, verify: off${rpp !== 'auto' ? `, rowsPerPiece: ${rpp}` : ''} }
`)
const m = await runSimulation(scenario, {})
for (const j of m.jobs) console.log(j.id, j.state, j.submittedAtMs, j.endedAtMs, j.pieces, j.retries, j.duplicates)
const fails = {}
for (const a of m.attempts) if (a.outcome === 'failed') fails[a.reason] = (fails[a.reason] ?? 0) + 1
console.log(fails)
// utilisation: per node, sum of done attempt durations
const busy = {}
for (const a of m.attempts) if (a.outcome !== 'failed') busy[a.node] = (busy[a.node] ?? 0) + (a.endMs - a.startMs)
console.log(Object.entries(busy).map(([k, v]) => `${k}:${Math.round(v)}`).join(' '))
const last = m.attempts.filter(a => a.outcome === 'done').sort((a, b) => b.endMs - a.endMs).slice(0, 8)
for (const a of last) console.log(a.job, a.node, a.rows, a.startMs, a.endMs)
process.exit(0)
