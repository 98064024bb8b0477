import * as dagPb from '@ipld/dag-pb'
import { UnixFS } from 'ipfs-unixfs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { ModelDagError } from './model-cid.js'

export { isModelCid, ModelDagError, parseModelCid } from './model-cid.js'

/**
 * A model's blocks, as `modelCid` (@shoal/runtime) lays them out: the IPFS "unixfs-v1-2025" profile.
 * A raw block is file bytes; a dag-pb block is a UnixFS "file" node listing its children in order.
 * Everything here is pure: it decodes and checks blocks, and never fetches one.
 */

/** Blocks are at most this big (the profile cuts 1 MiB leaves; a node of 1024 links is ~40 KiB). */
export const MAX_BLOCK_BYTES = 1024 * 1024 + 64 * 1024

export type DagNode =
  | { kind: 'leaf', bytes: number }
  | { kind: 'file', fileSize: number, children: CID[] }

/** Decodes one block of a model. Throws ModelDagError on anything that is not part of a UnixFS file. */
export function decodeBlock (cid: CID, block: Uint8Array): DagNode {
  if (block.byteLength > MAX_BLOCK_BYTES) throw new ModelDagError(`block ${cid.toString()} is ${block.byteLength} bytes, over the ${MAX_BLOCK_BYTES} a model block may have`)
  if (cid.code === raw.code) return { kind: 'leaf', bytes: block.byteLength }
  if (cid.code !== dagPb.code) throw new ModelDagError(`block ${cid.toString()} is neither raw nor dag-pb`)
  let node: dagPb.PBNode
  let data: UnixFS
  try {
    node = dagPb.decode(block)
    if (node.Data == null) throw new Error('no UnixFS data')
    data = UnixFS.unmarshal(node.Data)
  } catch (err: any) {
    throw new ModelDagError(`block ${cid.toString()} is not a UnixFS node (${err.message})`)
  }
  if (data.type !== 'file' && data.type !== 'raw') throw new ModelDagError(`block ${cid.toString()} is a UnixFS ${data.type}, not a file`)
  const children = node.Links.map(link => link.Hash)
  for (const child of children) {
    if (child.version !== 1 || child.multihash.code !== sha256.code || (child.code !== raw.code && child.code !== dagPb.code)) {
      throw new ModelDagError(`block ${cid.toString()} links to ${child.toString()}, which is not a model block CID`)
    }
  }
  if ((data.data?.byteLength ?? 0) > 0 && children.length > 0) throw new ModelDagError(`block ${cid.toString()} mixes inline data and links, which the model profile never does`)
  return { kind: 'file', fileSize: Number(data.fileSize()), children }
}

/** The file bytes a block carries itself: all of a raw leaf, the inline data of a dag-pb node. */
export function blockData (cid: CID, block: Uint8Array): Uint8Array {
  if (cid.code === raw.code) return block
  const node = dagPb.decode(block)
  return node.Data == null ? new Uint8Array(0) : (UnixFS.unmarshal(node.Data).data ?? new Uint8Array(0))
}

/**
 * Walks a model's DAG from its root with `get`, checking every block, and returns the file's bytes and
 * the CIDs of all its blocks (root first). Refuses a file larger than `maxBytes` as soon as the root
 * says so, before reading more.
 */
export async function assembleModel (root: CID, get: (cid: CID) => Promise<Uint8Array>, maxBytes: number): Promise<{ bytes: Uint8Array, blocks: CID[] }> {
  const rootBlock = await get(root)
  const top = decodeBlock(root, rootBlock)
  const size = top.kind === 'leaf' ? top.bytes : top.fileSize
  if (size > maxBytes) throw new ModelDagError(`model ${root.toString()} is ${size} bytes, over the limit of ${maxBytes}`)
  const out = new Uint8Array(size)
  const blocks: CID[] = []
  let offset = 0
  const visit = async (cid: CID, block: Uint8Array, depth: number): Promise<void> => {
    if (depth > 8) throw new ModelDagError(`model ${root.toString()} is nested deeper than any model file`)
    blocks.push(cid)
    const node = decodeBlock(cid, block)
    const data = blockData(cid, block)
    if (offset + data.byteLength > size) throw new ModelDagError(`model ${root.toString()} holds more bytes than its root says (${size})`)
    out.set(data, offset)
    offset += data.byteLength
    if (node.kind === 'file') for (const child of node.children) await visit(child, await get(child), depth + 1)
  }
  await visit(root, rootBlock, 0)
  if (offset !== size) throw new ModelDagError(`model ${root.toString()} holds ${offset} bytes, its root says ${size}`)
  return { bytes: out, blocks }
}
