import { describe, expect, it } from 'vitest'
import { decodeCapacityAd, InvalidMessageError, validateTensorInfos } from '../src/index.js'

/** A small deterministic generator, so that a failure can be replayed. */
function random (seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0
    return state / 2 ** 32
  }
}

describe('hostile bytes', () => {
  it('random bytes never crash the ad decoder: they decode to a valid ad or fail with InvalidMessageError', () => {
    const next = random(7)
    for (let i = 0; i < 2000; i++) {
      const bytes = Uint8Array.from({ length: Math.floor(next() * 300) }, () => Math.floor(next() * 256))
      try {
        decodeCapacityAd(bytes)
      } catch (err) {
        expect(err).toBeInstanceOf(InvalidMessageError)
      }
    }
  })

  it('tensor headers claiming absurd sizes are refused before anything is allocated', () => {
    const huge = [{ name: 'x', dtype: 'float32', dims: [2n ** 40n, 2n ** 40n], byteLength: 2n ** 82n }]
    expect(() => validateTensorInfos(huge, 1 << 20, 'req')).toThrow(/over the limit/)
    const lying = [{ name: 'x', dtype: 'float32', dims: [10n], byteLength: 4n }]
    expect(() => validateTensorInfos(lying, 1 << 20, 'req')).toThrow(/is 40 bytes, the message says 4/)
    const deep = [{ name: 'x', dtype: 'uint8', dims: Array(9).fill(1n), byteLength: 1n }]
    expect(() => validateTensorInfos(deep, 1 << 20, 'req')).toThrow(/9 dimensions, at most 8/)
    const twice = [{ name: 'x', dtype: 'uint8', dims: [1n], byteLength: 1n }, { name: 'x', dtype: 'uint8', dims: [1n], byteLength: 1n }]
    expect(() => validateTensorInfos(twice, 1 << 20, 'req')).toThrow(/named twice/)
    const unknown = [{ name: 'x', dtype: 'complex64', dims: [1n], byteLength: 8n }]
    expect(() => validateTensorInfos(unknown, 1 << 20, 'req')).toThrow(/unknown dtype/)
    const many = Array.from({ length: 65 }, (_, i) => ({ name: `t${i}`, dtype: 'uint8', dims: [1n], byteLength: 1n }))
    expect(() => validateTensorInfos(many, 1 << 20, 'req')).toThrow(/65 tensors, at most 64/)
  })
})
