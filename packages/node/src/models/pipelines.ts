import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { decodePipelineManifest, isPipelineCid, PIPELINE_FORMAT, pipelineManifestCid } from '@shoal/protocol'
import type { PipelineManifest } from '@shoal/protocol'
import type { ModelInfo, SplitResult } from '@shoal/runtime'

export class PipelineError extends Error {
  override name = 'PipelineError'
}

/** A pipeline this node keeps: its CID and manifest. */
export interface PipelineEntry {
  cid: string
  manifest: PipelineManifest
}

/**
 * The pipeline manifests this node holds (`<data dir>/pipelines/<cid>.json`, the manifest's exact
 * bytes, so that the file hashes to its name), at most `max`. Small: a manifest is at most 64 KiB.
 */
export class PipelineStore {
  private readonly dir: string
  private readonly entries = new Map<string, PipelineEntry>()
  private readonly raw = new Map<string, Uint8Array>()

  constructor (dataDir: string, private readonly max: number) {
    this.dir = join(dataDir, 'pipelines')
  }

  async start (): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 })
    for (const file of await readdir(this.dir)) {
      const cid = file.replace(/\.json$/, '')
      if (!file.endsWith('.json') || !isPipelineCid(cid)) continue
      try {
        const bytes = await readFile(join(this.dir, file))
        // a file whose bytes no longer hash to its name is not that pipeline
        if (await pipelineManifestCid(bytes) !== cid) continue
        this.entries.set(cid, { cid, manifest: decodePipelineManifest(bytes) })
        this.raw.set(cid, new Uint8Array(bytes))
      } catch {}
    }
  }

  /** Checks and keeps a manifest; returns its CID (the same bytes give the same CID: adding twice is a no-op). */
  async add (bytes: Uint8Array): Promise<PipelineEntry> {
    let manifest: PipelineManifest
    try {
      manifest = decodePipelineManifest(bytes)
    } catch (err: any) {
      throw new PipelineError(err.message)
    }
    const cid = await pipelineManifestCid(bytes)
    const known = this.entries.get(cid)
    if (known != null) return known
    if (this.entries.size >= this.max) throw new PipelineError(`this node keeps at most ${this.max} pipelines; remove one first`)
    await writeFile(join(this.dir, `${cid}.json`), bytes, { mode: 0o600 })
    const entry = { cid, manifest }
    this.entries.set(cid, entry)
    this.raw.set(cid, new Uint8Array(bytes))
    return entry
  }

  get (cid: string): PipelineEntry | undefined {
    return this.entries.get(cid)
  }

  /** A manifest's exact bytes (what its CID hashes), to serve to peers. */
  bytes (cid: string): Uint8Array | undefined {
    return this.raw.get(cid)
  }

  list (): PipelineEntry[] {
    return [...this.entries.values()]
  }

  async remove (cid: string): Promise<void> {
    if (!this.entries.delete(cid)) throw new PipelineError(`pipeline ${cid} is not on this node`)
    this.raw.delete(cid)
    await rm(join(this.dir, `${cid}.json`), { force: true })
  }
}

/** The manifest of a model split into stages stored under `stageCids`. */
export function pipelineManifestOf (split: SplitResult, stageCids: string[]): PipelineManifest {
  const whole = split.model
  const io = (list: ModelInfo['inputs']): PipelineManifest['inputs'] => list.map(t => {
    if (t.dtype == null) throw new PipelineError(`model tensor "${t.name}" is of a type Shoal does not carry`)
    return { name: t.name, dtype: t.dtype, dims: t.dims }
  })
  const dims = new Map<string, Array<number | string>>([...whole.inputs, ...whole.outputs].map(t => [t.name, t.dims]))
  return {
    format: PIPELINE_FORMAT,
    model: whole.cid,
    inputs: io(whole.inputs),
    outputs: io(whole.outputs),
    stages: split.stages.map((stage, i) => ({
      cid: stageCids[i],
      bytes: stage.bytes.byteLength,
      inputs: stage.inputs.map(t => ({ name: t.name, dtype: t.dtype, dims: dims.get(t.name) ?? t.dims })),
      outputs: stage.outputs.map(t => ({ name: t.name, dtype: t.dtype, dims: dims.get(t.name) ?? t.dims }))
    }))
  }
}
