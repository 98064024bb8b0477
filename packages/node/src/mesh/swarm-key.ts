import { createHash, randomBytes } from 'node:crypto'

/**
 * A private mesh's pre-shared key (libp2p's pnet, docs/protocol.md 1): the file format go-ipfs and
 * js-libp2p share, three lines: `/key/swarm/psk/1.0.0/`, `/base16/`, 64 hexadecimal digits (32 bytes).
 */
export const SWARM_KEY_HEADER = '/key/swarm/psk/1.0.0/'

export class SwarmKeyError extends Error {
  override name = 'SwarmKeyError'
}

/** A new key, as a file's text. */
export function generateSwarmKey (): string {
  return `${SWARM_KEY_HEADER}\n/base16/\n${randomBytes(32).toString('hex')}\n`
}

/**
 * The key's 32 bytes from a key file's text, or a SwarmKeyError saying what is wrong with it (only the
 * base16 encoding is read: the one every implementation writes).
 */
export function parseSwarmKey (text: string): Uint8Array {
  const lines = text.split(/\r?\n/).map(l => l.trim()).filter(l => l !== '')
  if (lines[0] !== SWARM_KEY_HEADER) throw new SwarmKeyError(`not a swarm key: its first line must be ${SWARM_KEY_HEADER} (make one with shoal key generate)`)
  if (lines[1] !== '/base16/') throw new SwarmKeyError(`not a swarm key: its second line must be /base16/, not ${(lines[1] ?? '').slice(0, 40)}`)
  if (lines.length !== 3 || !/^[0-9a-fA-F]{64}$/.test(lines[2])) throw new SwarmKeyError('not a swarm key: its third line must be the key, 64 hexadecimal digits')
  return Uint8Array.from(Buffer.from(lines[2], 'hex'))
}

/** The key file's text as pnet reads it (header, encoding, key), from the key's bytes. */
export function swarmKeyFile (key: Uint8Array): Uint8Array {
  return new TextEncoder().encode(`${SWARM_KEY_HEADER}\n/base16/\n${Buffer.from(key).toString('hex')}`)
}

/**
 * A short public name of a key (the first 8 hex digits of sha2-256 over "shoal-swarm-key:" and the
 * key): shown by `node status`, and part of the mDNS service name, so that nodes of one private mesh
 * find each other on a LAN and no other node sees them. It does not reveal the key.
 */
export function swarmKeyFingerprint (key: Uint8Array): string {
  return createHash('sha256').update('shoal-swarm-key:').update(key).digest('hex').slice(0, 8)
}
