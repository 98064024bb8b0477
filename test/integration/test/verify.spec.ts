import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { resolveConfig, ShoalNode } from '@shoal/node'
import { buildCalibrationModel } from '@shoal/runtime/calibration-model'
import { AnswerCommitment, commitmentPayload, sha256Of } from '@shoal/protocol'
import { SessionCache } from '@shoal/runtime'
import type { PieceRuntime, Tensor } from '@shoal/runtime'
import { afterEach, describe, expect, it } from 'vitest'
import { FIXED_CALIBRATION, localRun, metricValue, sameBytes, startNode, stopAll, tempDir, TEST_AD_INTERVAL_MS, waitFor, withDynamicBatch } from './helpers.js'

let nodes: ShoalNode[] = []
afterEach(async () => {
  await stopAll(nodes)
  nodes = []
})

/**
 * How a cheating worker answers, as a stranger may run one: `zeros` (every answer zeros of the right
 * shape), `perturb` (ONNX Runtime's answer, every value times 1 + 1e-3: a subtly broken provider),
 * `lazy` (the answer it computed for an earlier piece of the same shape, computing only the first).
 * And one that does not cheat: `webgpu-like`, an honest worker of another execution provider, whose
 * answers differ from the CPU's in their last bits (every value times 1 + 1e-6).
 */
type Behaviour = 'zeros' | 'perturb' | 'lazy' | 'webgpu-like'

function behavingRuntime (cheat: Behaviour): PieceRuntime {
  const real = new SessionCache({ providers: ['cpu'], cpuThreads: 1 })
  const earlier = new Map<string, Promise<Record<string, Tensor>>>()
  const zeros = (t: Tensor): Tensor => ({ ...t, data: new Uint8Array(t.data.byteLength) })
  return {
    run: async (cid, load, inputs, options) => {
      const shape = Object.values(inputs)[0].dims.join()
      if (cheat === 'zeros') return { outputs: { output: zeros(Object.values(inputs)[0]) }, provider: 'cpu', computeMs: 1 }
      // the lazy one computes the first piece of a shape only: pieces arriving meanwhile wait for it
      if (cheat === 'lazy' && earlier.has(shape)) return { outputs: await earlier.get(shape)!, provider: 'cpu', computeMs: 1 }
      const run = real.run(cid, load, inputs, options)
      if (cheat === 'lazy') earlier.set(shape, run.then(r => r.outputs))
      const result = await run
      // perturb: ten times the tolerance; webgpu-like: an honest provider whose last bits differ (1e-6, within it)
      if (cheat === 'perturb' || cheat === 'webgpu-like') {
        const factor = cheat === 'perturb' ? 1 + 1e-3 : 1 + 1e-6
        for (const t of Object.values(result.outputs)) {
          const values = new Float32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4).map(v => v * factor)
          t.data = new Uint8Array(values.buffer)
        }
        if (cheat === 'webgpu-like') return { ...result, provider: 'webgpu' }
      }
      return result
    },
    close: async () => { await real.close() }
  }
}

/** A worker that answers as `cheat` says (by default, zeros: the test's model maps [rows, 64] to [rows, 64], so zeros of the input's shape pass every shape check). */
async function workerAnswering (bootstrap: string[], cheat: Behaviour = 'zeros', init: { signCommitment?: (payload: Uint8Array) => Promise<Uint8Array> } = {}): Promise<ShoalNode> {
  const config = await resolveConfig({
    dataDir: await tempDir(),
    flags: { listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, mdns: false, adIntervalMs: TEST_AD_INTERVAL_MS, cpuThreads: 1 },
    env: {}
  })
  const node = new ShoalNode({
    config,
    calibration: FIXED_CALIBRATION,
    api: false,
    meshKeeperIntervalMs: 500,
    noProviderTimeoutMs: 3000,
    runtime: behavingRuntime(cheat),
    ...init
  })
  await node.start()
  return node
}

/** A submitter and a worker answering zeros, both holding the test's model (an MLP of 64 x 64 layers: its output has its input's shape, [batch, 64]), the worker's ad seen. */
async function liarMesh (init: { signCommitment?: (payload: Uint8Array) => Promise<Uint8Array> } = {}): Promise<{ submitter: ShoalNode, liar: ShoalNode, bytes: Uint8Array, model: { cid: string } }> {
  const submitter = await startNode()
  const liar = await workerAnswering([submitter.addrs[0]], 'zeros', init)
  nodes = [submitter, liar]
  const bytes = withDynamicBatch(buildCalibrationModel({ batch: 1, width: 64, layers: 2 }))
  const model = await submitter.addModel(bytes)
  await liar.addModel(bytes)
  await waitFor(() => submitter.peers().some(p => p.peerId === liar.peerId && p.models.includes(model.cid)), 'the liar\'s ad to list the model')
  return { submitter, liar, bytes, model }
}

describe('result verification (spot)', () => {
  it('a worker answering zeros is caught, its answers replaced by this node\'s own run, and it gets no pieces afterwards, across restarts', async () => {
    const { submitter, liar, bytes, model } = await liarMesh()
    const x: Tensor = { dtype: 'float32', dims: [32, 64], data: new Uint8Array(Float32Array.from({ length: 32 * 64 }, (_, i) => Math.sin(i) + 2).buffer) }
    const reference = await localRun(bytes, { input: x })

    const result = await submitter.submitJob(model.cid, { input: x }, { rowsPerPiece: 4, verify: 'spot' }).run()
    expect(sameBytes(result.outputs.output, reference.output)).toBe(true)
    const v = result.progress.verification
    expect(v.excluded).toEqual([liar.peerId])
    expect(v.mismatches).toBeGreaterThan(0)
    expect(v.mismatches).toBe(result.progress.perPeer[liar.peerId])
    expect(submitter.trust.excluded(liar.peerId)).toBe(true)
    // its standing says so (shoal peers, GET /v1/peers)
    expect(submitter.peers().find(p => p.peerId === liar.peerId)?.standing).toMatchObject({ verified: 0, offences: 1, excludedUntil: expect.any(Number), checkShare: 1 })
    // it is disconnected, and neither side can connect again while it is excluded
    await waitFor(() => submitter.libp2p.getConnections(liar.libp2p.peerId).length === 0, 'the liar to be disconnected')
    expect(await submitter.libp2p.dial(liar.libp2p.peerId).then(() => 'connected', () => 'refused')).toBe('refused')
    expect(await submitter.libp2p.dial(liar.libp2p.getMultiaddrs()[0]).then(() => 'connected', () => 'refused')).toBe('refused')
    // the liar's own dial may look open on its side for a moment (its muxer is selected without a round trip): the submitter closes it after the handshake
    await liar.libp2p.dial(submitter.libp2p.getMultiaddrs()[0]).catch(() => {})
    await waitFor(() => liar.libp2p.getConnections(submitter.libp2p.peerId).length === 0, 'the liar\'s dial to be closed')
    expect(submitter.libp2p.getConnections(liar.libp2p.peerId)).toHaveLength(0)
    // and its gossip score, while remembered, is below gossipsub's gossip threshold
    await waitFor(() => submitter.libp2p.services.pubsub.getScore(liar.peerId) < -10, 'the liar\'s gossip score to fall')
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

    // the liar's signed commitments to its wrong answers are kept as evidence, and they check out:
    // its key signed them, and they name the zeros it sent
    const evidence = submitter.evidence().filter(e => e.peerId === liar.peerId)
    expect(evidence.length).toBe(v.mismatches)
    for (const e of evidence) {
      const commitment = Buffer.from(e.commitment, 'base64')
      expect(await liar.libp2p.peerId.publicKey!.verify(commitmentPayload(commitment), Buffer.from(e.signature, 'base64'))).toBe(true)
      const c = AnswerCommitment.decode(commitment)
      expect(c).toMatchObject({ jobId: e.jobId, pieceId: e.pieceId, modelCid: model.cid })
      const bytes = c.outputs.reduce((n, o) => n + Number(o.byteLength), 0)
      expect(Buffer.from(c.outputsSha256)).toEqual(Buffer.from(sha256Of([new Uint8Array(bytes)])))
    }
    await waitFor(async () => await readFile(join(submitter.config.dataDir, 'evidence.json'), 'utf8').then(text => JSON.parse(text).length === evidence.length, () => false), 'evidence.json to hold the evidence')

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

describe('result verification (spot and full) against three kinds of cheater', () => {
  it('a liar whose signatures do not verify is caught and excluded all the same, but no evidence is kept of it: its commitments are checked once they would be evidence', async () => {
    const { submitter, liar, bytes, model } = await liarMesh({ signCommitment: async () => new Uint8Array(64).fill(7) })
    const x: Tensor = { dtype: 'float32', dims: [16, 64], data: new Uint8Array(Float32Array.from({ length: 16 * 64 }, (_, i) => Math.cos(i) + 2).buffer) }
    const result = await submitter.submitJob(model.cid, { input: x }, { rowsPerPiece: 4, verify: 'spot' }).run()
    expect(sameBytes(result.outputs.output, (await localRun(bytes, { input: x })).output)).toBe(true)
    expect(result.progress.verification.excluded).toEqual([liar.peerId])
    expect(result.progress.verification.mismatches).toBeGreaterThan(0)
    expect(submitter.evidence().filter(e => e.peerId === liar.peerId)).toEqual([])
  })

  it('workers answering zeros, perturbing by 1e-3 or replaying an earlier answer are all excluded, and the outputs are a local run\'s', async () => {
    const spotter = await startNode()
    const boot = [spotter.addrs[0]]
    const voter = await startNode(boot)
    const honest = await startNode(boot)
    const liars = [await workerAnswering(boot, 'zeros'), await workerAnswering(boot, 'perturb'), await workerAnswering(boot, 'lazy')]
    nodes = [spotter, voter, honest, ...liars]
    const bytes = withDynamicBatch(buildCalibrationModel({ batch: 1, width: 64, layers: 2 }))
    const model = await spotter.addModel(bytes)
    for (const n of [voter, honest, ...liars]) await n.addModel(bytes)
    for (const submitter of [spotter, voter]) {
      await waitFor(() => [honest, ...liars].every(w => submitter.peers().some(p => p.peerId === w.peerId && p.models.includes(model.cid))), 'every worker\'s ad to list the model')
    }
    const x: Tensor = { dtype: 'float32', dims: [48, 64], data: new Uint8Array(Float32Array.from({ length: 48 * 64 }, (_, i) => Math.cos(i) + 2).buffer) }
    const reference = await localRun(bytes, { input: x })
    const liarIds = liars.map(l => l.peerId).sort()

    const spot = await spotter.submitJob(model.cid, { input: x }, { rowsPerPiece: 4, verify: 'spot' }).run()
    expect(sameBytes(spot.outputs.output, reference.output)).toBe(true)
    // a liar whose wrong answer was taken was caught on it (a newcomer's every answer is checked): the
    // lazy one's first answer may be right (it computed it), its later ones are not
    const excluded = spot.progress.verification.excluded
    for (const [l, free] of [[liars[0], 0], [liars[1], 0], [liars[2], 1]] as const) {
      if ((spot.progress.perPeer[l.peerId] ?? 0) > free) expect(excluded).toContain(l.peerId)
    }
    expect(excluded.every(id => liarIds.includes(id))).toBe(true)
    expect(excluded.length).toBeGreaterThan(0)

    const full = await voter.submitJob(model.cid, { input: x }, { rowsPerPiece: 4, verify: 'full' }).run()
    expect(sameBytes(full.outputs.output, reference.output)).toBe(true)
    const v = full.progress.verification
    expect(v.policy).toBe('full')
    expect(v.checkedPieces).toBeGreaterThan(0)
    // whichever liars got a piece were outvoted; the honest worker never was
    expect(v.excluded).not.toContain(honest.peerId)
    for (const id of v.excluded) expect(voter.trust.excluded(id)).toBe(true)
    expect(v.excluded.every(id => liarIds.includes(id))).toBe(true)
    expect(v.excluded.length).toBeGreaterThan(0)
    // (agreement between two peers earns neither a record: only this node's own run does)
    expect(voter.trust.get(honest.peerId).offences).toBe(0)
  })
})

describe('result verification among honest peers of different providers', () => {
  it('answers that differ within the tolerance never exclude anyone, over many jobs under spot and full', async () => {
    const submitter = await startNode()
    const boot = [submitter.addrs[0]]
    const cpu = await startNode(boot)
    const gpu = await workerAnswering(boot, 'webgpu-like')
    nodes = [submitter, cpu, gpu]
    const bytes = withDynamicBatch(buildCalibrationModel({ batch: 1, width: 64, layers: 2 }))
    const model = await submitter.addModel(bytes)
    for (const n of [cpu, gpu]) await n.addModel(bytes)
    await waitFor(() => [cpu, gpu].every(w => submitter.peers().some(p => p.peerId === w.peerId && p.models.includes(model.cid))), 'both workers\' ads to list the model')
    const providers = new Set<string>()
    let checked = 0
    for (let i = 0; i < 8; i++) {
      const x: Tensor = { dtype: 'float32', dims: [16, 64], data: new Uint8Array(Float32Array.from({ length: 16 * 64 }, (_, k) => Math.sin(k + i) + 2).buffer) }
      const result = await submitter.submitJob(model.cid, { input: x }, { rowsPerPiece: 2, verify: i % 2 === 0 ? 'spot' : 'full' }).run()
      const v = result.progress.verification
      expect(v).toMatchObject({ mismatches: 0, excluded: [] })
      checked += v.checkedPieces
      for (const p of Object.keys(result.progress.perProvider)) providers.add(p)
    }
    // answers were compared (as records grow, spot checks fewer), both providers answered, and neither worker lost standing
    expect(checked).toBeGreaterThan(8)
    expect([...providers].sort()).toEqual(['cpu', 'webgpu'])
    for (const w of [cpu, gpu]) expect(submitter.peers().find(p => p.peerId === w.peerId)?.standing).toMatchObject({ offences: 0, excludedUntil: null })
    expect(submitter.trust.get(gpu.peerId).record).toBeGreaterThan(0)
  })
})
