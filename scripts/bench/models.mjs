// Model distribution: a 100 MB model to 1, 4 and 8 peers through the swarm, against the same
// number of sequential copies from the publisher alone, in the same run, fetching over
// /shoal/block/1.0.0 and over bitswap (a fresh set of nodes for each). Every node is its own process.
import { copyFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ApiClient } from '@shoal/node'
import { buildCalibrationModel } from '@shoal/runtime/calibration-model'
import { record, table } from '../record.mjs'
import { startNodeProcess, tempDir, waitFor } from '../lib.mjs'

// SHOAL_BENCH_PEERS=4 runs one size only, for trying changes
const FETCHERS = process.env.SHOAL_BENCH_PEERS != null ? [Number(process.env.SHOAL_BENCH_PEERS)] : [1, 4, 8]
// SHOAL_BENCH_EXCHANGE=shoal (or bitswap) measures one exchange only
const EXCHANGES = process.env.SHOAL_BENCH_EXCHANGE != null ? [process.env.SHOAL_BENCH_EXCHANGE] : ['shoal', 'bitswap']
const common = ['--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--no-gpu', '--cpu-threads', '1', '--ad-interval', '1000']

/** Starts a node process on a fresh data dir and connects an API client to it. */
async function node (exchange, bootstrap, calibrationFrom) {
  const dataDir = await tempDir('shoal-bench-models-')
  // calibrating nine nodes at once on a small machine would only measure each other: reuse the first's
  if (calibrationFrom != null) await copyFile(join(calibrationFrom, 'calibration.json'), join(dataDir, 'calibration.json'))
  const proc = startNodeProcess(['--data-dir', dataDir, ...common, ...(bootstrap != null ? ['--bootstrap', bootstrap] : [])], { timeoutMs: 60_000, env: { SHOAL_FETCH_OVER: exchange } })
  const ready = await proc.ready
  return { proc, dataDir, ...ready, client: await ApiClient.connect(dataDir) }
}

/** Fetches on every given node at once; resolves with the wall time until the last has the model. */
async function fetchAll (nodes, cid, from) {
  const started = performance.now()
  const summaries = await Promise.all(nodes.map(async n => {
    let p = await n.client.startFetch(cid, [], from)
    while (p.state === 'fetching') {
      await new Promise(resolve => setTimeout(resolve, 20))
      p = await n.client.fetchProgress(cid)
    }
    if (p.state !== 'done') throw new Error(`fetch on ${n.peerId} failed: ${p.error}`)
    return p.summary
  }))
  return { wallMs: performance.now() - started, summaries }
}

async function forget (nodes, cid) {
  for (const n of nodes) await n.client.removeModel(cid)
  // let the next ads say these nodes no longer hold it
  await new Promise(resolve => setTimeout(resolve, 2500))
}

export async function run ({ record: save }) {
  const MB = 1e6
  // four 2500x2500 float32 layers: 100 MB of weights, a real ONNX model that every node checks on arrival
  const bytes = buildCalibrationModel({ batch: 1, width: 2500, layers: 4 })
  const file = join(await tempDir('shoal-bench-model-file-'), 'model.onnx')
  await writeFile(file, bytes)
  const rows = []
  for (const exchange of EXCHANGES) rows.push(...await measure(exchange, bytes))
  const markdown = [
    `**Model distribution**: a ${(bytes.byteLength / MB).toFixed(0)} MB model (${Math.ceil(bytes.byteLength / 2 ** 20)} blocks of 1 MiB) from one publisher to N peers, every node its own process on loopback.`,
    'Swarm: the N peers fetch at once, each from every holder it finds (ads, DHT). Sequential: N copies one after another, each from the publisher alone (`--from`).',
    'Exchange: how blocks travel, `/shoal/block/1.0.0` or bitswap 1.2.0 (`SHOAL_FETCH_OVER=bitswap`), each on a fresh set of nodes.',
    '',
    table(['exchange', 'peers', 'swarm', 'sequential copies', 'swarm / sequential', 'swarm / swarm with 1 peer', 'aggregate rate', 'most providers of one fetch', 'MB twice'], rows)
  ].join('\n')
  process.stdout.write(markdown + '\n')
  if (save) await record('models', 'pnpm bench models --record', markdown)
}

/** Starts a publisher and the fetchers, all fetching over `exchange`, and measures every group size. */
async function measure (exchange, bytes) {
  const MB = 1e6
  process.stderr.write(`${exchange}: model ${(bytes.byteLength / MB).toFixed(1)} MB; starting ${Math.max(...FETCHERS) + 1} node processes\n`)
  const publisher = await node(exchange)
  const fetchers = await Promise.all(Array.from({ length: Math.max(...FETCHERS) }, async () => await node(exchange, publisher.addrs[0], publisher.dataDir)))
  const all = [publisher, ...fetchers]
  try {
    await waitFor(async () => (await Promise.all(all.map(async n => (await n.client.peers()).length))).every(c => c === all.length - 1), 'the mesh to converge', 60_000)
    const { cid } = await publisher.client.addModel(bytes)
    await new Promise(resolve => setTimeout(resolve, 2500))

    const rows = []
    let swarmOne
    for (const n of FETCHERS) {
      const group = fetchers.slice(0, n)
      const swarm = await fetchAll(group, cid)
      const providers = Math.max(...swarm.summaries.map(s => s.providers.length))
      const twice = swarm.summaries.reduce((sum, s) => sum + s.duplicateBytes, 0)
      for (const s of swarm.summaries) {
        process.stderr.write(`  ${s.wallMs} ms from ${s.providers.map(p => Math.round(p.bytes / MB)).join('+')} MB, ${Math.round(s.duplicateBytes / MB)} MB twice${s.dropped.length > 0 ? `; dropped: ${s.dropped.map(d => d.reason).join('; ')}` : ''}\n`)
      }
      await forget(group, cid)
      let sequentialMs = 0
      for (const f of group) sequentialMs += (await fetchAll([f], cid, [publisher.peerId])).wallMs
      await forget(group, cid)
      swarmOne ??= swarm.wallMs
      process.stderr.write(`${exchange}, ${n} peers: swarm ${Math.round(swarm.wallMs)} ms, sequential ${Math.round(sequentialMs)} ms\n`)
      rows.push([
        exchange,
        String(n),
        `${(swarm.wallMs / 1000).toFixed(2)} s`,
        `${(sequentialMs / 1000).toFixed(2)} s`,
        (swarm.wallMs / sequentialMs).toFixed(2),
        (swarm.wallMs / swarmOne).toFixed(2),
        `${(n * bytes.byteLength / MB / (swarm.wallMs / 1000)).toFixed(0)} MB/s`,
        String(providers),
        (twice / MB).toFixed(0)
      ])
    }
    return rows
  } finally {
    for (const n of all) n.proc.proc.kill('SIGTERM')
  }
}
