// The README's demo: a local mesh of four Shoal node processes on 127.0.0.1. The first node measures
// this machine's execution providers; the others join through it, find each other through the DHT,
// and each shows its view of the others' capacity. Then every node leaves cleanly.
import { copyFile } from 'node:fs/promises'
import { join } from 'node:path'
import { shoal, startNodeProcess, tempDir, waitFor } from './lib.mjs'

const COUNT = Number(process.env.SHOAL_DEMO_NODES ?? 4)
const common = ['--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--ad-interval', '1000']
const say = text => process.stdout.write(text + '\n')

const started = performance.now()
const dirs = []
for (let i = 0; i < COUNT; i++) dirs.push(await tempDir(`shoal-demo-${i + 1}-`))
const nodes = []
let failed = false
try {
  say(`Starting node 1 of ${COUNT} (it measures this machine's ONNX Runtime providers once)...`)
  nodes.push(startNodeProcess(['--data-dir', dirs[0], ...common]))
  const first = await nodes[0].ready
  say(`  node 1 ready in ${Math.round(first.readyMs)} ms: ${first.addrs[0]}`)
  for (const dir of dirs.slice(1)) await copyFile(join(dirs[0], 'calibration.json'), join(dir, 'calibration.json'))

  say(`Starting nodes 2-${COUNT}, each told only node 1's address...`)
  for (const dir of dirs.slice(1)) nodes.push(startNodeProcess(['--data-dir', dir, ...common, '--bootstrap', first.addrs[0]]))
  const ready = await Promise.all(nodes.map(n => n.ready))

  const views = []
  await waitFor(async () => {
    views.length = 0
    for (const dir of dirs) {
      const result = await shoal(['peers', '--json', '--data-dir', dir])
      views.push(result.code === 0 ? JSON.parse(result.stdout) : [])
    }
    return views.every(v => v.length === COUNT - 1)
  }, `every node to hold the other ${COUNT - 1} nodes' ads`)
  say(`Mesh converged: every node holds the other ${COUNT - 1} nodes' capacity ads (${Math.round(performance.now() - started)} ms since the first start).\n`)

  for (let i = 0; i < COUNT; i++) {
    say(`Node ${i + 1} (${ready[i].peerId}) sees:`)
    const table = await shoal(['peers', '--data-dir', dirs[i]])
    say(table.stdout.trimEnd().replace(/^/gm, '  ') + '\n')
  }
  const status = JSON.parse((await shoal(['node', 'status', '--json', '--data-dir', dirs[0]])).stdout)
  say(`Node 1's DHT routing table holds ${status.dhtPeers} peers; it is connected to ${status.connectedPeers}.`)
} catch (err) {
  failed = true
  process.stderr.write(`demo failed: ${err.message}\n`)
} finally {
  say('Stopping every node (each sends a final "leaving" ad)...')
  for (const node of nodes) node.proc.kill('SIGINT')
  const codes = await Promise.all(nodes.map(n => n.exited))
  if (codes.some(c => c !== 0)) {
    failed = true
    process.stderr.write(`a node did not exit cleanly: exit codes ${codes.join(', ')}\n`)
  }
}
say(failed ? 'Demo FAILED.' : `Demo done: ${COUNT} nodes found each other, exchanged capacity ads and left cleanly.`)
process.exit(failed ? 1 : 0)
