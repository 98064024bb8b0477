import { describe, expect, it } from 'vitest'
import { checkFraction, compareOutputs, DEFAULT_TRUST, majority, needsCheck, TrustRecords } from '../src/verification.js'
import type { OutputTensor } from '../src/verification.js'

/** A seeded generator (a 32-bit linear congruential one, its high bits): every run of these tests draws the same numbers. */
function seeded (seed: number): () => number {
  let state = seed >>> 0
  return () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 4294967296
}

const f32 = (...values: number[]): OutputTensor => ({ dtype: 'float32', dims: [values.length], data: new Uint8Array(Float32Array.from(values).buffer) })
const i64 = (...values: number[]): OutputTensor => ({ dtype: 'int64', dims: [values.length], data: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer) })

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

describe('comparing two answers', () => {
  const same = { sameRuntime: true }
  const across = { sameRuntime: false }

  it('the same runtime must agree bit for bit: one float one ulp off is a disagreement', () => {
    const a = f32(1, 2, 3)
    const b = f32(1, 2, 3)
    new DataView(b.data.buffer).setUint32(4, new DataView(b.data.buffer).getUint32(4, true) + 1, true)
    expect(compareOutputs({ y: a }, { y: f32(1, 2, 3) }, same)).toEqual({ agree: true, exact: true })
    expect(compareOutputs({ y: a }, { y: b }, same)).toEqual({ agree: false, reason: 'output "y" differs in 1 of 3 elements (the same runtime ran both: they must be equal bit for bit)' })
    // across providers, that is within the tolerance
    expect(compareOutputs({ y: a }, { y: b }, across)).toEqual({ agree: true, exact: false })
  })

  it('across providers, a result scaled by 1 + 1e-3 (a perturbing cheater) is beyond the tolerance', () => {
    const honest = f32(0.5, -2, 10, 1e-3)
    const perturbed = f32(...[0.5, -2, 10, 1e-3].map(v => v * 1.001))
    const result = compareOutputs({ y: honest }, { y: perturbed }, across)
    expect(result.agree).toBe(false)
    // 1e-3 moved by 1e-6 is within the absolute tolerance: values near 0 are judged by atol
    expect(!result.agree && result.reason).toMatch(/^output "y" differs beyond the tolerance in 3 of 4 elements \(at most 0\.0100 apart\)$/)
    // a looser tolerance, as --tolerance would give, lets it through
    expect(compareOutputs({ y: honest }, { y: perturbed }, { sameRuntime: false, tolerance: { rtol: 2e-3, atol: 0 } })).toEqual({ agree: true, exact: false })
  })

  it('integer outputs (class ids, argmax) must be equal whatever ran them', () => {
    expect(compareOutputs({ ids: i64(3, 7) }, { ids: i64(3, 8) }, across)).toEqual({ agree: false, reason: 'output "ids" differs in 1 of 2 elements (int64 outputs must be equal)' })
    expect(compareOutputs({ ids: i64(3, 7) }, { ids: i64(3, 7) }, across)).toEqual({ agree: true, exact: true })
  })

  it('other names, dtypes or shapes are disagreements; two NaNs agree, NaN against a number does not', () => {
    expect(compareOutputs({ y: f32(1) }, { z: f32(1) }, across)).toEqual({ agree: false, reason: 'the outputs differ: [y] against [z]' })
    expect(compareOutputs({ y: f32(1, 2) }, { y: { ...f32(1, 2), dims: [1, 2] } }, across)).toEqual({ agree: false, reason: 'output "y" has shape [2] against [1, 2]' })
    expect(compareOutputs({ y: f32(1) }, { y: { dtype: 'float64', dims: [1], data: new Uint8Array(8) } }, across)).toEqual({ agree: false, reason: 'output "y" is float32 against float64' })
    const nan = f32(NaN, 1)
    const otherNan = f32(NaN, 1)
    new DataView(otherNan.data.buffer).setUint32(0, 0x7fc00001, true) // another NaN payload
    expect(compareOutputs({ y: nan }, { y: otherNan }, across)).toEqual({ agree: true, exact: false })
    expect(compareOutputs({ y: nan }, { y: f32(0, 1) }, across).agree).toBe(false)
  })

  it('float16 outputs are compared as numbers', () => {
    // 1.0 = 0x3c00; the next half up, 1.0009765625 = 0x3c01: 1e-3 relative, beyond the tolerance
    const half = (...bits: number[]): OutputTensor => ({ dtype: 'float16', dims: [bits.length], data: new Uint8Array(Uint16Array.from(bits).buffer) })
    expect(compareOutputs({ y: half(0x3c00) }, { y: half(0x3c01) }, across).agree).toBe(false)
    expect(compareOutputs({ y: half(0x3c00) }, { y: half(0x3c01) }, { sameRuntime: false, tolerance: { rtol: 2e-3, atol: 0 } }).agree).toBe(true)
  })
})

describe('three answers', () => {
  it('the two that agree win and the third is outvoted; no two agreeing is no majority', () => {
    const answers = [f32(1, 2), f32(0, 0), f32(1, 2)]
    const agree = (i: number, j: number): boolean => compareOutputs({ y: answers[i] }, { y: answers[j] }, { sameRuntime: true }).agree
    expect(majority(agree)).toEqual({ agreeing: [0, 2], outvoted: 1 })
    const all = [f32(1), f32(2), f32(3)]
    expect(majority((i, j) => compareOutputs({ y: all[i] }, { y: all[j] }, { sameRuntime: true }).agree)).toBeNull()
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
})
