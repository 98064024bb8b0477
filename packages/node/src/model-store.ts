import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { inspectModel, modelCid } from '@shoal/runtime'
import type { ModelInfo } from '@shoal/runtime'

const CID_PATTERN = /^bafkrei[a-z2-7]{52}$/

/**
 * Models held by this node, in `<data dir>/models/<cid>.onnx` with their inspected description in
 * `<cid>.json`. Every model is checked by `inspectModel` before it is stored, and stored under the CID
 * of its bytes, so a file's name always says what it holds. (The swarm store of a later issue replaces
 * the single-file layout; the interface stays.)
 */
export class ModelStore {
  private readonly dir: string
  private readonly maxModelBytes: number
  private readonly infos = new Map<string, ModelInfo>()

  constructor (dataDir: string, maxModelBytes: number) {
    this.dir = join(dataDir, 'models')
    this.maxModelBytes = maxModelBytes
  }

  async start (): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    for (const file of await readdir(this.dir)) {
      const cid = file.replace(/\.json$/, '')
      if (!file.endsWith('.json') || !CID_PATTERN.test(cid)) continue
      try {
        this.infos.set(cid, JSON.parse(await readFile(join(this.dir, file), 'utf8')))
      } catch {}
    }
  }

  /** Checks and stores a model; returns its description. Adding the same bytes twice is a no-op. */
  async add (bytes: Uint8Array): Promise<ModelInfo> {
    const info = await inspectModel(bytes, { maxBytes: this.maxModelBytes })
    if (!this.infos.has(info.cid)) {
      const file = join(this.dir, `${info.cid}.onnx`)
      await writeFile(`${file}.tmp`, bytes)
      await rename(`${file}.tmp`, file)
      await writeFile(join(this.dir, `${info.cid}.json`), JSON.stringify(info) + '\n')
      this.infos.set(info.cid, info)
    }
    return info
  }

  /** Stores bytes fetched from a peer only if they are what `cid` names. */
  async addVerified (cid: string, bytes: Uint8Array): Promise<ModelInfo> {
    const actual = await modelCid(bytes)
    if (actual !== cid) throw new Error(`model bytes do not match CID ${cid} (they hash to ${actual})`)
    return await this.add(bytes)
  }

  has (cid: string): boolean {
    return this.infos.has(cid)
  }

  info (cid: string): ModelInfo | undefined {
    return this.infos.get(cid)
  }

  list (): ModelInfo[] {
    return [...this.infos.values()]
  }

  async bytes (cid: string): Promise<Uint8Array> {
    if (!this.infos.has(cid)) throw new Error(`model ${cid} is not in this node's store`)
    return await readFile(join(this.dir, `${cid}.onnx`))
  }

  async remove (cid: string): Promise<void> {
    this.infos.delete(cid)
    await rm(join(this.dir, `${cid}.onnx`), { force: true })
    await rm(join(this.dir, `${cid}.json`), { force: true })
  }
}
