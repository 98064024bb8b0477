// Fuzzing every decoder on the wire (scripts/fuzz-targets.mjs): 100 000 inputs each by default
// (SHOAL_FUZZ_RUNS), and how many each accepted and refused; any other outcome fails the run with the
// input that caused it.
import { fuzz, fuzzTargets } from '../fuzz-targets.mjs'
import { record, table } from '../record.mjs'

const RUNS = Number(process.env.SHOAL_FUZZ_RUNS ?? 100_000)

export async function run ({ record: save }) {
  const rows = []
  for (const target of await fuzzTargets()) {
    const started = performance.now()
    const counts = await fuzz(target, RUNS)
    const seconds = (performance.now() - started) / 1000
    rows.push([target.name, String(RUNS), String(counts.accepted), String(counts.refused), `${seconds.toFixed(1)} s`])
    process.stdout.write(`${target.name}: ${RUNS} inputs, ${counts.accepted} accepted, ${counts.refused} refused, ${seconds.toFixed(1)} s\n`)
  }
  const markdown = [
    `**Fuzzing the decoders** (fast-check: random bytes, and valid messages with bytes changed, cut short or grown; every input either accepted, with what was accepted surviving a re-encoding, or refused with the error the node answers with; no other outcome in any run):`,
    '',
    table(['decoder', 'inputs', 'accepted', 'refused', 'time'], rows)
  ].join('\n')
  process.stdout.write(markdown + '\n')
  if (save) await record('fuzz', `${process.env.SHOAL_FUZZ_RUNS != null ? `SHOAL_FUZZ_RUNS=${RUNS} ` : ''}pnpm bench fuzz --record`, markdown)
}
