import { describe, expect, it } from 'vitest'
import { InferResponse } from '@shoal/protocol'
import { sliceRows } from '@shoal/runtime'
import type { ModelInfo, Tensor } from '@shoal/runtime'
import { TrustRecords } from '@shoal/scheduler'
import type { SchedulerPeer } from '@shoal/scheduler'
import { CanaryPool } from '../src/jobs/canaries.js'
import { ModelCosts } from '../src/jobs/model-costs.js'
import { Job } from '../src/jobs/job.js'
import type { JobDeps } from '../src/jobs/job.js'
import { PieceError } from '../src/pieces/inference-service.js'
import type { PieceRequest, PieceResult } from '../src/pieces/infer-client.js'
import type { CreditedJob } from '../src/credit/index.js'

const Code = InferResponse.Code

/** y = x over [batch, width]: the answer of any honest run is its input. */
function identity (width: number | string = 4): ModelInfo {
  return { cid: 'bafkreitest', bytes: 100, opsets: [], inputs: [{ name: 'x', dtype: 'float32', dims: ['batch', width] }], outputs: [{ name: 'y', dtype: 'float32', dims: ['batch', width] }] }
}

function batch (rows: number, width = 4): Tensor {
  return { dtype: 'float32', dims: [rows, width], data: new Uint8Array(Float32Array.from({ length: rows * width }, (_, i) => i).buffer) }
}

const honest = async (inputs: Record<string, Tensor>): Promise<PieceResult> => ({ outputs: { y: inputs.x }, computeMs: 1, provider: 'cpu' })

/** A Job over fake peers: each peer's answers come from `workers[peerId]`; this node runs `local`. */
function job (workers: Record<string, (request: PieceRequest) => Promise<PieceResult>>, inputs: Record<string, Tensor>, options: ConstructorParameters<typeof Job>[2] = {}, overrides: Partial<JobDeps> = {}): { job: Job, localRuns: number[] } {
  const localRuns: number[] = []
  const peers: SchedulerPeer[] = Object.keys(workers).map(peerId => ({ peerId, gflops: 50, slots: 2 }))
  const deps: JobDeps = {
    localPeerId: 'me',
    localGflops: 50,
    localSlots: 1,
    model: identity(),
    peers: () => peers,
    onPeersChanged: () => () => {},
    runRemote: async (peerId, request) => await workers[peerId](request),
    runLocal: async (_cid, inputs) => { localRuns.push(inputs.x.dims[0]); return await honest(inputs) },
    maxResponseBytes: 1 << 20,
    ...overrides
  }
  // peers only unless a test says: the tests see where pieces ran
  return { job: new Job(deps, inputs, { local: 'fallback', ...options }), localRuns }
}

/** A worker's answer as the infer client hands it over: read into the buffers the job gives for its header, if it gives any. */
function viaWire (request: PieceRequest, result: PieceResult): PieceResult {
  const entries = Object.entries(result.outputs)
  const views = request.into?.(entries.map(([name, t]) => ({ name, dtype: t.dtype, dims: t.dims, byteLength: t.data.byteLength })))
  const data = entries.map(([, t], i) => { if (views == null) return t.data.slice(); views[i].set(t.data); return views[i] })
  return { ...result, outputs: Object.fromEntries(entries.map(([name, t], i) => [name, { ...t, data: data[i] }])) }
}

const same = (a: Tensor, b: Tensor): boolean => a.dtype === b.dtype && a.dims.join() === b.dims.join() && Buffer.from(a.data).equals(Buffer.from(b.data))

describe('Job: a batch cut into pieces, run by peers, joined in order', () => {
  it('joins the peers\' answers in row order, and this node runs no piece while peers can', async () => {
    const x = batch(12)
    const { job: j, localRuns } = job({ a: async r => await honest(r.inputs), b: async r => await honest(r.inputs) }, { x }, { rowsPerPiece: 3, verify: 'off' })
    const result = await j.run()
    expect(same(result.outputs.y, x)).toBe(true)
    expect(result.progress.total).toBe(4)
    expect(Object.keys(result.progress.perPeer).sort()).toEqual(['a', 'b'])
    expect(localRuns).toEqual([])
    // by default (spot) every answer of these newcomers is checked here: 4 runs of 3 rows
    const checked = job({ a: async r => await honest(r.inputs), b: async r => await honest(r.inputs) }, { x }, { rowsPerPiece: 3 })
    expect((await checked.job.run()).progress.verification).toMatchObject({ policy: 'spot', checkedPieces: 4, extraRows: 12 })
    expect(checked.localRuns).toEqual([3, 3, 3, 3])
    expect(result.progress.failedAttempts).toBe(0)
  })

  it('without a size, pieces size themselves: one untimed run of a row here, probes first, and the next job of the model starts from what this one measured', async () => {
    const costs = new ModelCosts()
    const sizes: number[] = []
    const worker = async (r: PieceRequest): Promise<PieceResult> => { sizes.push(r.inputs.x.dims[0]); return await honest(r.inputs) }
    const { job: j, localRuns } = job({ a: worker }, { x: batch(64) }, { verify: 'off' }, { costs })
    const result = await j.run()
    // one row run here, once: it catches inputs the model refuses, and is not timed
    expect(localRuns).toEqual([1])
    expect(same(result.outputs.y, batch(64))).toBe(true)
    expect(result.progress.sized).toBe(true)
    // the speed was a guess: the first piece is a probe (a quarter of 64 / (2 x 2 pieces in flight))
    expect(sizes[0]).toBe(4)
    expect(sizes.reduce((n, r) => n + r, 0)).toBe(64)
    expect(result.progress).toMatchObject({ totalRows: 64, doneRows: 64, total: sizes.length, rowsPerPiece: Math.max(...sizes) })
    expect(costs.msPerRow(identity().cid, 50)).toBeGreaterThan(0)
    // a second job of the model: its cost is known, so no probe piece
    sizes.length = 0
    await job({ a: worker }, { x: batch(64) }, { verify: 'off' }, { costs }).job.run()
    expect(sizes[0]).toBeGreaterThan(4)
  })

  it('by default this node takes a share with the slots peers\' pieces leave it: none while they fill them', async () => {
    const x = batch(12)
    const shared = job({ a: async r => await honest(r.inputs) }, { x }, { local: 'share', rowsPerPiece: 1, verify: 'off', endgame: false })
    await shared.job.run()
    expect(shared.localRuns.length).toBeGreaterThan(0)
    // its one slot serving a peer's piece the whole time: its own job leaves it alone
    const busy = job({ a: async r => await honest(r.inputs) }, { x }, { local: 'share', rowsPerPiece: 1, verify: 'off', endgame: false }, { localBusy: () => 1 })
    const result = await busy.job.run()
    expect(busy.localRuns).toEqual([])
    expect(result.progress.perPeer).toEqual({ a: 12 })
  })

  it('a given rowsPerPiece fixes the pieces, and only a model leaving output dimensions open needs a run here', async () => {
    const sizes: number[] = []
    const { job: j, localRuns } = job({ a: async r => { sizes.push(r.inputs.x.dims[0]); return await honest(r.inputs) } }, { x: batch(10) }, { rowsPerPiece: 4, verify: 'off' })
    const result = await j.run()
    expect(localRuns).toEqual([])
    expect(sizes.sort()).toEqual([2, 4, 4])
    expect(result.progress).toMatchObject({ sized: false, rowsPerPiece: 4, total: 3 })
  })

  it('a worker refusing BAD_INPUT or answering other rows fails its attempt, listed with its reason; another peer runs the piece', async () => {
    const x = batch(8)
    const { job: j } = job({
      refuser: async () => { throw new PieceError(Code.BAD_INPUT, 'too big for me') },
      doubler: async r => ({ outputs: { y: { ...r.inputs.x, dims: [r.inputs.x.dims[0] * 2, 4], data: new Uint8Array(r.inputs.x.data.byteLength * 2) } }, computeMs: 1, provider: 'cpu' }),
      good: async r => await honest(r.inputs)
    }, { x }, { rowsPerPiece: 2, maxAttempts: 10 })
    const result = await j.run()
    expect(same(result.outputs.y, x)).toBe(true)
    const reasons = new Set(result.progress.failures.map(f => `${f.peerId}: ${f.reason}`))
    expect([...reasons].some(r => /^refuser: BAD_INPUT: too big for me$/.test(r))).toBe(true)
    expect([...reasons].some(r => /^doubler: BAD_ANSWER: output "y" has shape \[\d+, 4\] for a piece of 2 rows$/.test(r))).toBe(true)
    expect(result.progress.failedAttempts).toBe(result.progress.failures.length)
  })

  it('refuses an answer of another dtype than the model\'s', async () => {
    const { job: j } = job({
      wide: async r => ({ outputs: { y: { dtype: 'float64', dims: r.inputs.x.dims, data: new Uint8Array(r.inputs.x.data.byteLength * 2) } }, computeMs: 1, provider: 'cpu' }),
      good: async r => await honest(r.inputs)
    }, { x: batch(4) }, { rowsPerPiece: 2, maxAttempts: 10 })
    const result = await j.run()
    expect(result.progress.failures.length).toBeGreaterThan(0)
    expect(result.progress.failures.every(f => f.peerId === 'wide' && f.reason === 'BAD_ANSWER: output "y" is float64, the model\'s is float32')).toBe(true)
  })

  it('with chosen piece sizes, an output dimension the model leaves open is known from one row run here', async () => {
    const x = batch(4)
    const { job: j, localRuns } = job({
      widening: async r => ({ outputs: { y: { dtype: 'float32', dims: [r.inputs.x.dims[0], 5], data: new Uint8Array(r.inputs.x.dims[0] * 5 * 4) } }, computeMs: 1, provider: 'cpu' }),
      good: async r => await honest(r.inputs)
    }, { x }, { rowsPerPiece: 2, maxAttempts: 10 }, { model: identity('width') })
    const result = await j.run()
    expect(localRuns[0]).toBe(1)
    expect(same(result.outputs.y, x)).toBe(true)
    expect(result.progress.failures.length).toBeGreaterThan(0)
    for (const f of result.progress.failures) expect(f.reason).toBe('BAD_ANSWER: output "y" has shape [2, 5] where [2, 4] was expected')
  })

  it('an output of unknown rank is known from one row run here too', async () => {
    const model = identity()
    model.outputs[0].dims = []
    const { job: j, localRuns } = job({
      widening: async r => ({ outputs: { y: { dtype: 'float32', dims: [r.inputs.x.dims[0], 5], data: new Uint8Array(r.inputs.x.dims[0] * 5 * 4) } }, computeMs: 1, provider: 'cpu' }),
      good: async r => await honest(r.inputs)
    }, { x: batch(4) }, { rowsPerPiece: 2, maxAttempts: 10 }, { model })
    const result = await j.run()
    expect(localRuns[0]).toBe(1)
    expect(same(result.outputs.y, batch(4))).toBe(true)
    for (const f of result.progress.failures) expect(f.reason).toBe('BAD_ANSWER: output "y" has shape [2, 5] where [2, 4] was expected')
  })

  it('fails with the piece, its rows and every attempt once a piece has failed as often as allowed', async () => {
    const { job: j } = job({ broken: async () => { throw new PieceError(Code.INTERNAL, 'out of order') } }, { x: batch(2) }, { rowsPerPiece: 2, maxAttempts: 2 }, { localSlots: 0 })
    await expect(j.run()).rejects.toThrow(/piece 0 \(rows 0-1\).*broken: INTERNAL: out of order.*broken: INTERNAL: out of order/)
    expect(j.progress().state).toBe('failed')
  })

  it('refuses inputs that cannot feed the model before any piece runs', async () => {
    const runs: string[] = []
    const spy = async (r: PieceRequest): Promise<PieceResult> => { runs.push('remote'); return await honest(r.inputs) }
    expect(() => job({ a: spy }, { x: batch(4), z: batch(3) }).job.validate()).toThrow(/inputs disagree on the batch size \(axis 0\): "x" has 4 rows, "z" has 3/)
    expect(() => job({ a: spy }, { x: batch(4, 3) }).job.validate()).toThrow(/input "x" has shape \[4, 3\], the model wants \[batch, 4\]/)
    expect(() => job({ a: spy }, {}).job.validate()).toThrow(/no inputs given/)
    expect(runs).toEqual([])
  })

  it('cancel() stops a job whose pieces never come back: run() rejects with the reason', async () => {
    const { job: j } = job({ stuck: async () => await new Promise<PieceResult>(() => {}) }, { x: batch(4) }, { rowsPerPiece: 2 }, { localSlots: 0 })
    const running = j.run()
    await new Promise(resolve => setTimeout(resolve, 20))
    j.cancel('the user changed their mind')
    await expect(running).rejects.toThrow(/the user changed their mind/)
  })

  it('answers are read straight into the job\'s outputs; what a claimant that failed half-way, or a cheater caught, left there is replaced', async () => {
    const x = batch(40)
    const buffers = new Set<ArrayBufferLike>()
    let flakyClaims = 0
    const workers = {
      a: async (r: PieceRequest) => {
        const answer = viaWire(r, await honest(r.inputs))
        buffers.add(answer.outputs.y.data.buffer)
        return answer
      },
      cheater: async (r: PieceRequest) => viaWire(r, { outputs: { y: { ...r.inputs.x, data: new Uint8Array(r.inputs.x.data.byteLength) } }, computeMs: 1, provider: 'cpu' }),
      // reads half an answer into the job's outputs, then its connection breaks
      flaky: async (r: PieceRequest) => {
        const views = flakyClaims < 2 ? r.into?.([{ name: 'y', dtype: 'float32', dims: r.inputs.x.dims, byteLength: r.inputs.x.data.byteLength }]) : undefined
        if (views != null) { flakyClaims++; views[0].fill(0xff, 0, views[0].byteLength / 2) }
        throw new Error('connection reset')
      }
    }
    const { job: j } = job(workers, { x }, { rowsPerPiece: 2, verify: 'spot' })
    const result = await j.run()
    expect(same(result.outputs.y, x)).toBe(true)
    expect(flakyClaims).toBe(2)
    expect(result.progress.verification.excluded).toEqual(['cheater'])
    // no join: the outputs are the buffer the honest worker's first answers were read into (a retry's are its own)
    expect(buffers.has(result.outputs.y.data.buffer)).toBe(true)
    expect(buffers.size).toBeGreaterThan(1)
  })

  it('an answer of another layout than this node\'s run shows is not read into the outputs', async () => {
    const claims: Array<number | undefined> = []
    const worker = async (r: PieceRequest): Promise<PieceResult> => {
      claims.push(r.into?.([{ name: 'y', dtype: 'float32', dims: [r.inputs.x.dims[0], 5], byteLength: r.inputs.x.dims[0] * 20 }])?.length)
      claims.push(r.into?.([{ name: 'y', dtype: 'float64', dims: r.inputs.x.dims, byteLength: r.inputs.x.data.byteLength * 2 }])?.length)
      return viaWire(r, await honest(r.inputs))
    }
    const x = batch(8)
    const { job: j } = job({ a: worker }, { x }, { rowsPerPiece: 2, verify: 'off' })
    expect(same((await j.run()).outputs.y, x)).toBe(true)
    expect(claims).toEqual(Array(8).fill(undefined))
  })

  it('slices nothing wrongly: each piece carries exactly its rows', async () => {
    const x = batch(10)
    const seen: Array<[number, number[]]> = []
    const { job: j } = job({ a: async r => { seen.push([r.pieceId, Array.from(new Float32Array(r.inputs.x.data.slice().buffer))]); return await honest(r.inputs) } }, { x }, { rowsPerPiece: 4 })
    await j.run()
    const byPiece = new Map(seen)
    expect(byPiece.get(0)).toEqual(Array.from(new Float32Array(sliceRows(x, 0, 4).data.slice().buffer)))
    expect(byPiece.get(2)).toEqual(Array.from(new Float32Array(sliceRows(x, 8, 2).data.slice().buffer)))
  })
})

  it('a peer that turns up while the job waits gets its pieces; news that changes none of the job\'s peers does not wake it', async () => {
    const listeners = new Set<() => void>()
    const peers: SchedulerPeer[] = []
    let reads = 0
    const asked: string[] = []
    const { job: j } = job({}, { x: batch(4) }, { rowsPerPiece: 2, verify: 'off' }, {
      // this node gives no slots: the job can only wait for a peer
      localSlots: 0,
      peers: () => { reads++; return [...peers] },
      onPeersChanged: listener => { listeners.add(listener); return () => listeners.delete(listener) },
      runRemote: async (peerId, request) => { asked.push(peerId); return await honest(request.inputs) }
    })
    let wakes = 0
    const waiting = new Promise<void>(resolve => j.onProgress(p => { wakes++; if (p.state === 'running') resolve() }))
    const run = j.run()
    await waiting
    expect(j.progress()).toMatchObject({ state: 'running', done: 0, inFlight: 0 })
    const [readsBefore, wakesBefore] = [reads, wakes]
    // an ad or a connection of someone not a candidate: the peers are read, the job is not woken
    for (const l of listeners) l()
    await new Promise(resolve => setImmediate(resolve))
    expect([reads, wakes]).toEqual([readsBefore + 1, wakesBefore])
    expect(asked).toEqual([])
    peers.push({ peerId: 'late', gflops: 50, slots: 1 })
    for (const l of listeners) l()
    const result = await run
    expect(result.progress.perPeer).toEqual({ late: 2 })
    expect(same(result.outputs.y, batch(4))).toBe(true)
    expect(listeners.size).toBe(0)
  })

describe('Job: result verification (spot, checked against this node\'s own run)', () => {
  const zeros = async (inputs: Record<string, Tensor>): Promise<PieceResult> => ({ outputs: { y: { ...inputs.x, data: new Uint8Array(inputs.x.data.byteLength) } }, computeMs: 1, provider: 'cpu' })
  const perturbed = async (inputs: Record<string, Tensor>): Promise<PieceResult> => {
    const values = new Float32Array(inputs.x.data.slice().buffer).map(v => v * 1.001)
    return { outputs: { y: { ...inputs.x, data: new Uint8Array(values.buffer) } }, computeMs: 1, provider: 'webgpu' }
  }

  it('a worker answering zeros, and one scaling by 1 + 1e-3, are caught and excluded: the outputs are this node\'s', async () => {
    for (const cheat of [zeros, perturbed]) {
      const trust = new TrustRecords(Date.now)
      const x = batch(24)
      const { job: j } = job({ cheater: async r => await cheat(r.inputs), honest: async r => await honest(r.inputs) }, { x: { ...x, data: new Uint8Array(Float32Array.from({ length: 96 }, (_, i) => i + 1).buffer) } }, { rowsPerPiece: 2, verify: 'spot' }, { trust })
      const result = await j.run()
      const expected = new Float32Array(result.outputs.y.data.buffer.slice(result.outputs.y.data.byteOffset, result.outputs.y.data.byteOffset + result.outputs.y.data.byteLength))
      expect([...expected]).toEqual(Array.from({ length: 96 }, (_, i) => i + 1))
      const v = result.progress.verification
      expect(v.policy).toBe('spot')
      expect(v.excluded).toEqual(['cheater'])
      expect(v.mismatches).toBeGreaterThan(0)
      // newcomers: every remote answer was checked
      expect(v.checkedPieces).toBe(12 - (result.progress.perPeer.me ?? 0))
      expect(trust.excluded('cheater')).toBe(true)
      expect(trust.excluded('honest')).toBe(false)
      expect(trust.get('honest').record).toBe(result.progress.perPeer.honest)
    }
  })

  it('an established peer is checked on a fraction of its pieces only; off checks nothing', async () => {
    const trust = new TrustRecords(Date.now)
    for (let i = 0; i < 1000; i++) trust.verified('veteran')
    let draw = 0
    const { job: j, localRuns } = job({ veteran: async r => await honest(r.inputs) }, { x: batch(400) }, { rowsPerPiece: 4, verify: 'spot' }, { trust, random: () => (draw++ % 20) / 20 })
    const result = await j.run()
    // 100 pieces at the 5% floor: every draw of 0 (one in twenty) is a check
    expect(result.progress.verification.checkedPieces).toBe(5)
    expect(localRuns.length).toBe(5)
    const off = job({ veteran: async r => await zeros(r.inputs) }, { x: batch(8) }, { rowsPerPiece: 4, verify: 'off' })
    const unchecked = await off.job.run()
    expect(unchecked.progress.verification).toEqual({ policy: 'off', checkedPieces: 0, extraRows: 0, mismatches: 0, excluded: [], canaryRows: 0 })
    expect(unchecked.outputs.y.data.every(b => b === 0)).toBe(true)
  })

  it('a check this node cannot make fails the job, naming the piece, rather than pass an unverified answer', async () => {
    // rows per piece given and outputs of fixed width: no probe run, so the only local run is the check
    const { job: j } = job({ stranger: async r => await honest(r.inputs) }, { x: batch(4) }, { rowsPerPiece: 4, verify: 'spot' }, {
      runLocal: async () => { throw new Error('the sandbox is gone') }
    })
    await expect(j.run()).rejects.toThrow(/^piece 0 \(from stranger\) could not be verified: the sandbox is gone$/)
  })
})

describe('Job: what it credits peers with (their receipts)', () => {
  const zeros = async (inputs: Record<string, Tensor>): Promise<PieceResult> => ({ outputs: { y: { ...inputs.x, data: new Uint8Array(inputs.x.data.byteLength) } }, computeMs: 1, provider: 'cpu' })
  const credited = async (workers: Parameters<typeof job>[0], options: ConstructorParameters<typeof Job>[2], overrides: Partial<JobDeps> = {}): Promise<CreditedJob> => {
    let got: CreditedJob | undefined
    const { job: j } = job(workers, { x: batch(16) }, options, { ...overrides, onCredited: c => { got = c } })
    await j.run()
    return got!
  }

  it('each piece kept from a peer, with how it was checked; a peer caught lying gets nothing, nor do pieces this node ran', async () => {
    const spot = await credited({ a: async r => await honest(r.inputs), cheater: async r => await zeros(r.inputs) }, { rowsPerPiece: 2, verify: 'spot' })
    expect(spot.pieces.length).toBeGreaterThan(0)
    expect(spot.pieces.every(p => p.peerId === 'a' && p.verified === 'spot' && p.rows === 2)).toBe(true)
    expect(spot.unitsPerRow).toBeGreaterThan(0)
    const off = await credited({ a: async r => await honest(r.inputs) }, { rowsPerPiece: 4, verify: 'off' })
    expect(off.pieces.map(p => [p.pieceId, p.peerId, p.rows, p.verified])).toEqual([[0, 'a', 4, 'unchecked'], [1, 'a', 4, 'unchecked'], [2, 'a', 4, 'unchecked'], [3, 'a', 4, 'unchecked']])
  })

  it('under full, both peers whose answers agreed; with canaries, the pieces that carried them', async () => {
    const full = await credited({ a: async r => await honest(r.inputs), b: async r => await honest(r.inputs) }, { rowsPerPiece: 8, verify: 'full' })
    expect(full.pieces.map(p => `${p.pieceId}:${p.peerId}:${p.verified}`).sort()).toEqual(['0:a:quorum', '0:b:quorum', '1:a:quorum', '1:b:quorum'])
    const pool = new CanaryPool()
    const row: Tensor = { dtype: 'float32', dims: [1, 4], data: new Uint8Array(Float32Array.from([9, 8, 7, 6]).buffer) }
    pool.add('bafkreitest', { x: row }, { y: row }, ['me'])
    const canary = await credited({ a: async r => await honest(r.inputs) }, { rowsPerPiece: 8, verify: 'off', canaries: 1 }, { canaries: pool })
    expect(canary.pieces.map(p => p.verified)).toEqual(['canary', 'canary'])
  })
})

describe('Job: result verification (full, every piece on two peers)', () => {
  const zeros = async (inputs: Record<string, Tensor>): Promise<PieceResult> => ({ outputs: { y: { ...inputs.x, data: new Uint8Array(inputs.x.data.byteLength) } }, computeMs: 1, provider: 'cpu' })
  const scaled = (factor: number) => async (inputs: Record<string, Tensor>): Promise<PieceResult> => {
    const values = new Float32Array(inputs.x.data.slice().buffer).map(v => v * factor)
    return { outputs: { y: { ...inputs.x, data: new Uint8Array(values.buffer) } }, computeMs: 1, provider: 'webgpu' }
  }
  const ones = (rows: number): Tensor => ({ dtype: 'float32', dims: [rows, 4], data: new Uint8Array(Float32Array.from({ length: rows * 4 }, (_, i) => i + 1).buffer) })

  it('every piece is answered by two different peers that agree; this node runs none while three peers can', async () => {
    const trust = new TrustRecords(Date.now)
    const answeredBy = new Map<number, string[]>()
    const worker = (id: string) => async (r: PieceRequest): Promise<PieceResult> => {
      answeredBy.set(r.pieceId, [...(answeredBy.get(r.pieceId) ?? []), id])
      return await honest(r.inputs)
    }
    const x = ones(16)
    // no end-game copies: on a busy machine one could make a third request of a piece
    const { job: j, localRuns } = job({ a: worker('a'), b: worker('b'), c: worker('c') }, { x }, { rowsPerPiece: 2, verify: 'full', endgame: false }, { trust })
    const result = await j.run()
    expect(same(result.outputs.y, x)).toBe(true)
    expect(localRuns).toEqual([])
    for (const [, peers] of answeredBy) expect(new Set(peers).size).toBe(2)
    expect(answeredBy.size).toBe(8)
    expect(result.progress.verification).toEqual({ policy: 'full', checkedPieces: 8, extraRows: 16, mismatches: 0, excluded: [], canaryRows: 0 })
    // two peers agreeing raise neither's record: two colluders could raise each other's
    expect(trust.get('a').record + trust.get('b').record + trust.get('c').record).toBe(0)
  })

  it('two colluders answering the same wrong thing: once one is caught, the pieces they decided together are run here, and the outputs are right', async () => {
    let state = 3
    const random = (): number => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 4294967296
    const x = ones(32)
    const trust = new TrustRecords(Date.now)
    const { job: j } = job({ c1: async r => await zeros(r.inputs), c2: async r => await zeros(r.inputs), h: async r => await honest(r.inputs) }, { x }, { rowsPerPiece: 2, verify: 'full' }, { trust, random })
    const result = await j.run()
    expect(same(result.outputs.y, x)).toBe(true)
    expect([...result.progress.verification.excluded].sort()).toEqual(['c1', 'c2'])
    expect(trust.excluded('h')).toBe(false)
  })

  it('a peer answering zeros, or scaling by 1 + 1e-3, is outvoted by a third and excluded; the outputs are the honest ones', async () => {
    for (const cheat of [zeros, scaled(1.001)]) {
      const trust = new TrustRecords(Date.now)
      const x = ones(24)
      const { job: j } = job({ cheater: async r => await cheat(r.inputs), a: async r => await honest(r.inputs), b: async r => await honest(r.inputs) }, { x }, { rowsPerPiece: 2, verify: 'full' }, { trust })
      const result = await j.run()
      expect(same(result.outputs.y, x)).toBe(true)
      const v = result.progress.verification
      expect(v.excluded).toEqual(['cheater'])
      expect(v.mismatches).toBeGreaterThan(0)
      expect(v.checkedPieces).toBe(12)
      expect(trust.excluded('cheater')).toBe(true)
      expect(trust.excluded('a') || trust.excluded('b')).toBe(false)
    }
  })

  it('this node\'s own answer decides a ballot it is in: a lone remote cheater is caught without a third peer', async () => {
    const x = ones(8)
    const { job: j, localRuns } = job({ cheater: async r => await zeros(r.inputs) }, { x }, { rowsPerPiece: 2, verify: 'full' })
    const result = await j.run()
    expect(same(result.outputs.y, x)).toBe(true)
    expect(result.progress.verification.excluded).toEqual(['cheater'])
    // every piece ran here (the cheater's first answer was outvoted at once, and it got no more)
    expect(localRuns.length).toBe(4)
  })

  it('answers within the tolerance agree; a wider --tolerance lets a 1e-3 difference agree too', async () => {
    const x = ones(8)
    const near = job({ gpu: async r => await scaled(1 + 1e-5)(r.inputs), cpu: async r => await honest(r.inputs) }, { x }, { rowsPerPiece: 2, verify: 'full' })
    expect((await near.job.run()).progress.verification).toMatchObject({ mismatches: 0, excluded: [] })
    const wide = job({ gpu: async r => await scaled(1.001)(r.inputs), cpu: async r => await honest(r.inputs) }, { x }, { rowsPerPiece: 2, verify: 'full', tolerance: { rtol: 1e-2, atol: 0 } })
    expect((await wide.job.run()).progress.verification).toMatchObject({ mismatches: 0, excluded: [] })
  })

  it('with no peer but this node, every piece runs here and needs no second answer', async () => {
    const { job: j, localRuns } = job({}, { x: ones(4) }, { rowsPerPiece: 2, verify: 'full' })
    const result = await j.run()
    expect(same(result.outputs.y, ones(4))).toBe(true)
    expect(localRuns).toEqual([2, 2])
    expect(result.progress.verification).toMatchObject({ checkedPieces: 0, extraRows: 0 })
  })

  it('two remote answers that disagree go to this node, whose answer decides: both liars are excluded', async () => {
    const x = ones(2)
    const { job: j, localRuns } = job({ a: async r => await scaled(2)(r.inputs), b: async r => await scaled(3)(r.inputs) }, { x }, { rowsPerPiece: 2, verify: 'full' })
    const result = await j.run()
    expect(same(result.outputs.y, x)).toBe(true)
    expect(localRuns).toEqual([2])
    expect([...result.progress.verification.excluded].sort()).toEqual(['a', 'b'])
    expect(result.progress.verification).toMatchObject({ checkedPieces: 1, extraRows: 4, mismatches: 1 })
  })
})

describe('Job: canary rows (rows whose answers this node knows, mixed into pieces)', () => {
  const zeros = async (inputs: Record<string, Tensor>): Promise<PieceResult> => ({ outputs: { y: { ...inputs.x, data: new Uint8Array(inputs.x.data.byteLength) } }, computeMs: 1, provider: 'cpu' })
  const known = (): CanaryPool => {
    const pool = new CanaryPool()
    const row: Tensor = { dtype: 'float32', dims: [1, 4], data: new Uint8Array(Float32Array.from([9, 8, 7, 6]).buffer) }
    pool.add('bafkreitest', { x: row }, { y: row }, ['me'])
    return pool
  }

  it('a worker answering zeros is caught by a canary without any second run, even with verify off', async () => {
    const x = batch(8)
    const rowsSeen: number[] = []
    const { job: j, localRuns } = job({
      cheater: async r => { rowsSeen.push(r.inputs.x.dims[0]); return await zeros(r.inputs) },
      honest: async r => await honest(r.inputs)
    }, { x }, { rowsPerPiece: 2, verify: 'off', canaries: 1 }, { canaries: known() })
    const result = await j.run()
    expect(same(result.outputs.y, x)).toBe(true)
    expect(result.progress.verification.excluded).toEqual(['cheater'])
    expect(result.progress.verification.mismatches).toBeGreaterThan(0)
    // each piece it got carried one extra row; nothing was re-run here
    expect(rowsSeen.every(n => n === 3)).toBe(true)
    expect(localRuns).toEqual([])
    expect(result.progress.failures.some(f => f.peerId === 'cheater' && /row whose answer this node knew is wrong/.test(f.reason))).toBe(true)
  })

  it('an honest worker\'s answers pass their canaries: the outputs are the piece\'s rows only, and the canary rows are counted', async () => {
    const x = batch(8)
    const readInPlace: boolean[] = []
    const { job: j } = job({ a: async r => { readInPlace.push(r.into != null); return await honest(r.inputs) } }, { x }, { rowsPerPiece: 2, verify: 'off', canaries: 1 }, { canaries: known() })
    const result = await j.run()
    expect(same(result.outputs.y, x)).toBe(true)
    expect(result.progress.verification).toMatchObject({ mismatches: 0, excluded: [], canaryRows: 4 })
    // an answer with canary rows in it is not laid out as the job's outputs: it is read on its own
    expect(readInPlace).toEqual([false, false, false, false])
  })

  it('rows this node ran or verified become canaries for later pieces', async () => {
    const pool = new CanaryPool()
    const { job: j } = job({ a: async r => await honest(r.inputs) }, { x: batch(8) }, { rowsPerPiece: 2, verify: 'spot', canaries: 1 }, { canaries: pool })
    await j.run()
    expect(pool.size('bafkreitest')).toBeGreaterThan(0)
  })
})
