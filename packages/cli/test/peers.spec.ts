import { describe, expect, it } from 'vitest'
import type { PeerView } from '@shoal/node'
import { peersTable } from '../src/commands/peers.js'

function peer (peerId: string, version: string): PeerView {
  return {
    peerId,
    version,
    addrs: ['/ip4/127.0.0.1/tcp/4001'],
    cpu: { model: 'Test CPU', cores: 8 },
    memory: { totalBytes: 16 * 2 ** 30, freeBytes: 8 * 2 ** 30 },
    os: 'linux 6.1',
    arch: 'x64',
    gpu: null,
    providers: [{ name: 'cpu', gflops: 88.5 }],
    limits: { maxConcurrency: 2, maxMemoryBytes: 0, cpuThreads: 8, noGpu: true },
    freeSlots: 2,
    queueLength: 0,
    models: [],
    seq: 1,
    timestampMs: 1,
    intervalMs: 5000,
    leaving: false,
    lastSeenMs: 1200,
    standing: { verified: 0, offences: 0, excludedUntil: null, checkShare: 1 },
    connection: 'outbound'
  }
}

describe('shoal peers as a table', () => {
  it('shows each peer\'s version, and marks one whose wire this node cannot share pieces with', () => {
    const lines = peersTable([peer('12D3KooWaaa', '0.2.0'), peer('12D3KooWbbb', '0.1.0'), peer('12D3KooWccc', 'outside-1')]).trim().split('\n')
    expect(lines[0]).toMatch(/^PEER\s+VERSION\s+ADDRESS/)
    expect(lines[1]).toMatch(/^12D3KooWaaa\s+0\.2\.0\s+\/ip4/)
    expect(lines[2]).toMatch(/^12D3KooWbbb\s+0\.1\.0 \(no work: older wire\)\s+\/ip4/)
    expect(lines[3]).toMatch(/^12D3KooWccc\s+outside-1\s+\/ip4/)
  })

  it('shows each peer\'s standing: new, verified with the share still checked, or excluded with the time left', () => {
    const now = 1_000_000
    const veteran = { ...peer('12D3KooWvet', '0.5.0'), standing: { verified: 40, offences: 0, excludedUntil: null, checkShare: 0.25 } }
    const cheat = { ...peer('12D3KooWbad', '0.5.0'), standing: { verified: 0, offences: 2, excludedUntil: now + 55 * 60_000, checkShare: 1 } }
    const lines = peersTable([peer('12D3KooWnew', '0.5.0'), veteran, cheat], now).trim().split('\n')
    expect(lines[0]).toMatch(/FREE\s+STANDING\s+LINK\s+LAST AD$/)
    expect(lines[1]).toMatch(/\snew\s+out\s/)
    expect(lines[1]).toMatch(/\snew\s/)
    expect(lines[2]).toMatch(/\s40 verified \(checks 25%\)\s/)
    expect(lines[3]).toMatch(/\sexcluded 55m0s \(2 offences\)\s/)
  })
})
