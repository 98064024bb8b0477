import { describe, expect, it } from 'vitest'
import { SlotShares } from '../src/pieces/slot-shares.js'

describe('SlotShares: a worker\'s slots among the peers that want them', () => {
  it('lets a lone submitter fill every slot', () => {
    const shares = new SlotShares(3, 10_000)
    expect([1, 2, 3].map(() => shares.take('a', 0))).toEqual([undefined, undefined, undefined])
    expect(shares.take('a', 0)).toMatch(/running 3 pieces, the most this node takes at once/)
    expect(shares.running).toBe(3)
  })

  it('gives the next free slot to a peer that was turned away, not to the peer holding them all', () => {
    const shares = new SlotShares(2, 10_000)
    shares.take('attacker', 0)
    shares.take('attacker', 0)
    expect(shares.take('honest', 10)).toMatch(/running 2 pieces/)
    shares.release('attacker')
    // the attacker asks first for the slot it just gave back: it holds its share while another waits
    expect(shares.take('attacker', 20)).toMatch(/2 peers want this node's 2 slots and 1 of them waits: you hold 1, your share/)
    expect(shares.take('honest', 500)).toBeUndefined()
    expect(shares.holding('honest')).toBe(1)
    expect(shares.holding('attacker')).toBe(1)
  })

  it('keeps slots busy: a peer under its share, or one nobody else is waiting for, takes a free slot', () => {
    const shares = new SlotShares(4, 10_000)
    shares.take('a', 0)
    shares.take('a', 0)
    shares.take('a', 0)
    shares.take('a', 0)
    expect(shares.take('b', 1)).toMatch(/running 4/)
    shares.release('a')
    shares.release('a')
    // b is waiting: a, at its share of 2, gets no more, b gets both
    expect(shares.take('a', 2)).toMatch(/your share/)
    expect(shares.take('b', 3)).toBeUndefined()
    expect(shares.take('b', 3)).toBeUndefined()
    shares.release('b')
    // nobody waits now but a, which holds its share; b, holding 1 of its 2, takes another
    expect(shares.take('b', 4)).toBeUndefined()
  })

  it('forgets a waiting peer that stopped asking', () => {
    const shares = new SlotShares(2, 1000)
    shares.take('a', 0)
    shares.take('a', 0)
    expect(shares.take('b', 0)).toBeDefined()
    shares.release('a')
    expect(shares.take('a', 999)).toBeDefined()
    // b's claim lapsed: a takes its slot back
    expect(shares.take('a', 1000)).toBeUndefined()
    expect(shares.holding('a')).toBe(2)
  })

  it('remembers a bounded number of waiting peers', () => {
    const shares = new SlotShares(4, 10_000, 2)
    for (let i = 0; i < 4; i++) shares.take('a', 0)
    // three are turned away; only the two latest are remembered
    for (const peer of ['b', 'c', 'd']) expect(shares.take(peer, 0)).toBeDefined()
    shares.release('a')
    shares.release('a')
    expect(shares.take('c', 1)).toBeUndefined()
    expect(shares.take('d', 1)).toBeUndefined()
    shares.release('a')
    // b was forgotten, c and d have their slots: nobody waits, so a takes the free slot
    expect(shares.take('a', 2)).toBeUndefined()
  })

  it('a release of a slot never taken changes nothing', () => {
    const shares = new SlotShares(1, 10_000)
    shares.release('x')
    expect(shares.running).toBe(0)
    expect(shares.take('x', 0)).toBeUndefined()
    expect(shares.running).toBe(1)
  })
})
