import { describe, expect, it } from 'vitest'
import { PeerTable } from '../src/mesh/peer-table.js'
import type { PeerEvent } from '../src/mesh/peer-table.js'
import type { Capacity } from '@shoal/protocol'

const SELF = '12D3KooWSelf'

function ad (peerId: string, seq: number, timestampMs: number, extra: Partial<Capacity> = {}): Capacity {
  return {
    peerId,
    version: '0.1.0',
    addrs: [],
    cpu: { model: 'cpu', cores: 4 },
    memory: { totalBytes: 1, freeBytes: 1 },
    os: 'linux',
    arch: 'x64',
    gpu: null,
    providers: [{ name: 'cpu', gflops: 10 }],
    limits: { maxConcurrency: 2, maxMemoryBytes: 0, cpuThreads: 4, noGpu: false },
    freeSlots: 2,
    queueLength: 0,
    models: [],
    seq,
    timestampMs,
    intervalMs: 1000,
    leaving: false,
    ...extra
  }
}

function table (maxEntries?: number): { table: PeerTable, clock: { t: number }, events: PeerEvent[] } {
  const clock = { t: 1_000_000 }
  const t = new PeerTable({ now: () => clock.t, self: SELF, maxEntries })
  const events: PeerEvent[] = []
  t.onEvent(e => events.push(e))
  return { table: t, clock, events }
}

function offer (t: PeerTable, capacity: Capacity, signer = capacity.peerId): string {
  const verdict = t.check(capacity, signer)
  if (verdict.action === 'accept') {
    t.apply(capacity)
    return 'accept'
  }
  return `${verdict.action}:${verdict.reason}`
}

describe('peer table', () => {
  it('adds a peer on its first ad and updates it on later ones', () => {
    const { table: t, clock, events } = table()
    expect(offer(t, ad('A', 1, clock.t))).toBe('accept')
    clock.t += 500
    expect(offer(t, ad('A', 2, clock.t, { freeSlots: 1 }))).toBe('accept')
    expect(t.get('A')?.capacity.freeSlots).toBe(1)
    expect(events.map(e => e.type)).toEqual(['join', 'update'])
    expect(t.list()[0].lastSeenMs).toBe(0)
  })

  it('refuses an ad signed by a peer other than the one it describes', () => {
    const { table: t, clock } = table()
    expect(offer(t, ad('A', 1, clock.t), 'B')).toBe('reject:forged')
    expect(t.size).toBe(0)
  })

  it('ignores a replayed ad (sequence not higher), even after the peer left', () => {
    const { table: t, clock, events } = table()
    offer(t, ad('A', 5, clock.t))
    expect(offer(t, ad('A', 5, clock.t))).toBe('ignore:replayed')
    expect(offer(t, ad('A', 4, clock.t))).toBe('ignore:replayed')
    expect(offer(t, ad('A', 6, clock.t, { leaving: true }))).toBe('accept')
    expect(t.size).toBe(0)
    // an old ad replayed after the goodbye does not bring the peer back
    expect(offer(t, ad('A', 5, clock.t))).toBe('ignore:replayed')
    expect(events.map(e => e.type)).toEqual(['join', 'leave'])
  })

  it('ignores stale and future-dated ads, and our own', () => {
    const { table: t, clock } = table()
    expect(offer(t, ad('A', 1, clock.t - 61_000))).toBe('ignore:stale')
    expect(offer(t, ad('A', 1, clock.t + 31_000))).toBe('ignore:future')
    expect(offer(t, ad(SELF, 1, clock.t))).toBe('ignore:self')
  })

  it('expires a peer that missed three refreshes of its announced interval, not before', () => {
    const { table: t, clock, events } = table()
    offer(t, ad('A', 1, clock.t, { intervalMs: 1000 }))
    offer(t, ad('B', 1, clock.t, { intervalMs: 10_000 }))
    clock.t += 3000
    expect(t.expire()).toEqual([])
    clock.t += 1
    expect(t.expire()).toEqual(['A'])
    expect(t.get('B')).toBeDefined()
    expect(events.at(-1)).toEqual({ type: 'leave', peerId: 'A', reason: 'expired' })
  })

  it('keeps a peer at most 3 minutes after its last ad, whatever longer interval it announces', () => {
    const { table: t, clock } = table()
    offer(t, ad('A', 1, clock.t, { intervalMs: 600_000 }))
    clock.t += 179_000
    expect(t.expire()).toEqual([])
    clock.t += 2000
    expect(t.expire()).toEqual(['A'])
  })

  it('removes a leaving peer at once, and a leaving ad for an unknown peer changes nothing', () => {
    const { table: t, clock, events } = table()
    offer(t, ad('A', 1, clock.t))
    offer(t, ad('A', 2, clock.t, { leaving: true }))
    offer(t, ad('C', 1, clock.t, { leaving: true }))
    expect(t.size).toBe(0)
    expect(events).toEqual([expect.objectContaining({ type: 'join' }), { type: 'leave', peerId: 'A', reason: 'left' }])
  })

  it('stops taking new peers when full, but keeps updating known ones', () => {
    const { table: t, clock } = table(2)
    offer(t, ad('A', 1, clock.t))
    offer(t, ad('B', 1, clock.t))
    expect(offer(t, ad('C', 1, clock.t))).toBe('ignore:full')
    expect(offer(t, ad('A', 2, clock.t))).toBe('accept')
  })

  it('a listener that throws does not stop the others', () => {
    const { table: t, clock, events } = table()
    t.onEvent(() => { throw new Error('bug') })
    offer(t, ad('A', 1, clock.t))
    expect(events).toHaveLength(1)
    expect(t.size).toBe(1)
  })
})
