import { describe, expect, it } from 'vitest'
// the fuzzing of `pnpm bench fuzz` (100 000 inputs per decoder), in a shorter round
import { fuzz, fuzzTargets } from '../../../scripts/fuzz-targets.mjs'

describe('every decoder of what a peer sends, fuzzed', async () => {
  for (const target of await fuzzTargets()) {
    it(`${target.name}: accepts or refuses 1500 hostile inputs, never anything else`, async () => {
      // the valid messages the mutations start from are accepted, so both outcomes are reachable
      for (const seed of target.seeds) expect(await target.run(seed)).toBe('accepted')
      // a fixed seed keeps the suite reproducible; `pnpm bench fuzz` draws new inputs on every run
      const counts = await fuzz(target, 1500, 20261130)
      expect(counts.accepted + counts.refused).toBe(1500)
      expect(counts.refused).toBeGreaterThan(0)
    }, 60_000)
  }
})
