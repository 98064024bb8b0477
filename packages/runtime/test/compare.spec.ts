import { describe, expect, it } from 'vitest'
import { allClose } from '../src/compare.js'
import type { Tensor } from '../src/tensor.js'

const f32 = (values: number[], dims = [values.length]): Tensor => ({ dtype: 'float32', dims, data: new Uint8Array(Float32Array.from(values).buffer) })

describe('allClose: results from different providers', () => {
  it('accepts float differences within rtol 1e-3 + atol 1e-5 and reports the largest', () => {
    const r = allClose(f32([1, 100, 0]), f32([1.0009, 100.05, 0.000009]))
    expect(r.ok).toBe(true)
    expect(r.maxAbsDiff).toBeCloseTo(0.05, 5)
  })

  it('refuses a difference beyond the tolerance, naming the element', () => {
    const r = allClose(f32([1, 2, 3]), f32([1, 2.01, 3]))
    expect(r.ok).toBe(false)
    expect(r.reason).toMatch(/element 1 is 2 against 2.0099/)
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
