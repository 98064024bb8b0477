import { importBytes } from 'ipfs-unixfs-importer'
import type { ImportContent } from 'ipfs-unixfs-importer'
import type { CID } from 'multiformats/cid'
import { createRequire } from 'node:module'
import { DEFAULT_MAX_MODEL_BYTES } from './constants.js'
import { ModelRejectedError } from './errors.js'
import { scanModel } from './model-scan.js'
import type { Dtype } from './tensor.js'

/**
 * How model files are cut into blocks: the IPFS "unixfs-v1-2025" profile (CIDv1, sha2-256, raw leaves
 * of 1 MiB, up to 1024 links per node, balanced tree). Every node computes a model's CID this way.
 */
export const MODEL_DAG_PROFILE = 'unixfs-v1-2025'

/**
 * A model's address: the CID of its bytes laid out as a UnixFS file with MODEL_DAG_PROFILE. A file of
 * 1 MiB or less is one raw block, so its CID is CIDv1 raw sha2-256 of the bytes ("bafkrei..."); a
 * larger one is a dag-pb tree of 1 MiB blocks ("bafybei..."). Two nodes holding the same bytes agree on
 * the CID; a single changed byte changes it. `put`, when given, receives every block.
 */
export async function modelCid (bytes: ImportContent, put?: (cid: CID, block: Uint8Array) => Promise<void>): Promise<string> {
  const store = { put: async (cid: CID, block: Uint8Array) => { await put?.(cid, block); return cid } }
  const { cid } = await importBytes(bytes, store, { profile: MODEL_DAG_PROFILE })
  return cid.toString()
}

/** Refuses (ModelRejectedError 'too-large') a model of more than `maxBytes`: the first check, and the cheapest. */
export function checkModelSize (byteLength: number, maxBytes: number): void {
  if (byteLength > maxBytes) throw new ModelRejectedError('too-large', `model is ${byteLength} bytes, over the limit of ${maxBytes}`)
}

/** Operator domains ONNX Runtime implements itself; anything else needs a custom-op library. */
const BUILT_IN_DOMAINS = new Set(['', 'ai.onnx', 'ai.onnx.ml', 'com.microsoft'])

export interface ModelIo {
  name: string
  /** null for element types Shoal does not move (strings, sequences, maps). */
  dtype: Dtype | null
  /** Each dimension a number, or its symbolic name (e.g. a dynamic batch axis). */
  dims: Array<number | string>
}

export interface ModelInfo {
  cid: string
  bytes: number
  inputs: ModelIo[]
  outputs: ModelIo[]
  opsets: Array<{ domain: string, version: number }>
}

/** ONNX TensorProto.DataType numbers -> Shoal dtypes. */
const ONNX_DTYPE: Record<number, Dtype> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 9: 'bool',
  10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64'
}

type OnnxModule = typeof import('onnx-proto')
let onnxModule: OnnxModule['onnx'] | undefined
function onnx (): OnnxModule['onnx'] {
  // loaded on first use: the ONNX schema costs ~12 MiB, and a node that never inspects a model should not pay it
  onnxModule ??= (createRequire(import.meta.url)('onnx-proto') as OnnxModule).onnx
  return onnxModule
}

/**
 * Checks a model before any ONNX Runtime session sees it, and describes its inputs and outputs.
 * Refuses (ModelRejectedError): more than `maxBytes`; more nodes, attributes, tensors or nesting than a
 * real model has, counted before decoding (model-scan.ts); bytes that are not an ONNX ModelProto with a
 * graph; tensors stored in external data files, anywhere in the model (a path in a model must not make
 * a worker read its own disk: ONNX Runtime resolves relative paths against the working directory);
 * operators from domains ONNX Runtime does not implement itself, in any graph or function.
 * `cid`, when the caller has already computed the bytes' CID (cutting them into blocks), saves
 * hashing them again. `allowExternalData` is for the splitter alone (`splitModel`), which reads a
 * publisher's own external data files and stores every stage with its weights inside: a node never
 * sets it.
 */
export async function inspectModel (bytes: Uint8Array, options: { maxBytes?: number, cid?: string, allowExternalData?: boolean } = {}): Promise<ModelInfo> {
  checkModelSize(bytes.byteLength, options.maxBytes ?? DEFAULT_MAX_MODEL_BYTES)
  scanModel(bytes)
  const { ModelProto } = onnx()
  let model: import('onnx-proto').onnx.ModelProto
  try {
    model = ModelProto.decode(bytes)
  } catch (err: any) {
    throw new ModelRejectedError('not-onnx', `not an ONNX model (${err.message})`)
  }
  const graph = model.graph
  if (graph == null || model.opsetImport.length === 0 || (graph.node ?? []).length === 0) {
    throw new ModelRejectedError('not-onnx', 'not an ONNX model (no graph, nodes or opset imports)')
  }
  checkEverything(model, options.allowExternalData === true)

  const initializers = new Set((graph.initializer ?? []).map(t => t.name))
  const io = (v: import('onnx-proto').onnx.IValueInfoProto): ModelIo => ({
    name: v.name ?? '',
    dtype: ONNX_DTYPE[v.type?.tensorType?.elemType ?? 0] ?? null,
    dims: (v.type?.tensorType?.shape?.dim ?? []).map(d => d.dimParam != null && d.dimParam !== '' ? d.dimParam : Number(d.dimValue ?? 0))
  })
  return {
    cid: options.cid ?? await modelCid(bytes),
    bytes: bytes.byteLength,
    // an input that has an initializer is a constant with a default, not something to feed
    inputs: (graph.input ?? []).filter(v => !initializers.has(v.name)).map(io),
    outputs: (graph.output ?? []).map(io),
    opsets: model.opsetImport.map(o => ({ domain: o.domain ?? '', version: Number(o.version) }))
  }
}

/**
 * Why these tensors cannot feed this model, or undefined if they can: every model input given, no
 * unknown ones, dtypes equal, ranks equal, and every fixed dimension equal (symbolic ones, such as a
 * dynamic batch axis, take any size). The message names the input and what differs.
 */
export function mismatchWithModel (info: Pick<ModelInfo, 'inputs'>, tensors: Array<{ name: string, dtype: Dtype, dims: number[] }>): string | undefined {
  const given = new Map(tensors.map(t => [t.name, t]))
  for (const input of info.inputs) {
    const t = given.get(input.name)
    if (t == null) return `the model needs input "${input.name}" (${input.dtype ?? 'unknown type'} [${input.dims.join(', ')}]), which was not given`
    if (input.dtype != null && t.dtype !== input.dtype) return `input "${input.name}" is ${t.dtype}, the model wants ${input.dtype}`
    if (input.dims.length > 0 && t.dims.length !== input.dims.length) return `input "${input.name}" has shape [${t.dims.join(', ')}], the model wants rank ${input.dims.length}: [${input.dims.join(', ')}]`
    for (let i = 0; i < input.dims.length; i++) {
      const want = input.dims[i]
      if (typeof want === 'number' && want > 0 && t.dims[i] !== want) {
        return `input "${input.name}" has shape [${t.dims.join(', ')}], the model wants [${input.dims.join(', ')}] (dimension ${i} differs)`
      }
    }
  }
  const known = new Set(info.inputs.map(i => i.name))
  for (const t of tensors) if (!known.has(t.name)) return `the model has no input "${t.name}" (its inputs: ${[...known].join(', ')})`
  return undefined
}

interface Visit { value: any, key: string, parent?: Visit }

/**
 * Goes through every message of a decoded model, wherever it sits (graphs, subgraphs of any depth,
 * local functions, training graphs, tensor and sparse-tensor attributes, and any place a later ONNX
 * version adds): no tensor may live in external data, and every node's operator must come from a
 * domain ONNX Runtime implements or from one of the model's local functions. Walking the whole tree,
 * rather than the places a tensor is known to sit, is what keeps a newly found place from being a hole.
 */
function checkEverything (model: import('onnx-proto').onnx.ModelProto, allowExternalData: boolean): void {
  const EXTERNAL = onnx().TensorProto.DataLocation.EXTERNAL
  const localFunctionDomains = new Set((model.functions ?? []).map(f => f.domain ?? ''))
  const stack: Visit[] = [{ value: model, key: 'model' }]
  for (let visit = stack.pop(); visit != null; visit = stack.pop()) {
    const value = visit.value
    if (typeof value.opType === 'string') {
      const domain: string = value.domain ?? ''
      if (!BUILT_IN_DOMAINS.has(domain) && !localFunctionDomains.has(domain)) {
        throw new ModelRejectedError('custom-domain', `operator ${value.opType as string} (node "${(value.name as string | undefined) ?? ''}" in ${where(visit)}) is from custom domain "${domain}", which ONNX Runtime cannot run without a custom-op library`)
      }
    }
    if (!allowExternalData && (value.dataLocation === EXTERNAL || (Array.isArray(value.externalData) && value.externalData.length > 0))) {
      throw new ModelRejectedError('external-data', `tensor "${(value.name as string | undefined) ?? ''}" in ${where(visit)} is stored in an external data file; save the model with its data inside (onnx.save_model(m, path, save_as_external_data=False))`)
    }
    for (const [key, child] of Object.entries(value)) {
      if (Array.isArray(child)) {
        // arrays of numbers or strings (float_data, dims, inputs) hold no message
        child.forEach((item, i) => { if (isMessage(item)) stack.push({ value: item, key: `${key}[${i}]`, parent: visit }) })
      } else if (isMessage(child)) {
        stack.push({ value: child, key, parent: visit })
      }
    }
  }
}

function isMessage (value: unknown): boolean {
  return value != null && typeof value === 'object' && !ArrayBuffer.isView(value) && !('low' in value && 'high' in value)
}

/** Where a message sits, as a person would say it: the innermost graph or function around it. */
function where (visit: Visit): string {
  for (let v: Visit | undefined = visit; v != null; v = v.parent) {
    if (/^functions\[/.test(v.key)) return `function "${(v.value.name as string | undefined) ?? ''}"`
    if (/^trainingInfo\[/.test(v.key)) return 'the training info'
    if ((v.key === 'g' || /^graphs\[/.test(v.key)) && v.parent?.parent != null) {
      return `subgraph of ${(v.parent.parent.value.opType as string | undefined) ?? 'a node'}`
    }
  }
  return 'the main graph'
}
