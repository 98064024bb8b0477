import { MAX_MODEL_ATTRIBUTES, MAX_MODEL_DEPTH, MAX_MODEL_FIELDS, MAX_MODEL_NESTING, MAX_MODEL_NODES, MAX_MODEL_TENSORS } from './constants.js'
import { ModelRejectedError } from './errors.js'

/**
 * Counts what an ONNX model holds by reading its protobuf wire format, before anything is decoded:
 * nodes (of every graph, subgraph, function and training graph), attributes, tensors, the fields of
 * every message it reads (value infos and their types included), how deep subgraphs nest and how deep
 * messages nest. A model of 40 million empty nodes fits in 80 MB of bytes but, decoded into objects,
 * takes the process's whole heap; refused here, it costs one pass over its bytes and no allocation.
 * Throws ModelRejectedError 'too-complex' past the limits, 'not-onnx' for bytes that are not protobuf.
 */
export function scanModel (bytes: Uint8Array): Counts {
  const counts: Counts = { nodes: 0, attributes: 0, tensors: 0, fields: 0 }
  walk(bytes, 0, bytes.byteLength, 'model', 0, counts)
  return counts
}

/** The messages the scan descends into, by field number; the rest of each message is skipped. */
type Kind = 'model' | 'graph' | 'node' | 'attribute' | 'function' | 'training' | 'tensor' | 'sparse' | 'value' | 'type' | 'tensorType' | 'shape' | 'elemType' | 'mapType' | 'annotation'
const CHILDREN: Record<Kind, Record<number, Kind>> = {
  // ModelProto: graph, training_info, functions
  model: { 7: 'graph', 20: 'training', 25: 'function' },
  // GraphProto: node, initializer, input, output, value_info, quantization_annotation, sparse_initializer
  graph: { 1: 'node', 5: 'tensor', 11: 'value', 12: 'value', 13: 'value', 14: 'annotation', 15: 'sparse' },
  // NodeProto: attribute
  node: { 5: 'attribute' },
  // AttributeProto: t, g, tensors, graphs, tp, type_protos, sparse_tensor, sparse_tensors
  attribute: { 5: 'tensor', 6: 'graph', 10: 'tensor', 11: 'graph', 14: 'type', 15: 'type', 22: 'sparse', 23: 'sparse' },
  // FunctionProto: node, attribute_proto, value_info
  function: { 7: 'node', 11: 'attribute', 12: 'value' },
  // TrainingInfoProto: initialization, algorithm
  training: { 1: 'graph', 2: 'graph' },
  tensor: {},
  // SparseTensorProto: values, indices
  sparse: { 1: 'tensor', 2: 'tensor' },
  // ValueInfoProto: type
  value: { 2: 'type' },
  // TypeProto: tensor_type, sequence_type, map_type, sparse_tensor_type, optional_type
  type: { 1: 'tensorType', 4: 'elemType', 5: 'mapType', 8: 'tensorType', 9: 'elemType' },
  // TypeProto.Tensor and .SparseTensor: shape
  tensorType: { 2: 'shape' },
  // TensorShapeProto: each dim is one field
  shape: {},
  // TypeProto.Sequence and .Optional: elem_type
  elemType: { 1: 'type' },
  // TypeProto.Map: value_type
  mapType: { 2: 'type' },
  // TensorAnnotation: each quant_parameter_tensor_names entry is one field
  annotation: {}
}

interface Counts { nodes: number, attributes: number, tensors: number, fields: number }

function walk (bytes: Uint8Array, start: number, end: number, kind: Kind, depth: number, counts: Counts, nesting = 0): void {
  if (kind === 'node' && ++counts.nodes > MAX_MODEL_NODES) tooComplex(`more than ${MAX_MODEL_NODES} nodes`)
  if (kind === 'attribute' && ++counts.attributes > MAX_MODEL_ATTRIBUTES) tooComplex(`more than ${MAX_MODEL_ATTRIBUTES} attributes`)
  if (kind === 'tensor' && ++counts.tensors > MAX_MODEL_TENSORS) tooComplex(`more than ${MAX_MODEL_TENSORS} tensors`)
  if (kind === 'graph' && depth > MAX_MODEL_DEPTH) tooComplex(`subgraphs nested more than ${MAX_MODEL_DEPTH} deep`)
  // types nest in types (a sequence of sequences of ...): deep enough, a decoder's recursion overflows its stack
  if (nesting > MAX_MODEL_NESTING) tooComplex(`messages nested more than ${MAX_MODEL_NESTING} deep`)
  const children = CHILDREN[kind]
  let pos = start
  while (pos < end) {
    const [tag, afterTag] = varint(bytes, pos, end)
    pos = afterTag
    const field = Math.floor(tag / 8)
    // every field becomes at least a value in the decoded model (millions of empty value infos, 2 bytes
    // each, took 1.3 GB of memory and 4 s to decode)
    if (++counts.fields > MAX_MODEL_FIELDS) tooComplex(`more than ${MAX_MODEL_FIELDS} fields`)
    switch (tag % 8) {
      case 0: pos = varint(bytes, pos, end)[1]; break
      case 1: pos += 8; break
      case 5: pos += 4; break
      case 2: {
        const [length, at] = varint(bytes, pos, end)
        if (at + length > end) notProtobuf()
        const child = children[field]
        if (child != null) walk(bytes, at, at + length, child, child === 'graph' ? depth + 1 : depth, counts, nesting + 1)
        pos = at + length
        break
      }
      default: notProtobuf()
    }
    if (pos > end) notProtobuf()
  }
}

/** An unsigned varint at `pos` (as a number: lengths and tags in a file under 2 GiB fit) and the position after it. */
function varint (bytes: Uint8Array, pos: number, end: number): [number, number] {
  let value = 0
  let scale = 1
  for (let i = 0; i < 10; i++) {
    if (pos >= end) notProtobuf()
    const byte = bytes[pos++]
    value += (byte & 0x7f) * scale
    if (byte < 0x80) return [value, pos]
    scale *= 128
  }
  return notProtobuf()
}

function tooComplex (what: string): never {
  throw new ModelRejectedError('too-complex', `the model has ${what}: refused before decoding it`)
}

function notProtobuf (): never {
  throw new ModelRejectedError('not-onnx', 'not an ONNX model (its protobuf encoding is broken)')
}
