import { describe, expect, it } from 'vitest'
// @ts-expect-error: a plain ES module of the scripts package, without types
import { labPrerequisites, runLab } from '../../../scripts/nat-lab.mjs'

// The lab builds network namespaces and loads nftables rules: root only (CI runs as root, and the
// README's test line installs nftables where it is missing). Run without root, this says so.
const missing: string | null = labPrerequisites()

describe('the NAT lab (network namespaces, nftables masquerade)', () => {
  it.skipIf(missing != null)(`workers behind two kinds of NAT do pieces, the outputs equal a local run, and no private address is told${missing != null ? ` (not run: ${missing})` : ''}`, async () => {
    const report = await runLab()
    expect(report.error).toBeUndefined()
    expect(report.jobDone).toBe(true)
    expect(report.correct).toBe(true)
    for (const name of ['w1', 'w2']) {
      expect(report.piecesByWorker[name]).toBeGreaterThan(0)
      // reached over the connection it opened through its router
      expect(report.paths[name]).toBe('direct')
      expect(report.reachableMs[name]).toBeGreaterThan(0)
      for (const addr of report.addrsSeen[name]) expect(addr).not.toMatch(/\/ip4\/(192\.168|10|127)\./)
    }
  }, 180_000)
})
