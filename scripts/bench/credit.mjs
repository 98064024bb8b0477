// Contribution credit in a simulated mesh: contributors that served each other's jobs and free riders
// that never serve submit at once to the same busy contributors (examples/scenarios/free-riders.yaml),
// with credit (workers serve the submitters that did most for them first) and without (in turn).
// Delay compute: the figures are the mesh's scheduling, not this machine's cores.
import { readFile } from 'node:fs/promises'
import { parseScenario, runSimulation } from '@shoal/sim'
import { record, table } from '../record.mjs'

const SCENARIO = new URL('../../examples/scenarios/free-riders.yaml', import.meta.url)
const SEEDS = (process.env.SHOAL_BENCH_CREDIT_SEEDS ?? '21,22').split(',').map(Number)
/** The contended phase: jobs submitted from then on. */
const CONTENDED_FROM_MS = 8000

const mean = values => values.reduce((a, b) => a + b, 0) / values.length

async function once (text, seed, credit) {
  const scenario = parseScenario(text)
  scenario.seed = seed
  scenario.credit = credit
  const m = await runSimulation(scenario)
  const late = m.jobs.filter(j => j.submittedAtMs >= CONTENDED_FROM_MS)
  if (m.lostPieces !== 0 || late.some(j => j.state !== 'done' || j.correct !== true)) throw new Error(`seed ${seed}: a job did not end well (${late.map(j => `${j.id} ${j.state} ${j.correct}`).join(', ')})`)
  const wall = from => mean(late.filter(j => j.from === from).map(j => j.wallMs))
  const riders = m.nodeStats.filter(n => n.group === 'freerider')
  return {
    contributors: wall('contributor'),
    riders: wall('freerider'),
    lastEnded: Math.max(...late.map(j => j.endedAtMs)) - CONTENDED_FROM_MS,
    riderCredit: riders.reduce((n, r) => n + (r.credit?.earnedWork ?? 0), 0)
  }
}

export async function run ({ record: save }) {
  const text = await readFile(SCENARIO, 'utf8')
  const results = {}
  for (const credit of [true, false]) {
    const runs = []
    for (const seed of SEEDS) {
      runs.push(await once(text, seed, credit))
      process.stderr.write(`credit ${credit} seed ${seed}: contributors ${Math.round(runs.at(-1).contributors)} ms, free riders ${Math.round(runs.at(-1).riders)} ms\n`)
    }
    results[credit] = { contributors: mean(runs.map(r => r.contributors)), riders: mean(runs.map(r => r.riders)), lastEnded: mean(runs.map(r => r.lastEnded)), riderCredit: runs.reduce((n, r) => n + r.riderCredit, 0) }
  }
  const on = results.true
  const off = results.false
  const rows = [[true, on], [false, off]].map(([credit, r]) => [credit ? 'by credit (default)' : 'in turn (`credit: false`)', `${Math.round(r.contributors)} ms`, `${Math.round(r.riders)} ms`, (r.riders / r.contributors).toFixed(2), `${Math.round(r.lastEnded)} ms`])
  const markdown = `examples/scenarios/free-riders.yaml: 4 contributors (1 slot each) serve each other's jobs for 8 s and earn credit with each other; 4 free riders (\`serve: false\`) never serve. At 8 s each of the 8 submits one job of 1536 rows in pieces of 32 (delay compute, 4 ms a row: 128 ms a piece) to the same busy workers: the contributors and the client node (2 slots, credit with nobody). Mean job time of each group's contended jobs over seeds ${SEEDS.join(' and ')}; "all ended" is when the last of them ended, after 8 s.\n\n` +
    table(['workers serve waiting submitters', 'contributors\' jobs', 'free riders\' jobs', 'free riders / contributors', 'all ended'], rows) +
    `\n\nWith credit the contributors' jobs took ${(on.contributors / off.contributors).toFixed(2)}x the time they took without, the free riders' ${(on.riders / off.riders).toFixed(2)}x; all ended ${(on.lastEnded / off.lastEnded).toFixed(2)}x as late: ordering is not free (for one, a slot is kept up to 50 ms for a credited submitter's next piece). The free riders earned ${on.riderCredit} work units of receipts (they serve nothing).`
  process.stdout.write(markdown + '\n')
  if (save) await record('credit', 'pnpm bench credit --record', markdown)
}
