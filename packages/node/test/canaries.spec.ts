import { describe, expect, it } from 'vitest'
import type { Tensor } from '@shoal/runtime'
import { CanaryPool, placeCanaries, shapeOf, splitCanaries, withCanaries } from '../src/jobs/canaries.js'

const rows = (values: number[]): Tensor => ({ dtype: 'float32', dims: [values.length, 1], data: new Uint8Array(Float32Array.from(values).buffer) })
const floats = (t: Tensor): number[] => [...new Float32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4)]

describe('canary rows', () => {
  it('are placed among the piece\'s rows and taken out of the answer again, wherever they fall', () => {
    const pool = new CanaryPool()
    pool.add('m', { x: rows([100]) }, { y: rows([-100]) }, ['me'])
    pool.add('m', { x: rows([200]) }, { y: rows([-200]) }, ['me'])
    for (let seed = 0; seed < 20; seed++) {
      let s = seed
      const random = (): number => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
      const plan = placeCanaries(3, pool.draw('m', 2, 'worker', random, shapeOf({ x: rows([1]) })), random)
      const sent = withCanaries({ x: rows([1, 2, 3]) }, plan)
      expect(sent.x.dims).toEqual([5, 1])
      // the real rows keep their order; the canaries sit at their positions
      const values = floats(sent.x)
      expect(values.filter(v => v < 100)).toEqual([1, 2, 3])
      for (const [i, p] of plan.positions.entries()) expect(values[p]).toBe(floats(plan.rows[i].inputs.x)[0])
      // an honest worker (y = -x): the canaries' answers are the known ones, the rest is the piece's
      const split = splitCanaries({ y: rows(values.map(v => -v)) }, plan, 3)!
      expect(floats(split.outputs.y)).toEqual([-1, -2, -3])
      for (const [i, c] of split.canaries.entries()) expect(floats(c.y)).toEqual(floats(plan.rows[i].outputs.y))
    }
  })

  it('are never drawn for a peer that computed them, and an answer of other rows is no answer', () => {
    const pool = new CanaryPool()
    pool.add('m', { x: rows([7]) }, { y: rows([-7]) }, ['worker'])
    const shape = shapeOf({ x: rows([1]) })
    expect(pool.draw('m', 1, 'worker', Math.random, shape)).toEqual([])
    expect(pool.draw('m', 1, 'other', Math.random, shape)).toHaveLength(1)
    // nor for a piece of inputs shaped otherwise (a model with a free dimension after the batch axis)
    expect(pool.draw('m', 1, 'other', Math.random, shapeOf({ x: { dtype: 'float32', dims: [1, 2], data: new Uint8Array(8) } }))).toEqual([])
    const plan = placeCanaries(2, pool.draw('m', 1, 'other', Math.random, shape), Math.random)
    expect(splitCanaries({ y: rows([1, 2]) }, plan, 2)).toBeUndefined()
  })

  it('keep a bounded number of rows per model, the newest', () => {
    const pool = new CanaryPool()
    for (let i = 0; i < 100; i++) pool.add('m', { x: rows([i]) }, { y: rows([i]) }, ['me'])
    expect(pool.size('m')).toBe(32)
    const drawn = pool.draw('m', 32, 'p', Math.random, shapeOf({ x: rows([1]) })).map(r => floats(r.inputs.x)[0]).sort((a, b) => a - b)
    expect(drawn[0]).toBe(68)
  })
})
