import { describe, expect, it } from 'vitest'
import { Standing } from '../src/models/standing.js'

describe('provider standing', () => {
  it('a bad block costs more than a timeout; two bad blocks exclude a peer until the strikes fade', () => {
    let now = 0
    const s = new Standing(() => now, { halfLifeMs: 1000, excludeAt: 4 })
    s.strike('slow', 'timeout')
    s.strike('bad', 'bad-block')
    expect(s.weight('bad')).toBeGreaterThan(s.weight('slow'))
    expect(s.excluded('bad')).toBe(false)
    expect(s.rank(['bad', 'clean', 'slow'])).toEqual(['clean', 'slow', 'bad'])
    s.strike('bad', 'bad-block')
    expect(s.excluded('bad')).toBe(true)
    expect(s.rank(['bad', 'clean'])).toEqual(['clean'])
    // weight 6 halves each second: under 4 after log2(1.5) s
    now = 600
    expect(s.excluded('bad')).toBe(false)
    now = 20_000
    expect(s.weight('bad')).toBe(0)
    expect(s.list()).toEqual([])
  })
})
