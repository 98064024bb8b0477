import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { resolveConfig, ShoalNode } from '@shoal/node'
import { buildCalibrationModel } from '@shoal/runtime/calibration-model'
import type { PieceRuntime, Tensor } from '@shoal/runtime'
import { chromium } from 'playwright-core'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { delayedRuntime, FIXED_CALIBRATION, stopAll, tempDir, TEST_AD_INTERVAL_MS, waitFor, withDynamicBatch } from './helpers.js'

// Debian's Chromium, which the README's test line installs (scripts/system-packages.mjs) when it runs
// as root, as CI does; without root and without Chromium these tests cannot run, and say so.
const CHROMIUM = '/usr/bin/chromium'
const haveChromium = existsSync(CHROMIUM)
if (!haveChromium) process.stderr.write(`dashboard.spec: ${CHROMIUM} is missing (apt-get install chromium, as root): the dashboard's browser tests do not run\n`)

const model = withDynamicBatch(buildCalibrationModel({ batch: 1, width: 64, layers: 2 }))
const rows = (n: number): Record<string, Tensor> => ({ input: { dtype: 'float32', dims: [n, 64], data: new Uint8Array(Float32Array.from({ length: n * 64 }, (_, i) => Math.sin(i)).buffer) } })
/** What a hostile peer puts in its ad's GPU name: markup, which the page must show as text. */
const PAYLOAD = '<img src=x onerror="window.__pwned=1">'


async function node (bootstrap: string[], options: { api?: boolean, gpu?: string, runtime?: PieceRuntime } = {}): Promise<ShoalNode> {
  const config = await resolveConfig({ dataDir: await tempDir(), flags: { listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, mdns: false, adIntervalMs: TEST_AD_INTERVAL_MS, cpuThreads: 1, peersOnly: true, maxConcurrency: 1 }, env: {} })
  const calibration = options.gpu != null ? { ...FIXED_CALIBRATION, gpu: options.gpu, providers: [{ name: 'webgpu', gflops: 500 }, { name: 'cpu', gflops: 50 }] } : FIXED_CALIBRATION
  const n = new ShoalNode({ config, calibration, api: options.api === true, meshKeeperIntervalMs: 500, ...(options.runtime != null ? { runtime: options.runtime } : {}) })
  await n.start()
  return n
}

const text = async (page: Page, selector: string): Promise<string> => await page.locator(selector).innerText()

describe.skipIf(!haveChromium)('the dashboard in a real browser (Chromium)', () => {
  let nodes: ShoalNode[] = []
  let browser: Browser
  let self: ShoalNode
  let peer: ShoalNode
  let url: string
  let cid: string

  beforeAll(async () => {
    self = await node([], { api: true, runtime: delayedRuntime(400) })
    peer = await node([self.addrs[0]], { gpu: PAYLOAD, runtime: delayedRuntime(400) })
    nodes = [self, peer]
    cid = (await self.addModel(model)).cid
    await peer.addModel(model)
    await waitFor(() => self.peers().some(p => p.peerId === peer.peerId && p.models.includes(cid)) && peer.peers().some(p => p.peerId === self.peerId && p.models.includes(cid)), 'both ads')
    const info = JSON.parse(await readFile(join(self.config.dataDir, 'api.json'), 'utf8'))
    url = `${info.url as string}/dashboard#token=${info.token as string}`
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
  }, 60_000)

  afterAll(async () => {
    await browser?.close()
    await stopAll(nodes)
  })

  it('loads with the token: the node, its peers (a peer\'s markup shown as text, never run), its contribution and credit; updates while a job runs; phone-sized', async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 } })
    const errors: string[] = []
    page.on('pageerror', err => errors.push(err.message))
    await page.goto(url)
    await page.waitForSelector('body[data-loaded="true"]')
    // the token left the address bar
    expect(page.url()).not.toContain('token')
    expect(await page.locator('#peer-id').getAttribute('title')).toBe(self.peerId)
    expect(await text(page, '#serving')).toBe('Taking pieces from peers')
    const peers = await text(page, '#peers tbody')
    expect(peers).toContain(peer.peerId.slice(-6))
    expect(peers).toContain(PAYLOAD)
    expect(await page.locator('#peers img').count()).toBe(0)
    expect(await page.evaluate(() => (window as any).__pwned)).toBeUndefined()
    expect(await page.locator('#mesh circle.peer-dot').count()).toBe(1)
    expect(await text(page, '#contributed')).toMatch(/pieces\s+0/)
    // a job from the peer runs here: the page shows the slot busy, then the pieces done and the receipts earned
    const job = peer.submitJob(cid, rows(8), { rowsPerPiece: 1, verify: 'off' }).run()
    await page.waitForFunction(() => /1 of 1 busy/.test(document.getElementById('running')!.textContent!), undefined, { timeout: 15_000 })
    await job
    await page.waitForFunction(() => /pieces\s*8/.test(document.getElementById('contributed')!.innerText), undefined, { timeout: 15_000 })
    await page.waitForFunction(() => /receipts earned\s*8 from 1/.test(document.getElementById('credit')!.innerText), undefined, { timeout: 15_000 })
    // a job from this node: its progress, live, then done
    const mine = self.submitJob(cid, rows(12), { rowsPerPiece: 1, verify: 'off' })
    const done = mine.run()
    await page.waitForFunction(() => /running/.test(document.querySelector('#jobs tbody')!.textContent!), undefined, { timeout: 15_000 })
    await done
    await page.waitForFunction(() => /done\s*12\/12/.test((document.querySelector('#jobs tbody') as HTMLElement).innerText), undefined, { timeout: 15_000 })
    expect(await text(page, '#models tbody')).toContain(cid.slice(-6))
    // readable on a phone: nothing wider than the screen but the tables, which scroll on their own
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390)
    expect(errors).toEqual([])
    await page.close()
  }, 90_000)

  it('its pause button pauses the node, and resume resumes it', async () => {
    const page = await browser.newPage()
    await page.goto(url)
    await page.waitForSelector('body[data-loaded="true"]')
    await page.click('#pause')
    await page.waitForFunction(() => /Taking no new pieces: paused/.test(document.getElementById('serving')!.textContent!))
    expect(self.status().serving.paused).toBe(true)
    await page.click('#resume')
    await page.waitForFunction(() => document.getElementById('serving')!.textContent === 'Taking pieces from peers')
    expect(self.status().serving.paused).toBe(false)
    await page.close()
  }, 30_000)

  it('refuses without the token, or with a wrong one: the page says so, and the API gives nothing', async () => {
    const page = await browser.newPage()
    const base = url.slice(0, url.indexOf('#'))
    await page.goto(base)
    await page.waitForFunction(() => /No token/.test(document.getElementById('state')!.textContent!))
    expect(await text(page, '#peers tbody')).toBe('')
    const anonymous = await page.evaluate(async () => (await fetch('/v1/status')).status)
    expect(anonymous).toBe(401)
    // a wrong token pasted into the same tab
    await page.goto(base + '#token=' + 'ab'.repeat(32))
    await page.waitForFunction(() => /refused this page's token/.test(document.getElementById('state')!.textContent!))
    expect(await page.locator('body[data-loaded="true"]').count()).toBe(0)
    // the page's own policy: no script but its own, no frames
    const response = await page.goto(base)
    expect(response!.headers()['content-security-policy']).toMatch(/script-src 'self'.*frame-ancestors 'none'/)
    await page.close()
  }, 30_000)
})
