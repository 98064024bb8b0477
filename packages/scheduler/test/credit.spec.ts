import { describe, expect, it } from 'vitest'
import { CreditLedger, DEFAULT_CREDIT } from '../src/credit.js'

const DAY = 24 * 60 * 60 * 1000

function ledger (options = {}): { credit: CreditLedger, clock: { t: number } } {
  const clock = { t: 1_000_000 }
  return { credit: new CreditLedger(() => clock.t, options, 'me'), clock }
}

describe('CreditLedger: what peers did for this node', () => {
  it('direct credit is the work this node signed for; it halves every half-life (7 days by default)', () => {
    const { credit, clock } = ledger()
    expect(DEFAULT_CREDIT.halfLifeMs).toBe(7 * DAY)
    credit.given('a', 100)
    credit.given('a', 60)
    expect(credit.credit('a')).toBeCloseTo(160)
    clock.t += 7 * DAY
    expect(credit.credit('a')).toBeCloseTo(80)
    credit.given('a', 20)
    clock.t += 14 * DAY
    expect(credit.credit('a')).toBeCloseTo(25)
    expect(credit.credit('stranger')).toBe(0)
    // nothing for itself, nothing for no work
    credit.given('me', 1000)
    credit.given('b', -5)
    credit.given('b', Number.NaN)
    expect(credit.credit('me')).toBe(0)
    expect(credit.credit('b')).toBe(0)
  })

  it('receipts of a third party count only through a signer this node received work from, capped by a share of its credit', () => {
    const { credit } = ledger()
    // t did 100 units for this node; s presents receipts of t for 500 units and of u (a stranger) for 1000
    credit.given('t', 100)
    credit.present('s', [{ signer: 't', work: 500, at: 1_000_000 }, { signer: 'u', work: 1000, at: 1_000_000 }])
    expect(credit.direct('s')).toBe(0)
    expect(credit.transitive('s')).toBeCloseTo(50)
    // a second presenter shares t's flow with s, in proportion
    credit.present('r', [{ signer: 't', work: 500, at: 1_000_000 }])
    expect(credit.transitive('s')).toBeCloseTo(25)
    expect(credit.transitive('r')).toBeCloseTo(25)
    // presenting again replaces: the same receipts shown twice count once
    credit.present('s', [{ signer: 't', work: 500, at: 1_000_000 }])
    credit.present('s', [{ signer: 't', work: 500, at: 1_000_000 }])
    expect(credit.transitive('s')).toBeCloseTo(25)
    // a presenter's receipts signed by itself, or by this node, count for nothing
    credit.present('q', [{ signer: 'q', work: 1e6, at: 1_000_000 }, { signer: 'me', work: 1e6, at: 1_000_000 }])
    expect(credit.credit('q')).toBe(0)
  })

  it('a ring of 50 Sybils signing each other\'s receipts gains nothing; one of them that did real work passes on at most half of it, to all of them together', () => {
    const { credit } = ledger()
    const ring = Array.from({ length: 50 }, (_, i) => `sybil-${i}`)
    const presentAll = (): void => {
      for (const s of ring) credit.present(s, ring.filter(o => o !== s).map(signer => ({ signer, work: 1e9, at: 1_000_000 })))
    }
    presentAll()
    expect(ring.map(s => credit.credit(s)).reduce((a, b) => a + b, 0)).toBe(0)
    // one of them does 10 units of real work for this node
    credit.given('sybil-0', 10)
    presentAll()
    const total = ring.map(s => credit.credit(s)).reduce((a, b) => a + b, 0)
    expect(total).toBeLessThanOrEqual(10 + 5 + 1e-6)
    expect(total).toBeGreaterThan(10)
    // an honest contributor of the same work stands as high as the whole ring's best member
    credit.given('honest', 10)
    expect(credit.credit('honest')).toBeGreaterThanOrEqual(Math.max(...ring.map(s => credit.credit(s))) - 1e-9)
  })

  it('is bounded: the least credited peers and the oldest presenters are forgotten first', () => {
    const { credit } = ledger({ maxPeers: 3, maxPresenters: 2, maxSignersPerPresenter: 2 })
    credit.given('a', 5)
    credit.given('b', 1)
    credit.given('c', 3)
    credit.given('d', 4)
    expect(credit.peers().map(p => p.peerId)).toEqual(['a', 'd', 'c'])
    credit.present('p1', [{ signer: 'a', work: 1, at: 0 }, { signer: 'c', work: 2, at: 0 }, { signer: 'd', work: 3, at: 0 }])
    // only its two biggest signers are kept (a's receipt does not count): d passes on 2 of its 4, c 1.5 of its 3
    expect(credit.transitive('p1')).toBeCloseTo(3.5, 5)
    credit.present('p2', [{ signer: 'a', work: 1, at: 0 }])
    credit.present('p3', [{ signer: 'a', work: 1, at: 0 }])
    expect(credit.transitive('p1')).toBe(0)
    expect(credit.transitive('p3')).toBeGreaterThan(0)
  })

  it('survives a restart: what toJSON wrote loads to the same credit, and junk is skipped', () => {
    const { credit, clock } = ledger()
    credit.given('t', 100)
    credit.given('a', 40)
    credit.present('s', [{ signer: 't', work: 30, at: clock.t }])
    clock.t += DAY
    const saved = JSON.parse(JSON.stringify(credit))
    const again = new CreditLedger(() => clock.t, {}, 'me')
    again.load({ ...saved, direct: { ...saved.direct, junk: { value: 'x', at: 1 }, neg: { value: -1, at: 1 } } })
    for (const p of ['t', 'a', 's']) expect(again.credit(p)).toBeCloseTo(credit.credit(p), 6)
    expect(again.credit('junk')).toBe(0)
    again.load(null)
    again.load('nonsense')
    expect(again.credit('a')).toBeCloseTo(credit.credit('a'), 6)
  })
})
