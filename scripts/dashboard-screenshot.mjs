// `pnpm screenshot`: the dashboard's screenshots in docs/ (docs/operators.md, "The dashboard"), taken in
// Debian's Chromium (apt-get install chromium) of a small mesh on loopback: this node with the API, two
// workers, a job of theirs run here and one of this node's own on them.
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { resolveConfig, ShoalNode } from '@shoal/node'
import { buildCalibrationModel } from '@shoal/runtime/calibration-model'
import { chromium } from 'playwright-core'
import { dynamicBatch } from './lib.mjs'

const CHROMIUM = process.env.SHOAL_CHROMIUM ?? '/usr/bin/chromium'
const work = await mkdtemp(join(tmpdir(), 'shoal-shot-'))
const nodes = []

async function node (name, bootstrap, api = false) {
  const config = await resolveConfig({ dataDir: join(work, name), flags: { listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, mdns: false, adIntervalMs: 1000, cpuThreads: 1, maxConcurrency: 2, peersOnly: true, cpuShare: api ? 50 : 100 }, env: {} })
  const n = new ShoalNode({ config, calibration: { providers: [{ name: 'cpu', gflops: 42 + nodes.length * 9 }], failed: [], gpu: null, measuredAt: 0 }, api })
  await n.start()
  nodes.push(n)
  return n
}

const rows = n => ({ input: { dtype: 'float32', dims: [n, 64], data: new Uint8Array(Float32Array.from({ length: n * 64 }, (_, i) => Math.sin(i)).buffer) } })
try {
  const self = await node('self', [], true)
  const workers = [await node('worker-a', [self.addrs[0]]), await node('worker-b', [self.addrs[0]])]
  const model = dynamicBatch(buildCalibrationModel({ batch: 1, width: 64, layers: 2 }))
  const { cid } = await self.addModel(model, { name: 'mlp-64@1.0' })
  for (const w of workers) await w.addModel(model)
  while (!workers.every(w => self.peers().some(p => p.peerId === w.peerId && p.models.includes(cid)))) await new Promise(resolve => setTimeout(resolve, 100))
  for (const w of workers) await w.submitJob(cid, rows(64), { rowsPerPiece: 4, verify: 'off' }).run()
  await self.submitJob(cid, rows(96), { rowsPerPiece: 8 }).run()
  const info = JSON.parse(await readFile(join(self.config.dataDir, 'api.json'), 'utf8'))
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
  for (const [file, viewport] of [['dashboard.png', { width: 1100, height: 900 }], ['dashboard-phone.png', { width: 390, height: 844 }]]) {
    const page = await browser.newPage({ viewport, deviceScaleFactor: file.includes('phone') ? 2 : 1 })
    await page.goto(`${info.url}/dashboard#token=${info.token}`)
    await page.waitForSelector('body[data-loaded="true"]')
    await page.screenshot({ path: new URL(`../docs/${file}`, import.meta.url).pathname, fullPage: !file.includes('phone') })
    await page.close()
    process.stdout.write(`docs/${file}\n`)
  }
  await browser.close()
} finally {
  await Promise.all(nodes.map(n => n.stop().catch(() => {})))
  await rm(work, { recursive: true, force: true })
}
