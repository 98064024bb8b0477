import { code as DAG_PB } from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'

// What a model CID is, apart from the blocks (model-dag.ts): light enough for the CLI to load.

export class ModelDagError extends Error {
  override name = 'ModelDagError'
}

/** Parses a model CID given by a person or a peer: CIDv1, sha2-256, raw or dag-pb. */
export function parseModelCid (text: string): CID {
  let cid: CID
  try {
    cid = CID.parse(text)
  } catch (err: any) {
    throw new ModelDagError(`"${text}" is not a CID (${err.message})`)
  }
  if (cid.version !== 1 || cid.multihash.code !== sha256.code || (cid.code !== raw.code && cid.code !== DAG_PB)) {
    throw new ModelDagError(`"${text}" is not a Shoal model CID (those are CIDv1, sha2-256, raw or dag-pb: "bafkrei..." or "bafybei...")`)
  }
  return cid
}

function binaryCid (bytes: Uint8Array): CID {
  try {
    return CID.decode(bytes)
  } catch (err: any) {
    throw new ModelDagError(`not a CID in binary (${err.message})`)
  }
}

const isSha256v1 = (cid: CID): boolean => cid.version === 1 && cid.multihash.code === sha256.code && cid.multihash.size === 32

/** Decodes a block's CID in binary, as `/shoal/block/1.0.0` carries it: the same rules as `parseModelCid`. */
export function decodeModelCid (bytes: Uint8Array): CID {
  const cid = binaryCid(bytes)
  if (!isSha256v1(cid) || (cid.code !== raw.code && cid.code !== DAG_PB)) {
    throw new ModelDagError(`${cid.toString()} is not a Shoal model CID (those are CIDv1, sha2-256, raw or dag-pb)`)
  }
  return cid
}

/** The codec of a pipeline manifest's CID (docs/protocol.md 8.1): multiformats' json. */
export const PIPELINE_CODEC = 0x0200

/**
 * Decodes the CID of a `/shoal/block/1.0.0` request: a model block's (`decodeModelCid`), or a pipeline
 * manifest's (CIDv1, json, sha2-256), which is served as one block.
 */
export function decodeBlockCid (bytes: Uint8Array): CID {
  const cid = binaryCid(bytes)
  return cid.code === PIPELINE_CODEC && isSha256v1(cid) ? cid : decodeModelCid(bytes)
}

/** True if `text` is a model CID in the canonical (base32) form. */
export function isModelCid (text: string): boolean {
  try {
    return parseModelCid(text).toString() === text
  } catch {
    return false
  }
}
