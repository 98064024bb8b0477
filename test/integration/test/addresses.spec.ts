import type { ShoalNode } from '@shoal/node'
import { buildCalibrationModel } from '@shoal/runtime/calibration-model'
import type { Tensor } from '@shoal/runtime'
import { afterEach, describe, expect, it } from 'vitest'
import { localRun, sameBytes, startNode, stopAll, waitFor, withDynamicBatch } from './helpers.js'

let nodes: ShoalNode[] = []
afterEach(async () => {
  await stopAll(nodes)
  nodes = []
})

describe('the addresses a node tells others', () => {
  it('an --announce address replaces the listen addresses; outside LAN mode no loopback or private address is told; a node with none still gets pieces over the connection it opened', async () => {
    const submitter = await startNode()
    // (a loopback address stands in for a public one: a test reaches nothing outside this machine)
    const forwarded = await startNode([submitter.addrs[0]], { announce: ['/ip4/127.0.0.2/tcp/4001'] })
    const hidden = await startNode([submitter.addrs[0]], { lan: false })
    nodes = [submitter, forwarded, hidden]
    const adOf = (node: ShoalNode): string[] | undefined => submitter.peers().find(p => p.peerId === node.peerId)?.addrs
    await waitFor(() => adOf(forwarded) != null && adOf(hidden) != null, 'both ads')
    expect(adOf(forwarded)).toEqual(['/ip4/127.0.0.2/tcp/4001'])
    expect(adOf(hidden)).toEqual([])
    // and each says how it can be reached (shoal node status)
    expect(submitter.status().reachability).toBe('lan')
    expect(hidden.status().reachability).toBe('outbound-only')
    // a LAN node (every listen address loopback: automatic) tells its loopback address (its ad may
    // reach the forwarded node a heartbeat after the others reached the submitter)
    await waitFor(() => forwarded.peers().some(p => p.peerId === submitter.peerId), 'the submitter\'s ad at the forwarded node')
    expect(forwarded.peers().find(p => p.peerId === submitter.peerId)?.addrs[0]).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+$/)
    // the hidden one is reached through the connection it opened itself
    const bytes = withDynamicBatch(buildCalibrationModel({ batch: 1, width: 16, layers: 1 }))
    const model = await submitter.addModel(bytes)
    await hidden.addModel(bytes)
    await forwarded.stop()
    nodes = [submitter, hidden]
    await waitFor(() => submitter.peers().some(p => p.peerId === hidden.peerId && p.models.includes(model.cid)), 'the hidden worker\'s ad to list the model')
    const x: Tensor = { dtype: 'float32', dims: [8, 16], data: new Uint8Array(Float32Array.from({ length: 128 }, (_, i) => i).buffer) }
    const result = await submitter.submitJob(model.cid, { input: x }, { rowsPerPiece: 2, verify: 'off' }).run()
    expect(sameBytes(result.outputs.output, (await localRun(bytes, { input: x })).output)).toBe(true)
    expect(result.progress.perPeer[hidden.peerId]).toBeGreaterThan(0)
  })

  it('a node behind a router (the simulator\'s nat) refuses every inbound connection, tells no address, and is reached over the one it opens', async () => {
    const submitter = await startNode()
    const home = await startNode([submitter.addrs[0]], {}, { tuning: { behindNat: true } })
    nodes = [submitter, home]
    await waitFor(() => submitter.peers().some(p => p.peerId === home.peerId), 'the home node\'s ad')
    expect(submitter.peers().find(p => p.peerId === home.peerId)?.addrs).toEqual([])
    expect(submitter.peers().find(p => p.peerId === home.peerId)?.connection).toBe('inbound')
    const other = await startNode([], {})
    nodes.push(other)
    expect(await other.libp2p.dial(home.libp2p.getMultiaddrs()[0]).then(() => 'connected', () => 'refused')).toBe('refused')
  })
})
