import { frames, readData, readMessage, writeData, writeMessage } from '@shoal/node/wire'
import type { ShoalNode } from '@shoal/node'
import { BLOCK_PROTOCOL, BlockRequest, BlockResponse } from '@shoal/protocol'
import { buildCalibrationModel } from '@shoal/runtime/calibration-model'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256, sha512 } from 'multiformats/hashes/sha2'
import * as dagPb from '@ipld/dag-pb'
import { afterEach, describe, expect, it } from 'vitest'
import { startNode, stopAll, waitFor } from './helpers.js'

let nodes: ShoalNode[] = []
afterEach(async () => {
  await stopAll(nodes)
  nodes = []
})

/** A holder of a 3 MiB model (a dag-pb root and 3 leaves) and a peer connected to it. */
async function holderAndPeer (): Promise<{ holder: ShoalNode, peer: ShoalNode, cid: string, bytes: Uint8Array }> {
  const holder = await startNode()
  const peer = await startNode([holder.addrs[0]])
  nodes = [holder, peer]
  const bytes = buildCalibrationModel({ batch: 1, width: 512, layers: 3 })
  const { cid } = await holder.addModel(bytes)
  await waitFor(() => peer.peers().length === 1, 'the peer to see the holder')
  return { holder, peer, cid, bytes }
}

/** Opens a raw block stream from `from` to `to`, as any peer may. */
async function blockStream (from: ShoalNode, to: ShoalNode): Promise<{ stream: Awaited<ReturnType<ShoalNode['libp2p']['dialProtocol']>>, lp: ReturnType<typeof frames> }> {
  const stream = await from.libp2p.dialProtocol(to.libp2p.peerId, BLOCK_PROTOCOL)
  return { stream, lp: frames(stream) }
}

async function ask (lp: ReturnType<typeof frames>, cid: Uint8Array): Promise<{ response: BlockResponse, block?: Uint8Array }> {
  const signal = AbortSignal.timeout(5000)
  await writeMessage(lp, BlockRequest, { cid }, signal)
  const response = await readMessage(lp, BlockResponse, signal, 'block response', 256)
  if (response.code !== BlockResponse.Code.OK) return { response }
  return { response, block: await readData(lp, response.size, signal, 'block') }
}

describe('/shoal/block/1.0.0', () => {
  it('answers requests one after another on one stream: the root, DONT_HAVE for a block it lacks, the root again', async () => {
    const { holder, peer, cid } = await holderAndPeer()
    const { stream, lp } = await blockStream(peer, holder)
    const root = CID.parse(cid)
    const first = await ask(lp, root.bytes)
    expect(first.response.code).toBe(BlockResponse.Code.OK)
    expect((await sha256.digest(first.block as Uint8Array)).digest).toEqual(root.multihash.digest)
    const missing = CID.create(1, raw.code, await sha256.digest(new Uint8Array([1, 2, 3])))
    expect((await ask(lp, missing.bytes)).response.code).toBe(BlockResponse.Code.DONT_HAVE)
    // the same stream still serves: ask for the root again
    expect((await ask(lp, root.bytes)).block).toEqual(first.block)
    await stream.close()
  })

  it('an attacker\'s malformed request, or a CID of no model block, is answered BAD_REQUEST and its stream closed; others are still served', async () => {
    const { holder, peer, cid } = await holderAndPeer()
    // not a CID at all
    const garbage = await blockStream(peer, holder)
    expect((await ask(garbage.lp, new Uint8Array([0xff, 0xff, 0xff]))).response.code).toBe(BlockResponse.Code.BAD_REQUEST)
    await expect(garbage.lp.read({ signal: AbortSignal.timeout(5000) })).rejects.toThrow()
    // a real CID, but sha2-512: no model block is hashed so
    const other = await blockStream(peer, holder)
    const wrongHash = CID.create(1, raw.code, await sha512.digest(new Uint8Array([1])))
    expect((await ask(other.lp, wrongHash.bytes)).response.code).toBe(BlockResponse.Code.BAD_REQUEST)
    // a frame that is no BlockRequest (a length over what a request can be)
    const oversized = await blockStream(peer, holder)
    await oversized.lp.write(new Uint8Array(4096).fill(0x0a))
    expect((await readMessage(oversized.lp, BlockResponse, AbortSignal.timeout(5000), 'block response', 256)).code).toBe(BlockResponse.Code.BAD_REQUEST)
    // the node serves the next peer as before, and fetches still work
    const honest = await blockStream(peer, holder)
    expect((await ask(honest.lp, CID.parse(cid).bytes)).response.code).toBe(BlockResponse.Code.OK)
    await honest.stream.close()
    const summary = await peer.fetchModel(cid, { only: [holder.libp2p.peerId.toString()] })
    expect(summary.providers).toEqual([{ peerId: holder.libp2p.peerId.toString(), bytes: expect.any(Number) }])
  })

  it('a peer that asks for blocks and never reads them holds 8 of the 32 sending slots at most: the rest get BUSY, another peer is served', async () => {
    const { holder, peer, cid } = await holderAndPeer()
    const leaves = dagPb.decode((await ask((await blockStream(peer, holder)).lp, CID.parse(cid).bytes)).block as Uint8Array).Links.map(l => l.Hash.bytes)
    // 20 streams, each asking for a 1 MiB leaf it never reads: the holder's writes stall on the stream window
    const stalled = await Promise.all(Array.from({ length: 20 }, async (_, i) => {
      const s = await blockStream(peer, holder)
      await writeMessage(s.lp, BlockRequest, { cid: leaves[i % leaves.length] }, AbortSignal.timeout(5000))
      return s
    }))
    // the ones over the peer's 8 are answered BUSY (header only): read the first frame of each
    const firsts = await Promise.all(stalled.map(async s => await readMessage(s.lp, BlockResponse, AbortSignal.timeout(5000), 'block response', 256)))
    expect(firsts.filter(r => r.code === BlockResponse.Code.BUSY).length).toBe(12)
    expect(firsts.filter(r => r.code === BlockResponse.Code.OK).length).toBe(8)
    // another peer gets its blocks meanwhile
    const other = await startNode([holder.addrs[0]])
    nodes.push(other)
    const summary = await other.fetchModel(cid, { only: [holder.libp2p.peerId.toString()] })
    expect(summary.providers.map(p => p.peerId)).toEqual([holder.libp2p.peerId.toString()])
    for (const s of stalled) s.stream.abort(new Error('done'))
  })

  it('a provider that sends other bytes than the block asked for is dropped from the fetch, and the model comes from an honest one', async () => {
    const { holder, peer, cid, bytes } = await holderAndPeer()
    const liar = await startNode([holder.addrs[0]])
    nodes.push(liar)
    await liar.fetchModel(cid, { only: [holder.libp2p.peerId.toString()] })
    // the liar answers every request with a block of the right size and the wrong bytes
    await liar.libp2p.unhandle(BLOCK_PROTOCOL)
    await liar.libp2p.handle(BLOCK_PROTOCOL, stream => {
      void (async () => {
        const lp = frames(stream)
        for (;;) {
          await readMessage(lp, BlockRequest, AbortSignal.timeout(5000), 'block request', 256)
          const size = 1000
          await writeMessage(lp, BlockResponse, { code: BlockResponse.Code.OK, size }, AbortSignal.timeout(5000))
          await writeData(lp, [new Uint8Array(size).fill(7)], AbortSignal.timeout(5000))
        }
      })().catch(() => { stream.abort(new Error('done')) })
    })
    await peer.libp2p.dial(liar.libp2p.getMultiaddrs()[0])
    const summary = await peer.fetchModel(cid, { only: [liar.libp2p.peerId.toString(), holder.libp2p.peerId.toString()] })
    expect(summary.dropped).toEqual([{ peerId: liar.libp2p.peerId.toString(), reason: 'sent a block that does not match its CID' }])
    expect(summary.providers.map(p => p.peerId)).toEqual([holder.libp2p.peerId.toString()])
    expect(summary.bytes).toBe(bytes.byteLength)
  })

  it('a provider that announces a block over 1 MiB is dropped from the fetch at once, before any bytes are read', async () => {
    const { peer } = await holderAndPeer()
    const liar = nodes[0]
    await liar.libp2p.unhandle(BLOCK_PROTOCOL)
    let asked = 0
    await liar.libp2p.handle(BLOCK_PROTOCOL, stream => {
      void (async () => {
        const lp = frames(stream)
        for (;;) {
          await readMessage(lp, BlockRequest, AbortSignal.timeout(5000), 'block request', 256)
          asked++
          // a header only: a client that believed it would wait for 64 MiB that never come
          await writeMessage(lp, BlockResponse, { code: BlockResponse.Code.OK, size: 64 * 1024 * 1024 }, AbortSignal.timeout(5000))
        }
      })().catch(() => {})
    })
    const root = CID.create(1, raw.code, await sha256.digest(new Uint8Array([9])))
    const started = Date.now()
    const error = await peer.fetchModel(root.toString(), { only: [liar.libp2p.peerId.toString()] }).catch(err => err)
    expect(error.name).toBe('ModelFetchError')
    expect(error.message).toMatch(/: sent a malformed answer \(block response: a block of 67108864 bytes \(1 to 1048576\)\)\)$/)
    expect(asked).toBe(1)
    // the no-provider timeout of the test nodes (3 s), not a block timeout (30 s)
    expect(Date.now() - started).toBeLessThan(10_000)
  })
})
