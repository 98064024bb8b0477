import { CID } from 'multiformats/cid'
import * as json from 'multiformats/codecs/json'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { InvalidMessageError } from './errors.js'
import { DTYPE_SIZES } from './tensor-info.js'
import type { WireDtype } from './tensor-info.js'

/** The format a pipeline manifest declares (`format`). */
export const PIPELINE_FORMAT = 'shoal-pipeline/1'
/** The largest manifest a node reads. */
export const MAX_MANIFEST_BYTES = 64 * 1024
/** The most stages one pipeline may have. */
export const MAX_STAGES = 64
/** The most tensors one stage may take or give. */
export const MAX_STAGE_TENSORS = 64
const MAX_NAME_LENGTH = 256
const MAX_RANK = 16
const DAG_PB = 0x70

/** A tensor a stage takes or gives: its name in the model, element type, and dimensions (a number, or a symbol for one that varies; "batch" grows with the rows). */
export interface PipelineTensor {
  name: string
  dtype: WireDtype
  dims: Array<number | string>
}

export interface PipelineStage {
  /** The stage's model CID (a model like any other: UnixFS, CIDv1 sha2-256). */
  cid: string
  /** The stage model's size in bytes. */
  bytes: number
  inputs: PipelineTensor[]
  outputs: PipelineTensor[]
}

/**
 * A model cut into stages (docs/protocol.md 9): the job's inputs and outputs, and the stages in the
 * order they run. A stage's inputs are job inputs or outputs of earlier stages; the job's outputs are
 * outputs of some stage.
 */
export interface PipelineManifest {
  format: typeof PIPELINE_FORMAT
  /** The CID of the model the stages were cut from (for reference; no node needs to hold it). */
  model: string
  inputs: PipelineTensor[]
  outputs: PipelineTensor[]
  stages: PipelineStage[]
}

/** The manifest's bytes: JSON with keys in the order of the interfaces above, no spaces. */
export function encodePipelineManifest (manifest: PipelineManifest): Uint8Array {
  const tensor = (t: PipelineTensor): PipelineTensor => ({ name: t.name, dtype: t.dtype, dims: t.dims })
  const ordered: PipelineManifest = {
    format: manifest.format,
    model: manifest.model,
    inputs: manifest.inputs.map(tensor),
    outputs: manifest.outputs.map(tensor),
    stages: manifest.stages.map(s => ({ cid: s.cid, bytes: s.bytes, inputs: s.inputs.map(tensor), outputs: s.outputs.map(tensor) }))
  }
  const bytes = json.encode(ordered)
  validatePipelineManifest(ordered, bytes.byteLength)
  return bytes
}

/** A pipeline's address: CIDv1, codec json (0x0200), sha2-256 of the manifest's bytes ("bagaaiera..."). */
export async function pipelineManifestCid (bytes: Uint8Array): Promise<string> {
  return CID.createV1(json.code, await sha256.digest(bytes)).toString()
}

/** True if `text` is a pipeline CID in canonical form (the codec tells a pipeline from a model). */
export function isPipelineCid (text: string): boolean {
  try {
    const cid = CID.parse(text)
    return cid.version === 1 && cid.code === json.code && cid.multihash.code === sha256.code && cid.toString() === text
  } catch {
    return false
  }
}

/** Reads a manifest from a peer or a file: at most MAX_MANIFEST_BYTES, every field checked. */
export function decodePipelineManifest (bytes: Uint8Array): PipelineManifest {
  if (bytes.byteLength > MAX_MANIFEST_BYTES) throw new InvalidMessageError('too-large', `pipeline manifest is ${bytes.byteLength} bytes, over the limit of ${MAX_MANIFEST_BYTES}`)
  let value: unknown
  try {
    value = json.decode(bytes)
  } catch (err: any) {
    throw new InvalidMessageError('bad-manifest', `pipeline manifest is not JSON (${String(err.message)})`)
  }
  validatePipelineManifest(value, bytes.byteLength)
  return value
}

function fail (message: string): never {
  throw new InvalidMessageError('bad-manifest', `pipeline manifest: ${message}`)
}

function isModelCid (text: unknown): boolean {
  if (typeof text !== 'string' || text.length > 128) return false
  try {
    const cid = CID.parse(text)
    return cid.version === 1 && cid.multihash.code === sha256.code && (cid.code === raw.code || cid.code === DAG_PB) && cid.toString() === text
  } catch {
    return false
  }
}

function checkTensors (value: unknown, where: string): asserts value is PipelineTensor[] {
  if (!Array.isArray(value) || value.length > MAX_STAGE_TENSORS) fail(`${where} is not a list of at most ${MAX_STAGE_TENSORS} tensors`)
  const names = new Set<string>()
  for (const t of value) {
    if (t == null || typeof t !== 'object') fail(`${where} holds something that is not a tensor`)
    if (typeof t.name !== 'string' || t.name === '' || t.name.length > MAX_NAME_LENGTH) fail(`${where} has a tensor without a name of 1-${MAX_NAME_LENGTH} characters`)
    if (names.has(t.name)) fail(`${where} names "${t.name.slice(0, 64)}" twice`)
    names.add(t.name)
    if (typeof t.dtype !== 'string' || !Object.hasOwn(DTYPE_SIZES, t.dtype)) fail(`${where}: tensor "${t.name.slice(0, 64)}" has an unknown dtype`)
    if (!Array.isArray(t.dims) || t.dims.length > MAX_RANK || !t.dims.every((d: unknown) => (typeof d === 'number' && Number.isSafeInteger(d) && d >= 0) || (typeof d === 'string' && d.length > 0 && d.length <= 64))) {
      fail(`${where}: tensor "${t.name.slice(0, 64)}" has dims that are not at most ${MAX_RANK} whole numbers or symbols`)
    }
  }
}

/** Every field, and that the stages fit together: each input defined before it is read, each output defined once, every job output given. */
export function validatePipelineManifest (value: any, byteLength: number): asserts value is PipelineManifest {
  if (byteLength > MAX_MANIFEST_BYTES) throw new InvalidMessageError('too-large', `pipeline manifest is ${byteLength} bytes, over the limit of ${MAX_MANIFEST_BYTES}`)
  if (value == null || typeof value !== 'object' || Array.isArray(value)) fail('not an object')
  if (value.format !== PIPELINE_FORMAT) fail(`format is not "${PIPELINE_FORMAT}"`)
  if (!isModelCid(value.model)) fail('model is not a model CID')
  checkTensors(value.inputs, 'inputs')
  checkTensors(value.outputs, 'outputs')
  if (!Array.isArray(value.stages) || value.stages.length < 1 || value.stages.length > MAX_STAGES) fail(`stages is not a list of 1-${MAX_STAGES} stages`)
  const defined = new Map<string, string>(value.inputs.map((t: PipelineTensor) => [t.name, t.dtype]))
  for (const [i, stage] of value.stages.entries()) {
    const where = `stage ${i + 1}`
    if (stage == null || typeof stage !== 'object') fail(`${where} is not an object`)
    if (!isModelCid(stage.cid)) fail(`${where}'s cid is not a model CID`)
    if (!Number.isSafeInteger(stage.bytes) || stage.bytes <= 0) fail(`${where}'s bytes is not a size`)
    checkTensors(stage.inputs, `${where}'s inputs`)
    checkTensors(stage.outputs, `${where}'s outputs`)
    if (stage.outputs.length === 0) fail(`${where} gives no outputs`)
    for (const t of stage.inputs as PipelineTensor[]) {
      const dtype = defined.get(t.name)
      if (dtype == null) fail(`${where} reads "${t.name.slice(0, 64)}", which no job input or earlier stage gives`)
      if (dtype !== t.dtype) fail(`${where} reads "${t.name.slice(0, 64)}" as ${t.dtype}, given as ${dtype}`)
    }
    for (const t of stage.outputs as PipelineTensor[]) {
      if (defined.has(t.name)) fail(`${where} gives "${t.name.slice(0, 64)}", which is already given`)
      defined.set(t.name, t.dtype)
    }
  }
  for (const t of value.outputs as PipelineTensor[]) {
    const dtype = defined.get(t.name)
    if (dtype == null || value.inputs.some((i: PipelineTensor) => i.name === t.name)) fail(`job output "${t.name.slice(0, 64)}" is given by no stage`)
    if (dtype !== t.dtype) fail(`job output "${t.name.slice(0, 64)}" is ${t.dtype}, its stage gives ${dtype}`)
  }
}
