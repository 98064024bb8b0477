import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ConfigError } from '@shoal/node'
import type { ShoalNode } from '@shoal/node'
import { generateSwarmKey } from '@shoal/node/client'
import { buildCalibrationModel } from '@shoal/runtime/calibration-model'
import type { Tensor } from '@shoal/runtime'
import { afterEach, describe, expect, it } from 'vitest'
import { localRun, runCli, sameBytes, startNode, stopAll, tempDir, waitFor, withDynamicBatch } from './helpers.js'

let nodes: ShoalNode[] = []
afterEach(async () => {
  await stopAll(nodes)
  nodes = []
})

async function keyFile (): Promise<string> {
  const file = join(await tempDir('shoal-key-'), 'swarm.key')
  await writeFile(file, generateSwarmKey(), { mode: 0o600 })
  return file
}

describe('private meshes (--swarm-key)', () => {
  it('nodes with the same key form a mesh and run jobs; a node without it, or with another key, cannot connect either way', async () => {
    const lab = await keyFile()
    // a stranger's handshake stalls (each side waits for what the other never sends) until the
    // handshake timeout: shortened here so that the test does not wait 10 s for each
    const quick = { tuning: { handshakeTimeoutMs: 1500 } }
    const first = await startNode([], { swarmKey: lab }, quick)
    const second = await startNode([first.addrs[0]], { swarmKey: lab }, quick)
    const outsider = await startNode([first.addrs[0]], {}, quick)
    const other = await startNode([first.addrs[0]], { swarmKey: await keyFile() }, quick)
    nodes = [first, second, outsider, other]
    await waitFor(() => first.peers().some(p => p.peerId === second.peerId), 'the two key holders to see each other')
    expect(first.status().privateMesh).toMatch(/^[0-9a-f]{8}$/)
    expect(first.status().privateMesh).toBe(second.status().privateMesh)
    expect(outsider.status().privateMesh).toBeNull()
    // a job inside the private mesh
    const bytes = withDynamicBatch(buildCalibrationModel({ batch: 1, width: 16, layers: 1 }))
    const model = await first.addModel(bytes)
    const x: Tensor = { dtype: 'float32', dims: [8, 16], data: new Uint8Array(Float32Array.from({ length: 128 }, (_, i) => i / 10).buffer) }
    const result = await first.submitJob(model.cid, { input: x }, { rowsPerPiece: 2 }).run()
    expect(sameBytes(result.outputs.output, (await localRun(bytes, { input: x })).output)).toBe(true)
    expect(result.progress.perPeer[second.peerId]).toBeGreaterThan(0)
    // the outsiders: no connection either way, and nothing of the mesh in their tables
    for (const stranger of [outsider, other]) {
      expect(await stranger.libp2p.dial(first.libp2p.getMultiaddrs()[0]).then(() => 'connected', () => 'refused')).toBe('refused')
      expect(await first.libp2p.dial(stranger.libp2p.getMultiaddrs()[0]).then(() => 'connected', () => 'refused')).toBe('refused')
      expect(stranger.peers().map(p => p.peerId)).not.toContain(first.peerId)
      expect(stranger.peers().map(p => p.peerId)).not.toContain(second.peerId)
      expect(stranger.libp2p.getConnections()).toHaveLength(0)
    }
    expect(first.peers().map(p => p.peerId).sort()).toEqual([second.peerId])
  })

  it('on a LAN (mDNS) key holders find each other, and a public node does not learn of them, nor they of it', async () => {
    const lab = await keyFile()
    const quick = { tuning: { handshakeTimeoutMs: 1500 } }
    const pub = await startNode([], { mdns: true }, quick)
    const a = await startNode([], { mdns: true, swarmKey: lab }, quick)
    const b = await startNode([], { mdns: true, swarmKey: lab }, quick)
    nodes = [pub, a, b]
    await waitFor(() => a.peers().some(p => p.peerId === b.peerId) && b.peers().some(p => p.peerId === a.peerId), 'mDNS to introduce the key holders')
    const known = async (node: ShoalNode, other: ShoalNode): Promise<boolean> => await node.libp2p.peerStore.has(other.libp2p.peerId)
    expect(await known(pub, a)).toBe(false)
    expect(await known(pub, b)).toBe(false)
    expect(await known(a, pub)).toBe(false)
  })

  it('a key file that is not a swarm key, or missing, is refused at start with the file named', async () => {
    const bad = join(await tempDir('shoal-key-'), 'bad.key')
    await writeFile(bad, '/key/swarm/psk/1.0.0/\n/base16/\nnot-hex\n')
    await expect(startNode([], { swarmKey: bad })).rejects.toThrow(ConfigError)
    await expect(startNode([], { swarmKey: bad })).rejects.toThrow(/--swarm-key: .*bad\.key is not a swarm key: its third line must be the key/)
    await expect(startNode([], { swarmKey: join(bad, '..', 'missing.key') })).rejects.toThrow(/--swarm-key: cannot read .*missing\.key \(ENOENT\)/)
  })

  it('shoal key generate writes a key only its owner can read, and never over an existing one without --force', async () => {
    const file = join(await tempDir('shoal-key-'), 'lab.key')
    const made = await runCli(['key', 'generate', '--out', file, '--json'])
    expect(made.code).toBe(0)
    expect(JSON.parse(made.stdout)).toEqual({ file, fingerprint: expect.stringMatching(/^[0-9a-f]{8}$/) })
    const { stat } = await import('node:fs/promises')
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    const again = await runCli(['key', 'generate', '--out', file])
    expect(again.code).toBe(2)
    expect(again.stderr).toMatch(/exists: a node may be using that key \(--force replaces it\)/)
    const replaced = await runCli(['key', 'generate', '--out', file, '--force', '--json'])
    expect(replaced.code).toBe(0)
    // a node starts with it, and shows its fingerprint
    const node = await startNode([], { swarmKey: file })
    nodes = [node]
    expect(node.status().privateMesh).toBe(JSON.parse(replaced.stdout).fingerprint)
    expect(JSON.parse(replaced.stdout).fingerprint).not.toBe(JSON.parse(made.stdout).fingerprint)
  })
})
