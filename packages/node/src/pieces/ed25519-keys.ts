import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import type { PrivateKey, PublicKey } from '@libp2p/interface'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'

/** Public keys whose key objects are kept (the least recently used dropped first). */
const MAX_CACHED_KEYS = 256

const b64url = (bytes: Uint8Array): string => uint8ArrayToString(bytes, 'base64url')

/**
 * Signs with this node's key, its key object made once. libp2p's Ed25519 makes one per signature from
 * the raw bytes, which on a request of a tiny model was a tenth of its time through the mesh. Ed25519
 * signatures are deterministic (RFC 8032): the bytes are the same as libp2p's. Other key types sign
 * through libp2p.
 */
export function signerFor (key: PrivateKey): (payload: Uint8Array) => Promise<Uint8Array> {
  if (key.type !== 'Ed25519') return async payload => await key.sign(payload)
  const raw = key.raw
  const object = createPrivateKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', d: b64url(raw.subarray(0, 32)), x: b64url(raw.subarray(32, 64)) } })
  return async payload => new Uint8Array(sign(null, payload, object))
}

/**
 * Verifies peers' Ed25519 signatures with key objects kept per key (bounded), for the same reason;
 * other key types verify through libp2p.
 */
export class PublicKeyCache {
  private readonly keys = new Map<string, KeyObject>()
  private readonly max: number

  constructor (max = MAX_CACHED_KEYS) {
    this.max = max
  }

  get size (): number {
    return this.keys.size
  }

  async verify (key: PublicKey, payload: Uint8Array, signature: Uint8Array): Promise<boolean> {
    if (key.type !== 'Ed25519') return await key.verify(payload, signature)
    return this.verifyEd25519(key, payload, signature)
  }

  /** `verify` of an Ed25519 key, at once. */
  verifyEd25519 (key: PublicKey & { type: 'Ed25519' }, payload: Uint8Array, signature: Uint8Array): boolean {
    if (signature.byteLength !== 64) return false
    const id = b64url(key.raw)
    let object = this.keys.get(id)
    if (object == null) {
      object = createPublicKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', x: id } })
      while (this.keys.size >= this.max) this.keys.delete(this.keys.keys().next().value as string)
    } else {
      this.keys.delete(id)
    }
    this.keys.set(id, object)
    return verify(null, payload, object, signature)
  }
}
