import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { fromString, toString } from 'uint8arrays'
import { describe, expect, it } from 'vitest'
import { MAX_NAME_RECORD_BYTES, NameService, nameKey, nameRecordSelectors, parseNameRef, signManifest, verifyNameRecord } from '../src/models/names.js'
import type { Manifest, NameDht } from '../src/models/names.js'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const CID = 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'
const OTHER_CID = 'bafkreiaxmgkpa5buowlxbrxigvmhgqpsqurxnavdtrigeolt3wdfbrcocm'

async function publisher (): Promise<{ key: Awaited<ReturnType<typeof generateKeyPair>>, id: string }> {
  const key = await generateKeyPair('Ed25519')
  return { key, id: peerIdFromPrivateKey(key).toString() }
}

describe('model names', () => {
  it('parses name@version and PEERID/name@version, and says what is wrong with anything else', async () => {
    const { id } = await publisher()
    expect(parseNameRef('my-model@1')).toEqual({ publisher: undefined, name: 'my-model', version: '1' })
    expect(parseNameRef(`${id}/ocr.det@2.1-rc1`)).toEqual({ publisher: id, name: 'ocr.det', version: '2.1-rc1' })
    expect(() => parseNameRef('my-model')).toThrow(/write NAME@VERSION/)
    expect(() => parseNameRef('My Model@1')).toThrow(/not a valid model name/)
    expect(() => parseNameRef('m@')).toThrow(/not a valid version/)
    expect(() => parseNameRef('nobody/m@1')).toThrow(/"nobody" \(before the \/\) is not a peer id/)
  })

  it('a signed manifest verifies under its key; tampering, another signer, a mismatched key or an oversize record is refused', async () => {
    const { key, id } = await publisher()
    const manifest: Manifest = { name: 'm', version: '1', cid: CID, publisher: id, issuedAt: 1000 }
    const record = await signManifest(manifest, key)
    const dhtKey = nameKey(id, 'm', '1')
    expect(await verifyNameRecord(dhtKey, record)).toEqual(manifest)

    // the payload changed after signing: another CID
    const outer = JSON.parse(toString(record))
    const forged = { ...manifest, cid: OTHER_CID }
    outer.payload = toString(fromString(JSON.stringify(forged)), 'base64')
    await expect(verifyNameRecord(dhtKey, fromString(JSON.stringify(outer)))).rejects.toThrow(/is not signed by/)
    // signed by someone else, claiming to be the publisher
    const mallory = await publisher()
    await expect(verifyNameRecord(dhtKey, await signManifest(manifest, mallory.key))).rejects.toThrow(/is not signed by/)
    // a valid record under another key (name or publisher differ)
    await expect(verifyNameRecord(nameKey(id, 'm', '2'), record)).rejects.toThrow(/holds a manifest for/)
    await expect(verifyNameRecord(nameKey(mallory.id, 'm', '1'), record)).rejects.toThrow(/holds a manifest for/)
    // garbage and oversize
    await expect(verifyNameRecord(dhtKey, fromString('{"payload": 5'))).rejects.toThrow(/not \{"payload", "signature"\} JSON/)
    await expect(verifyNameRecord(dhtKey, new Uint8Array(MAX_NAME_RECORD_BYTES + 1))).rejects.toThrow(/over the limit/)
    // a manifest whose cid is neither a model's nor a pipeline's, properly signed
    const badCid = await signManifest({ ...manifest, cid: 'hello' }, key)
    await expect(verifyNameRecord(dhtKey, badCid)).rejects.toThrow(/not a model or pipeline CID/)
    // a name may point at a pipeline (a CID of codec json)
    const pipeline = 'bagaaieraiqjw7i2vwntyuekgvulpp2det2kpwt6cd7tx5ayqybqpmhfk76fa'
    expect((await verifyNameRecord(dhtKey, await signManifest({ ...manifest, cid: pipeline }, key))).cid).toBe(pipeline)
  })

  it('of several records for one name, the DHT keeps the one issued last', async () => {
    const { key, id } = await publisher()
    const old = await signManifest({ name: 'm', version: '1', cid: CID, publisher: id, issuedAt: 1000 }, key)
    const newer = await signManifest({ name: 'm', version: '1', cid: OTHER_CID, publisher: id, issuedAt: 2000 }, key)
    expect(nameRecordSelectors['shoal-name'](nameKey(id, 'm', '1'), [old, newer, fromString('junk')])).toBe(1)
    expect(nameRecordSelectors['shoal-name'](nameKey(id, 'm', '1'), [newer, old])).toBe(0)
  })

  it('a lookup that times out says so, instead of saying the name was never published', async () => {
    const me = await publisher()
    const other = await publisher()
    const dataDir = await mkdtemp(join(tmpdir(), 'shoal-names-'))
    const service = (get: NameDht['get']): NameService => new NameService({
      dataDir, privateKey: me.key, peerId: me.id, trusted: [other.id], dht: () => ({ get, put: async function * () {} }) as unknown as NameDht, republishMs: 60_000, timeoutMs: 50, log: () => {}
    })
    // a DHT that never answers, then one that answers "not found"
    const silent = service(async function * (_key, options) {
      await new Promise((_resolve, reject) => options?.signal?.addEventListener('abort', () => reject(options.signal?.reason)))
    } as NameDht['get'])
    await expect(silent.resolve('m@1')).rejects.toThrow(/could not look up m@1 in the DHT \(.*no answer within 50 ms\): the name may exist/)
    const empty = service(async function * () {
      const err = new Error('Best value was not found')
      err.name = 'NotFoundError'
      throw err
    } as NameDht['get'])
    await expect(empty.resolve('m@1')).rejects.toThrow(/no trusted publisher has published m@1/)
  })
})
