import { describe, expect, it } from 'vitest'
import { checkFraction, DEFAULT_TRUST, majority, needsCheck, TrustRecords } from '../src/verification.js'

/** A seeded generator (a 32-bit linear congruential one, its high bits): every run of these tests draws the same numbers. */
function seeded (seed: number): () => number {
  let state = seed >>> 0
  return () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 4294967296
}

describe('which pieces are checked', () => {
  it('checks every piece of a peer without an established record, then a fraction that falls to the floor', () => {
    expect([0, 1, 9, 10, 20, 100, 200, 5000].map(r => checkFraction(r))).toEqual([1, 1, 1, 1, 0.5, 0.1, 0.05, 0.05])
  })

  it('off checks nothing, full everything, spot draws with the record\'s fraction', () => {
    const never = (): number => { throw new Error('no draw expected') }
    expect(needsCheck('off', 0, never)).toBe(false)
    expect(needsCheck('full', 1000, never)).toBe(true)
    // a newcomer: checked without a draw
    expect(needsCheck('spot', 3, never)).toBe(true)
    const random = seeded(7)
    const checked = Array.from({ length: 20_000 }, () => needsCheck('spot', 100, random)).filter(Boolean).length
    expect(checked / 20_000).toBeGreaterThan(0.09)
    expect(checked / 20_000).toBeLessThan(0.11)
  })

  it('catches a cheater as often as 1 - (1 - r)^(f n) says', () => {
    // an established peer (checked at the 5% floor) corrupting 10% of the 100 pieces of each job
    const random = seeded(2026)
    const jobs = 4000
    let caught = 0
    for (let job = 0; job < jobs; job++) {
      let hit = false
      for (let piece = 0; piece < 100; piece++) {
        const corrupt = piece % 10 === 0
        if (needsCheck('spot', 1000, random) && corrupt) hit = true
      }
      if (hit) caught++
    }
    const expected = 1 - (1 - 0.05) ** (0.1 * 100)
    expect(Math.abs(caught / jobs - expected)).toBeLessThan(0.03)
  })
})

describe('majority', () => {
  const by = (answers: number[][]) => (i: number, j: number): boolean => answers[i].join() === answers[j].join()

  it('of three answers the two that agree win and the third is outvoted; no two agreeing is no majority', () => {
    expect(majority(3, by([[1, 2], [0, 0], [1, 2]]))).toEqual({ agreeing: [0, 2], outvoted: [1] })
    expect(majority(3, by([[1], [2], [3]]))).toBeNull()
  })

  it('two answers that agree both win; two that disagree decide nothing', () => {
    expect(majority(2, by([[1], [1]]))).toEqual({ agreeing: [0, 1], outvoted: [] })
    expect(majority(2, by([[1], [2]]))).toBeNull()
  })

  it('an answer within tolerance of a winner is not outvoted, even if it is not within tolerance of the other', () => {
    // 0 ~ 1 and 1 ~ 2, but not 0 ~ 2 (tolerance is not transitive)
    const near = (i: number, j: number): boolean => Math.abs(i - j) <= 1
    expect(majority(3, near)).toEqual({ agreeing: [0, 1, 2], outvoted: [] })
  })
})

describe('a peer\'s record', () => {
  it('grows with verified answers; a wrong one resets it and excludes the peer for a time that doubles with each offence', () => {
    let now = 0
    const trust = new TrustRecords(() => now)
    for (let i = 0; i < 50; i++) trust.verified('p')
    expect(trust.get('p')).toEqual({ record: 50, offences: 0, excludedUntil: 0 })
    expect(trust.caught('p')).toBe(DEFAULT_TRUST.exclusionMs)
    expect(trust.get('p').record).toBe(0)
    expect(trust.excluded('p')).toBe(true)
    now = DEFAULT_TRUST.exclusionMs
    expect(trust.excluded('p')).toBe(false)
    expect(trust.caught('p') - now).toBe(2 * DEFAULT_TRUST.exclusionMs)
    for (let i = 0; i < 20; i++) trust.caught('p')
    expect(trust.get('p').excludedUntil - now).toBe(DEFAULT_TRUST.maxExclusionMs)
  })

  it('survives a restart through its JSON, skipping entries that are not records', () => {
    const trust = new TrustRecords(() => 1000)
    trust.verified('a')
    trust.caught('b')
    const again = new TrustRecords(() => 1000)
    again.load({ ...JSON.parse(JSON.stringify(trust)), c: { record: -1, offences: 0, excludedUntil: 0 }, d: 'nonsense' })
    expect(again.toJSON()).toEqual(trust.toJSON())
    expect(again.excluded('b')).toBe(true)
  })

  it('is bounded: past its size, peers with no offence are forgotten first', () => {
    const trust = new TrustRecords(() => 0, DEFAULT_TRUST, 3)
    trust.caught('cheater')
    for (const p of ['a', 'b', 'c', 'd']) trust.verified(p)
    expect(Object.keys(trust.toJSON()).sort()).toEqual(['c', 'cheater', 'd'])
  })

  it('a flood of caught identities never forgets an exclusion still running while one has ended', () => {
    let now = 0
    const trust = new TrustRecords(() => now, { exclusionMs: 1000, maxExclusionMs: 1000 }, 3)
    trust.caught('old') // excluded until 1000
    now = 2000
    trust.caught('a')
    trust.caught('b')
    // full: 'old' has served its time, so it goes first, and the running exclusions stay
    trust.caught('c')
    expect(Object.keys(trust.toJSON()).sort()).toEqual(['a', 'b', 'c'])
    // every entry a running exclusion: the one ending soonest goes
    now = 2500
    trust.caught('d')
    expect(trust.excluded('d')).toBe(true)
    expect(Object.keys(trust.toJSON())).toHaveLength(3)
    expect(trust.excluded('a')).toBe(false)
  })
})
