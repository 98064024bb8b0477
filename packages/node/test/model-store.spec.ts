import { mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildCalibrationModel } from '@shoal/runtime/calibration-model'
import { describe, expect, it } from 'vitest'
import { FsBlockstore } from 'blockstore-fs'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { inspectModel, ModelRejectedError, SandboxError } from '@shoal/runtime'
import { ModelStore } from '../src/models/model-store.js'

/** Distinct small valid models: the calibration model at different widths. */
const model = (width: number): Uint8Array => buildCalibrationModel({ batch: 1, width, layers: 1 })

async function store (maxStorageBytes: number, maxModelBytes = 1 << 30): Promise<ModelStore> {
  const s = new ModelStore({ dataDir: await mkdtemp(join(tmpdir(), 'shoal-store-')), maxModelBytes, maxStorageBytes })
  await s.start()
  return s
}

async function blockFiles (s: ModelStore): Promise<string[]> {
  const files = await readdir(join((s as any).dir, 'blocks'), { recursive: true, withFileTypes: true })
  return files.filter(f => f.isFile()).map(f => join(f.parentPath, f.name)).sort()
}

describe('model store', () => {
  it('reads blocks where blockstore-fs\'s own default layout puts them (data dirs written before stay readable)', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'shoal-store-'))
    const plain = new FsBlockstore(join(dataDir, 'models', 'blocks'))
    await plain.open()
    const bytes = new TextEncoder().encode('a block written by an unmodified FsBlockstore')
    const cid = CID.createV1(raw.code, await sha256.digest(bytes))
    await plain.put(cid, bytes)
    const s = new ModelStore({ dataDir, maxModelBytes: 1 << 30, maxStorageBytes: 1 << 30 })
    await s.start()
    expect(new TextDecoder().decode(await s.readBlock(cid))).toBe('a block written by an unmodified FsBlockstore')
    const absent = CID.createV1(raw.code, await sha256.digest(new Uint8Array(1)))
    await expect(s.readBlock(absent)).rejects.toMatchObject({ name: 'NotFoundError' })
  })

  it('stores a model as blocks and gives back the same bytes; survives a restart', async () => {
    const bytes = model(64)
    const s = await store(1 << 30)
    const entry = await s.add(bytes, { name: 'm@1' })
    expect(entry).toMatchObject({ bytes: bytes.byteLength, name: 'm@1', pinned: false, inUse: 0 })
    expect(Buffer.from(await s.bytes(entry.cid)).equals(Buffer.from(bytes))).toBe(true)
    const again = new ModelStore({ dataDir: join((s as any).dir, '..'), maxModelBytes: 1 << 30, maxStorageBytes: 1 << 30 })
    await again.start()
    expect(again.info(entry.cid)).toMatchObject({ name: 'm@1' })
    expect(Buffer.from(await again.bytes(entry.cid)).equals(Buffer.from(bytes))).toBe(true)
  })

  it('evicts the least recently used unpinned model past the quota, never a pinned one or one in use', async () => {
    const [a, b, c, d] = [model(40), model(50), model(42), model(43)]
    // all four do not fit; any three with c or d left out do
    const quota = a.byteLength + b.byteLength + Math.max(c.byteLength, d.byteLength)
    const s = await store(quota)
    const ea = await s.add(a, { pin: true })
    const eb = await s.add(b)
    const ec = await s.add(c)
    const release = s.use(eb.cid) // b is older than c, but in use
    await s.add(d)
    // a pinned, b in use: c, the least recently used of the rest, went
    expect(s.has(ea.cid)).toBe(true)
    expect(s.has(eb.cid)).toBe(true)
    expect(s.has(ec.cid)).toBe(false)
    release()
    await expect(s.add(c)).resolves.toMatchObject({ cid: ec.cid })
    // now b was the least recently used evictable one
    expect(s.has(eb.cid)).toBe(false)
    expect(s.has(ea.cid)).toBe(true)
  })

  it('refuses, with a clear error, a model that only fits by evicting pinned or in-use ones', async () => {
    const [a, b] = [model(41), model(40)]
    const s = await store(a.byteLength + 10)
    await s.add(a, { pin: true })
    const before = await blockFiles(s)
    await expect(s.add(b)).rejects.toThrow(/storage quota of \d+ bytes \(--max-storage\) is full of pinned or in-use models/)
    expect(await blockFiles(s)).toEqual(before) // b's blocks went again
    // the check a fetch makes from the root block says the same, and evicts nothing
    expect(() => s.checkRoom(b.byteLength)).toThrow(/is full of pinned or in-use models/)
    await s.pin(s.list()[0].cid, false)
    expect(() => s.checkRoom(b.byteLength)).not.toThrow()
    expect(s.list()).toHaveLength(1)
    await expect(s.add(model(500))).rejects.toThrow(/does not fit in this node's storage quota/)
  })

  it('removes a model and its blocks, but refuses while it is in use', async () => {
    const s = await store(1 << 30)
    const e = await s.add(model(64))
    const release = s.use(e.cid)
    await expect(s.remove(e.cid)).rejects.toThrow(/is in use/)
    release()
    await s.remove(e.cid)
    expect(s.has(e.cid)).toBe(false)
    expect(await blockFiles(s)).toEqual([])
  })

  it('refuses a model over the size limit, or one that is not ONNX, leaving no blocks behind', async () => {
    const s = await store(1 << 30, 1000)
    await expect(s.add(model(64))).rejects.toThrow(/over the limit of 1000/)
    await expect(s.add(new TextEncoder().encode('not a model'))).rejects.toThrow(/not an ONNX model/)
    expect(await blockFiles(s)).toEqual([])
  })

  it('keeps the blocks when the machine, not the model, failed the inspection, and completes from them later', async () => {
    let machineFails = true
    const s = new ModelStore({
      dataDir: await mkdtemp(join(tmpdir(), 'shoal-store-')),
      maxModelBytes: 1 << 30,
      maxStorageBytes: 1 << 30,
      inspect: async (bytes, options) => {
        if (machineFails) throw new SandboxError('unavailable', 'could not start a process to inspect the model (EAGAIN)')
        return await inspectModel(bytes, options)
      }
    })
    await s.start()
    const bytes = model(600) // 1.4 MB: a root and two leaves
    await expect(s.add(bytes)).rejects.toThrow(/EAGAIN/)
    const blocks = await blockFiles(s)
    expect(blocks.length).toBe(3)
    expect(s.list()).toEqual([])
    // once processes can start again, the same blocks make the model
    machineFails = false
    const cid = (await s.add(bytes)).cid
    expect(await blockFiles(s)).toEqual(blocks)
    expect(Buffer.from(await s.bytes(cid)).equals(Buffer.from(bytes))).toBe(true)
    // a refusal still takes its blocks away
    const refusing = new ModelStore({ dataDir: await mkdtemp(join(tmpdir(), 'shoal-store-')), maxModelBytes: 1 << 30, maxStorageBytes: 1 << 30, inspect: async () => { throw new ModelRejectedError('too-complex', 'too deep') } })
    await refusing.start()
    await expect(refusing.add(bytes)).rejects.toThrow(/too deep/)
    expect(await blockFiles(refusing)).toEqual([])
    s.stop()
    refusing.stop()
  })

  it('counts blocks of unfinished fetches against the quota, and deletes those an hour old', async () => {
    const s = await store(100_000)
    const kept = model(8)
    await s.add(kept)
    // 60 000 bytes of a fetch cut short: blocks in the blockstore, no model in the index
    const stray = async (seed: number): Promise<void> => {
      const bytes = new Uint8Array(30_000).fill(seed)
      await s.blockstore.put(CID.createV1(raw.code, await sha256.digest(bytes)), bytes)
    }
    await stray(1)
    await stray(2)
    const swept = await s.sweepStrays()
    expect(swept).toEqual({ deleted: 0, kept: 60_000 })
    // the quota holds the model and the strays: a model of 50 000 bytes no longer fits
    expect(() => s.checkRoom(50_000)).toThrow(/unfinished fetches.*60000 of them/)
    // an hour later they are gone, the indexed model's blocks untouched
    expect(await s.sweepStrays(60 * 60_000, Date.now() + 60 * 60_000 + 1)).toEqual({ deleted: 60_000, kept: 0 })
    expect(() => s.checkRoom(50_000)).not.toThrow()
    expect(Buffer.from(await s.bytes(s.list()[0].cid)).equals(Buffer.from(kept))).toBe(true)
    s.stop()
  })

  it('keeps an old single-file model it cannot add instead of deleting it', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'shoal-store-'))
    await mkdir(join(dataDir, 'models'), { recursive: true })
    await writeFile(join(dataDir, 'models', 'broken.onnx'), 'not a model')
    await writeFile(join(dataDir, 'models', 'good.onnx'), model(4))
    const s = new ModelStore({ dataDir, maxModelBytes: 1 << 30, maxStorageBytes: 1 << 30 })
    await s.start()
    s.stop()
    expect(s.list()).toHaveLength(1)
    expect((await readdir(join(dataDir, 'models'))).filter(f => f.endsWith('.onnx'))).toEqual(['broken.onnx'])
  })
})
