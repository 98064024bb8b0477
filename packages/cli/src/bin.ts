#!/usr/bin/env node
import './v8-flags.js'

const major = Number(process.versions.node.split('.')[0])
if (major < 22) {
  process.stderr.write(`shoal: error: Node ${process.versions.node} is too old; Shoal needs Node 22 or newer (run it through \`pnpm shoal\`, which brings one)\n`)
  process.exit(2)
}

// Node 22.1+ can keep compiled code on disk: later starts skip compiling libp2p and the rest
// (docs/benchmarks.md). Node picks the cache directory (NODE_COMPILE_CACHE overrides it).
const nodeModule = await import('node:module')
;(nodeModule as { enableCompileCache?: () => unknown }).enableCompileCache?.()

// loaded after the V8 flags are set: a static import would compile the whole module graph first
const { main } = await import('./main.js')
const code = await main(process.argv.slice(2), {
  stdout: text => { process.stdout.write(text) },
  log: line => { process.stderr.write(`shoal: ${line}\n`) },
  env: process.env,
  onSignal: (signal, handler) => { process.on(signal, handler) },
  isTTY: process.stderr.isTTY === true,
  progress: line => { process.stderr.write(`\r\x1b[2K${line}`) }
})
// stdout may be a pipe still draining: exit once it has flushed
process.stdout.write('', () => process.exit(code))
