import { readFile, readdir, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import * as dagPb from '@ipld/dag-pb'
import { parseModelCid } from '@shoal/node'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import type { ShoalNode } from '@shoal/node'
import { modelCid } from '@shoal/runtime'
import { buildCalibrationModel } from '@shoal/runtime/calibration-model'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { DETECTION_MODEL, images, localRun, sameBytes, startNode, stopAll, waitFor } from './helpers.js'

let nodes: ShoalNode[] = []
afterEach(async () => {
  await stopAll(nodes)
  nodes = []
})

let detection: Uint8Array
beforeAll(async () => { detection = await readFile(DETECTION_MODEL) })

/** Every file under a directory, recursively. */
async function filesUnder (dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries.filter(e => e.isFile()).map(e => join(e.parentPath, e.name)).sort()
}

/** A mesh in which every node has seen every other's ad. */
async function startSwarm (n: number, extra: Record<string, unknown> = {}): Promise<ShoalNode[]> {
  const first = await startNode([], extra)
  const rest = await Promise.all(Array.from({ length: n - 1 }, async () => await startNode([first.addrs[0]], extra)))
  const all = [first, ...rest]
  await waitFor(() => all.every(node => node.peers().length === n - 1), 'the swarm to converge', 20_000)
  return all
}

describe('models travel through the swarm', () => {
  it('six nodes: the publisher adds a model, five fetch it, later fetches are served by several providers', async () => {
    nodes = await startSwarm(6)
    const [publisher, ...fetchers] = nodes
    const model = await publisher.addModel(detection)
    expect(model.cid).toMatch(/^bafybei/) // over 1 MiB: a dag-pb root over raw leaves
    // each fetcher waits until the one before it is listed as a holder, so that later ones have several providers
    const summaries = []
    for (const fetcher of fetchers) {
      const before = summaries.length + 1
      await waitFor(() => fetcher.peers().filter(p => p.models.includes(model.cid)).length >= before, `${before} holders in the ads`)
      summaries.push(await fetcher.fetchModel(model.cid))
      expect(fetcher.models.has(model.cid)).toBe(true)
      expect(Buffer.from(await fetcher.models.bytes(model.cid)).equals(Buffer.from(detection))).toBe(true)
    }
    for (const s of summaries) {
      expect(s.bytes).toBe(detection.byteLength)
      expect(s.providers.reduce((n, p) => n + p.bytes, 0)).toBeGreaterThanOrEqual(detection.byteLength)
    }
    // the first fetch could only be served by the publisher; some later one by two or more peers
    expect(summaries[0].providers.map(p => p.peerId)).toEqual([publisher.peerId])
    expect(Math.max(...summaries.map(s => s.providers.length))).toBeGreaterThanOrEqual(2)
  })

  it('holders announce themselves in the DHT: a provider lookup finds the publisher, and a fetcher once it holds the model', async () => {
    nodes = await startSwarm(3)
    const [publisher, fetcher, other] = nodes
    const model = await publisher.addModel(detection)
    const providers = async (): Promise<string[]> => {
      const found: string[] = []
      for await (const p of other.libp2p.contentRouting.findProviders(parseModelCid(model.cid) as any, { signal: AbortSignal.timeout(5000) })) found.push(p.id.toString())
      return found
    }
    await waitFor(async () => (await providers()).includes(publisher.peerId), 'the publisher\'s provider record')
    await fetcher.fetchModel(model.cid)
    await waitFor(async () => (await providers()).includes(fetcher.peerId), 'the fetcher\'s provider record')
  })

  it('the publisher leaves once two nodes hold the model; the others still get it, and a batch job on it completes', async () => {
    nodes = await startSwarm(5)
    const [publisher, a, b, c, d] = nodes
    const model = await publisher.addModel(detection)
    await a.fetchModel(model.cid)
    await b.fetchModel(model.cid)
    await publisher.stop()
    nodes = [a, b, c, d]
    await waitFor(() => c.peers().every(p => p.peerId !== publisher.peerId), 'the publisher to be gone from the ads')
    const got = await c.fetchModel(model.cid)
    expect(got.providers.map(p => p.peerId).every(p => p === a.peerId || p === b.peerId)).toBe(true)
    // d submits a job on a model it gets from the swarm; its workers (a, b, c) hold it already
    await d.fetchModel(model.cid)
    const x = images(6, 64, 64)
    const result = await d.submitJob(model.cid, { x }, { rowsPerPiece: 1 }).run()
    const reference = await localRun(detection, { x })
    const [name] = Object.keys(reference)
    expect(sameBytes(result.outputs[name], reference[name])).toBe(true)
  })

  it('a provider serving a corrupted block is detected and dropped; the block comes from another and the model is intact', async () => {
    nodes = await startSwarm(3)
    const [publisher, bad, fetcher] = nodes
    const model = await publisher.addModel(detection)
    await bad.fetchModel(model.cid)
    bad.swarm.corruptServedBlocks = true
    await waitFor(() => fetcher.peers().filter(p => p.models.includes(model.cid)).length === 2, 'two holders in the ads')
    const summary = await fetcher.fetchModel(model.cid)
    expect(summary.dropped).toContainEqual({ peerId: bad.peerId, reason: 'sent a block that does not match its CID' })
    expect(summary.providers.map(p => p.peerId)).toContain(publisher.peerId)
    expect(Buffer.from(await fetcher.models.bytes(model.cid)).equals(Buffer.from(detection))).toBe(true)
    expect(fetcher.swarm.standing.weight(bad.peerId)).toBeGreaterThan(0)
  })

  it('an interrupted fetch resumes from the blocks it holds', async () => {
    nodes = await startSwarm(2)
    const [publisher, fetcher] = nodes
    const model = await publisher.addModel(detection)
    await fetcher.fetchModel(model.cid)
    // remove the model from the index but keep three of its blocks, as a fetch cut short would
    const blocksDir = join(fetcher.config.dataDir, 'models', 'blocks')
    const kept = new Map<string, Buffer>()
    for (const file of (await filesUnder(blocksDir)).slice(0, 3)) kept.set(file, await readFile(file))
    await fetcher.removeModel(model.cid)
    expect(await filesUnder(blocksDir)).toEqual([])
    for (const [file, bytes] of kept) await writeFile(file, bytes)
    const resumed = await fetcher.fetchModel(model.cid)
    expect(resumed.heldBlocks).toBe(3)
    const fetched = resumed.providers.reduce((n, p) => n + p.bytes, 0)
    const heldBytes = [...kept.values()].reduce((n, b) => n + b.byteLength, 0)
    // every block except the held ones came over the wire, once
    const all = (await Promise.all((await filesUnder(blocksDir)).map(async f => (await stat(f)).size))).reduce((n, s) => n + s, 0)
    expect(fetched).toBe(all - heldBytes)
    expect(Buffer.from(await fetcher.models.bytes(model.cid)).equals(Buffer.from(detection))).toBe(true)
  })

  it('a node still fetching serves the blocks it has; a fetch from it alone gets those and then says the rest is missing', async () => {
    nodes = await startSwarm(3)
    const [publisher, partial, fetcher] = nodes
    const model = await publisher.addModel(buildCalibrationModel({ batch: 1, width: 1400, layers: 4 })) // ~31 MB, 31 blocks
    const abort = new AbortController()
    const cut = partial.fetchModel(model.cid, { only: [publisher.peerId], signal: abort.signal }).catch(err => err)
    await waitFor(() => (partial.swarm.progress(model.cid)?.blocksDone ?? 0) >= 4, 'the partial fetch to hold a few blocks', 20_000)
    abort.abort()
    expect(await cut).toBeInstanceOf(Error)
    const held = (await filesUnder(join(partial.config.dataDir, 'models', 'blocks'))).length
    expect(held).toBeGreaterThanOrEqual(4)
    expect(held).toBeLessThan(32)
    const err = await fetcher.fetchModel(model.cid, { only: [partial.peerId] }).catch(e => e)
    expect(err.message).toMatch(new RegExp(`${partial.peerId}: lack the remaining blocks`))
    // everything the partial holder had came over (and stays, for a later fetch to resume from)
    expect((await filesUnder(join(fetcher.config.dataDir, 'models', 'blocks'))).length).toBe(held)
    // with the publisher too, the fetch resumes and completes
    const done = await fetcher.fetchModel(model.cid, { only: [partial.peerId, publisher.peerId] })
    expect(done.heldBlocks).toBe(held)
    expect(fetcher.models.has(model.cid)).toBe(true)
  })

  it('a hostile root that links to more than the size it claims is refused before its blocks fill the disk', async () => {
    nodes = await startSwarm(2)
    const [hostile, fetcher] = nodes
    const leaves = await Promise.all([1, 2, 3].map(async i => {
      const bytes = new Uint8Array(1024 * 1024).fill(i)
      const cid = CID.create(1, raw.code, await sha256.digest(bytes))
      await hostile.models.blockstore.put(cid, bytes)
      return cid
    }))
    const rootBytes = dagPb.encode({ Data: new UnixFS({ type: 'file', blockSizes: [10n] }).marshal(), Links: leaves.map(Hash => ({ Hash, Tsize: 1024 * 1024 })) })
    const root = CID.create(1, dagPb.code, await sha256.digest(rootBytes))
    await hostile.models.blockstore.put(root, rootBytes)
    const err = await fetcher.fetchModel(root.toString(), { only: [hostile.peerId] }).catch(e => e)
    expect(err.message).toMatch(/its blocks add up to more than the 10 bytes its root announces/)
    expect(fetcher.models.has(root.toString())).toBe(false)
    // a root listing more blocks than its size allows is refused before any of them is asked for
    const many = dagPb.encode({ Data: new UnixFS({ type: 'file', blockSizes: [10n] }).marshal(), Links: Array.from({ length: 40 }, () => ({ Hash: leaves[0], Tsize: 1 })) })
    const manyRoot = CID.create(1, dagPb.code, await sha256.digest(many))
    await hostile.models.blockstore.put(manyRoot, many)
    const refused = await fetcher.fetchModel(manyRoot.toString(), { only: [hostile.peerId] }).catch(e => e)
    expect(refused.message).toMatch(/has more blocks than a file of 10 bytes can have/)
  })

  it('a model over the size limit is refused with a clear error before its blocks are fetched', async () => {
    const publisher = await startNode()
    const small = await startNode([publisher.addrs[0]], { maxModelBytes: 1024 * 1024 })
    nodes = [publisher, small]
    await waitFor(() => small.peers().length === 1, 'the mesh')
    const model = await publisher.addModel(detection)
    const err = await small.fetchModel(model.cid, { hints: [publisher.peerId] }).catch(e => e)
    expect(err.message).toMatch(new RegExp(`model ${model.cid} is ${detection.byteLength} bytes, over this node's limit of 1048576`))
    expect(small.models.has(model.cid)).toBe(false)
    expect(await filesUnder(join(small.config.dataDir, 'models', 'blocks'))).toEqual([])
  })

  it('a fetch that finds no provider says why its DHT lookup failed', async () => {
    const lonely = await startNode()
    nodes = [lonely]
    // the DHT answers with an error, as one with no reachable peers or a broken routing table would
    lonely.libp2p.contentRouting.findProviders = async function * () { throw new Error('the routing table is empty') }
    // a model nobody holds
    const cid = await modelCid(new TextEncoder().encode('a model nobody has'))
    const err = await lonely.fetchModel(cid).catch(e => e)
    expect(err.name).toBe('ModelFetchError')
    expect(err.message).toMatch(new RegExp(`no peer could provide model ${cid} within \\d+ ms \\(no capacity ad, DHT provider record or hint names one\\); the DHT lookup for providers failed: the routing table is empty`))
  })
})
