import { peerIdFromString } from '@libp2p/peer-id'
import { resolveConfig, ShoalNode } from '@shoal/node'
import { runRemotePiece } from '@shoal/node/wire'
import { InferResponse } from '@shoal/protocol'
import { buildCalibrationModel } from '@shoal/runtime/calibration-model'
import type { PieceRuntime, Tensor } from '@shoal/runtime'
import { afterEach, describe, expect, it } from 'vitest'
import { delayedRuntime, FIXED_CALIBRATION, stopAll, tempDir, TEST_AD_INTERVAL_MS, waitFor, withDynamicBatch } from './helpers.js'

let nodes: ShoalNode[] = []
afterEach(async () => {
  await stopAll(nodes)
  nodes = []
})

const model = withDynamicBatch(buildCalibrationModel({ batch: 1, width: 64, layers: 2 }))
const other = withDynamicBatch(buildCalibrationModel({ batch: 1, width: 32, layers: 1 }))
const rows = (n: number, width = 64): Record<string, Tensor> => ({ input: { dtype: 'float32', dims: [n, width], data: new Uint8Array(Float32Array.from({ length: n * width }, (_, i) => Math.cos(i)).buffer) } })


async function node (bootstrap: string[], flags: Record<string, unknown> = {}, init: Partial<ConstructorParameters<typeof ShoalNode>[0]> & { dataDir?: string } = {}): Promise<ShoalNode> {
  const config = await resolveConfig({ dataDir: init.dataDir ?? await tempDir(), flags: { listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, mdns: false, adIntervalMs: TEST_AD_INTERVAL_MS, cpuThreads: 1, peersOnly: true, ...flags }, env: {} })
  const n = new ShoalNode({ config, calibration: FIXED_CALIBRATION, api: false, meshKeeperIntervalMs: 500, noProviderTimeoutMs: 3000, servingCheckMs: 100, ...init })
  await n.start()
  return n
}

const adOf = (seer: ShoalNode, peer: ShoalNode): any => seer.peers().find(p => p.peerId === peer.peerId)

describe('a volunteer\'s pause (docs/operators.md, "What you give")', () => {
  it('a paused worker finishes the piece it runs, takes no new one, and stays paused across a restart; resumed, it takes pieces again', async () => {
    const submitter = await node([], { maxConcurrency: 0 })
    const dir = await tempDir()
    let slow = await node([submitter.addrs[0]], { maxConcurrency: 1 }, { runtime: delayedRuntime(400), dataDir: dir })
    const steady = await node([submitter.addrs[0]], { maxConcurrency: 1 })
    nodes = [submitter, slow, steady]
    const { cid } = await submitter.addModel(model)
    await Promise.all([slow, steady].map(async n => await n.addModel(model)))
    await waitFor(() => [slow, steady].every(w => adOf(submitter, w)?.models.includes(cid)), 'both workers\' ads')
    const job = submitter.submitJob(cid, rows(12), { rowsPerPiece: 2, verify: 'off', endgame: false })
    const done = job.run()
    // once the slow worker runs a piece (its one slot taken), it is paused
    await waitFor(() => slow.status().capacity.freeSlots === 0, 'the slow worker to run a piece')
    const view = await slow.pause()
    expect(view).toMatchObject({ accepting: false, paused: true, reasons: ['paused (shoal node resume)'] })
    const result = await done
    // the piece it ran when paused was finished and kept; every other went to the steady worker
    expect(result.progress.perPeer[slow.peerId]).toBe(1)
    expect(result.progress.perPeer[steady.peerId]).toBe(5)
    await waitFor(() => adOf(submitter, slow)?.paused === true, 'the paused ad')
    expect(adOf(submitter, slow).freeSlots).toBe(0)
    const second = await submitter.submitJob(cid, rows(8), { rowsPerPiece: 2, verify: 'off' }).run()
    expect(second.progress.perPeer).toEqual({ [steady.peerId]: 4 })
    // a pause lasts across a restart
    await slow.stop()
    slow = await node([submitter.addrs[0]], { maxConcurrency: 1 }, { dataDir: dir })
    nodes.push(slow)
    expect(slow.status().serving).toMatchObject({ accepting: false, paused: true })
    expect(slow.status().capacity.freeSlots).toBe(0)
    expect(await slow.resume()).toMatchObject({ accepting: true, paused: false, reasons: [] })
    await waitFor(() => adOf(submitter, slow)?.paused === false && adOf(submitter, slow)?.models.includes(cid), 'the resumed ad')
    const answer = await runRemotePiece(async (peer, protocol, options) => await submitter.libp2p.dialProtocol(peer, protocol, options), peerIdFromString(slow.peerId),
      { jobId: 'j', pieceId: 0, modelCid: cid, inputs: rows(2), deadlineMs: 20_000, maxResponseBytes: 1 << 20 }, AbortSignal.timeout(20_000))
    expect(answer.outputs.output.dims).toEqual([2, 64])
  })
})

describe('a volunteer\'s hours, idleness and power', () => {
  it('outside its hours, with the machine in use, or on battery a worker advertises no free slots and refuses pieces as busy; back inside them it serves', async () => {
    let minute = 20 * 60
    let busy = false
    let onAc: boolean | null = true
    const submitter = await node([], { maxConcurrency: 0 })
    const worker = await node([submitter.addrs[0]], { hours: ['9-17', '19:30-21:00'], whenIdle: true, onlyOnAc: true }, {
      machine: { minuteOfDay: () => minute, busy: () => busy, onAc: async () => onAc }
    })
    nodes = [submitter, worker]
    const { cid } = await submitter.addModel(model)
    await worker.addModel(model)
    await waitFor(() => adOf(submitter, worker)?.models.includes(cid), 'the worker\'s ad')
    expect(worker.status().serving).toMatchObject({ accepting: true, hours: ['9-17', '19:30-21:00'], whenIdle: true, onlyOnAc: true, machineBusy: false, onAc: true })
    const send = async (): Promise<any> => await runRemotePiece(async (peer, protocol, options) => await submitter.libp2p.dialProtocol(peer, protocol, options), peerIdFromString(worker.peerId),
      { jobId: 'j', pieceId: 0, modelCid: cid, inputs: rows(1), deadlineMs: 10_000, maxResponseBytes: 1 << 20 }, AbortSignal.timeout(10_000)).catch(err => err)
    expect((await send()).outputs).toBeDefined()
    minute = 22 * 60
    busy = true
    onAc = false
    await waitFor(() => !worker.status().serving.accepting, 'the worker to stop taking pieces')
    expect(worker.status().serving.reasons).toEqual(['outside its hours (09:00-17:00, 19:30-21:00)', 'the machine is in use by other programs (--when-idle)', 'on battery (--only-on-ac)'])
    const refused = await send()
    expect(refused.code).toBe(InferResponse.Code.OVERLOADED)
    expect(refused.message).toMatch(/takes no new pieces now: outside its hours/)
    await waitFor(() => adOf(submitter, worker)?.paused === true, 'the worker\'s paused ad')
    // one by one the reasons go; the last one gone, it serves
    minute = 10 * 60
    busy = false
    await waitFor(() => worker.status().serving.reasons.length === 1, 'only the battery left')
    expect(worker.status().serving.accepting).toBe(false)
    onAc = null
    await waitFor(() => worker.status().serving.accepting, 'serving again: the OS no longer tells, so it serves')
    expect((await send()).outputs).toBeDefined()
  })
})

describe('a volunteer\'s choice of models', () => {
  it('a refused model is neither advertised nor served; an allow-list serves only what it names; jobs go around both', async () => {
    const submitter = await node([], { maxConcurrency: 0 })
    const { cid } = await submitter.addModel(model)
    const { cid: otherCid } = await submitter.addModel(other)
    const refuser = await node([submitter.addrs[0]], { refuseModels: [cid] })
    const picky = await node([submitter.addrs[0]], { serveModels: [otherCid] })
    const open = await node([submitter.addrs[0]])
    nodes = [submitter, refuser, picky, open]
    await Promise.all([refuser, picky, open].map(async n => { await n.addModel(model); await n.addModel(other) }))
    await waitFor(() => adOf(submitter, open)?.models.length === 2 && adOf(submitter, refuser)?.models.length === 1 && adOf(submitter, picky)?.models.length === 1, 'the three ads')
    expect(adOf(submitter, refuser)).toMatchObject({ models: [otherCid], refusedModels: [cid], listedOnly: false })
    expect(adOf(submitter, picky)).toMatchObject({ models: [otherCid], listedOnly: true })
    expect(adOf(submitter, picky).refusedModels).toContain(cid)
    // a piece sent anyway is refused, saying why
    const answer = await runRemotePiece(async (peer, protocol, options) => await submitter.libp2p.dialProtocol(peer, protocol, options), peerIdFromString(refuser.peerId),
      { jobId: 'j', pieceId: 0, modelCid: cid, inputs: rows(1), deadlineMs: 10_000, maxResponseBytes: 1 << 20 }, AbortSignal.timeout(10_000)).catch(err => err)
    expect(answer.code).toBe(InferResponse.Code.MODEL_UNAVAILABLE)
    expect(answer.message).toMatch(/volunteer does not serve model/)
    const result = await submitter.submitJob(cid, rows(12), { rowsPerPiece: 1, verify: 'off' }).run()
    expect(result.progress.perPeer).toEqual({ [open.peerId]: 12 })
    expect(result.progress.failedAttempts).toBe(0)
    const both = await submitter.submitJob(otherCid, rows(24, 32), { rowsPerPiece: 1, verify: 'off', endgame: false }).run()
    expect(Object.keys(both.progress.perPeer).sort()).toEqual([refuser.peerId, picky.peerId, open.peerId].sort())
  })
})
