import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { FsBlockstore } from 'blockstore-fs'
import { base32upper } from 'multiformats/bases/base32'
import { CID } from 'multiformats/cid'
import { checkModelSize, inspectModel, modelCid } from '@shoal/runtime'
import type { ModelInfo } from '@shoal/runtime'
import { STRAY_BLOCK_SWEEP_MS, STRAY_BLOCK_TTL_MS } from '../constants.js'
import { ModelInUseError, ModelNotFoundError, StorageFullError } from '../errors.js'
import { assembleModel, isModelCid, parseModelCid } from './model-dag.js'

/**
 * Where a block's file lies: blockstore-fs's default layout (its NextToLast strategy, which the package
 * does not export), spelled out so that the store can read a block's file itself. Data dirs written
 * before keep working: the layout is the same.
 */
const BLOCK_LAYOUT = {
  extension: '.data',
  encode (cid: CID): { dir: string, file: string } {
    const name = base32upper.encoder.encode(cid.multihash.bytes)
    return { dir: name.slice(-2), file: `${name}.data` }
  },
  decode (path: string): CID {
    return CID.decode(base32upper.decoder.decode(basename(path, '.data')))
  }
}

/** A model in the store, as `model ls` and GET /v1/models show it. */
export interface ModelEntry extends ModelInfo {
  /** `name@version` if this node named the model when adding it. */
  name: string | null
  pinned: boolean
  addedAt: number
  lastUsedAt: number
  /** Jobs, pieces or fetches using it now: a model in use is never evicted. */
  inUse: number
}

interface IndexEntry extends Omit<ModelEntry, 'inUse'> {
  blocks: string[]
}

export interface ModelStoreInit {
  dataDir: string
  maxModelBytes: number
  /** Storage quota for complete models; least recently used unpinned models are evicted past it. */
  maxStorageBytes: number
  /** Called when the set of models held changes (the capacity ad lists them). */
  onChange?: () => void
  /** Called for each model removed or evicted (the node stops announcing it). */
  onRemoved?: (cid: string) => void
  /**
   * Decodes and checks a model before it is indexed (default: `inspectModel`, in this process; a
   * node inspects in a child process of its own, `inspectModelInChild`).
   */
  inspect?: (bytes: Uint8Array, options: { maxBytes: number, cid: string }) => Promise<ModelInfo>
}

/**
 * The models a node holds: blocks in `<data dir>/models/blocks` (a filesystem blockstore, which the
 * swarm serves from and fetches into), and an index of complete models in `models/index.json`. A model
 * is in the index only once every block is here and its inspection (`inspectModel`) accepted the
 * whole file. Blocks of a fetch cut short stay, so that the next fetch resumes from them.
 */
export class ModelStore {
  readonly blockstore: FsBlockstore
  private readonly dir: string
  private readonly blocksDir: string
  private readonly init: ModelStoreInit
  private readonly entries = new Map<string, IndexEntry>()
  private readonly using = new Map<string, number>()
  private saving: Promise<void> = Promise.resolve()
  /** Bytes of blocks no indexed model uses (fetches cut short), as of the last sweep. */
  private strays = 0
  private sweeper?: ReturnType<typeof setInterval>
  /** The inspection under way: models are inspected one after another. */
  private inspecting: Promise<unknown> = Promise.resolve()

  constructor (init: ModelStoreInit) {
    this.init = init
    this.dir = join(init.dataDir, 'models')
    this.blocksDir = join(this.dir, 'blocks')
    this.blockstore = new FsBlockstore(this.blocksDir, { shardingStrategy: BLOCK_LAYOUT })
  }

  get maxModelBytes (): number {
    return this.init.maxModelBytes
  }

  get maxStorageBytes (): number {
    return this.init.maxStorageBytes
  }

  async start (): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    await this.blockstore.open()
    try {
      const index = JSON.parse(await readFile(join(this.dir, 'index.json'), 'utf8'))
      for (const entry of index.models ?? []) if (isModelCid(entry?.cid)) this.entries.set(entry.cid, entry)
    } catch (err: any) {
      if (err.code !== 'ENOENT') throw new Error(`cannot read the model index ${join(this.dir, 'index.json')}: ${err.message} (move it away to start with an empty store; the blocks stay)`)
    }
    // the single-file layout of Shoal 0.1 (<cid>.onnx next to <cid>.json): move each model into blocks
    for (const file of await readdir(this.dir)) {
      if (!file.endsWith('.onnx')) continue
      // a file that cannot be added stays where it is (it was deleted all the same, once)
      const added = await this.add(await readFile(join(this.dir, file))).then(() => true, () => false)
      if (!added) continue
      await rm(join(this.dir, file), { force: true })
      await rm(join(this.dir, file.replace(/\.onnx$/, '.json')), { force: true })
    }
    await this.sweepStrays()
    this.sweeper = setInterval(() => { void this.sweepStrays().catch(() => {}) }, STRAY_BLOCK_SWEEP_MS)
    this.sweeper.unref()
  }

  stop (): void {
    clearInterval(this.sweeper)
  }

  /**
   * Blocks on disk that no indexed model uses are those of fetches cut short, kept so that the next
   * fetch resumes: they count against the storage quota, and those not written for `olderThanMs` are
   * deleted (pieces naming models whose last block never came left such blocks behind, past any quota
   * and across restarts). Returns the bytes deleted and kept.
   */
  async sweepStrays (olderThanMs = STRAY_BLOCK_TTL_MS, now = Date.now()): Promise<{ deleted: number, kept: number }> {
    const indexed = new Set<string>()
    for (const entry of this.entries.values()) for (const b of entry.blocks) indexed.add(BLOCK_LAYOUT.encode(CID.parse(b)).file)
    let deleted = 0
    let kept = 0
    // a fetch under way (a model in use that is not in the index yet) may be resuming from old blocks:
    // nothing is deleted while one runs
    const fetching = [...this.using].some(([cid, n]) => n > 0 && !this.entries.has(cid))
    for (const dir of await readdir(this.blocksDir).catch(() => [])) {
      for (const file of await readdir(join(this.blocksDir, dir)).catch(() => [])) {
        if (!file.endsWith(BLOCK_LAYOUT.extension) || indexed.has(file)) continue
        const path = join(this.blocksDir, dir, file)
        const info = await stat(path).catch(() => undefined)
        if (info == null) continue
        if (!fetching && now - info.mtimeMs >= olderThanMs) {
          await rm(path, { force: true })
          deleted += info.size
        } else {
          kept += info.size
        }
      }
    }
    this.strays = kept
    return { deleted, kept }
  }

  /** Checks a model and stores it; returns its entry. Adding the same bytes twice only updates the name or pin. */
  async add (bytes: Uint8Array, options: { name?: string, pin?: boolean } = {}): Promise<ModelEntry> {
    checkModelSize(bytes.byteLength, this.init.maxModelBytes)
    // cutting the file into blocks computes its CID; the blocks go to disk as they are cut
    const blocks: string[] = []
    const cid = await modelCid(bytes, async (block, data) => {
      blocks.push(block.toString())
      await this.blockstore.put(block, data)
    })
    const entry = this.entries.get(cid) ?? await this.index(cid, bytes, blocks)
    if (options.name != null) entry.name = options.name
    if (options.pin != null) entry.pinned = options.pin
    await this.save()
    return this.view(entry)
  }

  /**
   * Turns blocks already in the blockstore (a finished fetch) into a stored model: reassembles the file,
   * checks it (`init.inspect`), and indexes it. Refused bytes are removed.
   */
  async complete (cid: string): Promise<ModelEntry> {
    const existing = this.entries.get(cid)
    if (existing != null) return this.view(existing)
    const { bytes, blocks } = await assembleModel(parseModelCid(cid), async c => await this.readBlock(c), this.init.maxModelBytes)
    const entry = await this.index(cid, bytes, blocks.map(String))
    await this.save()
    // its blocks were counted as a fetch's strays until now (the next sweep counts exactly)
    this.strays = Math.max(0, this.strays - bytes.byteLength)
    return this.view(entry)
  }

  /**
   * Indexes a model whose blocks are on disk: checks the file (its CID is known: no second hashing) and
   * makes room for it in the quota; if either fails, its blocks are deleted. The caller saves.
   */
  private async index (cid: string, bytes: Uint8Array, blocks: string[]): Promise<IndexEntry> {
    let info: ModelInfo
    try {
      // one at a time: an inspecting child may take the whole memory limit, and fetches finish together
      const turn = this.inspecting.then(async () => await (this.init.inspect ?? inspectModel)(bytes, { maxBytes: this.init.maxModelBytes, cid }))
      this.inspecting = turn.catch(() => {})
      info = await turn
      await this.makeRoom(bytes.byteLength)
    } catch (err: any) {
      // refused, or no room: the blocks go; the machine's fault (no process to inspect with, a machine
      // too busy to judge the model): they stay, and a later fetch or add completes from them
      if (!(err?.name === 'SandboxError' && err.kind === 'unavailable')) await this.deleteBlocks(blocks)
      throw err
    }
    const now = Date.now()
    const entry: IndexEntry = { ...info, name: null, pinned: false, addedAt: now, lastUsedAt: now, blocks }
    this.entries.set(cid, entry)
    return entry
  }

  has (cid: string): boolean {
    return this.entries.has(cid)
  }

  info (cid: string): ModelEntry | undefined {
    const entry = this.entries.get(cid)
    return entry == null ? undefined : this.view(entry)
  }

  list (): ModelEntry[] {
    return [...this.entries.values()].map(e => this.view(e)).sort((a, b) => b.lastUsedAt - a.lastUsedAt)
  }

  /** Bytes of complete models held. */
  usedBytes (): number {
    let total = 0
    for (const entry of this.entries.values()) total += entry.bytes
    return total
  }

  /** The model file, reassembled from its blocks. */
  async bytes (cid: string): Promise<Uint8Array> {
    const entry = this.entries.get(cid)
    if (entry == null) throw new ModelNotFoundError(`model ${cid} is not in this node's store`)
    entry.lastUsedAt = Date.now()
    const { bytes } = await assembleModel(CID.parse(cid), async c => await this.readBlock(c), this.init.maxModelBytes)
    return bytes
  }

  /**
   * A block's bytes, in one read of its file: blockstore-fs's `get` streams it in 64 KiB chunks, which
   * made assembling a 100 MB model take 330-450 ms against 150-220 (this path serves bitswap too).
   */
  async readBlock (cid: CID): Promise<Uint8Array> {
    const block = await this.heldBlock(cid)
    if (block != null) return block
    const missing = new Error(`block ${cid.toString()} is not in the store`)
    missing.name = 'NotFoundError'
    throw missing
  }

  /** A block's bytes if the store has it, else null: one read, no separate look for the file. */
  async heldBlock (cid: CID): Promise<Uint8Array | null> {
    const { dir, file } = BLOCK_LAYOUT.encode(cid)
    try {
      return await readFile(join(this.blocksDir, dir, file))
    } catch (err: any) {
      if (err.code !== 'ENOENT') throw err
      return null
    }
  }

  async hasBlock (cid: CID): Promise<boolean> {
    return await this.blockstore.has(cid)
  }

  /**
   * Marks a model in use until the returned function is called: jobs, pieces and fetches hold their
   * model this way, and eviction passes it by. Also counts as a use for least-recently-used eviction.
   */
  use (cid: string): () => void {
    this.using.set(cid, (this.using.get(cid) ?? 0) + 1)
    const entry = this.entries.get(cid)
    if (entry != null) entry.lastUsedAt = Date.now()
    let released = false
    return () => {
      if (released) return
      released = true
      const n = (this.using.get(cid) ?? 1) - 1
      if (n <= 0) this.using.delete(cid)
      else this.using.set(cid, n)
    }
  }

  async pin (cid: string, pinned: boolean): Promise<ModelEntry> {
    const entry = this.entries.get(cid)
    if (entry == null) throw new ModelNotFoundError(`model ${cid} is not in this node's store`)
    entry.pinned = pinned
    await this.save()
    return this.view(entry)
  }

  /** Removes a model and the blocks no other model shares. Refuses a model in use. */
  async remove (cid: string): Promise<void> {
    const entry = this.entries.get(cid)
    if (entry == null) throw new ModelNotFoundError(`model ${cid} is not in this node's store`)
    if ((this.using.get(cid) ?? 0) > 0) throw new ModelInUseError(`model ${cid} is in use (a job, piece or fetch); remove it when that is done`)
    await this.drop(entry)
  }

  /**
   * Throws StorageFullError if a model of `bytes` could not fit even after evicting every model that may
   * be evicted; evicts nothing (a fetch checks this from the root block, and evicts only once the model
   * is complete, so that a root that lies about its size costs no one their models).
   */
  checkRoom (bytes: number): void {
    const quota = this.init.maxStorageBytes
    if (bytes > quota) throw new StorageFullError(`a model of ${bytes} bytes does not fit in this node's storage quota of ${quota} bytes (--max-storage)`)
    // blocks of fetches cut short count too, until they are swept
    let kept = this.strays
    for (const e of this.entries.values()) if (e.pinned || (this.using.get(e.cid) ?? 0) > 0) kept += e.bytes
    if (kept + bytes > quota) {
      throw this.fullError(kept, bytes)
    }
  }

  /**
   * Evicts least recently used models, never a pinned one or one in use, until `bytes` more fit in the
   * quota. Throws StorageFullError when they cannot.
   */
  async makeRoom (bytes: number): Promise<void> {
    const quota = this.init.maxStorageBytes
    this.checkRoom(bytes)
    const candidates = [...this.entries.values()]
      .filter(e => !e.pinned && (this.using.get(e.cid) ?? 0) === 0)
      .sort((a, b) => a.lastUsedAt - b.lastUsedAt)
    while (this.usedBytes() + this.strays + bytes > quota) {
      const victim = candidates.shift()
      if (victim == null) {
        throw this.fullError(this.usedBytes() + this.strays, bytes)
      }
      await this.drop(victim)
    }
  }

  private fullError (kept: number, bytes: number): StorageFullError {
    return new StorageFullError(`storage quota of ${this.init.maxStorageBytes} bytes (--max-storage) is full of pinned or in-use models and blocks of unfinished fetches (${kept} bytes; ${this.strays} of them unfinished fetches, deleted after an hour); a model of ${bytes} bytes does not fit. Unpin or remove one (shoal model ls)`)
  }

  private async drop (entry: IndexEntry): Promise<void> {
    this.entries.delete(entry.cid)
    await this.save()
    await this.deleteBlocks(entry.blocks)
    this.init.onRemoved?.(entry.cid)
  }

  /** Deletes blocks that no indexed model uses. */
  private async deleteBlocks (blocks: string[]): Promise<void> {
    const kept = new Set<string>()
    for (const other of this.entries.values()) for (const b of other.blocks) kept.add(b)
    for (const b of blocks) if (!kept.has(b)) await this.blockstore.delete(CID.parse(b)).catch(() => {})
  }

  private view (entry: IndexEntry): ModelEntry {
    const { blocks, ...rest } = entry
    return { ...rest, inUse: this.using.get(entry.cid) ?? 0 }
  }

  /** Writes the index (atomically, one write at a time) and tells the node the set changed. */
  private async save (): Promise<void> {
    const write = async (): Promise<void> => {
      const file = join(this.dir, 'index.json')
      await writeFile(`${file}.tmp`, JSON.stringify({ version: 1, models: [...this.entries.values()] }) + '\n')
      await rename(`${file}.tmp`, file)
    }
    this.saving = this.saving.then(write, write)
    await this.saving
    this.init.onChange?.()
  }
}
