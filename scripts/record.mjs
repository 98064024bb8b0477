// Writes a benchmark's result into docs/benchmarks.md, between <!-- bench:NAME --> and <!-- /bench:NAME -->.
// SHOAL_BENCH_RECORD_AS=device records into NAME-device instead (runs on the lent machine, kept apart
// from this machine's figures; scripts/device-run.sh).
import { readFile, writeFile } from 'node:fs/promises'
import os from 'node:os'

export async function record (name, command, markdown) {
  const as = process.env.SHOAL_BENCH_RECORD_AS
  if (as != null && as !== '') {
    if (!/^[a-z0-9-]+$/.test(as)) throw new Error(`SHOAL_BENCH_RECORD_AS must be lower-case letters, digits and dashes, got ${as}`)
    name = `${name}-${as}`
    command = `SHOAL_BENCH_RECORD_AS=${as} ${command}`
  }
  const file = new URL('../docs/benchmarks.md', import.meta.url)
  const text = await readFile(file, 'utf8')
  const begin = `<!-- bench:${name} -->`
  const end = `<!-- /bench:${name} -->`
  const machine = `${os.availableParallelism()} x ${os.cpus()[0]?.model.trim()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.versions.node}`
  const block = `${begin}\nRecorded ${new Date().toISOString().slice(0, 10)} on ${machine} by \`${command}\`:\n\n${markdown.trim()}\n${end}`
  const start = text.indexOf(begin)
  const stop = text.indexOf(end)
  if (start < 0 || stop < 0) throw new Error(`docs/benchmarks.md has no ${begin} ... ${end} markers`)
  await writeFile(file, text.slice(0, start) + block + text.slice(stop + end.length))
}

/** A markdown table from a header and rows. */
export function table (header, rows) {
  return [
    `| ${header.join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map(r => `| ${r.join(' | ')} |`)
  ].join('\n')
}

export function percentile (values, p) {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p / 100 * sorted.length))]
}
