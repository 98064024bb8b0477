import { describe, expect, it } from 'vitest'
import { PIPELINE_FORMAT } from '@shoal/protocol'
import type { PipelineManifest } from '@shoal/protocol'
import type { Tensor } from '@shoal/runtime'
import { TrustRecords } from '@shoal/scheduler'
import type { SchedulerPeer } from '@shoal/scheduler'
import { PipelineJob } from '../src/jobs/pipeline-job.js'
import type { PipelineJobDeps } from '../src/jobs/pipeline-job.js'
import type { PieceRequest, PieceResult } from '../src/pieces/infer-client.js'
import type { CreditedJob } from '../src/credit/index.js'

// three stages over float32 [batch, 2]: h = x + 1, g = h * 2, y = g - x (stage 3 reads a job input too)
const CIDS = ['bafkreistageone', 'bafkreistagetwo', 'bafkreistagethree']
const t = (name: string) => ({ name, dtype: 'float32' as const, dims: ['batch', 2] })
const MANIFEST: PipelineManifest = {
  format: PIPELINE_FORMAT,
  model: 'bafkreiwhole',
  inputs: [t('x')],
  outputs: [t('y')],
  stages: [
    { cid: CIDS[0], bytes: 10, inputs: [t('x')], outputs: [t('h')] },
    { cid: CIDS[1], bytes: 10, inputs: [t('h')], outputs: [t('g')] },
    { cid: CIDS[2], bytes: 10, inputs: [t('g'), t('x')], outputs: [t('y')] }
  ]
}

const floats = (tensor: Tensor): Float32Array => new Float32Array(tensor.data.slice().buffer)
const tensor = (dims: number[], values: Float32Array): Tensor => ({ dtype: 'float32', dims, data: new Uint8Array(values.buffer) })

/** What an honest host of each stage answers. */
function compute (cid: string, inputs: Record<string, Tensor>): Record<string, Tensor> {
  if (cid === CIDS[0]) return { h: tensor(inputs.x.dims, floats(inputs.x).map(v => v + 1)) }
  if (cid === CIDS[1]) return { g: tensor(inputs.h.dims, floats(inputs.h).map(v => v * 2)) }
  const x = floats(inputs.x)
  return { y: tensor(inputs.g.dims, floats(inputs.g).map((v, i) => v - x[i])) }
}

const batch = (rows: number): Tensor => tensor([rows, 2], Float32Array.from({ length: rows * 2 }, (_, i) => i))

interface Fake {
  deps: PipelineJobDeps
  /** Most pieces in flight on each peer at once, all stages together. */
  peak: Record<string, number>
  served: Array<{ peer: string, stage: string }>
}

function fake (peers: SchedulerPeer[], answer: (peer: string, request: PieceRequest) => Promise<PieceResult> | undefined = () => undefined, overrides: Partial<PipelineJobDeps> = {}): Fake {
  const running: Record<string, number> = {}
  const peak: Record<string, number> = {}
  const served: Fake['served'] = []
  const deps: PipelineJobDeps = {
    localPeerId: 'me',
    localGflops: 50,
    localSlots: 0,
    cid: 'bagaaierapipeline',
    manifest: MANIFEST,
    peers: () => peers,
    holds: () => false,
    onPeersChanged: () => () => {},
    runRemote: async (peer, request) => {
      running[peer] = (running[peer] ?? 0) + 1
      peak[peer] = Math.max(peak[peer] ?? 0, running[peer])
      try {
        await new Promise(resolve => setTimeout(resolve, 2))
        const special = answer(peer, request)
        if (special != null) return await special
        served.push({ peer, stage: request.modelCid })
        return { outputs: compute(request.modelCid, request.inputs), computeMs: 1, provider: 'cpu' }
      } finally {
        running[peer]--
      }
    },
    runLocal: async (cid, inputs) => ({ outputs: compute(cid, inputs), computeMs: 1, provider: 'cpu' }),
    maxResponseBytes: 1 << 20,
    ...overrides
  }
  return { deps, peak, served }
}

/** The answer of one machine: the three stages over the whole batch. */
function expected (x: Tensor): Tensor {
  const h = compute(CIDS[0], { x }).h
  const g = compute(CIDS[1], { h }).g
  return compute(CIDS[2], { g, x }).y
}

describe('a pipeline job', () => {
  it('runs every micro-batch through every stage in order, outputs joined as one machine gives them, never more on a peer than its slots across stages', async () => {
    const peers = [{ peerId: 'a', gflops: 50, slots: 2 }, { peerId: 'b', gflops: 50, slots: 1 }]
    const { deps, peak, served } = fake(peers)
    const x = batch(24)
    const result = await new PipelineJob(deps, { x }, { rowsPerPiece: 2, verify: 'off' }).run()
    expect(Buffer.from(result.outputs.y.data).equals(Buffer.from(expected(x).data))).toBe(true)
    expect(result.outputs.y.dims).toEqual([24, 2])
    const progress = result.progress as any
    expect(progress.pipeline.microBatches).toBe(12)
    expect(progress.pipeline.stages.map((s: any) => s.done)).toEqual([12, 12, 12])
    expect(peak.a).toBeLessThanOrEqual(2)
    expect(peak.b).toBeLessThanOrEqual(1)
    // both peers served, and every stage was served
    expect(new Set(served.map(s => s.peer))).toEqual(new Set(['a', 'b']))
    expect(new Set(served.map(s => s.stage))).toEqual(new Set(CIDS))
    // everything held at the boundaries was let go by the end, and something was held meanwhile
    expect(progress.pipeline.peakHeldBytes).toBeGreaterThan(0)
  })

  it('replays a micro-batch whose stage host fails, from the boundary it holds; outputs unchanged', async () => {
    let failures = 0
    const { deps } = fake([{ peerId: 'a', gflops: 50, slots: 2 }, { peerId: 'b', gflops: 50, slots: 2 }], (peer, request) => {
      // b's connection breaks on its first pieces of stage 2 (as a host that dies mid-piece)
      if (peer === 'b' && request.modelCid === CIDS[1] && failures < 3) {
        failures++
        return Promise.reject(new Error('the stream was reset'))
      }
      return undefined
    })
    const x = batch(16)
    const result = await new PipelineJob(deps, { x }, { rowsPerPiece: 2, verify: 'off' }).run()
    expect(Buffer.from(result.outputs.y.data).equals(Buffer.from(expected(x).data))).toBe(true)
    expect(failures).toBeGreaterThan(0)
    const stages = (result.progress as any).pipeline.stages
    expect(stages[1].replays).toBe(failures)
    expect(stages[0].replays + stages[2].replays).toBe(0)
  })

  it('refuses an answer missing a stage output or of the wrong rows, and takes another peer\'s', async () => {
    const { deps } = fake([{ peerId: 'liar', gflops: 500, slots: 2 }, { peerId: 'b', gflops: 50, slots: 2 }], (peer, request) => {
      if (peer !== 'liar') return undefined
      if (request.modelCid === CIDS[0]) return Promise.resolve({ outputs: {}, computeMs: 1, provider: 'cpu' })
      return Promise.resolve({ outputs: { y: batch(1), g: batch(1) }, computeMs: 1, provider: 'cpu' })
    })
    const x = batch(8)
    const job = new PipelineJob(deps, { x }, { rowsPerPiece: 2, maxAttempts: 20, verify: 'off' })
    const result = await job.run()
    expect(Buffer.from(result.outputs.y.data).equals(Buffer.from(expected(x).data))).toBe(true)
    const reasons = result.progress.failures.filter(f => f.peerId === 'liar').map(f => f.reason)
    expect(reasons.some(r => /stage 1: .*lacks output "h"/.test(r))).toBe(true)
    expect(reasons.some(r => /has shape \[1, 2\]/.test(r))).toBe(true)
  })

  it('fails naming the stage when nobody can serve it', async () => {
    // only the local node holds stage 1 and no peer is there: stage 2 waits, then the job fails
    const { deps } = fake([], undefined, { holds: cid => cid === CIDS[0], localSlots: 1, stageWaitMs: 50 })
    const error = await new PipelineJob(deps, { x: batch(4) }, { rowsPerPiece: 2, verify: 'off' }).run().then(() => undefined, err => err)
    expect(error?.name).toBe('JobError')
    expect(error.message).toMatch(/stage 2 of 3 \(bafkreistagetwo\) has no peer to serve it/)
  })

  it('refuses inputs that do not fit and verification it cannot do', () => {
    const { deps } = fake([])
    expect(() => new PipelineJob(deps, { x: tensor([2, 3], new Float32Array(6)) }).validate()).toThrow(/shape/)
    expect(() => new PipelineJob(deps, { x: batch(2) }, { verify: 'full' }).validate()).toThrow(/--verify full is not available for pipeline jobs/)
    expect(() => new PipelineJob(deps, { x: batch(2) }, { canaries: 1 }).validate()).toThrow(/canary/)
  })
})

/** A peer that answers stage 2 wrong (g = h * 3), every time. */
const cheatOnStage2 = (cheater: string) => (peer: string, request: PieceRequest): Promise<PieceResult> | undefined => {
  if (peer !== cheater || request.modelCid !== CIDS[1]) return undefined
  return Promise.resolve({ outputs: { g: tensor(request.inputs.h.dims, floats(request.inputs.h).map(v => v * 3)) }, computeMs: 1, provider: 'cpu' })
}

describe('a pipeline job under spot verification', () => {
  const peers = [{ peerId: 'honest', gflops: 50, slots: 2 }, { peerId: 'cheat', gflops: 500, slots: 2 }]

  it('checks a newcomer\'s stage answers before they move on: a wrong one is replaced, its peer excluded, the outputs exact', async () => {
    const trust = new TrustRecords(Date.now)
    const wrong: string[] = []
    const { deps } = fake(peers, cheatOnStage2('cheat'), { holds: () => true, trust, onWrongAnswer: w => wrong.push(w.peerId) })
    const x = batch(16)
    const result = await new PipelineJob(deps, { x }, { rowsPerPiece: 2 }).run()
    expect(Buffer.from(result.outputs.y.data).equals(Buffer.from(expected(x).data))).toBe(true)
    const v = result.progress.verification
    expect(v.policy).toBe('spot')
    expect(v.mismatches).toBeGreaterThan(0)
    expect(v.excluded).toEqual(['cheat'])
    expect(wrong.every(p => p === 'cheat') && wrong.length === v.mismatches).toBe(true)
    expect(trust.get('cheat').excludedUntil).toBeGreaterThan(Date.now())
  })

  it('an established peer caught late: the micro-batches it answered unchecked are run again here, every stage, and the outputs are exact', async () => {
    const trust = new TrustRecords(Date.now)
    for (let i = 0; i < 500; i++) { trust.verified('cheat'); trust.verified('honest') }
    // its first answers are not drawn for a check, then one is
    let draws = 0
    const random = (): number => ++draws <= 6 ? 0.999 : 0
    const { deps } = fake(peers, cheatOnStage2('cheat'), { holds: () => true, trust, random })
    const x = batch(24)
    const result = await new PipelineJob(deps, { x }, { rowsPerPiece: 2 }).run()
    expect(Buffer.from(result.outputs.y.data).equals(Buffer.from(expected(x).data))).toBe(true)
    expect(result.progress.verification.excluded).toEqual(['cheat'])
    // more rows computed here than the checks alone: whole micro-batches run again
    expect(result.progress.verification.extraRows).toBeGreaterThan(result.progress.verification.checkedPieces * 2)
  })

  it('credits each stage\'s answers kept from peers, one job id per stage, checked ones as spot; a peer caught gets nothing', async () => {
    const trust = new TrustRecords(Date.now)
    const credited: CreditedJob[] = []
    const { deps } = fake(peers, cheatOnStage2('cheat'), { holds: () => true, trust, onCredited: job => credited.push(job) })
    const job = new PipelineJob(deps, { x: batch(16) }, { rowsPerPiece: 2 })
    const result = await job.run()
    expect(result.progress.verification.excluded).toEqual(['cheat'])
    expect(credited.map(c => [c.jobId, c.modelCid])).toEqual(CIDS.map((cid, i) => [`${result.jobId}/${i + 1}`, cid]))
    for (const c of credited) {
      // the honest peer's answers only (checked as a newcomer's all are, until its record says otherwise)
      expect(c.pieces.every(p => p.peerId === 'honest' && ['spot', 'unchecked'].includes(p.verified) && p.rows === 2)).toBe(true)
      expect(new Set(c.pieces.map(p => p.pieceId)).size).toBe(c.pieces.length)
      expect(c.unitsPerRow).toBeGreaterThan(0)
    }
    // its first answers, a newcomer's, were all checked
    expect(credited[0].pieces.some(p => p.verified === 'spot')).toBe(true)
  })

  it('fetches a stage it lacks before checking, and fails with a clear error when it cannot', async () => {
    const fetched: string[] = []
    const { deps } = fake(peers.slice(0, 1), undefined, { holds: cid => fetched.includes(cid), fetchStage: async cid => { fetched.push(cid) } })
    await new PipelineJob(deps, { x: batch(4) }, { rowsPerPiece: 2 }).run()
    expect(fetched.sort()).toEqual([...CIDS].sort())
    const { deps: refusing } = fake(peers.slice(0, 1), undefined, { fetchStage: async () => { throw new Error('over this node\'s --max-model-size') } })
    const error = await new PipelineJob(refusing, { x: batch(4) }).run().then(() => undefined, err => err)
    expect(error?.message).toMatch(/cannot check answers to stage 1 .*--max-model-size.*--verify off/)
  })
})
