import { describe, expect, it } from 'vitest'
// @ts-expect-error: a plain ES module of the scripts package, without types
import { labPrerequisites, runLab } from '../../../scripts/nat-lab.mjs'

// The lab builds network namespaces and loads nftables rules: root only (CI runs as root, and the
// README's test line installs nftables where it is missing). Run without root, this says so.
const missing: string | null = labPrerequisites()

const missingUpnp: string | null = labPrerequisites({ upnp: true })

describe('the NAT lab (network namespaces, nftables masquerade)', () => {
  it.skipIf(missingUpnp != null)(`with --upnp a worker gets a port mapped by its router (miniupnpd), tells the mapped address, and is reachable there${missingUpnp != null ? ` (not run: ${missingUpnp})` : ''}`, async () => {
    const report = await runLab({ upnp: true })
    expect(report.correct).toBe(true)
    expect(report.upnp).toEqual({ mapped: '/ip4/11.0.0.11/tcp/4001', reachableFromPublic: true })
    expect(report.addrsSeen.w1).toContain('/ip4/11.0.0.11/tcp/4001')
    expect(report.reachability.w1).toBe('public')
    // the other worker, without UPnP, is still reached only through the relay
    expect(report.reachability.w2).toBe('relayed')
  }, 180_000)

  it.skipIf(missing != null)(`workers behind two kinds of NAT do pieces for a public submitter and, through an unlimited relay, for one behind NAT; outputs equal a local run; no private address is told${missing != null ? ` (not run: ${missing})` : ''}`, async () => {
    // 128 pieces: on a loaded machine a job of 32 was sometimes done by one worker and the submitter
    // before the other's first piece (its model fetch through its router) came back
    const report = await runLab({ job: { rows: 512, width: 32, layers: 2, rowsPerPiece: 4 } })
    for (const [who, job, path] of [['home', report, 'relayed'], ['public', report.publicSubmitter, 'direct']]) {
      expect(job.error, who).toBeUndefined()
      expect(job.jobDone, who).toBe(true)
      expect(job.correct, who).toBe(true)
      for (const name of ['w1', 'w2']) {
        expect(job.piecesByWorker[name], `${who} ${name}`).toBeGreaterThan(0)
        // over the connection it opened through its router, or through the relay (JS cannot punch holes)
        expect(job.paths[name], `${who} ${name}`).toBe(path)
        expect(job.reachableMs[name]).toBeGreaterThan(0)
        for (const addr of job.addrsSeen[name]) expect(addr).not.toMatch(/^\/ip4\/(192\.168|10|127)\./)
      }
    }
    // the public submitter's pieces to the workers behind routers went over direct data channels they
    // opened back to it (more direct pieces than the bootstrap node, the only other one it can dial, did)
    const pub = report.publicSubmitter
    expect(pub.directPieces).toBeGreaterThan(pub.pieces - pub.piecesByWorker.w1 - pub.piecesByWorker.w2 - pub.submitterPieces)
    // a worker behind NAT knows it is reachable only through the relay, and tells its relayed address
    expect(report.reachability).toEqual({ w1: 'relayed', w2: 'relayed' })
    expect(report.addrsSeen.w1.some(a => a.startsWith('/ip4/11.0.0.2/tcp/4001/p2p/') && a.endsWith('/p2p-circuit'))).toBe(true)
  }, 180_000)

  it.skipIf(missing != null)(`through a relay of libp2p's default limits no tensors cross: the workers behind NAT get no piece of the submitter behind NAT, which computes them itself${missing != null ? ` (not run: ${missing})` : ''}`, async () => {
    // 128 pieces, as above: the public submitter's job must outlast the workers' first pieces
    const report = await runLab({ relay: 'limited', job: { rows: 512, width: 32, layers: 2, rowsPerPiece: 4 } })
    expect(report.jobDone).toBe(true)
    expect(report.correct).toBe(true)
    expect(report.piecesByWorker).toEqual({ w1: 0, w2: 0 })
    expect(report.paths).toEqual({ w1: 'relayed', w2: 'relayed' })
    // the public submitter still reaches them over the connections they opened
    expect(report.publicSubmitter.piecesByWorker.w1 + report.publicSubmitter.piecesByWorker.w2).toBeGreaterThan(0)
  }, 180_000)
})
