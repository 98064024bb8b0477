import onnxProto from 'onnx-proto'

const { onnx } = onnxProto

export interface TransformerShape {
  /** Tokens per row (fixed). */
  sequence: number
  vocabulary: number
  /** Width of the residual stream. */
  width: number
  heads: number
  /** Identical blocks of attention and MLP. */
  layers: number
  /** Seeds the weights: the same shape and seed give the same bytes. */
  seed?: number
}

/** A small GPT-like shape: about 1.2 MB of weights, a few ms a row on one core. */
export const SMALL_TRANSFORMER: TransformerShape = { sequence: 16, vocabulary: 256, width: 64, heads: 4, layers: 4, seed: 1 }

/**
 * Builds a GPT-like transformer as ONNX bytes, its weights from a seeded generator (no download):
 * token and position embeddings, `layers` identical pre-norm blocks (causal multi-head attention,
 * an MLP with erf GELU, residual adds) and a head to vocabulary logits. Input `input_ids` int64
 * [batch, sequence]; output `logits` float32 [batch, sequence, vocabulary]. Tests, benchmarks and
 * simulations use it as a model with the structure of a real language model, which ONNX Runtime's
 * transformer fusions (LayerNorm, GELU, SkipLayerNorm) apply to.
 */
export function buildTransformerModel (shape: TransformerShape = SMALL_TRANSFORMER): Uint8Array {
  const { sequence: s, vocabulary: vocab, width: d, heads: h, layers } = shape
  if (d % h !== 0) throw new RangeError(`width ${d} is not a multiple of heads ${h}`)
  const dh = d / h
  const FLOAT = onnx.TensorProto.DataType.FLOAT
  const INT64 = onnx.TensorProto.DataType.INT64
  let state = (shape.seed ?? 1) * 0x9e3779b9 >>> 0 || 1
  const random = (): number => {
    state ^= state << 13; state >>>= 0
    state ^= state >>> 17
    state ^= state << 5; state >>>= 0
    return state / 0xffffffff - 0.5
  }
  const initializer: onnxProto.onnx.ITensorProto[] = []
  const node: onnxProto.onnx.INodeProto[] = []
  const floats = (name: string, dims: number[], fill: (i: number) => number): string => {
    const values = new Float32Array(dims.reduce((a, b) => a * b, 1))
    for (let i = 0; i < values.length; i++) values[i] = fill(i)
    initializer.push({ name, dims, dataType: FLOAT, rawData: new Uint8Array(values.buffer) })
    return name
  }
  const ints = (name: string, values: number[]): string => {
    initializer.push({ name, dims: [values.length], dataType: INT64, rawData: new Uint8Array(new BigInt64Array(values.map(BigInt)).buffer) })
    return name
  }
  const weights = (name: string, dims: number[], scale = 0.04): string => floats(name, dims, () => random() * 2 * scale)
  let counter = 0
  const op = (opType: string, input: string[], attribute: onnxProto.onnx.IAttributeProto[] = [], output?: string): string => {
    const out = output ?? `${opType.toLowerCase()}_${counter++}`
    node.push({ opType, input, output: [out], attribute, name: out })
    return out
  }
  const layerNorm = (x: string, prefix: string): string => op('LayerNormalization', [x, floats(`${prefix}.g`, [d], () => 1 + random() * 0.1), floats(`${prefix}.b`, [d], () => random() * 0.1)], [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: -1 }, { name: 'epsilon', type: onnx.AttributeProto.AttributeType.FLOAT, f: 1e-5 }])
  const perm = (p: number[]): onnxProto.onnx.IAttributeProto => ({ name: 'perm', type: onnx.AttributeProto.AttributeType.INTS, ints: p })

  // shared constants
  floats('scale', [], () => 1 / Math.sqrt(dh))
  floats('mask', [s, s], i => (i % s) > Math.floor(i / s) ? -1e9 : 0)
  floats('sqrt2', [], () => Math.SQRT2)
  floats('one', [], () => 1)
  floats('half', [], () => 0.5)
  ints('heads_shape', [0, s, h, dh])
  ints('width_shape', [0, s, d])
  ints('qkv_split', [d, d, d])

  let x = op('Add', [op('Gather', [weights('wte', [vocab, d], 0.5), 'input_ids']), weights('wpe', [s, d], 0.5)])
  for (let l = 0; l < layers; l++) {
    const p = `block${l}`
    const qkv = op('Add', [op('MatMul', [layerNorm(x, `${p}.ln1`), weights(`${p}.wqkv`, [d, 3 * d])]), weights(`${p}.bqkv`, [3 * d], 0.01)])
    node.push({ opType: 'Split', input: [qkv, 'qkv_split'], output: [`${p}.q`, `${p}.k`, `${p}.v`], attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 2 }], name: `${p}.split` })
    const heads = (t: string, order: number[]): string => op('Transpose', [op('Reshape', [t, 'heads_shape'])], [perm(order)])
    const q = heads(`${p}.q`, [0, 2, 1, 3])
    const k = heads(`${p}.k`, [0, 2, 3, 1])
    const v = heads(`${p}.v`, [0, 2, 1, 3])
    const scores = op('Softmax', [op('Add', [op('Mul', [op('MatMul', [q, k]), 'scale']), 'mask'])], [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: -1 }])
    const attended = op('Reshape', [op('Transpose', [op('MatMul', [scores, v])], [perm([0, 2, 1, 3])]), 'width_shape'])
    x = op('Add', [x, op('Add', [op('MatMul', [attended, weights(`${p}.wo`, [d, d])]), weights(`${p}.bo`, [d], 0.01)])])
    const up = op('Add', [op('MatMul', [layerNorm(x, `${p}.ln2`), weights(`${p}.w1`, [d, 4 * d])]), weights(`${p}.b1`, [4 * d], 0.01)])
    const gelu = op('Mul', [op('Mul', [up, op('Add', [op('Erf', [op('Div', [up, 'sqrt2'])]), 'one'])]), 'half'])
    x = op('Add', [x, op('Add', [op('MatMul', [gelu, weights(`${p}.w2`, [4 * d, d])]), weights(`${p}.b2`, [d], 0.01)])])
  }
  op('MatMul', [layerNorm(x, 'lnf'), weights('head', [d, vocab])], [], 'logits')

  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'shoal-transformer',
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'transformer',
      node,
      initializer,
      input: [{ name: 'input_ids', type: { tensorType: { elemType: INT64, shape: { dim: [{ dimParam: 'batch' }, { dimValue: s }] } } } }],
      output: [{ name: 'logits', type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'batch' }, { dimValue: s }, { dimValue: vocab }] } } } }]
    }
  })
  return onnx.ModelProto.encode(model).finish()
}

/** Token ids for `rows` rows of a transformer of this shape, from a seed: [rows, sequence] int64. */
export function transformerInputs (shape: TransformerShape, rows: number, seed = 7): { dtype: 'int64', dims: number[], data: Uint8Array } {
  const ids = new BigInt64Array(rows * shape.sequence)
  let state = seed >>> 0 || 1
  for (let i = 0; i < ids.length; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0
    ids[i] = BigInt((state >>> 8) % shape.vocabulary)
  }
  return { dtype: 'int64', dims: [rows, shape.sequence], data: new Uint8Array(ids.buffer) }
}
