import { randomUUID } from 'node:crypto'
import { rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { onnx as OnnxNs } from 'onnx-proto'
import { DEFAULT_MAX_SPLIT_BYTES, SPLIT_SAMPLE_DIM } from '../constants.js'
import { inspectModel } from '../model.js'
import type { ModelInfo } from '../model.js'
import { fromOrtTensor, toOrtTensor } from '../session.js'
import { byteLength, ITEM_SIZE, syntheticBatch } from '../tensor.js'
import type { Dtype, Tensor } from '../tensor.js'
import { checkTopological, chooseCuts, SplitError } from './cut-plan.js'
import { ExternalData, isExternal } from './external-data.js'
import type { Cut, GraphOutline, OutlineNode } from './cut-plan.js'

type Onnx = typeof OnnxNs
let onnxModule: Onnx | undefined
function onnx (): Onnx {
  onnxModule ??= (createRequire(import.meta.url)('onnx-proto') as { onnx: Onnx }).onnx
  return onnxModule
}
type ModelProto = OnnxNs.ModelProto
type NodeProto = OnnxNs.INodeProto
type GraphProto = OnnxNs.IGraphProto
type TensorProto = OnnxNs.ITensorProto

/** A tensor that enters or leaves a stage. */
export interface StageTensor {
  name: string
  dtype: Dtype
  /** Its bytes per row of the batch, measured on the sample run. */
  bytesPerRow: number
  /** Its dimensions: numbers where two runs of different sizes agreed, else symbols ("batch" grows with the rows). */
  dims: Array<number | string>
}

export interface SplitStage {
  /** The stage as a valid ONNX model of its own. */
  bytes: Uint8Array
  nodes: number
  /** Bytes of the weights (initializers and Constant nodes) it holds. */
  weightBytes: number
  inputs: StageTensor[]
  outputs: StageTensor[]
}

export interface SplitOptions {
  stages: number
  /**
   * Inputs to measure the tensors between stages with, and to check the stages against the whole
   * model: default one row of synthetic data, each free dimension after the batch axis SPLIT_SAMPLE_DIM.
   */
  sample?: Record<string, Tensor>
  /** Cut before these nodes (indices among the nodes that are not weights) instead of where chooseCuts would. */
  positions?: number[]
  /** See ChooseCutsOptions.slack. */
  slack?: number
  /** Refuses a larger model (default DEFAULT_MAX_SPLIT_BYTES). */
  maxBytes?: number
  /**
   * The model's file, for a model whose weights are in external data files beside it (ONNX's format for
   * models over protobuf's 2 GiB): they are read from its directory, and each stage holds its weights
   * inside. Without it such a model is refused.
   */
  path?: string
}

export interface SplitResult {
  /** The whole model as `inspectModel` describes it (its CID: of the `.onnx` file alone when its weights are in external data). */
  model: ModelInfo
  stages: SplitStage[]
  cuts: Cut[]
  /**
   * The stages run one after another on the sample, against the whole model on the sample, in this
   * process with ONNX Runtime's default settings: whether every output is the same bit for bit, and the
   * largest absolute difference of a floating-point element otherwise.
   */
  check: { identical: boolean, maxAbsDiff: number }
}

const ONNX_DTYPE: Record<number, Dtype> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64', 9: 'bool',
  10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64'
}
const DTYPE_ONNX = Object.fromEntries(Object.entries(ONNX_DTYPE).map(([k, v]) => [v, Number(k)])) as Record<Dtype, number>

/**
 * Cuts an ONNX model into `stages` consecutive stages (chooseCuts decides where), each a valid ONNX
 * model: its nodes in the original order, the weights they use (a weight used on both sides of a cut
 * is copied into both), the tensors it reads from earlier stages or the job as inputs, and the ones later
 * stages read, or the graph returns, as outputs. Constant nodes are weights: they go with the nodes that
 * read them, never across a cut. A node with subgraphs (If, Loop, Scan) is never cut: it is one node,
 * and what its subgraphs read from outside counts as its inputs. The tensors between stages are
 * measured on one run of the sample with ONNX Runtime (their element types and sizes, which the graph
 * alone does not give), and the stages are checked against the whole model on the same sample.
 */
export async function splitModel (bytes: Uint8Array, options: SplitOptions): Promise<SplitResult> {
  // the whole model passes the same checks as a model added to a store (external data aside, read below)
  const info = await inspectModel(bytes, { maxBytes: options.maxBytes ?? DEFAULT_MAX_SPLIT_BYTES, allowExternalData: true })
  const model = onnx().ModelProto.decode(bytes)
  const graph = model.graph!
  const parts = outlineOf(graph)
  checkTopological(parts.outline)
  const external = externalIn(model, parts)
  if (external && options.path == null) throw new SplitError('the model stores weights in external data files: give its path, so that they are read from beside it')
  const whole: ModelSource = external ? { path: options.path! } : { bytes }
  const data = external ? new ExternalData(dirname(options.path!)) : undefined
  try {
    const sample = options.sample ?? sampleInputs(graph, parts.initializers)
    const sizes = await measure(model, parts.outline, sample, graph, parts.initializers, whole)
    const cuts = chooseCuts(parts.outline, { stages: options.stages, sizes: new Map([...sizes].map(([name, m]) => [name, m.bytesPerRow])), slack: options.slack, positions: options.positions })
    const bounds = [0, ...cuts.map(c => c.position), parts.outline.nodes.length]
    const stages: SplitStage[] = []
    for (let s = 0; s + 1 < bounds.length; s++) stages.push(await buildStage(model, parts, bounds[s], bounds[s + 1], sizes, `${s + 1} of ${bounds.length - 1}`, data))
    return { model: info, stages, cuts, check: await checkStages(whole, stages, sample) }
  } finally {
    await data?.close()
  }
}

/** A model to run: its bytes, or its file (with external data beside it). */
type ModelSource = { bytes: Uint8Array } | { path: string }

/** Whether the model's weights (initializers, Constant nodes) are in external data; refuses it inside subgraphs. */
function externalIn (model: ModelProto, parts: Parts): boolean {
  const stack: any[] = [...(model.graph?.node ?? [])]
  for (let node = stack.pop(); node != null; node = stack.pop()) {
    for (const attr of node.attribute ?? []) {
      for (const g of [attr.g, ...(attr.graphs ?? [])]) {
        if (g == null) continue
        if ((g.initializer ?? []).some(isExternal) || (g.node ?? []).some((n: NodeProto) => (n.attribute ?? []).some(a => a.t != null && isExternal(a.t)))) {
          throw new SplitError(`node "${String(node.name ?? node.opType)}" has a subgraph whose weights are in external data, which the splitter does not read: save the model with those inside`)
        }
        stack.push(...(g.node ?? []))
      }
    }
  }
  return [...parts.initializers.values()].some(isExternal) || [...parts.constants.values()].some(c => (c.attribute ?? []).some(a => a.t != null && isExternal(a.t)))
}

interface Parts {
  outline: GraphOutline
  /** The main graph's nodes that are not weights, in order (outline.nodes[i] is main[i]). */
  main: NodeProto[]
  /** Each main node's weights (initializer names and Constant outputs). */
  weights: string[][]
  initializers: Map<string, TensorProto>
  /** Constant nodes that act as weights, by their output. */
  constants: Map<string, NodeProto>
}

function outlineOf (graph: GraphProto): Parts {
  const initializers = new Map((graph.initializer ?? []).map(t => [t.name ?? '', t]))
  const graphOutputs = new Set((graph.output ?? []).map(o => o.name ?? ''))
  const constants = new Map<string, NodeProto>()
  for (const node of graph.node ?? []) {
    const out = node.output?.[0]
    if (node.opType === 'Constant' && (node.domain ?? '') === '' && node.output?.length === 1 && out != null && !graphOutputs.has(out)) constants.set(out, node)
  }
  const counted = new Set<string>()
  const main: NodeProto[] = []
  const weights: string[][] = []
  const nodes: OutlineNode[] = []
  for (const node of graph.node ?? []) {
    if (node.opType === 'Constant' && constants.has(node.output?.[0] ?? '')) continue
    const reads = [...new Set([...(node.input ?? []).filter(i => i !== ''), ...outerReads(node)])]
    const own = reads.filter(r => initializers.has(r) || constants.has(r))
    let weightBytes = 0
    for (const w of own) {
      if (counted.has(w)) continue
      counted.add(w)
      weightBytes += initializers.has(w) ? tensorBytes(initializers.get(w)!) : constantBytes(constants.get(w)!)
    }
    main.push(node)
    weights.push(own)
    nodes.push({ opType: node.opType ?? '', inputs: reads.filter(r => !own.includes(r)), outputs: (node.output ?? []).filter(o => o !== ''), weightBytes })
  }
  const inputs = (graph.input ?? []).map(i => i.name ?? '').filter(name => !initializers.has(name))
  return { outline: { nodes, inputs, outputs: [...graphOutputs] }, main, weights, initializers, constants }
}

/** Names a node's subgraphs read from the scopes around them. */
function outerReads (node: NodeProto): string[] {
  const reads: string[] = []
  for (const attr of node.attribute ?? []) {
    for (const g of [attr.g, ...(attr.graphs ?? [])]) {
      if (g == null) continue
      const inner = new Set([...(g.input ?? []).map(i => i.name ?? ''), ...(g.initializer ?? []).map(t => t.name ?? '')])
      for (const n of g.node ?? []) {
        for (const r of [...(n.input ?? []), ...outerReads(n)]) if (r !== '' && !inner.has(r)) reads.push(r)
        for (const o of n.output ?? []) inner.add(o)
      }
    }
  }
  return reads
}

function tensorBytes (t: TensorProto): number {
  if (t.rawData != null && t.rawData.length > 0) return t.rawData.length
  const count = (t.dims ?? []).reduce((n: number, d) => n * Number(d), 1)
  const dtype = ONNX_DTYPE[t.dataType ?? 0]
  return dtype != null ? count * ITEM_SIZE[dtype] : count * 4
}

function constantBytes (node: NodeProto): number {
  const value = (node.attribute ?? []).find(a => a.name === 'value')
  return value?.t != null ? tensorBytes(value.t) : 0
}

/**
 * Synthetic inputs of `rows` rows: float inputs in [0, 1), integers and booleans zero. Each free
 * dimension after the batch axis is SPLIT_SAMPLE_DIM, or twice its size in `base` when given.
 */
function sampleInputs (graph: GraphProto, initializers: Map<string, TensorProto>, rows = 1, base?: Record<string, number[]>): Record<string, Tensor> {
  const sample: Record<string, Tensor> = {}
  for (const input of graph.input ?? []) {
    const name = input.name ?? ''
    if (initializers.has(name)) continue
    const dtype = ONNX_DTYPE[input.type?.tensorType?.elemType ?? 0]
    if (dtype == null) throw new SplitError(`input "${name}" is of a type Shoal does not carry`)
    const dims = (input.type?.tensorType?.shape?.dim ?? []).map((d, i) => {
      const fixed = d.dimParam == null || d.dimParam === '' ? Number(d.dimValue ?? 0) : 0
      if (fixed > 0) return fixed
      return i === 0 ? rows : base?.[name]?.[i] != null ? 2 * base[name][i] : SPLIT_SAMPLE_DIM
    })
    sample[name] = dtype === 'float32'
      ? syntheticBatch(dims)
      : { dtype, dims, data: new Uint8Array(byteLength(dtype, dims)) }
  }
  return sample
}

type OrtModule = typeof import('onnxruntime-node')
let ortModule: OrtModule | undefined
function ort (): OrtModule {
  ortModule ??= createRequire(import.meta.url)('onnxruntime-node') as OrtModule
  return ortModule
}

async function runModel (model: ModelSource | Uint8Array, inputs: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  const source = model instanceof Uint8Array ? { bytes: model } : model
  const options = { logSeverityLevel: 3 as const }
  const session = 'path' in source ? await ort().InferenceSession.create(source.path, options) : await ort().InferenceSession.create(source.bytes, options)
  try {
    const feeds: Record<string, any> = {}
    for (const name of session.inputNames) {
      if (inputs[name] == null) throw new SplitError(`the sample lacks input "${name}"`)
      feeds[name] = toOrtTensor(inputs[name])
    }
    const results = await session.run(feeds)
    const outputs: Record<string, Tensor> = {}
    for (const name of session.outputNames) {
      const t = fromOrtTensor(results[name], name)
      // copied: the session's buffers go with it
      outputs[name] = { ...t, data: t.data.slice() }
    }
    return outputs
  } finally {
    await session.release()
  }
}

interface Measured {
  dtype: Dtype
  bytesPerRow: number
  /** Each dimension: a number where it was the same in both runs, else a symbol (the batch axis is "batch"). */
  dims: Array<number | string>
}

/**
 * The element type, bytes per row and shape of every tensor read across nodes: runs of a copy of the
 * model that returns them all as outputs (ONNX Runtime infers the types of outputs declared without
 * one). Two runs: the sample, and synthetic inputs of one more row and twice each free dimension; a
 * dimension that differs between them is free in the stages too. The stages declare these shapes: ONNX
 * Runtime's fusions need them (without, a stage's SkipLayerNormalization was not fused where the whole
 * model's was, and their answers differed in the last bits).
 */
async function measure (model: ModelProto, outline: GraphOutline, sample: Record<string, Tensor>, graph: GraphProto, initializers: Map<string, TensorProto>, whole: ModelSource): Promise<Map<string, Measured>> {
  const rows = Object.values(sample)[0]?.dims[0] ?? 1
  const wanted = new Set<string>()
  const produced = new Set(outline.nodes.flatMap(n => n.outputs))
  for (const node of outline.nodes) for (const t of node.inputs) if (produced.has(t)) wanted.add(t)
  for (const o of outline.outputs) if (produced.has(o)) wanted.add(o)
  const probe = onnx().ModelProto.decode(onnx().ModelProto.encode(model).finish())
  const probeOutputs = probe.graph!.output ?? []
  const declared = new Set(probeOutputs.map(o => o.name))
  for (const name of wanted) if (!declared.has(name)) probeOutputs.push(onnx().ValueInfoProto.create({ name }))
  probe.graph!.output = probeOutputs
  const probeBytes = onnx().ModelProto.encode(probe).finish()
  const other = sampleInputs(graph, initializers, rows + 1, Object.fromEntries(Object.entries(sample).map(([name, t]) => [name, t.dims])))
  // a model with external data runs from a file beside its data (ONNX Runtime reads it from there)
  const probeFile = 'path' in whole ? join(dirname(whole.path), `.shoal-split-probe-${process.pid}-${randomUUID()}.onnx`) : undefined
  let runs: Array<Record<string, Tensor>>
  try {
    if (probeFile != null) await writeFile(probeFile, probeBytes, { mode: 0o600 })
    const source: ModelSource = probeFile != null ? { path: probeFile } : { bytes: probeBytes }
    runs = [await runModel(source, sample), await runModel(source, other)]
  } catch (err: any) {
    throw new SplitError(`the model did not run on the sample inputs (${String(err.message ?? err)}); give inputs it accepts (--sample NAME=FILE.npy)`)
  } finally {
    if (probeFile != null) await rm(probeFile, { force: true })
  }
  const sizes = new Map<string, Measured>()
  for (const [a, b] of [[runs[0], runs[1]], [sample, other]]) {
    for (const [name, t] of Object.entries(a)) {
      const u = b[name]
      const dims = t.dims.map((d, i) => u == null || u.dims[i] === d ? d : d === rows && u.dims[i] === rows + 1 ? 'batch' : `d${d}_${u.dims[i]}`)
      sizes.set(name, { dtype: t.dtype, bytesPerRow: t.data.byteLength / rows, dims })
    }
  }
  return sizes
}

async function buildStage (model: ModelProto, parts: Parts, from: number, to: number, sizes: Map<string, Measured>, label: string, data?: ExternalData): Promise<SplitStage> {
  const graph = model.graph!
  const { outline, main } = parts
  const produced = new Set<string>()
  const reads: string[] = []
  const weightNames = new Set<string>()
  for (let i = from; i < to; i++) {
    for (const r of outline.nodes[i].inputs) if (!produced.has(r) && !reads.includes(r)) reads.push(r)
    for (const w of parts.weights[i]) weightNames.add(w)
    for (const o of outline.nodes[i].outputs) produced.add(o)
  }
  const readLater = new Set(outline.nodes.slice(to).flatMap(n => n.inputs))
  const graphOutputs = new Set(outline.outputs)
  const outputs = [...produced].filter(t => readLater.has(t) || graphOutputs.has(t))
  const declared = new Map([...(graph.input ?? []), ...(graph.output ?? []), ...(graph.valueInfo ?? [])].map(v => [v.name ?? '', v]))
  const tensor = (name: string): StageTensor => {
    const size = sizes.get(name)
    if (size == null) throw new SplitError(`the type of tensor "${name}" between stages could not be measured`)
    return { name, dtype: size.dtype, bytesPerRow: size.bytesPerRow, dims: size.dims }
  }
  const valueInfo = (name: string): OnnxNs.IValueInfoProto => {
    const known = declared.get(name)
    if (known != null) return known
    const size = sizes.get(name)
    if (size == null) throw new SplitError(`the type of tensor "${name}" between stages could not be measured`)
    const dim = size.dims.map(d => typeof d === 'number' ? { dimValue: d } : { dimParam: d })
    return { name, type: { tensorType: { elemType: DTYPE_ONNX[size.dtype], shape: { dim } } } }
  }
  const inside = new Set([...reads, ...produced])
  // weights in external data come inside the stage: a stage is a model any node checks and runs alone
  const inline = async (t: TensorProto): Promise<TensorProto> => data != null && isExternal(t) ? await data.inline(t) : t
  const constantNodes: NodeProto[] = []
  for (const w of weightNames) {
    const c = parts.constants.get(w)
    if (c == null) continue
    constantNodes.push({ ...c, attribute: await Promise.all((c.attribute ?? []).map(async a => a.t != null ? { ...a, t: await inline(a.t) } : a)) })
  }
  const initializer: TensorProto[] = []
  for (const w of weightNames) if (parts.initializers.has(w)) initializer.push(await inline(parts.initializers.get(w)!))
  const heldBytes = initializer.reduce((n, t) => n + tensorBytes(t), 0) + constantNodes.reduce((n, c) => n + constantBytes(c), 0)
  if (heldBytes > DEFAULT_MAX_SPLIT_BYTES) throw new SplitError(`stage ${label} would hold ${heldBytes} bytes of weights, over protobuf's 2 GiB for one model: cut it into more stages`)
  const stage = onnx().ModelProto.create({
    irVersion: model.irVersion,
    opsetImport: model.opsetImport,
    producerName: 'shoal model split',
    domain: model.domain,
    modelVersion: model.modelVersion,
    docString: `stage ${label} of ${graph.name ?? 'a model'}`,
    metadataProps: model.metadataProps,
    functions: model.functions,
    graph: {
      name: `${graph.name ?? 'model'} stage ${label}`,
      node: [...constantNodes, ...main.slice(from, to)],
      initializer,
      input: reads.map(valueInfo),
      output: outputs.map(valueInfo),
      valueInfo: (graph.valueInfo ?? []).filter(v => inside.has(v.name ?? '') && !reads.includes(v.name ?? '') && !outputs.includes(v.name ?? ''))
    }
  })
  return { bytes: onnx().ModelProto.encode(stage).finish(), nodes: to - from, weightBytes: heldBytes, inputs: reads.map(tensor), outputs: outputs.map(tensor) }
}

/** Runs the stages one after another on the sample and compares with the whole model's outputs. */
async function checkStages (whole: ModelSource, stages: SplitStage[], sample: Record<string, Tensor>): Promise<SplitResult['check']> {
  const expected = await runModel(whole, sample)
  const held: Record<string, Tensor> = { ...sample }
  for (const stage of stages) {
    const inputs = Object.fromEntries(stage.inputs.map(t => [t.name, held[t.name]]))
    Object.assign(held, await runModel(stage.bytes, inputs))
  }
  let identical = true
  let maxAbsDiff = 0
  for (const [name, want] of Object.entries(expected)) {
    const got = held[name]
    if (got == null || got.dtype !== want.dtype || got.dims.join() !== want.dims.join()) throw new SplitError(`the stages do not give output "${name}" as the whole model does`)
    if (Buffer.compare(Buffer.from(got.data.buffer, got.data.byteOffset, got.data.byteLength), Buffer.from(want.data.buffer, want.data.byteOffset, want.data.byteLength)) === 0) continue
    identical = false
    maxAbsDiff = Math.max(maxAbsDiff, largestDifference(got, want))
  }
  return { identical, maxAbsDiff }
}

function largestDifference (a: Tensor, b: Tensor): number {
  if (a.dtype !== 'float32' && a.dtype !== 'float64') return Infinity
  const Typed = a.dtype === 'float32' ? Float32Array : Float64Array
  const x = new Typed(a.data.slice().buffer)
  const y = new Typed(b.data.slice().buffer)
  let max = 0
  for (let i = 0; i < x.length; i++) max = Math.max(max, Math.abs(x[i] - y[i]))
  return max
}
