import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { resolveConfig, ShoalNode } from '@shoal/node'
import { buildCalibrationModel } from '@shoal/runtime/calibration-model'
import type { Tensor } from '@shoal/runtime'
import { afterEach, describe, expect, it } from 'vitest'
import { FIXED_CALIBRATION, localRun, metricValue, sameBytes, startNode, stopAll, tempDir, TEST_AD_INTERVAL_MS, waitFor, withDynamicBatch } from './helpers.js'

let nodes: ShoalNode[] = []
afterEach(async () => {
  await stopAll(nodes)
  nodes = []
})

/** A worker whose every answer is zeros of the right shape: a lazy or broken peer, as a stranger may run. */
async function cheater (bootstrap: string[]): Promise<ShoalNode> {
  const config = await resolveConfig({
    dataDir: await tempDir(),
    flags: { listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, mdns: false, adIntervalMs: TEST_AD_INTERVAL_MS, cpuThreads: 1 },
    env: {}
  })
  const zeros = (t: Tensor): Tensor => ({ ...t, data: new Uint8Array(t.data.byteLength) })
  const node = new ShoalNode({
    config,
    calibration: FIXED_CALIBRATION,
    api: false,
    meshKeeperIntervalMs: 500,
    noProviderTimeoutMs: 3000,
    runtime: {
      // the test's model maps [rows, 64] to [rows, 64]: zeros of the input's shape pass every shape check
      run: async (_cid, _load, inputs) => ({ outputs: { output: zeros(Object.values(inputs)[0]) }, provider: 'cpu', computeMs: 1 }),
      close: async () => {}
    }
  })
  await node.start()
  return node
}

describe('result verification (spot)', () => {
  it('a worker answering zeros is caught, its answers replaced by this node\'s own run, and it gets no pieces afterwards, across restarts', async () => {
    const submitter = await startNode()
    const liar = await cheater([submitter.addrs[0]])
    nodes = [submitter, liar]
    // an MLP of 64 x 64 layers: its output has its input's shape, [batch, 64]
    const bytes = withDynamicBatch(buildCalibrationModel({ batch: 1, width: 64, layers: 2 }))
    const model = await submitter.addModel(bytes)
    await liar.addModel(bytes)
    await waitFor(() => submitter.peers().some(p => p.peerId === liar.peerId && p.models.includes(model.cid)), 'the liar\'s ad to list the model')
    const x: Tensor = { dtype: 'float32', dims: [32, 64], data: new Uint8Array(Float32Array.from({ length: 32 * 64 }, (_, i) => Math.sin(i) + 2).buffer) }
    const reference = await localRun(bytes, { input: x })

    const result = await submitter.submitJob(model.cid, { input: x }, { rowsPerPiece: 4, verify: 'spot' }).run()
    expect(sameBytes(result.outputs.output, reference.output)).toBe(true)
    const v = result.progress.verification
    expect(v.excluded).toEqual([liar.peerId])
    expect(v.mismatches).toBeGreaterThan(0)
    expect(v.mismatches).toBe(result.progress.perPeer[liar.peerId])
    expect(submitter.trust.excluded(liar.peerId)).toBe(true)
    // and counted for the operator (GET /metrics), once the job has been counted
    await waitFor(async () => metricValue(await submitter.metrics.text(), 'shoal_peers_excluded_total') === 1, 'the exclusion to be counted')
    const text = await submitter.metrics.text()
    expect(metricValue(text, 'shoal_job_checked_pieces_total{outcome="wrong"}')).toBe(v.mismatches)

    // the next job, unverified, gives it nothing: an honest worker and this node do the work
    const honest = await startNode([submitter.addrs[0]])
    nodes.push(honest)
    await honest.addModel(bytes)
    await waitFor(() => submitter.peers().some(p => p.peerId === honest.peerId && p.models.includes(model.cid)), 'the honest worker\'s ad to list the model')
    const next = await submitter.submitJob(model.cid, { input: x }, { rowsPerPiece: 4 }).run()
    expect(sameBytes(next.outputs.output, reference.output)).toBe(true)
    expect(next.progress.perPeer[liar.peerId]).toBeUndefined()

    // the exclusion is in the data dir, for the node's next start
    const file = join(submitter.config.dataDir, 'trust.json')
    await waitFor(async () => await readFile(file, 'utf8').then(text => JSON.parse(text)[liar.peerId]?.offences === 1, () => false), 'trust.json to record the liar')
    await submitter.stop()
    nodes = nodes.filter(n => n !== submitter)
    const restarted = new ShoalNode({ config: submitter.config, calibration: FIXED_CALIBRATION, api: false })
    nodes.push(restarted)
    await restarted.start()
    expect(restarted.peerId).toBe(submitter.peerId)
    expect(restarted.trust.excluded(liar.peerId)).toBe(true)
    expect(restarted.trust.excluded(honest.peerId)).toBe(false)
  })
})
