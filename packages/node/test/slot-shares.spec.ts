import { describe, expect, it } from 'vitest'
import { SlotShares } from '../src/pieces/slot-shares.js'

const fill = (shares: SlotShares, peer: string, n: number, now = 0): void => { for (let i = 0; i < n; i++) expect(shares.take(peer, now)).toBeUndefined() }

describe('SlotShares: a worker\'s slots among the peers that want them', () => {
  it('lets a lone submitter fill every slot', () => {
    const shares = new SlotShares(3, 40_000, 5000)
    fill(shares, 'a', 3)
    expect(shares.take('a', 0)).toMatch(/running 3 pieces, the most this node takes at once/)
    expect(shares.running).toBe(3)
  })

  it('keeps the next free slot for a peer that was turned away, not for the peer holding them all', () => {
    const shares = new SlotShares(2, 40_000, 5000)
    fill(shares, 'hog', 2)
    expect(shares.take('honest', 10)).toMatch(/running 2 pieces/)
    shares.release('hog', 20)
    // the hog asks first for the slot it just gave back, even holding one less
    expect(shares.take('hog', 20)).toMatch(/the free slot is kept for a peer turned away before you/)
    expect(shares.take('honest', 1000)).toBeUndefined()
    expect([shares.holding('honest'), shares.holding('hog')]).toEqual([1, 1])
  })

  it('with one slot, a peer holding nothing does not jump ahead of one that waits', () => {
    const shares = new SlotShares(1, 40_000, 5000)
    fill(shares, 'hog', 1)
    expect(shares.take('honest', 1)).toBeDefined()
    shares.release('hog', 2)
    expect(shares.take('hog', 2)).toMatch(/kept for a peer/)
    expect(shares.take('newcomer', 3)).toMatch(/kept for 2 peers/)
    expect(shares.take('honest', 500)).toBeUndefined()
  })

  it('leaves kept slots to whoever asks once no waiting peer came for them in time', () => {
    const shares = new SlotShares(4, 40_000, 5000)
    fill(shares, 'a', 4)
    expect(shares.take('pretender', 0)).toBeDefined()
    shares.release('a', 100)
    expect(shares.take('a', 4000)).toMatch(/kept for a peer/)
    // the pretender never came back for its slot: after 5 s the slot is anyone's
    expect(shares.take('a', 5100)).toBeUndefined()
    expect(shares.holding('a')).toBe(4)
  })

  it('forgets a waiting peer that stopped asking', () => {
    const shares = new SlotShares(2, 1000, 60_000)
    fill(shares, 'a', 2)
    expect(shares.take('b', 0)).toBeDefined()
    // b's refusal is 1 s old at 1000: it no longer counts, though no slot was kept for it long
    shares.release('a', 900)
    expect(shares.take('a', 999)).toBeDefined()
    expect(shares.take('a', 1000)).toBeUndefined()
  })

  it('remembers a bounded number of waiting peers', () => {
    const shares = new SlotShares(4, 40_000, 5000, 2)
    fill(shares, 'a', 4)
    for (const peer of ['b', 'c', 'd']) expect(shares.take(peer, 0)).toBeDefined()
    shares.release('a', 1)
    shares.release('a', 1)
    expect(shares.take('c', 2)).toBeUndefined()
    expect(shares.take('d', 2)).toBeUndefined()
    shares.release('a', 3)
    // b was forgotten (the oldest of three, two kept), c and d have their slots: nobody waits
    expect(shares.take('a', 4)).toBeUndefined()
  })

  it('a release of a slot never taken changes nothing', () => {
    const shares = new SlotShares(1, 40_000, 5000)
    shares.release('x', 0)
    expect(shares.running).toBe(0)
    expect(shares.take('x', 0)).toBeUndefined()
    expect(shares.running).toBe(1)
  })

  describe('with contribution credit', () => {
    const credit: Record<string, number> = { contributor: 500, other: 20 }
    const byCredit = (slots: number): SlotShares => new SlotShares(slots, 40_000, 5000, 4096, p => credit[p] ?? 0, 0.15)

    it('a contended slot goes to the waiting peer of most credit, whoever asks first', () => {
      const shares = byCredit(1)
      fill(shares, 'busy', 1)
      expect(shares.take('freeRider', 1)).toMatch(/running 1 pieces/)
      expect(shares.take('contributor', 2)).toMatch(/running 1 pieces/)
      shares.release('busy', 3)
      expect(shares.take('freeRider', 4)).toMatch(/kept for peers that did more work for this node/)
      expect(shares.take('contributor', 5)).toBeUndefined()
    })

    it('one contended slot in seven (a 15% share) goes to the newcomer that waited longest, so that it can start earning', () => {
      const shares = byCredit(1)
      fill(shares, 'contributor', 1)
      let holder = 'contributor'
      const served: string[] = []
      for (let t = 1; served.length < 21 && t < 100; t++) {
        // both ask while the slot is busy, and wait
        expect(shares.take('freeRider', t)).toBeDefined()
        expect(shares.take('contributor', t)).toBeDefined()
        shares.release(holder, t)
        // the slot is free and both ask again, the free rider first
        holder = ['freeRider', 'contributor'].find(p => shares.take(p, t) == null)!
        served.push(holder)
      }
      const newcomer = served.filter(p => p === 'freeRider').length
      expect(newcomer).toBeGreaterThanOrEqual(2)
      expect(newcomer).toBeLessThanOrEqual(4)
      expect(served.filter(p => p === 'contributor').length).toBeGreaterThan(14)
    })

    it('a slot is not held for a peer of more credit that stopped asking (its job ended)', () => {
      const shares = byCredit(1)
      fill(shares, 'busy', 1)
      expect(shares.take('contributor', 0)).toBeDefined()
      expect(shares.take('freeRider', 0)).toBeDefined()
      shares.release('busy', 100)
      // the contributor asked 100 ms ago: the slot is its
      expect(shares.take('freeRider', 100)).toMatch(/kept for peers that did more work/)
      // 1.5 s on it has not come back: the free rider, still asking, takes it
      expect(shares.take('freeRider', 1700)).toBeUndefined()
    })

    it('of pieces waiting at the worker, a free slot goes to the one of most credit; one in seven to the earliest without credit; in arrival order without priority', () => {
      const shares = byCredit(1)
      expect(shares.pick(['freeRider', 'contributor', 'other'])).toBe(1)
      expect(shares.pick(['freeRider'])).toBe(0)
      expect(new SlotShares(1, 40_000, 5000).pick(['freeRider', 'contributor'])).toBe(0)
      // the newcomers' turn: the seventh contended grant
      const picks: string[] = []
      for (let i = 0; i < 14; i++) {
        const askers = ['freeRider', 'contributor']
        const chosen = askers[shares.pick(askers)]
        picks.push(chosen)
        shares.grant(chosen, i, true)
        shares.release(chosen, i)
      }
      expect(picks.filter(p => p === 'freeRider')).toHaveLength(2)
      expect([picks[6], picks[13]]).toEqual(['freeRider', 'freeRider'])
    })

    it('a slot its holder of more credit than every waiting piece just released is kept for it a moment, then anyone\'s', () => {
      const shares = byCredit(1)
      fill(shares, 'contributor', 1)
      shares.release('contributor', 100)
      expect(shares.reserveFor('contributor', ['freeRider'], 150)).toBe(true)
      expect(shares.free(120)).toBe(false)
      expect(shares.take('freeRider', 120)).toMatch(/kept a moment for a peer that did more work/)
      expect(shares.take('contributor', 130)).toBeUndefined()
      expect(shares.holding('contributor')).toBe(1)
      // not kept when someone waiting has as much credit, for a holder of none, or once the moment is over
      shares.release('contributor', 200)
      expect(shares.reserveFor('other', ['contributor'], 250)).toBe(false)
      expect(shares.reserveFor('freeRider', ['other'], 250)).toBe(false)
      expect(shares.reserveFor('contributor', ['freeRider'], 250)).toBe(true)
      expect(shares.free(251)).toBe(true)
      expect(shares.take('freeRider', 251)).toBeUndefined()
      // without priority nothing is ever kept this way
      expect(new SlotShares(1, 40_000, 5000).reserveFor('contributor', ['freeRider'], 1e9)).toBe(false)
    })

    it('no peer is turned away for having no credit while a slot is free that nobody waits for', () => {
      const shares = byCredit(2)
      fill(shares, 'freeRider', 2)
      expect(shares.take('freeRider', 1)).toMatch(/running 2 pieces/)
      shares.release('freeRider', 2)
      expect(shares.take('freeRider', 3)).toBeUndefined()
    })
  })
})
