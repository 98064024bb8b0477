import onnxProto from 'onnx-proto'

/** Models a stranger could send to run on a volunteer's machine, for the tests of what stops them. */

const { onnx } = onnxProto
const FLOAT = onnx.TensorProto.DataType.FLOAT
const INT64 = onnx.TensorProto.DataType.INT64
const BOOL = onnx.TensorProto.DataType.BOOL

const tensorType = (elemType: number, dims: Array<number | string>): onnxProto.onnx.ITypeProto => ({ tensorType: { elemType, shape: { dim: dims.map(d => typeof d === 'number' ? { dimValue: d } : { dimParam: d }) } } })
const scalar = (name: string, dataType: number, raw: Uint8Array): onnxProto.onnx.INodeProto => ({ opType: 'Constant', output: [name], attribute: [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: { dataType, dims: [], rawData: raw } }] })

/** y = x after a Loop of 2^62 trips whose body does nothing: ONNX Runtime never comes back. */
export function endlessLoop (): Uint8Array {
  const trips = new Uint8Array(new BigInt64Array([2n ** 62n]).buffer)
  return onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'endless',
      node: [
        scalar('m', INT64, trips),
        scalar('c', BOOL, Uint8Array.from([1])),
        {
          opType: 'Loop', input: ['m', 'c', 'input'], output: ['output'],
          attribute: [{
            name: 'body', type: onnx.AttributeProto.AttributeType.GRAPH,
            g: {
              name: 'body',
              node: [{ opType: 'Identity', input: ['cond'], output: ['cond_out'] }, { opType: 'Identity', input: ['v'], output: ['v_out'] }],
              input: [{ name: 'i', type: tensorType(INT64, []) }, { name: 'cond', type: tensorType(BOOL, []) }, { name: 'v', type: tensorType(FLOAT, ['n', 16]) }],
              output: [{ name: 'cond_out', type: tensorType(BOOL, []) }, { name: 'v_out', type: tensorType(FLOAT, ['n', 16]) }]
            }
          }]
        }
      ],
      input: [{ name: 'input', type: tensorType(FLOAT, ['n', 16]) }],
      output: [{ name: 'output', type: tensorType(FLOAT, ['n', 16]) }]
    }
  }).finish()
}

/** A 200-byte model whose output is 3 GiB of zeros (ConstantOfShape). */
export function memoryBomb (): Uint8Array {
  const shape = new Uint8Array(new BigInt64Array([3n * 2n ** 30n / 4n]).buffer)
  return onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'bomb',
      node: [
        { opType: 'Constant', output: ['shape'], attribute: [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: { dataType: INT64, dims: [1], rawData: shape } }] },
        { opType: 'ConstantOfShape', input: ['shape'], output: ['zeros'] },
        { opType: 'Identity', input: ['input'], output: ['output'] }
      ],
      input: [{ name: 'input', type: tensorType(FLOAT, ['n', 16]) }],
      output: [{ name: 'output', type: tensorType(FLOAT, ['n', 16]) }, { name: 'zeros', type: tensorType(FLOAT, ['z']) }]
    }
  }).finish()
}

/**
 * y = x, in a graph that also holds `count` empty value infos (2 bytes each): a few MB that pass every
 * count made before decoding (nodes, tensors, attributes) and take hundreds of MB once decoded.
 */
export function valueInfoBomb (count: number): Uint8Array {
  const head = onnx.ModelProto.encode({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }] }).finish()
  const graph = onnx.GraphProto.encode({
    name: 'value-infos',
    node: [{ opType: 'Identity', input: ['input'], output: ['output'] }],
    input: [{ name: 'input', type: tensorType(FLOAT, ['n', 16]) }],
    output: [{ name: 'output', type: tensorType(FLOAT, ['n', 16]) }]
  }).finish()
  const body = new Uint8Array(graph.length + count * 2)
  body.set(graph)
  for (let i = graph.length; i < body.length; i += 2) body[i] = 0x6a // field 13 (value_info), length 0
  const length: number[] = []
  for (let n = body.length; ; n = Math.floor(n / 128)) { if (n < 128) { length.push(n); break } length.push((n & 0x7f) | 0x80) }
  return Uint8Array.from([...head, 0x3a, ...length, ...body]) // field 7 (graph)
}
