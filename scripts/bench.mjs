// `pnpm bench <name> [--record]`: runs scripts/bench/<name>.mjs, which prints a table; with --record the
// table is also written into docs/benchmarks.md between that benchmark's markers, with the command.
// Files starting with _ are helpers (child processes), not benchmarks.
import { readdir } from 'node:fs/promises'

const [name, ...args] = process.argv.slice(2)
const available = (await readdir(new URL('./bench/', import.meta.url))).filter(f => f.endsWith('.mjs') && !f.startsWith('_')).map(f => f.replace(/\.mjs$/, ''))
if (name == null || !available.includes(name)) {
  process.stderr.write(`usage: pnpm bench <${available.join('|')}> [--record]\n`)
  process.exit(2)
}
const bench = await import(`./bench/${name}.mjs`)
await bench.run({ record: args.includes('--record'), args })
