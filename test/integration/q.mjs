import { ShoalNode, resolveConfig } from '@shoal/node'
import { buildCalibrationModel } from '@shoal/runtime/calibration-model'
import { mkdtemp } from 'node:fs/promises'
const cal = { providers: [{ name: 'cpu', gflops: 50 }], failed: [], gpu: null, measuredAt: 0 }
async function start(bootstrap=[]) {
  const config = await resolveConfig({ dataDir: await mkdtemp('/tmp/shoal-x-'), flags: { listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, mdns: false, adIntervalMs: 300, cpuThreads: 1 }, env: {} })
  const n = new ShoalNode({ config, calibration: cal, api: false, meshKeeperIntervalMs: 500 }); await n.start(); return n
}
const N = Number(process.argv[2] ?? 4)
const bytes = buildCalibrationModel({ batch: 1, width: 1200, layers: 4 })
const a = await start(); const fs = await Promise.all(Array.from({length: N}, () => start([a.addrs[0]])))
while (fs.some(f => f.peers().length < N)) await new Promise(r => setTimeout(r, 100))
const e = await a.addModel(bytes)
await new Promise(r => setTimeout(r, 1000))
let t = performance.now()
const ss = await Promise.all(fs.map(f => f.fetchModel(e.cid)))
console.log(N, 'concurrent', Math.round(performance.now() - t), 'ms', (bytes.byteLength/1e6).toFixed(1), 'MB')
for (const s of ss) console.log(s.wallMs, s.providers.map(p => Math.round(p.bytes/1e6)).join(','), s.dropped.map(d => d.reason).join(';'))
await Promise.all([a, ...fs].map(n => n.stop()))
