import * as dagPb from '@ipld/dag-pb'
import { modelCid } from '@shoal/runtime'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { describe, expect, it } from 'vitest'
import { assembleModel, decodeBlock, isModelCid, parseModelCid } from '../src/models/model-dag.js'

async function blocksOf (bytes: Uint8Array): Promise<{ root: CID, blocks: Map<string, Uint8Array> }> {
  const blocks = new Map<string, Uint8Array>()
  const root = await modelCid(bytes, async (cid, block) => { blocks.set(cid.toString(), block) })
  return { root: CID.parse(root), blocks }
}

describe('model DAG', () => {
  it('reassembles a file of several blocks, and refuses one over the limit before reading more than the root', async () => {
    const bytes = new Uint8Array(3 * 1024 * 1024 + 5).map((_, i) => (i * 31) % 251)
    const { root, blocks } = await blocksOf(bytes)
    expect(blocks.size).toBe(5) // four leaves and a root
    const reads: string[] = []
    const get = async (cid: CID): Promise<Uint8Array> => { reads.push(cid.toString()); return blocks.get(cid.toString())! }
    const out = await assembleModel(root, get, 1 << 30)
    expect(Buffer.from(out.bytes).equals(Buffer.from(bytes))).toBe(true)
    expect(out.blocks.map(String)).toEqual(reads)
    reads.length = 0
    await expect(assembleModel(root, get, 1024 * 1024)).rejects.toThrow(/is 3145733 bytes, over the limit of 1048576/)
    expect(reads).toEqual([root.toString()])
  })

  it('refuses blocks that are not parts of a UnixFS file', async () => {
    const cid = async (bytes: Uint8Array, code: number): Promise<CID> => CID.create(1, code, await sha256.digest(bytes))
    const junk = new TextEncoder().encode('junk')
    expect(() => decodeBlock(CID.create(1, dagPb.code, sha256.digest(junk) as any), junk)).toThrow(/not a UnixFS node/)
    const dir = dagPb.encode({ Data: new UnixFS({ type: 'directory' }).marshal(), Links: [] })
    expect(() => decodeBlock(CID.create(1, dagPb.code, sha256.digest(dir) as any), dir)).toThrow(/is a UnixFS directory, not a file/)
    const leaf = await cid(junk, raw.code)
    expect(decodeBlock(leaf, junk)).toEqual({ kind: 'leaf', bytes: 4 })
    expect(() => decodeBlock(leaf, new Uint8Array(2 * 1024 * 1024))).toThrow(/over the/)
  })

  it('accepts only CIDv1 sha2-256 raw or dag-pb model CIDs', () => {
    expect(isModelCid('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')).toBe(true)
    expect(() => parseModelCid('QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG')).toThrow(/not a Shoal model CID/)
    expect(() => parseModelCid('hello')).toThrow(/is not a CID/)
  })
})
