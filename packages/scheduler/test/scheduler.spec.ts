import { describe, expect, it } from 'vitest'
import { planPieces, sizePiece } from '../src/plan.js'
import type { Piece } from '../src/plan.js'
import { Scheduler } from '../src/scheduler.js'
import type { SchedulerOptions } from '../src/scheduler.js'
import { simulate } from './simulate.js'
import type { SimPeer, SimResult } from './simulate.js'

// the reference: 1 ms per row on a 100 GFLOP/s node
const base: SchedulerOptions = { refMsPerRow: 1, refGflops: 100, timeoutFloorMs: 200, backoffMs: 100 }
const peer = (peerId: string, gflops: number, trueMsPerRow: number, extra: Partial<SimPeer> = {}): SimPeer =>
  ({ peerId, gflops, slots: 2, trueMsPerRow, ...extra })

/** The ETA after each result that `which` picks (more than 5 of them) is within 0.8 and `high` times the time that was really left. */
function expectEtaWithin (result: SimResult, which: (p: SimResult['progress'][number]) => boolean, high: number): void {
  const samples = result.progress.filter(which)
  expect(samples.length).toBeGreaterThan(5)
  for (const p of samples) {
    const left = result.endedAt - p.at
    expect(p.etaMs).toBeGreaterThanOrEqual(left * 0.8)
    expect(p.etaMs).toBeLessThanOrEqual(left * high)
  }
}

describe('piece planning', () => {
  it('sizes a piece by factoring: the peer\'s share by speed of half the rows left, within the overhead and time bounds', () => {
    const mesh = [{ msPerRow: 1, window: 2 }, { msPerRow: 1, window: 2 }]
    // 1000 rows left, 2 equal peers of 2 pieces each: 1000 / (2 x 4) = 125
    expect(sizePiece({ totalRows: 1000, overheadMs: 1 }, { remainingRows: 1000, peer: { msPerRow: 1, known: true }, mesh })).toBe(125)
    // a peer 3 times as fast as the other gets 3 times the share
    const mixed = [{ msPerRow: 1 / 3, window: 2 }, { msPerRow: 1, window: 2 }]
    expect(sizePiece({ totalRows: 1000, overheadMs: 0.1 }, { remainingRows: 1000, peer: { msPerRow: 1 / 3, known: true }, mesh: mixed })).toBe(188)
    expect(sizePiece({ totalRows: 1000, overheadMs: 0.1 }, { remainingRows: 1000, peer: { msPerRow: 1, known: true }, mesh: mixed })).toBe(63)
    // near the end pieces shrink, but never under 20 x the dispatch overhead of compute (10 ms -> 200 rows at 1 ms)
    expect(sizePiece({ totalRows: 1000, overheadMs: 10 }, { remainingRows: 900, peer: { msPerRow: 1, known: true }, mesh })).toBe(200)
    expect(sizePiece({ totalRows: 1000, overheadMs: 1 }, { remainingRows: 100, peer: { msPerRow: 1, known: true }, mesh })).toBe(20)
    // a remainder under that bound joins the last piece
    expect(sizePiece({ totalRows: 1000, overheadMs: 1 }, { remainingRows: 30, peer: { msPerRow: 1, known: true }, mesh })).toBe(30)
    // no piece longer than maxPieceMs on its peer, nor over maxRows
    expect(sizePiece({ totalRows: 100_000, maxPieceMs: 500 }, { remainingRows: 100_000, peer: { msPerRow: 1, known: true }, mesh })).toBe(500)
    expect(sizePiece({ totalRows: 100_000, maxRows: 64 }, { remainingRows: 100_000, peer: { msPerRow: 1, known: true }, mesh })).toBe(64)
    // a peer whose speed is a guess gets a probe of a quarter of its share, with no time bounds
    expect(sizePiece({ totalRows: 1000, maxPieceMs: 10 }, { remainingRows: 1000, peer: { msPerRow: 1, known: false }, mesh })).toBe(32)
    expect(sizePiece({ totalRows: 1000 }, { remainingRows: 0, peer: { msPerRow: 1, known: true }, mesh })).toBe(0)
  })

  it('covers every row exactly once', () => {
    const pieces = planPieces(10, 4)
    expect(pieces).toEqual([{ id: 0, start: 0, rows: 4 }, { id: 1, start: 4, rows: 4 }, { id: 2, start: 8, rows: 2 }])
    expect(() => planPieces(10, 0)).toThrow(RangeError)
  })
})

/** The pieces a self-sizing scheduler cut, checked to cover the batch once, in order. */
function cutPieces (s: Scheduler, totalRows: number): Piece[] {
  const pieces = s.allPieces()
  let next = 0
  for (const p of pieces) {
    expect(p.start).toBe(next)
    expect(p.rows).toBeGreaterThan(0)
    next += p.rows
  }
  expect(next).toBe(totalRows)
  return pieces
}

describe('self-sizing pieces', () => {
  const serial = (peerId: string, gflops: number, trueMsPerRow: number, extra: Partial<SimPeer> = {}): SimPeer => peer(peerId, gflops, trueMsPerRow, { serial: true, overheadMs: 5, ...extra })
  const mesh = (): SimPeer[] => [serial('fast', 300, 1 / 3), serial('mid', 200, 0.5), serial('slow', 100, 1)]

  it('cuts every row once, large pieces first and smaller ones towards the end', () => {
    const s = new Scheduler([], { ...base, sizing: { totalRows: 30_000, overheadMs: 5 } })
    const result = simulate(s, [], mesh())
    expect(result.state).toBe('done')
    const pieces = cutPieces(s, 30_000)
    const firstThird = pieces.filter(p => p.start < 10_000)
    const lastTenth = pieces.filter(p => p.start >= 27_000)
    const mean = (ps: Piece[]): number => ps.reduce((n, p) => n + p.rows, 0) / ps.length
    expect(mean(firstThird)).toBeGreaterThan(3 * mean(lastTenth))
    expect(s.progress(result.endedAt)).toMatchObject({ totalRows: 30_000, doneRows: 30_000, done: pieces.length, total: pieces.length })
  })

  it('finishes within 1.2 x the best fixed piece size, and far sooner than one-row pieces, with no size given', () => {
    const rows = 3000
    const fixed = (size: number): number => {
      const pieces = planPieces(rows, size)
      return simulate(new Scheduler(pieces, base), pieces, mesh()).endedAt
    }
    const best = Math.min(...[8, 16, 32, 64, 128, 256].map(fixed))
    const sized = simulate(new Scheduler([], { ...base, sizing: { totalRows: rows, overheadMs: 5 } }), [], mesh()).endedAt
    expect(sized).toBeLessThan(best * 1.2)
    expect(sized).toBeLessThan(fixed(1) / 2)
    // the ideal: every row at the mesh's combined speed, no overhead
    expect(sized).toBeLessThan(1.2 * rows / (3 + 2 + 1))
  })

  it('with a guessed cost, each peer\'s first pieces are probes with a generous deadline; measured peers get sized ones', () => {
    const s = new Scheduler([], { ...base, refKnown: false, timeoutFloorMs: 200, probeTimeoutMs: 60_000, sizing: { totalRows: 1000 } })
    s.setPeers([{ peerId: 'a', gflops: 100, slots: 2 }, { peerId: 'b', gflops: 100, slots: 2 }], 0)
    const first = s.next(0).assign
    expect(first).toHaveLength(4)
    // a quarter of the 1000 / 8 share: 32 rows, then shares of what is left
    expect(s.piece(first[0].pieceId)?.rows).toBe(32)
    for (const a of first) expect(a.deadline).toBeGreaterThanOrEqual(60_000)
    // a's first answer measures it: 32 rows in 32 ms
    expect(s.succeeded(first[0].pieceId, 'a', 32)).toBe(true)
    const next = s.next(32).assign
    expect(next.map(a => a.peerId)).toEqual(['a'])
    const piece = s.piece(next[0].pieceId)!
    expect(piece.rows).toBeGreaterThan(32)
    expect(next[0].deadline).toBeLessThan(32 + 60_000)
    expect(s.measuredCost()).toBeCloseTo(100, 5) // 1 ms per row at 100 GFLOP/s
  })

  it('a self-sizing scheduler refuses pieces given up front', () => {
    expect(() => new Scheduler(planPieces(10, 2), { ...base, sizing: { totalRows: 10 } })).toThrow(/cuts its own pieces/)
  })

  it('under a quorum of 2, every cut piece is answered by two different peers', () => {
    const s = new Scheduler([], { ...base, quorum: 2, random: () => 0.5, sizing: { totalRows: 400, overheadMs: 1 } })
    const result = simulate(s, [], [serial('a', 100, 1), serial('b', 100, 1), serial('c', 100, 1)])
    expect(result.state).toBe('done')
    const pieces = cutPieces(s, 400)
    expect(result.verdicts.filter(v => v.agreeing != null).map(v => v.pieceId).sort((x, y) => x - y)).toEqual(pieces.map(p => p.id))
    for (const v of result.verdicts) expect(new Set(v.peers).size).toBe(v.peers.length)
  })
})

describe('assignment', () => {
  it('gives faster peers proportionally more pieces', () => {
    const pieces = planPieces(600, 10)
    const result = simulate(new Scheduler(pieces, base), pieces, [peer('fast', 300, 1 / 3), peer('slow', 100, 1)])
    expect(result.state).toBe('done')
    const ratio = result.completedBy.fast / result.completedBy.slow
    expect(ratio).toBeGreaterThan(2.2)
    expect(ratio).toBeLessThan(4)
  })

  it('keeps at most a window of pieces in flight per peer, and no more than its slots', () => {
    const pieces = planPieces(100, 10)
    const s = new Scheduler(pieces, { ...base, window: 2 })
    s.setPeers([{ peerId: 'a', gflops: 100, slots: 4 }, { peerId: 'b', gflops: 100, slots: 1 }], 0)
    const first = s.next(0).assign
    expect(first.filter(x => x.peerId === 'a')).toHaveLength(2)
    expect(first.filter(x => x.peerId === 'b')).toHaveLength(1)
    expect(s.next(1).assign).toEqual([])
  })

  it('corrects advertised speeds with observed ones', () => {
    const pieces = planPieces(400, 10)
    // 'liar' advertises 10x its real speed: once results show it, it gets few pieces
    const result = simulate(new Scheduler(pieces, { ...base, endgame: false }), pieces, [peer('liar', 1000, 5), peer('honest', 100, 1)])
    expect(result.state).toBe('done')
    expect(result.completedBy.honest).toBeGreaterThan(result.completedBy.liar * 3)
  })

  it('measures a peer that computes one piece at a time by its compute, not by the wait in its queue', () => {
    // with a window of 2, each piece waits behind the one before it on the worker: measured from its
    // assignment it seemed to take twice its compute, and the ETA said twice the real time left
    const pieces = planPieces(200, 10)
    const result = simulate(new Scheduler(pieces, { ...base, endgame: false }), pieces, [peer('a', 100, 1, { serial: true })])
    expect(result.state).toBe('done')
    expect(result.endedAt).toBe(200)
    expectEtaWithin(result, p => p.done >= 4 && result.endedAt - p.at >= 40, 1.25)
  })

  it('measures a peer that runs its pieces side by side by the rate at which they come back', () => {
    // two slots computing at once, 2 ms/row each: 1 ms/row of throughput
    const pieces = planPieces(200, 10)
    const result = simulate(new Scheduler(pieces, { ...base, endgame: false }), pieces, [peer('a', 100, 2)])
    expect(result.state).toBe('done')
    expectEtaWithin(result, p => p.done >= 4 && result.endedAt - p.at >= 40, 1.5)
  })

  it('does not take a peer\'s model fetch for slowness', () => {
    // 'b' fetches the model (500 ms) with its first piece, then computes as fast as 'a'; the ETA
    // after that must count it at its compute speed, not at (500 + 10) ms for 10 rows
    const pieces = planPieces(2000, 10)
    const s = new Scheduler(pieces, { ...base, endgame: false, modelFetchMs: 500 })
    const result = simulate(s, pieces, [peer('a', 100, 1, { serial: true }), peer('b', 100, 1, { serial: true, hasModel: false, fetchMs: 500 })])
    expect(result.state).toBe('done')
    expectEtaWithin(result, p => p.at >= 510 && result.endedAt - p.at >= 100, 1.25)
  })

  it('gives serial peers work in proportion to their compute speed', () => {
    const pieces = planPieces(600, 10)
    const result = simulate(new Scheduler(pieces, base), pieces, [peer('fast', 300, 1 / 3, { serial: true }), peer('slow', 100, 1, { serial: true })])
    expect(result.state).toBe('done')
    const ratio = result.completedBy.fast / result.completedBy.slow
    expect(ratio).toBeGreaterThan(2.2)
    expect(ratio).toBeLessThan(4)
  })

  it('a piece queued behind another on its peer gets a deadline that allows for the wait', () => {
    const pieces = planPieces(400, 100)
    const s = new Scheduler(pieces, { ...base, timeoutFactor: 4, timeoutFloorMs: 200 })
    s.setPeers([{ peerId: 'a', gflops: 100, slots: 2 }], 0)
    // 100 rows at the advertised 1 ms/row: 100 ms; the second waits for the first: 200 ms
    expect(s.next(0).assign.map(a => a.deadline)).toEqual([400, 800])
  })

  it('sets deadlines from the expected time with a floor', () => {
    const pieces = planPieces(1000, 500)
    const s = new Scheduler(pieces, { ...base, timeoutFactor: 4, timeoutFloorMs: 200 })
    s.setPeers([{ peerId: 'a', gflops: 100, slots: 2 }], 1000)
    // 500 rows at 1 ms/row, times 4; the second piece also waits for the first
    expect(s.next(1000).assign.map(a => a.deadline)).toEqual([1000 + 4 * 500, 1000 + 4 * 1000])
    const tiny = new Scheduler(planPieces(2, 1), { ...base, timeoutFloorMs: 200 })
    tiny.setPeers([{ peerId: 'a', gflops: 100, slots: 2 }], 0)
    expect(tiny.next(0).assign[0].deadline).toBe(200)
    expect(tiny.nextWakeAt(0)).toBe(200)
  })

  it('prefers peers that hold the model; one without it is expected to fetch first, and deadlines allow for it', () => {
    const pieces = planPieces(40, 10)
    const s = new Scheduler(pieces, { ...base, window: 1, modelFetchMs: 5000, timeoutFactor: 2 })
    // 'cold' is twice as fast but lacks the model: 'warm' gets the first piece
    s.setPeers([{ peerId: 'cold', gflops: 200, slots: 1, hasModel: false }, { peerId: 'warm', gflops: 100, slots: 1, hasModel: true }], 0)
    const first = s.next(0).assign
    expect(first[0]).toMatchObject({ pieceId: 0, peerId: 'warm', deadline: 200 }) // the floor
    // with warm busy, cold takes the next, with the fetch in its deadline
    expect(first[1]).toMatchObject({ pieceId: 1, peerId: 'cold', deadline: 2 * (5000 + 5) })
    // once cold has completed a piece it holds the model: no more fetch time (observed 10 ms/row: 100 ms expected, 200 the floor)
    s.succeeded(1, 'cold', 100)
    expect(s.next(100).assign).toEqual([{ pieceId: 2, peerId: 'cold', deadline: 100 + 200, duplicate: false }])
  })

  it('without modelFetchMs, holding the model changes nothing', () => {
    const pieces = planPieces(20, 10)
    const s = new Scheduler(pieces, { ...base, window: 1 })
    s.setPeers([{ peerId: 'cold', gflops: 200, slots: 1, hasModel: false }, { peerId: 'warm', gflops: 100, slots: 1 }], 0)
    expect(s.next(0).assign[0].peerId).toBe('cold')
  })

  it('is deterministic', () => {
    const run = (): unknown => {
      const pieces = planPieces(300, 7)
      return simulate(new Scheduler(pieces, base), pieces, [peer('a', 100, 1), peer('b', 200, 0.5), peer('c', 50, 2, { leavesAt: 40 })]).decisions
    }
    expect(run()).toEqual(run())
  })
})

describe('failures', () => {
  it('two of four peers leaving mid-job lose their pieces to the others, and nothing is lost', () => {
    const pieces = planPieces(400, 10)
    const s = new Scheduler(pieces, base)
    const result = simulate(s, pieces, [peer('a', 100, 1), peer('b', 100, 1), peer('c', 100, 1, { leavesAt: 25 }), peer('d', 100, 1, { leavesAt: 25 })])
    expect(result.state).toBe('done')
    expect(s.winners.size).toBe(40)
    expect(new Set(s.winners.values())).toEqual(new Set(['a', 'b', 'c', 'd']))
    // the pieces c and d held when they left were run again elsewhere
    expect(s.progress(result.endedAt).retries).toBe(4)
  })

  it('a peer that accepts a piece and never answers times out; the piece is reassigned', () => {
    const pieces = planPieces(100, 10)
    const s = new Scheduler(pieces, { ...base, timeoutFloorMs: 300, endgame: false })
    const result = simulate(s, pieces, [peer('mute', 1000, 1, { silent: true }), peer('ok', 100, 1)])
    expect(result.state).toBe('done')
    expect(result.cancelled.filter(c => c.reason === 'timeout' && c.peerId === 'mute').length).toBeGreaterThan(0)
    expect(s.progress(result.endedAt).perPeer).toEqual({ ok: 10 })
  })

  it('after K failed attempts of one piece the job fails, naming the piece and each cause', () => {
    const pieces = planPieces(10, 10)
    const s = new Scheduler(pieces, { ...base, maxAttempts: 3 })
    const error = { kind: 'error', code: 'INTERNAL', message: 'out of memory' } as const
    const result = simulate(s, pieces, [peer('x', 100, 1, { failWith: error }), peer('y', 100, 1, { failWith: error })])
    expect(result.state).toBe('failed')
    expect(s.error?.pieceId).toBe(0)
    expect(s.error?.attempts).toHaveLength(3)
    expect(s.error?.message).toMatch(/^piece 0 \(rows 0-9\) failed 3 times \(x: INTERNAL: out of memory; y: INTERNAL: out of memory; x: INTERNAL: out of memory\)$/)
  })

  it('a bad-input refusal fails the job at once', () => {
    const pieces = planPieces(20, 10)
    const s = new Scheduler(pieces, base)
    const result = simulate(s, pieces, [peer('x', 100, 1, { failWith: { kind: 'fatal', code: 'BAD_INPUT', message: 'input "x" has dtype int32, the model wants float32' } })])
    expect(result.state).toBe('failed')
    expect(s.error?.message).toMatch(/was refused by peer x: BAD_INPUT: input "x" has dtype int32/)
    expect(s.error?.attempts).toHaveLength(1)
  })

  it('an overloaded peer is asked again soon, doubling, without using up the piece\'s attempts', () => {
    const pieces = planPieces(10, 10)
    const s = new Scheduler(pieces, { ...base, maxAttempts: 1, backoffMs: 1000 })
    s.setPeers([{ peerId: 'busy', gflops: 100, slots: 2 }], 0)
    expect(s.next(0).assign).toHaveLength(1)
    s.failed(0, 'busy', { kind: 'overloaded' }, 5)
    expect(s.state).toBe('running')
    expect(s.next(50).assign).toEqual([]) // backing off, for OVERLOAD_BACKOFF_MS (50), not a failure's 1000
    expect(s.nextWakeAt(50)).toBe(55)
    expect(s.next(55).assign.map(a => a.pieceId)).toEqual([0])
    s.failed(0, 'busy', { kind: 'overloaded' }, 60)
    expect(s.nextWakeAt(60)).toBe(160)
  })

  it('after OVERLOADED a job holds no more pieces on that peer than it had, and takes back its window one answer at a time', () => {
    const pieces = planPieces(40, 1)
    const s = new Scheduler(pieces, { ...base, window: 4 })
    s.setPeers([{ peerId: 'shared', gflops: 100, slots: 4 }], 0)
    const first = s.next(0).assign
    expect(first).toHaveLength(4)
    // the worker is full of another job's pieces: it turns two away
    s.failed(first[2].pieceId, 'shared', { kind: 'overloaded' }, 1)
    s.failed(first[3].pieceId, 'shared', { kind: 'overloaded' }, 1)
    expect(s.next(150).assign).toEqual([]) // its backoff is over, but it holds 2, as when turned away
    s.succeeded(first[0].pieceId, 'shared', 151)
    // after one answer, 2 + 1 = 3 in flight at most
    expect(s.next(151).assign).toHaveLength(2)
    s.succeeded(first[1].pieceId, 'shared', 152)
    expect(s.next(152).assign).toHaveLength(2) // the window again: 4
  })

  it('crashed peers still advertised do not use up a piece\'s attempts, and are left alone a while', () => {
    // four peers gone with their ads still live, one alive; a piece may fail only once
    const pieces = planPieces(10, 10)
    const s = new Scheduler(pieces, { ...base, maxAttempts: 1, backoffMs: 10_000 })
    const dead = ['d1', 'd2', 'd3', 'd4']
    s.setPeers([...dead.map(id => ({ peerId: id, gflops: 1000, slots: 1 })), { peerId: 'alive', gflops: 10, slots: 1 }], 0)
    let now = 0
    for (let round = 0; round < dead.length; round++) {
      const assigned = s.next(now).assign.filter(a => dead.includes(a.peerId))
      for (const a of assigned) s.failed(a.pieceId, a.peerId, { kind: 'unreachable', message: 'connect ECONNREFUSED' }, now)
      now += 100
    }
    expect(s.state).toBe('running')
    // every dead peer is backing off: the piece goes to the live one
    const next = s.next(now).assign
    expect(next.map(a => a.peerId)).toEqual(['alive'])
    expect(s.nextWakeAt(now)).toBeLessThanOrEqual(10_000)
    expect(s.succeeded(next[0].pieceId, 'alive', now + 50)).toBe(true)
    expect(s.state).toBe('done')
  })

  it('a deadline that passes between next() and nextWakeAt() still wakes the caller at once', () => {
    // a timer fired a fraction of a millisecond early: next() ran just before the deadline, the wake
    // time was asked just after it; the job must not wait forever on the piece
    const pieces = planPieces(10, 10)
    const s = new Scheduler(pieces, { ...base, timeoutFloorMs: 1000 })
    s.setPeers([{ peerId: 'mute', gflops: 100, slots: 1 }], 0)
    const [a] = s.next(0).assign
    expect(s.next(a.deadline - 0.5).cancel).toEqual([])
    expect(s.nextWakeAt(a.deadline + 0.3)).toBe(a.deadline)
    expect(s.next(a.deadline + 1).cancel).toEqual([{ pieceId: 0, peerId: 'mute', reason: 'timeout' }])
  })

  it('a failing peer backs off longer after each consecutive failure', () => {
    const pieces = planPieces(30, 10)
    const s = new Scheduler(pieces, { ...base, backoffMs: 100, maxAttempts: 10 })
    s.setPeers([{ peerId: 'p', gflops: 100, slots: 1 }], 0)
    const err = { kind: 'error', code: 'INTERNAL', message: 'x' } as const
    s.next(0)
    s.failed(0, 'p', err, 0)
    expect(s.nextWakeAt(0)).toBe(100)
    s.next(100)
    s.failed(0, 'p', err, 100)
    expect(s.nextWakeAt(100)).toBe(300)
  })
})

describe('end-game', () => {
  it('a peer slowed tenfold does not dominate wall time: idle peers duplicate its last pieces and win', () => {
    const pieces = planPieces(400, 10)
    const peers = [peer('a', 100, 1), peer('b', 100, 1), peer('c', 100, 1), peer('slow', 100, 10)]
    const s = new Scheduler(pieces, base)
    const withEndgame = simulate(s, pieces, peers)
    const without = simulate(new Scheduler(pieces, { ...base, endgame: false }), pieces, peers)
    expect(withEndgame.state).toBe('done')
    expect(without.state).toBe('done')
    expect(s.progress(withEndgame.endedAt).duplicates).toBeGreaterThan(0)
    expect(withEndgame.cancelled.some(c => c.reason === 'superseded' && c.peerId === 'slow')).toBe(true)
    expect(withEndgame.endedAt).toBeLessThan(0.8 * without.endedAt)
  })

  it('a late result from a superseded copy is not counted', () => {
    const pieces = planPieces(10, 10)
    const s = new Scheduler(pieces, base)
    s.setPeers([{ peerId: 'a', gflops: 100, slots: 1 }, { peerId: 'b', gflops: 100, slots: 1 }], 0)
    expect(s.next(0).assign).toEqual([{ pieceId: 0, peerId: 'a', deadline: 200, duplicate: false }])
    // b is idle and a's copy is overdue in expectation: b gets a duplicate
    expect(s.next(50).assign).toEqual([{ pieceId: 0, peerId: 'b', deadline: 250, duplicate: true }])
    expect(s.succeeded(0, 'b', 60)).toBe(true)
    expect(s.next(60).cancel).toEqual([{ pieceId: 0, peerId: 'a', reason: 'superseded' }])
    expect(s.succeeded(0, 'a', 70)).toBe(false)
    expect(s.state).toBe('done')
    expect(s.progress(70).perPeer).toEqual({ b: 1 })
  })

  it('does not duplicate onto a peer that would finish later than the original', () => {
    const pieces = planPieces(10, 10)
    const s = new Scheduler(pieces, base)
    s.setPeers([{ peerId: 'a', gflops: 100, slots: 1 }, { peerId: 'b', gflops: 100, slots: 1 }], 0)
    s.next(0)
    expect(s.next(1).assign).toEqual([]) // b would finish at 11, a at 10
  })
})

describe('local node', () => {
  const pieces = planPieces(40, 10)
  it('in fallback mode, the local node works only while no remote peer can', () => {
    const s = new Scheduler(pieces, { ...base, localPeerId: 'me', local: 'fallback' })
    s.setPeers([{ peerId: 'me', gflops: 100, slots: 2 }, { peerId: 'r', gflops: 100, slots: 2 }], 0)
    expect(new Set(s.next(0).assign.map(a => a.peerId))).toEqual(new Set(['r']))
    s.setPeers([{ peerId: 'me', gflops: 100, slots: 2 }], 1) // the remote peer left
    expect(new Set(s.next(1).assign.map(a => a.peerId))).toEqual(new Set(['me']))
  })

  it('in fallback mode, a peer that is only busy (OVERLOADED) keeps the local node out; one that failed does not', () => {
    const s = new Scheduler(pieces, { ...base, localPeerId: 'me', local: 'fallback', window: 1 })
    s.setPeers([{ peerId: 'me', gflops: 100, slots: 1 }, { peerId: 'r', gflops: 100, slots: 1 }], 0)
    const [first] = s.next(0).assign
    expect(first.peerId).toBe('r')
    s.failed(first.pieceId, 'r', { kind: 'overloaded' }, 1)
    expect(s.next(2).assign).toEqual([]) // r backs off 50 ms; the local node waits for it
    const [again] = s.next(60).assign
    expect(again.peerId).toBe('r')
    // a real failure: r backs off for a second, and meanwhile the local node works
    s.failed(again.pieceId, 'r', { kind: 'error', code: 'INTERNAL', message: 'crashed' }, 61)
    expect(s.next(62).assign.map(a => a.peerId)).toEqual(['me'])
  })

  it('in share mode, the local node takes pieces alongside remote peers', () => {
    const s = new Scheduler(pieces, { ...base, localPeerId: 'me', local: 'share' })
    s.setPeers([{ peerId: 'me', gflops: 100, slots: 2 }, { peerId: 'r', gflops: 100, slots: 2 }], 0)
    expect(new Set(s.next(0).assign.map(a => a.peerId))).toEqual(new Set(['me', 'r']))
  })

  it('with no peer at all, nothing is assigned and the job waits rather than failing', () => {
    const s = new Scheduler(pieces, base)
    s.setPeers([], 0)
    expect(s.next(0)).toEqual({ assign: [], cancel: [] })
    expect(s.state).toBe('running')
  })
})

describe('quorum (verify full)', () => {
  const full: SchedulerOptions = { ...base, quorum: 2 }

  it('runs every piece on two different peers and finishes only once their answers agree', () => {
    const pieces = planPieces(80, 10)
    const result = simulate(new Scheduler(pieces, full), pieces, [peer('a', 100, 1), peer('b', 100, 1), peer('c', 100, 1)])
    expect(result.state).toBe('done')
    expect(result.verdicts).toHaveLength(8)
    for (const v of result.verdicts) {
      expect(new Set(v.peers).size).toBe(2) // never the same peer twice
      expect(v.agreeing).toEqual(v.peers)
    }
    // twice the answers of the pieces, spread over the three peers
    expect(Object.values(result.completedBy).reduce((a, b) => a + b, 0)).toBe(16)
    expect(Object.keys(result.completedBy).sort()).toEqual(['a', 'b', 'c'])
  })

  it('a disagreement goes to a third peer, and the two that agree win', () => {
    const pieces = planPieces(40, 10)
    const result = simulate(new Scheduler(pieces, full), pieces, [peer('a', 100, 1), peer('liar', 300, 1 / 3, { answers: 'zeros' }), peer('c', 100, 1)])
    expect(result.state).toBe('done')
    const decided = result.verdicts.filter(v => v.agreeing != null)
    expect(decided).toHaveLength(4)
    for (const v of decided) expect(v.agreeing).not.toContain('liar')
    // every piece the liar answered needed a third answer
    const disputed = result.verdicts.filter(v => v.agreeing == null).map(v => v.pieceId)
    for (const v of decided) if (v.peers.includes('liar')) expect(v.peers).toHaveLength(3)
    expect(disputed.length).toBeGreaterThan(0)
  })

  it('a disagreement goes to the local node when it is among the peers, even in fallback mode: its answer decides', () => {
    const pieces = planPieces(10, 10)
    const result = simulate(new Scheduler(pieces, { ...full, localPeerId: 'me', local: 'fallback' }), pieces, [peer('me', 10, 10), peer('x', 100, 1, { answers: 'x' }), peer('y', 100, 1, { answers: 'y' }), peer('z', 100, 1, { answers: 'z' })], undefined, 'me')
    expect(result.state).toBe('done')
    expect(result.verdicts.map(v => v.peers.length)).toEqual([2, 3])
    expect(result.verdicts[1].peers[2]).toBe('me')
  })

  it('a local node that computes nothing (no slots) is no arbiter: a disagreement goes to a third peer', () => {
    const pieces = planPieces(10, 10)
    const result = simulate(new Scheduler(pieces, { ...full, localPeerId: 'me', random: () => 0 }), pieces, [{ ...peer('me', 100, 1), slots: 0 }, peer('x', 100, 1, { answers: 'x' }), peer('y', 100, 1), peer('z', 100, 1)], undefined, 'me')
    expect(result.state).toBe('done')
    expect(result.verdicts.at(-1)?.peers).toHaveLength(3)
    expect(result.verdicts.at(-1)?.peers).not.toContain('me')
  })

  it('fails a piece whose answers never agree, naming the peers', () => {
    const pieces = planPieces(10, 10)
    const result = simulate(new Scheduler(pieces, full), pieces, [peer('a', 100, 1, { answers: 'x' }), peer('b', 100, 1, { answers: 'y' }), peer('c', 100, 1, { answers: 'z' }), peer('d', 100, 1)])
    expect(result.state).toBe('failed')
    expect(result.verdicts.map(v => v.agreeing)).toEqual([null, null])
  })

  it('fails a piece rather than waiting when no peer is left that has not answered it', () => {
    const pieces = planPieces(10, 10)
    const s = new Scheduler(pieces, full)
    const result = simulate(s, pieces, [peer('a', 100, 1)])
    expect(result.state).toBe('failed')
    expect(s.error?.message).toMatch(/^piece 0 \(rows 0-9\) could not be verified: it needs an answer from a peer other than a, and no other peer is there$/)
  })

  it('the local node\'s own answer needs no second one: the submitter trusts its own run', () => {
    const pieces = planPieces(20, 10)
    const result = simulate(new Scheduler(pieces, { ...full, localPeerId: 'me' }), pieces, [peer('me', 100, 1)])
    expect(result.state).toBe('done')
    expect(result.verdicts.map(v => v.peers)).toEqual([['me'], ['me']])
  })

  it('the local node in fallback mode gives the second answer when the only remote peer gave the first', () => {
    const pieces = planPieces(20, 10)
    const result = simulate(new Scheduler(pieces, { ...full, localPeerId: 'me', local: 'fallback' }), pieces, [peer('me', 100, 1), peer('r', 100, 1)])
    expect(result.state).toBe('done')
    for (const v of result.verdicts) expect(new Set(v.peers)).toEqual(new Set(['me', 'r']))
  })

  it('a retracted answer (its peer proven wrong elsewhere) is replaced by another peer\'s', () => {
    // the first of the peers drawn for a further copy
    const s = new Scheduler(planPieces(10, 10), { ...full, random: () => 0 })
    s.setPeers([{ peerId: 'a', gflops: 100, slots: 1 }, { peerId: 'b', gflops: 100, slots: 1 }, { peerId: 'c', gflops: 100, slots: 1 }], 0)
    const first = s.next(0).assign
    expect(first.map(x => x.peerId).sort()).toEqual(['a', 'b'])
    expect(s.succeeded(0, 'a', 10)).toBe(true)
    expect(s.ballot(0)).toBeUndefined() // one answer of two
    s.retract(0, 'a')
    expect(s.next(11).assign.map(x => x.peerId)).toEqual(['c']) // never 'a' again
    expect(s.succeeded(0, 'b', 12)).toBe(true)
    expect(s.succeeded(0, 'c', 13)).toBe(true)
    expect(s.ballot(0)).toEqual(['b', 'c'])
    s.agreed(0, ['b', 'c'])
    expect(s.state).toBe('done')
    expect(s.winners.get(0)).toBe('b')
  })

  it('two colluders advertising the highest speeds rarely get both copies of a piece: further copies are drawn at random', () => {
    const pieces = planPieces(100, 1)
    let state = 7
    const random = (): number => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 4294967296
    const honest = Array.from({ length: 8 }, (_, i) => peer(`h${i}`, 100, 1))
    const sybils = [peer('s0', 10_000, 0.001), peer('s1', 10_000, 0.001)]
    const result = simulate(new Scheduler(pieces, { ...full, random }), pieces, [...sybils, ...honest])
    expect(result.state).toBe('done')
    const together = result.verdicts.filter(v => v.peers.includes('s0') && v.peers.includes('s1')).length
    // fastest-first gave them both copies of about 9 in 10 pieces; at random, about 1 in 9 of their first copies
    expect(together).toBeLessThan(25)
  })

  it('a quorum of 1 is the default and needs no verdict', () => {
    const s = new Scheduler(planPieces(10, 10), base)
    s.setPeers([{ peerId: 'a', gflops: 100, slots: 1 }], 0)
    s.next(0)
    expect(s.succeeded(0, 'a', 5)).toBe(true)
    expect(s.ballot(0)).toBeUndefined()
    expect(s.state).toBe('done')
    expect(() => new Scheduler([], { ...base, quorum: 0 })).toThrow(RangeError)
  })
})

describe('progress', () => {
  it('reports pieces done, in flight, retries, duplicates, per peer and an ETA', () => {
    const s = new Scheduler(planPieces(40, 10), base)
    s.setPeers([{ peerId: 'a', gflops: 100, slots: 2 }], 0)
    s.next(0)
    expect(s.progress(0).etaMs).toBeNull() // no piece back yet: no guess
    s.succeeded(0, 'a', 10)
    s.failed(1, 'a', { kind: 'disconnect' }, 10)
    const p = s.progress(10)
    expect(p).toMatchObject({ total: 4, done: 1, pending: 3, inFlight: 0, retries: 1, duplicates: 0, perPeer: { a: 1 } })
    expect(p.etaMs).toBe(30) // 30 rows at the observed 1 ms/row
  })
})

describe('options', () => {
  it('an option passed as undefined keeps its default', () => {
    const s = new Scheduler(planPieces(10, 10), { ...base, timeoutFloorMs: undefined, maxAttempts: undefined })
    s.setPeers([{ peerId: 'a', gflops: 100, slots: 1 }], 0)
    expect(s.next(0).assign[0].deadline).toBe(5000)
  })
})

describe('pieces that become ready later (pipeline stages)', () => {
  it('is not done until every expected piece was added and answered, and starts no end-game copy before', () => {
    const pieces = planPieces(40, 10)
    const s = new Scheduler(pieces.slice(0, 1), { ...base, total: pieces.length })
    s.setPeers([{ peerId: 'a', gflops: 100, slots: 2 }, { peerId: 'b', gflops: 100, slots: 2 }], 0)
    const first = s.next(0).assign
    // one piece, two idle peers: no copy while more pieces are to come
    expect(first).toHaveLength(1)
    expect(s.succeeded(0, first[0].peerId, 10)).toBe(true)
    expect(s.next(10).assign).toEqual([])
    expect(s.state).toBe('running')
    expect(s.progress(10)).toMatchObject({ total: 4, done: 1 })
    s.add(pieces.slice(1))
    const rest = s.next(10).assign
    expect(rest.map(a => a.pieceId).sort()).toEqual([1, 2, 3])
    for (const a of rest) s.succeeded(a.pieceId, a.peerId, 20)
    expect(s.state).toBe('done')
    expect(() => s.add([pieces[0]])).toThrow(RangeError)
  })

  it('runs end-game copies once the last piece is in', () => {
    const pieces = planPieces(20, 10)
    const s = new Scheduler(pieces.slice(0, 1), { ...base, total: 2 })
    s.setPeers(['a', 'b', 'c'].map(peerId => ({ peerId, gflops: 100, slots: 1 })), 0)
    expect(s.next(0).assign).toHaveLength(1)
    expect(s.next(1).assign).toEqual([])
    // piece 0 is overdue at 50 ms (10 rows at 1 ms each): an idle peer would finish a copy sooner
    expect(s.next(50).assign).toEqual([])
    s.add(pieces.slice(1))
    const second = s.next(50).assign
    // the new piece to one idle peer, and the last idle one takes a copy now that nothing more will come
    expect(second.filter(a => !a.duplicate).map(a => a.pieceId)).toEqual([1])
    expect(second.filter(a => a.duplicate)).toHaveLength(1)
  })
})
