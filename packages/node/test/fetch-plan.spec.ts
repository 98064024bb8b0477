import { describe, expect, it } from 'vitest'
import { FetchPlan } from '../src/models/fetch-plan.js'
import type { FetchLimits } from '../src/models/fetch-plan.js'

const LIMITS: FetchLimits = { blocksInFlight: 4, blocksPerProvider: 2, refusalRetryMs: 1000, blockTimeoutMs: 30_000, minBlockTimeoutMs: 2000, timeoutsBeforeDrop: 3, maxProviders: 8 }

function plan (blocks: string[]): FetchPlan {
  const p = new FetchPlan(LIMITS, 0)
  for (const b of blocks) p.enqueue(b)
  return p
}

describe('the fetch plan', () => {
  it('hands each queued block to one provider; a block whose ask failed goes back to the front', () => {
    const p = plan(['a', 'b', 'c'])
    p.addProvider('x', 0)
    p.addProvider('y', 0)
    expect(p.take('x', 0)).toBe('a')
    expect(p.take('y', 0)).toBe('b')
    p.settle('a') // not stored: asked again first
    expect(p.take('y', 0)).toBe('a')
    expect(p.take('x', 0)).toBe('c')
    expect(p.take('x', 0)).toBeUndefined()
    expect(p.unfinished()).toBe(true)
  })

  it('a block a provider lacked is not asked of it again until the want is forgotten and the retry time has passed', () => {
    const p = plan(['a', 'b'])
    p.addProvider('x', 0)
    expect(p.take('x', 0)).toBe('a')
    p.lacked('x', 'a', 100)
    p.settle('a')
    expect(p.take('x', 100)).toBe('b')
    p.settle('b')
    // b went back too; a is still lacked
    expect(p.take('x', 200)).toBe('b')
    p.settle('b')
    expect(p.unforgotten('x')).toEqual(['a'])
    expect(p.take('x', 5000)).toBe('b') // not forgotten yet: a is skipped however long ago
    p.settle('b')
    p.forgotten('x', ['a'])
    expect(p.unforgotten('x')).toEqual([])
    expect(p.take('x', 1099)).toBe('b')
    expect(p.take('x', 1099)).toBeUndefined()
    p.settle('b')
    expect(p.take('x', 1100)).toBe('b')
    expect(p.take('x', 1100)).toBe('a')
  })

  it('the block timeout is generous until four blocks were timed, then 8 times their median, within its bounds', () => {
    const p = plan([])
    p.addProvider('x', 0)
    for (const ms of [10, 20, 30]) p.timed('x', ms)
    expect(p.blockTimeout('x')).toBe(30_000)
    p.timed('x', 500)
    // median of 10, 20, 30, 500 is 30: 8 times that is under the floor
    expect(p.blockTimeout('x')).toBe(2000)
    for (let i = 0; i < 40; i++) p.timed('x', 1000)
    expect(p.blockTimeout('x')).toBe(8000)
    for (let i = 0; i < 40; i++) p.timed('x', 10_000)
    expect(p.blockTimeout('x')).toBe(30_000)
  })

  it('each provider has its own block timeout: a fast one does not shorten a slow one\'s', () => {
    const p = plan([])
    p.addProvider('fast', 0)
    p.addProvider('slow', 0)
    for (let i = 0; i < 8; i++) p.timed('fast', 5)
    for (let i = 0; i < 8; i++) p.timed('slow', 3000)
    expect(p.blockTimeout('fast')).toBe(2000)
    expect(p.blockTimeout('slow')).toBe(24_000)
    // one that has not delivered yet gets the generous timeout
    p.addProvider('new', 0)
    expect(p.blockTimeout('new')).toBe(30_000)
  })

  it('a provider is dropped on its third timeout; before that, the block counts as lacked by it', () => {
    const p = plan(['a', 'b', 'c'])
    p.addProvider('x', 0)
    expect(p.timedOut('x', 'a', 'A', 2000, 0)).toEqual({ drop: false })
    expect(p.unforgotten('x')).toEqual(['a'])
    expect(p.timedOut('x', 'b', 'B', 2000, 0)).toEqual({ drop: false })
    expect(p.timedOut('x', 'c', 'C', 2000, 0)).toEqual({ drop: true, reason: 'no answer for 3 blocks (the last, C, within 2000 ms)' })
    expect(p.drop('x', 'gone')).toBe(true)
    expect(p.drop('x', 'again')).toBe(false)
    expect(p.isActive('x')).toBe(false)
    expect(p.addProvider('x', 0)).toBe(false)
  })

  it('stalls when nothing arrived and no provider joined for longer than its patience, and says who failed how', () => {
    const p = plan(['a', 'b'])
    expect(p.stalled(500, 1000)).toBe(false)
    p.addProvider('x', 900)
    expect(p.stalled(1500, 1000)).toBe(false)
    expect(p.stalled(1901, 1000)).toBe(true)
    p.addProvider('y', 1901)
    p.take('y', 1901)
    p.arrive('a')
    p.store('a', 'y', 100, 2500)
    expect(p.stalled(3400, 1000)).toBe(false)
    p.lacked('y', 'b', 2600)
    p.drop('x', 'sent a block that does not match its CID')
    expect(p.stallReasons()).toEqual(['x: sent a block that does not match its CID', 'y: lack the remaining blocks'])
    expect(p.served()).toEqual([{ peerId: 'y', bytes: 100 }])
  })

  it('a block that arrives twice is stored once; a failed store puts it back in the queue', () => {
    const p = plan(['a'])
    expect(p.take('x', 0)).toBe('a')
    expect(p.arrive('a')).toBe(true)
    expect(p.arrive('a')).toBe(false)
    expect(p.isHere('a')).toBe(true)
    p.unstore('a')
    p.settle('a')
    expect(p.isHere('a')).toBe(false)
    expect(p.take('x', 0)).toBe('a')
    expect(p.arrive('a')).toBe(true)
    p.store('a', null, 10, 0)
    p.settle('a')
    expect(p.unfinished()).toBe(false)
    expect(p.served()).toEqual([])
  })
})
