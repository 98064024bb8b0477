import { describe, expect, it } from 'vitest'
import { ModelCosts } from '../src/jobs/model-costs.js'

describe('what jobs measured a model\'s rows to cost', () => {
  it('scales a measurement to a node\'s speed; a later one replaces it; nonsense is ignored', () => {
    const costs = new ModelCosts()
    expect(costs.msPerRow('m', 50)).toBeUndefined()
    costs.record('m', 100) // 100 ms a row at 1 GFLOP/s
    expect(costs.msPerRow('m', 50)).toBe(2)
    expect(costs.msPerRow('m', 0)).toBeUndefined()
    costs.record('m', 200)
    expect(costs.msPerRow('m', 100)).toBe(2)
    for (const bad of [0, -1, Number.NaN, Infinity]) costs.record('m', bad)
    expect(costs.msPerRow('m', 100)).toBe(2)
  })

  it('keeps its bound of models, the least recently measured forgotten first', () => {
    const costs = new ModelCosts(2)
    costs.record('a', 1)
    costs.record('b', 1)
    costs.record('a', 2) // measured again: now the newest
    costs.record('c', 1)
    expect(costs.msPerRow('b', 1)).toBeUndefined()
    expect(costs.msPerRow('a', 1)).toBe(2)
    expect(costs.msPerRow('c', 1)).toBe(1)
  })
})
