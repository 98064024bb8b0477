import { describe, expect, it } from 'vitest'
import { generateSwarmKey, parseSwarmKey, swarmKeyFile, swarmKeyFingerprint, SwarmKeyError } from '../src/mesh/swarm-key.js'

describe('swarm keys (private meshes)', () => {
  it('a generated key reads back as 32 bytes, in the file format pnet reads, and keys differ', () => {
    const a = parseSwarmKey(generateSwarmKey())
    const b = parseSwarmKey(generateSwarmKey())
    expect(a).toHaveLength(32)
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(false)
    expect(parseSwarmKey(new TextDecoder().decode(swarmKeyFile(a)))).toEqual(a)
    // what go-ipfs writes, with Windows line ends and upper-case hex, reads too
    const hex = Buffer.from(a).toString('hex').toUpperCase()
    expect(parseSwarmKey(`/key/swarm/psk/1.0.0/\r\n/base16/\r\n${hex}\r\n`)).toEqual(a)
  })

  it('a fingerprint names a key in 8 hex digits, the same for the same key', () => {
    const key = parseSwarmKey(generateSwarmKey())
    expect(swarmKeyFingerprint(key)).toMatch(/^[0-9a-f]{8}$/)
    expect(swarmKeyFingerprint(key)).toBe(swarmKeyFingerprint(Uint8Array.from(key)))
    expect(swarmKeyFingerprint(parseSwarmKey(generateSwarmKey()))).not.toBe(swarmKeyFingerprint(key))
  })

  it('anything else is refused, saying which line is wrong', () => {
    const key = 'ab'.repeat(32)
    const bad: Array<[string, RegExp]> = [
      ['', /first line must be \/key\/swarm\/psk\/1\.0\.0\//],
      [`/key/swarm/psk/1.0.0/\n/base64/\n${key}`, /second line must be \/base16\//],
      ['/key/swarm/psk/1.0.0/\n/base16/\nabcd', /third line must be the key, 64 hexadecimal digits/],
      [`/key/swarm/psk/1.0.0/\n/base16/\n${key}\nmore`, /third line must be the key/]
    ]
    for (const [text, message] of bad) {
      expect(() => parseSwarmKey(text)).toThrow(SwarmKeyError)
      expect(() => parseSwarmKey(text)).toThrow(message)
    }
  })
})
