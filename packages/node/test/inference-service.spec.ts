import { describe, expect, it } from 'vitest'
import { peerIdFromString } from '@libp2p/peer-id'
import { InferRequest, InferResponse } from '@shoal/protocol'
import { SandboxError } from '@shoal/runtime'
import type { ModelInfo, PieceRuntime, Tensor } from '@shoal/runtime'
import { Uint8ArrayList } from 'uint8arraylist'
import { InferenceService } from '../src/pieces/inference-service.js'
import { SLOT_QUEUE_MS } from '../src/constants.js'
import type { InferenceServiceInit } from '../src/pieces/inference-service.js'
import type { Channel } from '../src/pieces/frames.js'
import type { ModelStore } from '../src/models/model-store.js'

const Code = InferResponse.Code
const CID = 'bafkreihw7vb6xbex4ulmzu5spywar5ud2h3iymaadfopmckshftzx2l6rm'
const PEER = peerIdFromString('12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq')
const PEER_B = peerIdFromString('12D3KooWLTLBgx3PB4HcuTwQ3kbbVhN7vDwd9XXMiUFD5JVJ9s3c')
const PEER_C = peerIdFromString('12D3KooWRBhwfeP2Y4TCx1SM6s9rUoHhR5STiGwxBhgFRcw3UERE')
const MODEL: ModelInfo = { cid: CID, bytes: 100, opsets: [], inputs: [{ name: 'x', dtype: 'float32', dims: ['batch', 2] }], outputs: [{ name: 'y', dtype: 'float32', dims: ['batch', 2] }] }

/** A channel in memory: the client's frames are queued in; what the worker writes is kept. */
function channel (): Channel & { send: (bytes: Uint8Array) => void, written: Uint8Array[], closed: Promise<void> } {
  const queue: Uint8Array[] = []
  let waiting: (() => void) | undefined
  const written: Uint8Array[] = []
  let closedResolve!: () => void
  const closed = new Promise<void>(resolve => { closedResolve = resolve })
  return {
    kind: 'stream',
    written,
    closed,
    send: (bytes) => { queue.push(bytes); waiting?.() },
    frames: {
      read: async (options) => {
        while (queue.length === 0) {
          options?.signal?.throwIfAborted()
          await new Promise<void>((resolve, reject) => {
            waiting = resolve
            options?.signal?.addEventListener('abort', () => { reject(options.signal?.reason) }, { once: true })
          })
        }
        return new Uint8ArrayList(queue.shift()!)
      },
      write: async (bytes) => { written.push(bytes instanceof Uint8Array ? bytes : bytes.subarray()) }
    },
    close: async () => { closedResolve() },
    abort: () => { closedResolve() }
  }
}

const x = (rows: number): Tensor => ({ dtype: 'float32', dims: [rows, 2], data: new Uint8Array(new Float32Array(rows * 2).fill(1.5).buffer) })

function header (rows: number, extra: Partial<InferRequest> = {}): Uint8Array {
  return InferRequest.encode({ jobId: 'j', pieceId: 0, modelCid: CID, inputs: [{ name: 'x', dtype: 'float32', dims: [BigInt(rows), 2n], byteLength: BigInt(rows * 8) }], deadlineMs: 10_000, ...extra })
}

function service (init: Partial<InferenceServiceInit> = {}, run: PieceRuntime['run'] = async (_cid, _load, inputs) => ({ outputs: { y: inputs.x }, provider: 'cpu', computeMs: 1 }), fetchForPeer: (cid: string, peer: string) => Promise<unknown> = async () => {}): InferenceService {
  const store = { has: () => true, info: () => ({ ...MODEL, name: null, pinned: false, addedAt: 0, lastUsedAt: 0, inUse: 0 }), bytes: async () => new Uint8Array(), use: () => () => {} } as unknown as ModelStore
  const components = { registrar: {} as any, direct: { serve: () => {} }, swarm: { fetchForPeer }, logger: { forComponent: () => Object.assign(() => {}, { error: () => {}, trace: () => {}, enabled: false }) } as any }
  return new InferenceService(components, { maxConcurrency: 2, maxRequestBytes: 1 << 20, maxMemoryBytes: 0, store, sessions: { run, close: async () => {} }, ...init })
}

/** Serves one piece of `rows` rows (its data sent unless `withhold`); the worker's answer. */
async function piece (s: InferenceService, rows: number, options: { withhold?: boolean, extra?: Partial<InferRequest> } = {}): Promise<InferResponse> {
  const c = channel()
  c.send(header(rows, options.extra))
  if (options.withhold !== true) c.send(x(rows).data)
  await s.serve(c, PEER)
  return InferResponse.decode(c.written[0])
}

describe('InferenceService: the worker side of a piece', () => {
  it('runs an admitted piece and answers its outputs', async () => {
    const c = channel()
    c.send(header(3))
    c.send(x(3).data)
    await service().serve(c, PEER)
    const answer = InferResponse.decode(c.written[0])
    expect(answer.code).toBe(Code.OK)
    expect(answer.outputs.map(o => [o.name, o.dims.map(Number)])).toEqual([['y', [3, 2]]])
    expect(Buffer.from(c.written[1]).equals(Buffer.from(x(3).data))).toBe(true)
  })

  it('a sandbox that cannot start a process is the machine\'s fault: OVERLOADED (try again), where a crashing model is MODEL_UNAVAILABLE', async () => {
    const answers: InferResponse[] = []
    for (const err of [new SandboxError('unavailable', 'could not start an inference process (EAGAIN)'), new SandboxError('crashed', 'the inference process exited (SIGSEGV)')]) {
      const c = channel()
      c.send(header(3))
      c.send(x(3).data)
      await service({}, async () => { throw err }).serve(c, PEER)
      answers.push(InferResponse.decode(c.written[0]))
    }
    expect(answers.map(a => [a.code, a.message])).toEqual([
      [Code.OVERLOADED, 'could not start an inference process (EAGAIN)'],
      [Code.MODEL_UNAVAILABLE, 'the inference process exited (SIGSEGV)']
    ])
  })

  it('refuses a model CID in another encoding than the canonical one, before reading any data', async () => {
    const answer = await piece(service(), 1, { withhold: true, extra: { modelCid: 'BAFKREIHW7VB6XBEX4ULMZU5SPYWAR5UD2H3IYMAADFOPMCKSHFTZX2L6RM' } })
    expect(answer.code).toBe(Code.BAD_INPUT)
    expect(answer.message).toMatch(/is not a model CID in canonical form/)
  })

  it('checks the inputs against the model: another width is BAD_INPUT', async () => {
    const c = channel()
    c.send(InferRequest.encode({ jobId: 'j', pieceId: 0, modelCid: CID, inputs: [{ name: 'x', dtype: 'float32', dims: [1n, 3n], byteLength: 12n }], deadlineMs: 10_000 }))
    c.send(new Uint8Array(12))
    await service().serve(c, PEER)
    const answer = InferResponse.decode(c.written[0])
    expect(answer.code).toBe(Code.BAD_INPUT)
    expect(answer.message).toMatch(/input "x" has shape \[1, 3\], the model wants \[batch, 2\]/)
  })

  it('keeps to the memory limit: inputs over it are BAD_INPUT, inputs that do not fit now OVERLOADED', async () => {
    let inUse = 0
    const s = service({ maxMemoryBytes: 100, memoryInUse: () => inUse })
    expect((await piece(s, 20)).code).toBe(Code.BAD_INPUT)
    inUse = 90
    const busy = await piece(s, 2)
    expect(busy.code).toBe(Code.OVERLOADED)
    expect(busy.message).toMatch(/using 90 bytes of memory/)
    inUse = 0
    expect((await piece(s, 2)).code).toBe(Code.OK)
    expect(s.running).toBe(0)
  })

  it('cuts a piece\'s deadline to the node\'s maximum: a run that never ends is answered DEADLINE_EXCEEDED and frees its slot', async () => {
    const endless: PieceRuntime['run'] = async (_cid, _load, _inputs, options) => await new Promise((_resolve, reject) => {
      options?.signal?.addEventListener('abort', () => { reject(new Error('stopped')) }, { once: true })
    })
    const s = service({ maxPieceMs: 50 }, endless)
    const started = performance.now()
    const answer = await piece(s, 1, { extra: { deadlineMs: 0xffffffff } })
    expect(answer.code).toBe(Code.DEADLINE_EXCEEDED)
    expect(performance.now() - started).toBeLessThan(5000)
    expect(s.freeSlots).toBe(2)
  })

  it('a piece that finds every slot taken waits for one; the freed slot goes to the waiting submitter of most credit', async () => {
    const credit: Record<string, number> = { [PEER_B.toString()]: 100 }
    // the first piece runs until the test lets it end; the others at once
    let endFirst!: () => void
    const gate = new Promise<void>(resolve => { endFirst = resolve })
    let runs = 0
    const run: PieceRuntime['run'] = async (_cid, _load, inputs) => { if (runs++ === 0) await gate; return { outputs: { y: inputs.x }, provider: 'cpu', computeMs: 1 } }
    const s = service({ maxConcurrency: 1, priority: p => credit[p] ?? 0 }, run)
    const order: string[] = []
    const send = async (peer: typeof PEER, name: string): Promise<InferResponse> => {
      const c = channel()
      c.send(header(1))
      c.send(x(1).data)
      await s.serve(c, peer)
      order.push(name)
      return InferResponse.decode(c.written[0])
    }
    const first = send(PEER, 'first')
    await new Promise(resolve => setTimeout(resolve, 5))
    // two more while the one slot is taken: a newcomer first, then a submitter of credit; neither is refused
    const newcomer = send(PEER_C, 'newcomer')
    await new Promise(resolve => setTimeout(resolve, 5))
    const credited = send(PEER_B, 'credited')
    await new Promise(resolve => setTimeout(resolve, 5))
    expect(s.running).toBe(1)
    endFirst()
    const answers = await Promise.all([first, newcomer, credited])
    expect(answers.map(a => a.code)).toEqual([Code.OK, Code.OK, Code.OK])
    expect(order).toEqual(['first', 'credited', 'newcomer'])
  })

  it('one peer cannot fill the wait: beyond as many waiting pieces as the node has slots, its next are refused at once; others still wait', async () => {
    const s = service({ maxConcurrency: 1 }, async () => await new Promise(() => {}))
    void piece(s, 1)
    await new Promise(resolve => setTimeout(resolve, 5))
    const waiting = piece(s, 1)
    const started = performance.now()
    const flood = await Promise.all(Array.from({ length: 5 }, async () => await piece(s, 1)))
    expect(flood.map(a => a.code)).toEqual(Array(5).fill(Code.OVERLOADED))
    expect(performance.now() - started).toBeLessThan(SLOT_QUEUE_MS / 2)
    // another peer's piece is let wait (it is answered only when the wait ends)
    const c = channel()
    c.send(header(1))
    c.send(x(1).data)
    const other = s.serve(c, PEER_B).then(() => performance.now() - started)
    expect(await other).toBeGreaterThanOrEqual(SLOT_QUEUE_MS - 5)
    expect((await waiting).code).toBe(Code.OVERLOADED)
  })

  it('a piece that waited for a slot in vain is answered OVERLOADED', async () => {
    const s = service({ maxConcurrency: 1 }, async () => await new Promise(() => {}))
    void piece(s, 1)
    await new Promise(resolve => setTimeout(resolve, 5))
    const started = performance.now()
    const answer = await piece(s, 1)
    expect(answer.code).toBe(Code.OVERLOADED)
    expect(performance.now() - started).toBeGreaterThanOrEqual(SLOT_QUEUE_MS - 5)
  })

  it('drops a piece whose inputs stop arriving, and frees its slot', async () => {
    const s = service({ inputIdleMs: 30 })
    const answer = await piece(s, 1, { withhold: true })
    expect(answer.code).toBe(Code.DEADLINE_EXCEEDED)
    expect(answer.message).toMatch(/inputs stopped arriving \(nothing for 30 ms\)/)
    expect(s.running).toBe(0)
  })

  it('answers OVERLOADED past its slots, and counts the pieces waiting to compute', async () => {
    let release!: () => void
    const gate = new Promise<void>(resolve => { release = resolve })
    const s = service({ maxConcurrency: 1 }, async (_cid, _load, inputs, options) => { await gate; options?.onStart?.(); return { outputs: { y: inputs.x }, provider: 'cpu', computeMs: 1 } })
    const first = piece(s, 1)
    await new Promise(resolve => setTimeout(resolve, 10))
    expect(s.queueLength).toBe(1)
    const second = await piece(s, 1)
    expect(second.code).toBe(Code.OVERLOADED)
    release()
    expect((await first).code).toBe(Code.OK)
    expect(s.queueLength).toBe(0)
  })
})
