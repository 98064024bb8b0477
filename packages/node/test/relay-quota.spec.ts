import { describe, expect, it } from 'vitest'
import { RelayQuota } from '../src/mesh/relay-quota.js'

describe('RelayQuota: newcomers one relaying peer may introduce', () => {
  it('takes up to the limit per relay in a window, then refuses until the window turns', () => {
    const quota = new RelayQuota(3, 1000)
    expect([1, 2, 3, 4].map(() => quota.take('relay-a', 0))).toEqual([true, true, true, false])
    // another relay has a quota of its own
    expect(quota.take('relay-b', 10)).toBe(true)
    expect(quota.take('relay-a', 999)).toBe(false)
    expect(quota.take('relay-a', 1000)).toBe(true)
  })

  it('remembers a bounded number of relays', () => {
    const quota = new RelayQuota(1, 1000, 2)
    expect(quota.take('a', 0)).toBe(true)
    expect(quota.take('b', 0)).toBe(true)
    // a third relay with every window still open: the oldest is forgotten, and may start afresh
    expect(quota.take('c', 1)).toBe(true)
    expect(quota.take('a', 2)).toBe(true)
    expect(quota.take('c', 3)).toBe(false)
  })
})
