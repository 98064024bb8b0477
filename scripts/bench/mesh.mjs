// Mesh benchmarks: time from `shoal node start` to `ready` (calibration cached and not),
// time for a 20-node mesh of processes to converge (every node holds every other node's ad), and the
// resident memory of idle node processes.
import { copyFile, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { percentile, record, table } from '../record.mjs'
import { rssBytes, startNodeProcess, tempDir, waitFor } from '../lib.mjs'

const MESH = Number(process.env.SHOAL_BENCH_MESH ?? 20)
const READY_RUNS = 7
const common = ['--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns']
const ms = v => `${Math.round(v)} ms`

async function apiOf (dir) {
  return JSON.parse(await readFile(join(dir, 'api.json'), 'utf8'))
}

async function peerCount (api) {
  const res = await fetch(`${api.url}/v1/peers`, { headers: { authorization: `Bearer ${api.token}` } })
  return (await res.json()).length
}

async function stop (nodes) {
  for (const n of nodes) n.proc.kill('SIGTERM')
  await Promise.all(nodes.map(n => n.exited))
}

export async function run ({ record: save }) {
  // 1. ready time, first start (calibration measured) then cached
  const first = await tempDir('shoal-bench-')
  const uncached = startNodeProcess(['--data-dir', first, ...common])
  const uncachedReady = (await uncached.ready).readyMs
  await stop([uncached])
  const cached = []
  for (let i = 0; i < READY_RUNS; i++) {
    const dir = await tempDir('shoal-bench-')
    await copyFile(join(first, 'calibration.json'), join(dir, 'calibration.json'))
    const node = startNodeProcess(['--data-dir', dir, ...common])
    cached.push((await node.ready).readyMs)
    await stop([node])
  }

  // 2. convergence of a mesh of processes with default ad settings
  const dirs = []
  for (let i = 0; i < MESH; i++) {
    dirs.push(await tempDir('shoal-bench-'))
    await copyFile(join(first, 'calibration.json'), join(dirs[i], 'calibration.json'))
  }
  const nodes = [startNodeProcess(['--data-dir', dirs[0], ...common])]
  const boot = await nodes[0].ready
  const launchedAt = performance.now()
  for (const dir of dirs.slice(1)) nodes.push(startNodeProcess(['--data-dir', dir, ...common, '--bootstrap', boot.addrs[0]]))
  let allReadyAt, convergedAt, rss
  try {
    await Promise.all(nodes.map(n => n.ready))
    allReadyAt = performance.now()
    const apis = await Promise.all(dirs.map(apiOf))
    let counts = []
    await waitFor(async () => {
      counts = await Promise.all(apis.map(peerCount))
      return counts.every(c => c === MESH - 1)
    }, `${MESH} nodes to converge`, 60_000, 200).catch(err => {
      throw new Error(`${err.message}; peers per node: ${counts.join(',')}`)
    })
    convergedAt = performance.now()

    // 3. idle memory: let the mesh settle, then read every process's RSS
    await new Promise(resolve => setTimeout(resolve, 5000))
    rss = await Promise.all(nodes.map(n => rssBytes(n.proc.pid)))
  } finally {
    await stop(nodes)
  }

  // 4. the same mesh in one process: the protocol's convergence without 20 processes sharing 2 cores
  const { ShoalNode, resolveConfig } = await import('@shoal/node')
  const calibration = { providers: [{ name: 'cpu', gflops: 50 }], failed: [], gpu: null, measuredAt: 0 }
  const inProcess = async (bootstrap = []) => {
    const config = await resolveConfig({ env: {}, dataDir: await tempDir('shoal-bench-'), flags: { listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, mdns: false } })
    const node = new ShoalNode({ config, calibration, api: false })
    await node.start()
    return node
  }
  const heapBefore = process.memoryUsage().heapUsed
  const hub = await inProcess()
  const inStarted = performance.now()
  const mesh = [hub, ...await Promise.all(Array.from({ length: MESH - 1 }, async () => await inProcess([hub.addrs[0]])))]
  const inReady = performance.now()
  await waitFor(() => mesh.every(n => n.peers().length === MESH - 1), `${MESH} in-process nodes to converge`, 60_000, 10)
  const inConverged = performance.now()
  const heapPerNode = (process.memoryUsage().heapUsed - heapBefore) / MESH
  await Promise.all(mesh.map(n => n.stop()))

  const mib = v => `${(v / 2 ** 20).toFixed(1)} MiB`
  const rows = [
    ['ready, first start (calibration measured)', ms(uncachedReady), '-'],
    [`ready, calibration cached (median of ${READY_RUNS})`, ms(percentile(cached, 50)), '< 1.5 s'],
    [`ready, calibration cached (slowest of ${READY_RUNS})`, ms(Math.max(...cached)), '-'],
    [`${MESH - 1} processes launched at once until all ready`, ms(allReadyAt - launchedAt), '-'],
    [`${MESH}-node mesh: all ready until every node holds every ad`, ms(convergedAt - allReadyAt), '< 5 s'],
    [`${MESH}-node mesh: launch until every node holds every ad`, ms(convergedAt - launchedAt), '-'],
    [`${MESH} nodes in one process: start until every node holds every ad`, ms(inConverged - inStarted), '< 5 s'],
    [`${MESH} nodes in one process: all started until every node holds every ad`, ms(inConverged - inReady), '-'],
    [`JS heap per node, ${MESH} nodes in one process`, mib(heapPerNode), '-'],
    [`idle RSS per node process (median of ${MESH})`, mib(percentile(rss, 50)), '< 60 MB'],
    [`idle RSS per node process (largest of ${MESH})`, mib(Math.max(...rss)), '-']
  ]
  const markdown = table(['measure', 'value', 'goal'], rows)
  process.stdout.write(markdown + '\n')
  if (save) await record('mesh', 'pnpm bench mesh --record', markdown)
}
