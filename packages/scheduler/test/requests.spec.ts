import { describe, expect, it } from 'vitest'
import { RequestRouter } from '../src/requests.js'
import type { RequestCandidate } from '../src/requests.js'

const peer = (peerId: string, gflops: number, extra: Partial<RequestCandidate> = {}): RequestCandidate => ({ peerId, gflops, hasModel: true, queueLength: 0, ...extra })
const router = (): RequestRouter => new RequestRouter({ refMsPerRow: 10, refGflops: 100, modelFetchMs: 1000, defaultRoundTripMs: 5, hedgeFloorMs: 20, coldStartMs: 0 })

describe('routing a request', () => {
  it('prefers, before any answer, the peer advertised fastest for its rows and queue, holding the model', () => {
    const r = router()
    // 4 rows at 10 ms a row on a 100 GFLOP/s node: 40 ms there, 20 ms on a 200, 10 ms on a 400
    const ranked = r.rank([peer('slow', 100), peer('fast', 400), peer('mid', 200)], 4, 0)
    expect(ranked.map(x => x.peerId)).toEqual(['fast', 'mid', 'slow'])
    expect(ranked[0].expectedMs).toBeCloseTo(5 + 10)
    // a queue of 3 ahead makes the fast one four times as long; a missing model adds its fetch
    expect(r.rank([peer('fast', 400, { queueLength: 3 }), peer('mid', 200)], 4, 0).map(x => x.peerId)).toEqual(['mid', 'fast'])
    expect(r.rank([peer('fast', 400, { hasModel: false }), peer('slow', 100)], 4, 0).map(x => x.peerId)).toEqual(['slow', 'fast'])
  })

  it('prefers a peer that keeps a session of the model open over one as fast that must open one', () => {
    const r = new RequestRouter({ refMsPerRow: 10, refGflops: 100, modelFetchMs: 1000, coldStartMs: 100 })
    const ranked = r.rank([peer('cold', 100), peer('warm', 100, { warm: true })], 1, 0)
    expect(ranked.map(x => x.peerId)).toEqual(['warm', 'cold'])
    expect(ranked[1].expectedMs - ranked[0].expectedMs).toBe(100)
  })

  it('follows measured answers over advertised speed, and counts no round trip for this node', () => {
    const r = router()
    r.answered('liar', 4, 400)
    expect(r.rank([peer('liar', 10_000), peer('honest', 100)], 4, 0).map(x => x.peerId)).toEqual(['honest', 'liar'])
    // this node at the reference speed: 40 ms, against 45 ms for a peer of the same speed
    expect(r.rank([peer('me', 100), peer('other', 100)], 4, 0, new Set(), 'me')[0].peerId).toBe('me')
  })

  it('counts its own requests still in flight at a target: a stream spreads over targets as they fill', () => {
    const r = router()
    r.answered('fast', 1, 10)
    r.answered('slow', 1, 25)
    expect(r.rank([peer('fast', 100), peer('slow', 100)], 1, 0)[0].peerId).toBe('fast')
    r.sent('fast')
    r.sent('fast')
    // two ahead at fast: 30 ms there, 25 at slow
    expect(r.rank([peer('fast', 100), peer('slow', 100)], 1, 0)[0].peerId).toBe('slow')
    r.ended('fast')
    expect(r.rank([peer('fast', 100), peer('slow', 100)], 1, 0)[0].peerId).toBe('fast')
    // two targets never measured: requests sent at once alternate between them
    const fresh = router()
    const picks: string[] = []
    for (let i = 0; i < 4; i++) {
      const best = fresh.rank([peer('a', 100), peer('b', 100)], 1, 0)[0].peerId
      fresh.sent(best)
      picks.push(best)
    }
    expect(picks.sort()).toEqual(['a', 'a', 'b', 'b'])
  })

  it('passes over a failed target while it backs off, and excluded ones always', () => {
    const r = router()
    r.failed('fast', 0)
    expect(r.rank([peer('fast', 400), peer('slow', 100)], 1, 500).map(x => x.peerId)).toEqual(['slow'])
    expect(r.rank([peer('fast', 400), peer('slow', 100)], 1, 1500).map(x => x.peerId)).toEqual(['fast', 'slow'])
    // failing again doubles the backoff
    r.failed('fast', 1500)
    expect(r.rank([peer('fast', 400), peer('slow', 100)], 1, 3000).map(x => x.peerId)).toEqual(['slow'])
    // with every target backing off, the best of them is still tried
    expect(r.rank([peer('fast', 400)], 1, 3000).map(x => x.peerId)).toEqual(['fast'])
    expect(r.rank([peer('fast', 400), peer('slow', 100)], 1, 10_000, new Set(['fast'])).map(x => x.peerId)).toEqual(['slow'])
  })

  it('hedges after a target\'s recent p95 (at least the floor), or twice its expected time before it has answered enough', () => {
    const r = router()
    const route = r.rank([peer('a', 100)], 4, 0)[0]
    expect(r.hedgeAfterMs(route)).toBeCloseTo(2 * route.expectedMs)
    for (const ms of [30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48, 200]) r.answered('a', 4, ms)
    // of twenty answers, the p95 is the slowest
    expect(r.hedgeAfterMs(r.rank([peer('a', 100)], 4, 0)[0])).toBe(200)
    const quick = router()
    for (let i = 0; i < 5; i++) quick.answered('q', 1, 2)
    expect(quick.hedgeAfterMs(quick.rank([peer('q', 100)], 1, 0)[0])).toBe(20)
  })
})
