import { resolveConfig, ShoalNode } from '@shoal/node'
import { buildCalibrationModel } from '@shoal/runtime/calibration-model'
import { SessionCache } from '@shoal/runtime'
import type { PieceRuntime, Tensor } from '@shoal/runtime'
import { afterEach, describe, expect, it } from 'vitest'
import { FIXED_CALIBRATION, localRun, sameBytes, startNode, stopAll, tempDir, TEST_AD_INTERVAL_MS, waitFor, withDynamicBatch } from './helpers.js'

let nodes: ShoalNode[] = []
afterEach(async () => {
  await stopAll(nodes)
  nodes = []
})

const MODEL = withDynamicBatch(buildCalibrationModel({ batch: 1, width: 64, layers: 2 }))
const x = (rows: number): Tensor => ({ dtype: 'float32', dims: [rows, 64], data: new Uint8Array(Float32Array.from({ length: rows * 64 }, (_, i) => Math.sin(i)).buffer) })

/** How long a worker's runs wait before computing (set by the test), and how many wait now. */
interface Delay { ms: number, waiting: number }

/** A worker advertising `gflops` whose runs first wait `delay.ms`. */
async function worker (bootstrap: string[], gflops: number, delay: Delay): Promise<ShoalNode> {
  const real = new SessionCache({ providers: ['cpu'], cpuThreads: 1 })
  const runtime: PieceRuntime = {
    run: async (cid, load, inputs, options) => {
      delay.waiting++
      try {
        if (delay.ms > 0) await new Promise(resolve => setTimeout(resolve, delay.ms))
      } finally {
        delay.waiting--
      }
      return await real.run(cid, load, inputs, options)
    },
    close: async () => { await real.close() }
  }
  const config = await resolveConfig({ dataDir: await tempDir(), flags: { listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, mdns: false, adIntervalMs: TEST_AD_INTERVAL_MS, cpuThreads: 1 }, env: {} })
  const node = new ShoalNode({ config, calibration: { ...FIXED_CALIBRATION, providers: [{ name: 'cpu', gflops }] }, api: false, meshKeeperIntervalMs: 500, noProviderTimeoutMs: 3000, runtime })
  await node.start()
  return node
}

/** A submitter (computing nothing unless `localSlots`) and workers of these speeds, every one holding the model. */
async function mesh (workers: Array<{ gflops: number }>, localSlots = 0): Promise<{ submitter: ShoalNode, workers: ShoalNode[], cid: string, delays: Delay[] }> {
  const submitter = await startNode([], { maxConcurrency: localSlots })
  const delays = workers.map(() => ({ ms: 0, waiting: 0 }))
  const rest = await Promise.all(workers.map(async (w, i) => await worker([submitter.addrs[0]], w.gflops, delays[i])))
  nodes = [submitter, ...rest]
  const [model] = await Promise.all(nodes.map(async n => await n.addModel(MODEL)))
  await waitFor(() => submitter.peers().length === workers.length && submitter.peers().every(p => p.models.includes(model.cid)), 'every worker\'s ad, listing the model')
  return { submitter, workers: rest, cid: model.cid, delays }
}

describe('inference requests', () => {
  it('go whole to the peer expected to answer first, with the answer a local run gives', async () => {
    const { submitter, workers, cid } = await mesh([{ gflops: 50 }, { gflops: 500 }])
    const input = x(3)
    const result = await submitter.infer(cid, { input }, { verify: 'off', hedge: false })
    expect(result.peerId).toBe(workers[1].peerId)
    expect(result.hedged).toBe(false)
    expect(result.failures).toEqual([])
    expect(sameBytes(result.outputs.output, (await localRun(MODEL, { input })).output)).toBe(true)
  })

  it('run here when this node is expected to answer first', async () => {
    const { submitter, cid } = await mesh([{ gflops: 50 }], 2)
    const result = await submitter.infer(cid, { input: x(2) }, { verify: 'off' })
    expect(result.peerId).toBe(submitter.peerId)
  })

  it('are hedged to a second peer when the first is slower than its p95, and the first answer wins', async () => {
    const { submitter, workers, cid, delays } = await mesh([{ gflops: 5000 }, { gflops: 50 }])
    // the fastest answers a few requests quickly: its p95 is known
    for (let i = 0; i < 5; i++) expect((await submitter.infer(cid, { input: x(2) }, { verify: 'off', hedge: false })).peerId).toBe(workers[0].peerId)
    delays[0].ms = 3000
    const started = performance.now()
    const result = await submitter.infer(cid, { input: x(2) }, { verify: 'off' })
    expect(result.hedged).toBe(true)
    expect(result.peerId).toBe(workers[1].peerId)
    // the hedge's answer came long before the slow copy's would have
    expect(performance.now() - started).toBeLessThan(3000)
  })

  it('survive their peer dying mid-request: a retry on another, never an error', async () => {
    const { submitter, workers, cid, delays } = await mesh([{ gflops: 5000 }, { gflops: 50 }])
    const input = x(8)
    delays[0].ms = 3000
    const pending = submitter.infer(cid, { input }, { verify: 'off', hedge: false })
    // the favourite has the request now; it dies before answering
    await waitFor(() => delays[0].waiting > 0, 'the request at the favourite')
    await workers[0].kill()
    const result = await pending
    expect(result.peerId).toBe(workers[1].peerId)
    expect(result.failures.map(f => f.peerId)).toEqual([workers[0].peerId])
    expect(sameBytes(result.outputs.output, (await localRun(MODEL, { input })).output)).toBe(true)
  })
})
