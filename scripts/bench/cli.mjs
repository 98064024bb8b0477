// How fast the CLI answers: the read-only commands (`shoal peers`, `shoal node status`, `shoal id`,
// `shoal model ls`) against a running node, as a user types them, each a fresh process, against
// `node -e 0` (the floor: starting Node itself) in the same run. Wall time from spawn to exit and the
// process's peak resident memory, p50 over runs after one warm-up (which also fills Node's compile
// cache, as any earlier use of the CLI would have).
import { spawn } from 'node:child_process'
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { percentile, record, table } from '../record.mjs'
import { SHOAL_BIN, startNodeProcess, tempDir } from '../lib.mjs'

const RSS_HOOK = fileURLToPath(new URL('./_max-rss.mjs', import.meta.url))
const RUNS = 15

/** Wall ms and peak RSS (MiB) of one run of `node <args>`, which must exit 0. */
async function once (args, scratch) {
  const rssFile = join(scratch, 'rss')
  await rm(rssFile, { force: true })
  const started = performance.now()
  const proc = spawn(process.execPath, ['--import', RSS_HOOK, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, SHOAL_BENCH_RSS_FILE: rssFile } })
  let stderr = ''
  proc.stderr.on('data', d => { stderr += d })
  const code = await new Promise(resolve => proc.on('exit', resolve))
  const ms = performance.now() - started
  if (code !== 0) throw new Error(`node ${args.join(' ')} exited ${code}: ${stderr}`)
  return { ms, mib: Number(await readFile(rssFile, 'utf8')) / 1024 }
}

async function measure (args, scratch) {
  await once(args, scratch)
  const runs = []
  for (let i = 0; i < RUNS; i++) runs.push(await once(args, scratch))
  return { ms: percentile(runs.map(r => r.ms), 50), mib: percentile(runs.map(r => r.mib), 50) }
}

export async function run ({ record: save }) {
  const dataDir = await tempDir('shoal-bench-cli-')
  const node = startNodeProcess(['--data-dir', dataDir, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns'])
  await node.ready
  const scratch = await tempDir('shoal-bench-cli-rss-')
  try {
    const cases = [
      ['node -e 0 (starting Node, nothing else)', ['-e', '0']],
      ['shoal peers', [SHOAL_BIN, 'peers', '--data-dir', dataDir]],
      ['shoal node status', [SHOAL_BIN, 'node', 'status', '--data-dir', dataDir]],
      ['shoal id', [SHOAL_BIN, 'id', '--data-dir', dataDir]],
      ['shoal model ls', [SHOAL_BIN, 'model', 'ls', '--data-dir', dataDir]],
      ['shoal --help', [SHOAL_BIN, '--help']]
    ]
    const results = []
    for (const [label, args] of cases) {
      process.stderr.write(`${label}...\n`)
      results.push([label, await measure(args, scratch)])
    }
    const floor = results[0][1]
    const rows = results.map(([label, r]) => [label, `${r.ms.toFixed(0)} ms`, `${(r.ms / floor.ms).toFixed(2)}`, `${r.mib.toFixed(0)} MiB`, `+${(r.mib - floor.mib).toFixed(0)} MiB`])
    const markdown = [
      `**The CLI's read-only commands** (each a fresh \`node packages/cli/dist/src/bin.js ...\` process asking a node running on this machine; wall time from spawn to exit and peak resident memory, p50 of ${RUNS} after a warm-up; against \`node -e 0\` in the same run):`,
      '',
      table(['command', 'wall time', 'x node -e 0', 'peak memory', 'over node -e 0'], rows)
    ].join('\n')
    process.stdout.write(markdown + '\n')
    if (save) await record('cli', 'pnpm bench cli --record', markdown)
  } finally {
    node.proc.kill('SIGTERM')
    await node.exited
    await rm(scratch, { recursive: true, force: true })
    await rm(dataDir, { recursive: true, force: true })
  }
}
