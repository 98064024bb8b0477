import { open } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { isAbsolute, join, normalize, sep } from 'node:path'
import type { onnx as OnnxNs } from 'onnx-proto'
import { SplitError } from './cut-plan.js'

type TensorProto = OnnxNs.ITensorProto

const EXTERNAL = 1

/** Whether a tensor's bytes are in an external data file. */
export function isExternal (t: TensorProto): boolean {
  return t.dataLocation === EXTERNAL || (t.externalData?.length ?? 0) > 0
}

/**
 * The external data files of a model being split (ONNX's external data: `location`, `offset`, `length`
 * of each tensor, relative to the model's directory), read range by range so that a large file is never
 * read whole. Only locations inside the model's directory are read: a model names files, and its
 * publisher's splitter reads them, not any path the model says.
 */
export class ExternalData {
  private readonly files = new Map<string, Promise<FileHandle>>()

  constructor (private readonly dir: string) {}

  /** The tensor with its bytes inside it (a copy: the model's own stays as it is). */
  async inline (t: TensorProto): Promise<TensorProto> {
    const entry = (key: string): string | undefined => t.externalData?.find(e => e.key === key)?.value ?? undefined
    const location = entry('location')
    if (location == null || location === '' || isAbsolute(location) || normalize(location).split(sep).includes('..')) {
      throw new SplitError(`tensor "${t.name ?? ''}" names external data at "${location ?? ''}": only files inside the model's directory are read`)
    }
    const offset = Number(entry('offset') ?? 0)
    const length = Number(entry('length') ?? NaN)
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) throw new SplitError(`tensor "${t.name ?? ''}" has no valid offset and length for its external data`)
    const file = join(this.dir, location)
    let handle = this.files.get(file)
    if (handle == null) this.files.set(file, handle = open(file, 'r'))
    const bytes = new Uint8Array(length)
    try {
      const fh = await handle
      for (let at = 0; at < length;) {
        const { bytesRead } = await fh.read(bytes, at, length - at, offset + at)
        if (bytesRead === 0) throw new Error(`it ends before byte ${offset + length}`)
        at += bytesRead
      }
    } catch (err: any) {
      throw new SplitError(`cannot read the external data of tensor "${t.name ?? ''}" from ${file} (${String(err.code ?? err.message)})`)
    }
    const { externalData: _, dataLocation: __, ...rest } = t
    return { ...rest, rawData: bytes }
  }

  async close (): Promise<void> {
    await Promise.all([...this.files.values()].map(async h => { await (await h.catch(() => undefined))?.close() }))
    this.files.clear()
  }
}
