import { describe, expect, it } from 'vitest'
import { allClose, compareOutputs } from '../src/compare.js'
import type { Tensor } from '../src/tensor.js'

const f32 = (values: number[], dims = [values.length]): Tensor => ({ dtype: 'float32', dims, data: new Uint8Array(Float32Array.from(values).buffer) })

describe('allClose: results from different providers', () => {
  it('accepts float differences within rtol 1e-3 + atol 1e-5 and reports the largest', () => {
    const r = allClose(f32([1, 100, 0]), f32([1.0009, 100.05, 0.000009]))
    expect(r.ok).toBe(true)
    expect(r.maxAbsDiff).toBeCloseTo(0.05, 5)
  })

  it('refuses a difference beyond the tolerance, naming the element and counting those beyond', () => {
    const r = allClose(f32([1, 2, 3]), f32([1, 2.01, 3]))
    expect(r.ok).toBe(false)
    expect(r.reason).toMatch(/element 1 is 2 against 2.0099/)
    expect(r.mismatched).toBe(1)
    // equal infinities agree (their difference is NaN); opposite ones do not
    expect(allClose(f32([Infinity, -Infinity]), f32([Infinity, -Infinity])).ok).toBe(true)
    expect(allClose(f32([Infinity]), f32([-Infinity])).mismatched).toBe(1)
  })

  it('NaN agrees only with NaN; shapes, dtypes and integer values must match exactly', () => {
    expect(allClose(f32([NaN, 1]), f32([NaN, 1])).ok).toBe(true)
    expect(allClose(f32([NaN, 1]), f32([0, 1])).ok).toBe(false)
    expect(allClose(f32([1, 2], [2, 1]), f32([1, 2], [1, 2])).reason).toMatch(/shape \[2, 1\] against \[1, 2\]/)
    expect(allClose(f32([1]), { dtype: 'float64', dims: [1], data: new Uint8Array(8) }).reason).toMatch(/dtype float32 against float64/)
    const ints = (v: number[]): Tensor => ({ dtype: 'int32', dims: [v.length], data: new Uint8Array(Int32Array.from(v).buffer) })
    expect(allClose(ints([1, 2]), ints([1, 2])).ok).toBe(true)
    expect(allClose(ints([1, 2]), ints([1, 3])).reason).toMatch(/int32 values differ/)
  })

  it('reads float32 at any byte offset', () => {
    const backing = new Uint8Array(4 + 8)
    backing.set(new Uint8Array(Float32Array.from([5, 6]).buffer), 1)
    const unaligned: Tensor = { dtype: 'float32', dims: [2], data: backing.subarray(1, 9) }
    expect(allClose(unaligned, f32([5, 6])).ok).toBe(true)
  })
})

const f32s = (...values: number[]): Tensor => ({ dtype: 'float32', dims: [values.length], data: new Uint8Array(Float32Array.from(values).buffer) })
const i64 = (...values: number[]): Tensor => ({ dtype: 'int64', dims: [values.length], data: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer) })

describe('comparing two answers', () => {
  const same = { sameRuntime: true }
  const across = { sameRuntime: false }

  it('the same runtime must agree bit for bit: one float one ulp off is a disagreement', () => {
    const a = f32s(1, 2, 3)
    const b = f32s(1, 2, 3)
    new DataView(b.data.buffer).setUint32(4, new DataView(b.data.buffer).getUint32(4, true) + 1, true)
    expect(compareOutputs({ y: a }, { y: f32s(1, 2, 3) }, same)).toEqual({ agree: true, exact: true })
    expect(compareOutputs({ y: a }, { y: b }, same)).toEqual({ agree: false, reason: 'output "y" differs in 1 of 3 elements (the same runtime ran both: they must be equal bit for bit)' })
    // across providers, that is within the tolerance
    expect(compareOutputs({ y: a }, { y: b }, across)).toEqual({ agree: true, exact: false })
  })

  it('across providers, a result scaled by 1 + 1e-3 (a perturbing cheater) is beyond the tolerance', () => {
    const honest = f32s(0.5, -2, 10, 1e-3)
    const perturbed = f32s(...[0.5, -2, 10, 1e-3].map(v => v * 1.001))
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
    expect(compareOutputs({ y: f32s(1) }, { z: f32s(1) }, across)).toEqual({ agree: false, reason: 'the outputs differ: [y] against [z]' })
    expect(compareOutputs({ y: f32s(1, 2) }, { y: { ...f32s(1, 2), dims: [1, 2] } }, across)).toEqual({ agree: false, reason: 'output "y" has shape [2] against [1, 2]' })
    expect(compareOutputs({ y: f32s(1) }, { y: { dtype: 'float64', dims: [1], data: new Uint8Array(8) } }, across)).toEqual({ agree: false, reason: 'output "y" is float32 against float64' })
    const nan = f32s(NaN, 1)
    const otherNan = f32s(NaN, 1)
    new DataView(otherNan.data.buffer).setUint32(0, 0x7fc00001, true) // another NaN payload
    expect(compareOutputs({ y: nan }, { y: otherNan }, across)).toEqual({ agree: true, exact: false })
    expect(compareOutputs({ y: nan }, { y: f32s(0, 1) }, across).agree).toBe(false)
  })

  it('float16 outputs are compared as numbers, with a tolerance of a few of their ulps at least', () => {
    // 1.0 = 0x3c00; the next half up, 1.0009765625 = 0x3c01: one ulp, 1e-3 relative, is no accusation
    const half = (...bits: number[]): Tensor => ({ dtype: 'float16', dims: [bits.length], data: new Uint8Array(Uint16Array.from(bits).buffer) })
    expect(compareOutputs({ y: half(0x3c00) }, { y: half(0x3c01) }, across).agree).toBe(true)
    // 1.0 against 1.0107421875 (0x3c0b, 11 ulps, 1% off): a disagreement
    expect(compareOutputs({ y: half(0x3c00) }, { y: half(0x3c0b) }, across).agree).toBe(false)
  })

  it('values near zero may differ by a small share of the output\'s largest magnitude; large ones by 1e-3 still disagree', () => {
    // a value that cancels to ~0 beside values of 1000: 1e-3 apart is within 1e-5 x 1000
    expect(compareOutputs({ y: f32s(1000, 0.001) }, { y: f32s(1000, 0) }, across).agree).toBe(true)
    // the large values perturbed by 1e-3 relative are not
    expect(compareOutputs({ y: f32s(1001, 0) }, { y: f32s(1000, 0) }, across).agree).toBe(false)
  })
})

