import onnxProto from 'onnx-proto'

const { onnx } = onnxProto

export interface CalibrationModelShape {
  /** Rows of the input batch; 0 leaves the batch axis free (any number of rows). */
  batch: number
  /** Width of every layer: each layer is a width x width MatMul followed by Relu. */
  width: number
  layers: number
}

/**
 * The default calibration model: 4 layers of 512 x 512 over a batch of 128 is 268 MFLOP a run, about
 * 10 ms on one modern core and well under 1 ms on a GPU, large enough that the measured rate is the
 * provider's matrix throughput rather than its per-call overhead.
 */
export const CALIBRATION_SHAPE: CalibrationModelShape = { batch: 128, width: 512, layers: 4 }

/** Floating-point operations in one run of the model: 2 per multiply-add of each MatMul. */
export function calibrationFlops (shape: CalibrationModelShape): number {
  return 2 * shape.batch * shape.width * shape.width * shape.layers
}

/**
 * Builds the calibration MLP as ONNX model bytes. Weights come from a fixed-seed generator, so every
 * node measures the same model; values are small so that Relu keeps about half the activations alive.
 */
export function buildCalibrationModel (shape: CalibrationModelShape = CALIBRATION_SHAPE): Uint8Array {
  const { batch, width, layers } = shape
  const FLOAT = onnx.TensorProto.DataType.FLOAT
  let state = 0x9e3779b9
  const random = (): number => {
    // xorshift32: deterministic and dependency-free
    state ^= state << 13; state >>>= 0
    state ^= state >>> 17
    state ^= state << 5; state >>>= 0
    return state / 0xffffffff - 0.5
  }

  const initializer = []
  const node = []
  let previous = 'input'
  for (let i = 0; i < layers; i++) {
    const weights = new Float32Array(width * width)
    for (let j = 0; j < weights.length; j++) weights[j] = random() * 2 / Math.sqrt(width)
    initializer.push(onnx.TensorProto.create({
      name: `w${i}`, dims: [width, width], dataType: FLOAT, rawData: new Uint8Array(weights.buffer)
    }))
    const last = i === layers - 1
    node.push(onnx.NodeProto.create({ opType: 'MatMul', input: [previous, `w${i}`], output: [`mm${i}`] }))
    node.push(onnx.NodeProto.create({ opType: 'Relu', input: [`mm${i}`], output: [last ? 'output' : `h${i}`] }))
    previous = `h${i}`
  }
  const valueInfo = (name: string): onnxProto.onnx.IValueInfoProto => ({
    name,
    type: {
      tensorType: {
        elemType: FLOAT,
        shape: { dim: [batch > 0 ? { dimValue: batch } : { dimParam: 'batch' }, { dimValue: width }] }
      }
    }
  })
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'shoal-calibration',
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'calibration',
      node,
      initializer,
      input: [valueInfo('input')],
      output: [valueInfo('output')]
    }
  })
  return onnx.ModelProto.encode(model).finish()
}
