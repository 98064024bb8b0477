import { describe, expect, it } from 'vitest'
import { answersNewcomer } from '../src/capacity-service.js'
import { NEWCOMER_ANSWERS } from '../src/constants.js'

/** 1000 evenly spread draws in [0, 1): how many answer. */
function answers (knownPeers: number): number {
  let n = 0
  for (let i = 0; i < 1000; i++) if (answersNewcomer((i + 0.5) / 1000, knownPeers)) n++
  return n
}

describe('answering a newcomer', () => {
  it(`in a mesh of up to ${NEWCOMER_ANSWERS} peers every node answers`, () => {
    expect(answers(0)).toBe(1000)
    expect(answers(NEWCOMER_ANSWERS)).toBe(1000)
  })

  it('in a larger mesh a node answers with probability NEWCOMER_ANSWERS / peers: a newcomer gets about that many answers', () => {
    expect(answers(NEWCOMER_ANSWERS * 2)).toBe(500)
    expect(answers(100)).toBe(Math.round(1000 * NEWCOMER_ANSWERS / 100))
    // expected answers across the whole mesh stay NEWCOMER_ANSWERS whatever its size
    for (const peers of [16, 50, 200]) expect(answers(peers) / 1000 * peers).toBeCloseTo(NEWCOMER_ANSWERS, 0)
  })
})
