import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { serviceDependencies } from '@libp2p/interface'
import type { ComponentLogger, PeerId, PrivateKey } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { fromString as uint8ArrayFromString } from 'uint8arrays/from-string'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import { writePrivateFile } from '../data-dir.js'
import { isPipelineCid } from '@shoal/protocol'
import { isModelCid } from './model-dag.js'

/**
 * Model names: a manifest, signed by its publisher's peer key, says that `name@version` is the model
 * with a given CID. It is stored in the DHT under `/shoal-name/<publisher>/<name>@<version>`, where any
 * node can check it, and resolved only for publishers the resolving node trusts. docs/protocol.md
 * describes the record byte for byte.
 */

/** The DHT key namespace of name records (kad-dht picks validators and selectors by it). */
export const NAME_NAMESPACE = 'shoal-name'
/** A name record is at most this big; a longer one is refused before parsing. */
export const MAX_NAME_RECORD_BYTES = 2048
/** Signatures cover these bytes followed by the payload, so that no other signed message of a peer can pass as a manifest. */
const SIGNING_PREFIX = uint8ArrayFromString('shoal-name-manifest:')

const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/
const VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,31}$/

export class NameError extends Error {
  override name = 'NameError'
}

export interface Manifest {
  name: string
  version: string
  cid: string
  publisher: string
  /** ms since the epoch; of two manifests for one name@version, the later wins. */
  issuedAt: number
}

/** `name@version`, or `<publisher peer id>/name@version`. */
export interface NameRef {
  publisher?: string
  name: string
  version: string
}

/** Parses `name@version` or `PEERID/name@version`; throws NameError saying what is wrong. */
export function parseNameRef (text: string): NameRef {
  const slash = text.lastIndexOf('/')
  const publisher = slash >= 0 ? text.slice(0, slash) : undefined
  const rest = slash >= 0 ? text.slice(slash + 1) : text
  const at = rest.lastIndexOf('@')
  if (at < 0) throw new NameError(`"${text}" is not a model name: write NAME@VERSION, e.g. my-model@1`)
  const name = rest.slice(0, at)
  const version = rest.slice(at + 1)
  if (!NAME_PATTERN.test(name)) throw new NameError(`"${name}" is not a valid model name: 1-64 of a-z 0-9 . _ -, starting with a letter or digit`)
  if (!VERSION_PATTERN.test(version)) throw new NameError(`"${version}" is not a valid version: 1-32 of A-Z a-z 0-9 . _ + -, starting with a letter or digit`)
  if (publisher != null) {
    try {
      peerIdFromString(publisher)
    } catch {
      throw new NameError(`"${publisher}" (before the /) is not a peer id`)
    }
  }
  return { publisher, name, version }
}

/** True if the text looks like a name reference rather than a CID or a file. */
export function looksLikeNameRef (text: string): boolean {
  try {
    parseNameRef(text)
    return true
  } catch {
    return false
  }
}

export function nameKey (publisher: string, name: string, version: string): Uint8Array {
  return uint8ArrayFromString(`/${NAME_NAMESPACE}/${publisher}/${name}@${version}`)
}

/** The record: `{"payload": <base64 of the manifest's JSON>, "signature": <base64>}` in UTF-8. */
export async function signManifest (manifest: Manifest, key: PrivateKey): Promise<Uint8Array> {
  const payload = uint8ArrayFromString(JSON.stringify(manifest))
  const signature = await key.sign(concat(SIGNING_PREFIX, payload))
  return uint8ArrayFromString(JSON.stringify({ payload: uint8ArrayToString(payload, 'base64'), signature: uint8ArrayToString(signature, 'base64') }))
}

/**
 * Checks a record against its DHT key: size, shape, fields, that the manifest names the key's
 * publisher, name and version, and the publisher's signature. Returns the manifest or throws NameError.
 */
export async function verifyNameRecord (key: Uint8Array, record: Uint8Array): Promise<Manifest> {
  if (record.byteLength > MAX_NAME_RECORD_BYTES) throw new NameError(`name record is ${record.byteLength} bytes, over the limit of ${MAX_NAME_RECORD_BYTES}`)
  const parts = uint8ArrayToString(key).split('/')
  if (parts.length !== 4 || parts[0] !== '' || parts[1] !== NAME_NAMESPACE) throw new NameError('name record key is not /shoal-name/<publisher>/<name>@<version>')
  const ref = parseNameRef(`${parts[2]}/${parts[3]}`)
  let outer: any
  let manifest: any
  let payload: Uint8Array
  try {
    outer = JSON.parse(uint8ArrayToString(record))
    payload = uint8ArrayFromString(String(outer.payload), 'base64')
    manifest = JSON.parse(uint8ArrayToString(payload))
  } catch (err: any) {
    throw new NameError(`name record is not {"payload", "signature"} JSON (${err.message})`)
  }
  if (typeof outer.signature !== 'string' || typeof manifest !== 'object' || manifest == null) throw new NameError('name record lacks a signature or a manifest')
  const { name, version, cid, publisher, issuedAt } = manifest
  if (name !== ref.name || version !== ref.version || publisher !== ref.publisher) throw new NameError(`name record for ${parts[2]}/${parts[3]} holds a manifest for ${String(publisher)}/${String(name)}@${String(version)}`)
  if (typeof cid !== 'string' || !(isModelCid(cid) || isPipelineCid(cid))) throw new NameError('name record\'s cid is not a model or pipeline CID')
  if (!Number.isSafeInteger(issuedAt) || issuedAt < 0) throw new NameError('name record\'s issuedAt is not a time')
  const publicKey = peerIdFromString(publisher).publicKey
  if (publicKey == null) throw new NameError(`publisher ${publisher} has no public key in its peer id, so its names cannot be checked`)
  let signature: Uint8Array
  try {
    signature = uint8ArrayFromString(outer.signature, 'base64')
  } catch (err: any) {
    // found by fuzzing: a signature that is not base64 threw the decoder's SyntaxError, not a NameError
    throw new NameError(`name record's signature is not base64 (${err.message})`)
  }
  const ok = await publicKey.verify(concat(SIGNING_PREFIX, payload), signature)
  if (!ok) throw new NameError(`name record for ${name}@${version} is not signed by ${publisher}`)
  return { name, version, cid, publisher, issuedAt }
}

/** Of several valid records for one key, the index of the one issued last (kad-dht selector). */
export function selectNameRecord (records: Array<{ issuedAt: number } | null>): number {
  let best = 0
  records.forEach((r, i) => { if (r != null && (records[best] == null || r.issuedAt > records[best]!.issuedAt)) best = i })
  return best
}

function concat (a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength)
  out.set(a, 0)
  out.set(b, a.byteLength)
  return out
}

/** kad-dht's validators and selectors for name records. */
export const nameRecordValidators = {
  [NAME_NAMESPACE]: async (key: Uint8Array, value: Uint8Array): Promise<void> => { await verifyNameRecord(key, value) }
}
export const nameRecordSelectors = {
  [NAME_NAMESPACE]: (key: Uint8Array, values: Uint8Array[]): number => {
    const parse = (v: Uint8Array): { issuedAt: number } | null => {
      try {
        return JSON.parse(uint8ArrayToString(uint8ArrayFromString(JSON.parse(uint8ArrayToString(v)).payload, 'base64')))
      } catch {
        return null
      }
    }
    return selectNameRecord(values.map(parse))
  }
}

export interface NameDht {
  put: (key: Uint8Array, value: Uint8Array, options: { signal: AbortSignal }) => AsyncIterable<unknown>
  get: (key: Uint8Array, options: { signal: AbortSignal }) => AsyncIterable<any>
}

/** A resolved name. */
export interface Resolved extends Manifest {
  /** Where it came from: this node's own names, or the DHT. */
  source: 'local' | 'dht'
}

/**
 * The names this node published (kept in `<data dir>/names.json`, put in the DHT at start and again
 * every `republishMs`) and resolution of names to CIDs through trusted publishers.
 */
export class NameService {
  readonly [Symbol.toStringTag] = '@shoal/names'
  readonly [serviceDependencies] = ['@libp2p/kad-dht']
  private readonly file: string
  private own: Array<{ manifest: Manifest, record: string }> = []
  private timer?: NodeJS.Timeout

  constructor (private readonly init: {
    dataDir: string
    privateKey: PrivateKey
    peerId: string
    trusted: string[]
    dht: () => NameDht
    republishMs: number
    timeoutMs: number
    log: (format: string, ...args: unknown[]) => void
  }) {
    this.file = join(init.dataDir, 'names.json')
  }

  async start (): Promise<void> {
    try {
      this.own = JSON.parse(await readFile(this.file, 'utf8')).names ?? []
    } catch (err: any) {
      if (err.code !== 'ENOENT') this.init.log('cannot read %s - %s', this.file, err.message)
    }
  }

  /** Once libp2p has started: own names go into the DHT now and every `republishMs`. */
  afterStart (): void {
    const all = (): void => { for (const own of this.own) void this.put(own.manifest, uint8ArrayFromString(own.record, 'base64')) }
    all()
    this.timer = setInterval(all, this.init.republishMs)
    this.timer.unref()
  }

  stop (): void {
    clearInterval(this.timer)
  }

  list (): Manifest[] {
    return this.own.map(o => o.manifest)
  }

  /** Signs `name@version` -> cid with this node's key, keeps it, and puts it in the DHT. */
  async publish (ref: string, cid: string): Promise<Manifest> {
    const { name, version, publisher } = parseNameRef(ref)
    if (publisher != null && publisher !== this.init.peerId) throw new NameError(`this node can only publish names as itself (${this.init.peerId}), not as ${publisher}`)
    const manifest: Manifest = { name, version, cid, publisher: this.init.peerId, issuedAt: Date.now() }
    const record = await signManifest(manifest, this.init.privateKey)
    this.own = [...this.own.filter(o => o.manifest.name !== name || o.manifest.version !== version), { manifest, record: uint8ArrayToString(record, 'base64') }]
    await writePrivateFile(this.file, JSON.stringify({ names: this.own }, null, 2) + '\n')
    void this.put(manifest, record)
    return manifest
  }

  private async put (manifest: Manifest, record: Uint8Array): Promise<void> {
    try {
      for await (const _ of this.init.dht().put(nameKey(manifest.publisher, manifest.name, manifest.version), record, { signal: AbortSignal.timeout(this.init.timeoutMs) })) {}
    } catch (err: any) {
      this.init.log('putting name %s@%s in the DHT failed - %s', manifest.name, manifest.version, err.message)
    }
  }

  /**
   * Resolves `name@version` (or `PEERID/name@version`) to a CID. Own names first; then the DHT, for
   * this node's trusted publishers and those in `alsoTrust`. A name only an untrusted peer signed is
   * never resolved; two trusted publishers that disagree are an error naming both.
   */
  async resolve (text: string, alsoTrust: string[] = []): Promise<Resolved> {
    const ref = parseNameRef(text)
    const trusted = [...new Set([this.init.peerId, ...this.init.trusted, ...alsoTrust])]
    if (ref.publisher != null && !trusted.includes(ref.publisher)) {
      throw new NameError(`${text}: publisher ${ref.publisher} is not trusted by this node; trust it explicitly (--trust ${ref.publisher})`)
    }
    const publishers = ref.publisher != null ? [ref.publisher] : trusted
    if (publishers.includes(this.init.peerId)) {
      const own = this.own.find(o => o.manifest.name === ref.name && o.manifest.version === ref.version)
      if (own != null) return { ...own.manifest, source: 'local' }
    }
    const found: Manifest[] = []
    // why a publisher's lookup ended without a record, when it was not simply absent (a timeout, no DHT peers)
    const failures: string[] = []
    await Promise.all(publishers.filter(p => p !== this.init.peerId).map(async publisher => {
      const key = nameKey(publisher, ref.name, ref.version)
      let best: Manifest | undefined
      try {
        // kad-dht yields each value it meets (checked by the validator); the last issued wins
        for await (const event of this.init.dht().get(key, { signal: AbortSignal.timeout(this.init.timeoutMs) })) {
          if (event.name !== 'VALUE') continue
          const manifest = await verifyNameRecord(key, event.value).catch(() => undefined)
          if (manifest != null && (best == null || manifest.issuedAt > best.issuedAt)) best = manifest
        }
      } catch (err: any) {
        // kad-dht ends a lookup that found nothing with NotFoundError: that is an answer, not a failure
        if (best == null && err?.name !== 'NotFoundError') failures.push(`${publisher}: ${err?.name === 'AbortError' || err?.name === 'TimeoutError' ? `no answer within ${this.init.timeoutMs} ms` : String(err?.message ?? err)}`)
      }
      if (best != null) found.push(best)
    }))
    const cids = new Set(found.map(m => m.cid))
    if (cids.size > 1) throw new NameError(`${text} means different models to different trusted publishers (${found.map(m => `${m.publisher}: ${m.cid}`).join(', ')}); write PEERID/${ref.name}@${ref.version}`)
    if (found.length === 0 && failures.length > 0) {
      throw new NameError(`could not look up ${ref.name}@${ref.version} in the DHT (${failures.join('; ')}): the name may exist; try again once the node has more peers (shoal node status)`)
    }
    if (found.length === 0) {
      throw new NameError(`no trusted publisher has published ${ref.name}@${ref.version}` +
        (trusted.length === 1 ? ' (this node trusts only itself; to accept names another peer signed, give --trust PEERID)' : ` (trusted: ${trusted.join(', ')})`))
    }
    return { ...found[0], source: 'dht' }
  }
}

export interface NameServiceInit {
  dataDir: string
  trusted: string[]
  republishMs: number
  timeoutMs: number
}

export interface NameServiceComponents {
  privateKey: PrivateKey
  peerId: PeerId
  logger: ComponentLogger
  /** kad-dht (the service named `dht`), which holds the signed records. */
  dht: NameDht
}

/** NameService as a libp2p service: its key and the DHT are the node's. */
export function nameService (init: NameServiceInit): (components: NameServiceComponents) => NameService {
  return components => new NameService({
    ...init,
    privateKey: components.privateKey,
    peerId: components.peerId.toString(),
    dht: () => components.dht,
    log: components.logger.forComponent('shoal:names')
  })
}
