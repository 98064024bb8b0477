// One `shoal sim` run of the benchmark scenario (scripts/bench/sim.mjs), in a fresh process so that
// runs do not share a heap or an event loop: `node scripts/sim-run.mjs '{"seed":1,...}'` prints one
// JSON line with the figures (`threads` spreads the nodes over worker threads; SIM_LOG=1 prints the
// run's progress on stderr).
import { parseScenario, runSimulation } from '@shoal/sim'

export function benchScenario ({ seed, killPercent = 0, killAtMs = 1000, stragglers = 0, nodes = 10, batch = 2048 }) {
  const slow = Math.round(nodes * stragglers)
  const groups = [`  - { name: worker, count: ${nodes - slow}, speed: 1, concurrency: 1 }`]
  if (slow > 0) groups.push(`  - { name: straggler, count: ${slow}, speed: 0.2, concurrency: 1 }`)
  return parseScenario(`
seed: ${seed}
duration: 3m
compute: delay
nodes:
${groups.join('\n')}
${killPercent > 0 ? `churn:\n  events:\n    - { at: ${killAtMs}ms, leave: ${killPercent}%, group: worker, mode: kill }` : ''}
workload:
  model:
    generated: { width: 32, layers: 1, msPerRow: 50 }
  jobs:
    - { at: 0s, batch: ${batch}, rowsPerPiece: 32 }
`)
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const options = JSON.parse(process.argv[2])
  let out
  try {
    const m = await runSimulation(benchScenario(options), { threads: options.threads ?? 1, log: process.env.SIM_LOG != null ? line => process.stderr.write(line + '\n') : undefined })
    const job = m.jobs[0]
    out = { state: job.state, error: job.error, wallMs: job.wallMs, retries: job.retries, duplicates: job.duplicates, lost: job.lostPieces, startupMs: m.startupMs, convergenceMs: m.convergenceMs }
  } catch (err) {
    out = { state: 'not run', error: String(err.message).split('\n')[0] }
  }
  out.rssMiB = Math.round(process.memoryUsage.rss() / 2 ** 20)
  process.stdout.write(JSON.stringify(out) + '\n')
  process.exit(0)
}
