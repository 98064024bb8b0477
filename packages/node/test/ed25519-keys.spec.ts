import { generateKeyPair } from '@libp2p/crypto/keys'
import { describe, expect, it } from 'vitest'
import { PublicKeyCache, signerFor } from '../src/pieces/ed25519-keys.js'

describe('Ed25519 with kept key objects', () => {
  const payload = new TextEncoder().encode('shoal-answer-commitment:some bytes')

  it('signs the same bytes as libp2p, and verifies what libp2p signed; a tampered payload, another key or a bad length fail', async () => {
    const key = await generateKeyPair('Ed25519')
    const other = await generateKeyPair('Ed25519')
    const mine = await signerFor(key)(payload)
    expect(Buffer.from(mine).equals(Buffer.from(await key.sign(payload)))).toBe(true)
    const keys = new PublicKeyCache()
    expect(await keys.verify(key.publicKey, payload, mine)).toBe(true)
    expect(await key.publicKey.verify(payload, mine)).toBe(true)
    const tampered = Uint8Array.from(payload)
    tampered[0] ^= 1
    expect(await keys.verify(key.publicKey, tampered, mine)).toBe(false)
    expect(await keys.verify(other.publicKey, payload, mine)).toBe(false)
    expect(await keys.verify(key.publicKey, payload, mine.subarray(0, 63))).toBe(false)
    expect(await keys.verify(key.publicKey, payload, new Uint8Array(64))).toBe(false)
  })

  it('keeps at most its bound of keys, the least recently used dropped first', async () => {
    const keys = new PublicKeyCache(3)
    const pairs = await Promise.all(Array.from({ length: 5 }, async () => await generateKeyPair('Ed25519')))
    for (const k of pairs) expect(await keys.verify(k.publicKey, payload, await k.sign(payload))).toBe(true)
    expect(keys.size).toBe(3)
  })

  it('other key types sign and verify through libp2p', async () => {
    const key = await generateKeyPair('secp256k1')
    const signature = await signerFor(key)(payload)
    expect(await new PublicKeyCache().verify(key.publicKey, payload, signature)).toBe(true)
  })
})
