/**
 * Pairs of operators ONNX Runtime's graph optimizers fuse into one kernel (onnxruntime/core/optimizer:
 * conv_bn_fusion, conv_add_fusion, conv_mul_fusion, conv_activation_fusion, matmul_add_fusion,
 * gemm_activation_fusion, matmul_scale_fusion, skip_layer_norm_fusion, bias_gelu_fusion, gelu_fusion,
 * bias_softmax_fusion, layer_norm_fusion, matmul_transpose_fusion, quick_gelu_fusion). A fused kernel
 * may round differently from the operators apart, so a cut between the two halves of a pair can give the
 * whole model one answer and the stages another, in the last bits. Between cuts crossing equally many
 * tensors, chooseCuts prefers one that splits no such pair. (Measured on the GPT-like transformer of
 * transformer-model.ts: cuts at its residual stream, between an Add and the next block's
 * LayerNormalization that the whole model fuses into SkipLayerNormalization, gave bit-identical
 * logits once each stage declares its inputs' shapes; split-model.ts checks every split on a sample.)
 * Producer -> the readers it fuses with.
 */
const FUSED_WITH: Record<string, readonly string[]> = {
  Conv: ['BatchNormalization', 'Add', 'Mul', 'Relu', 'Sigmoid', 'Clip', 'HardSigmoid', 'HardSwish', 'LeakyRelu', 'Tanh'],
  MatMul: ['Add', 'Mul', 'Div'],
  Gemm: ['Relu', 'Sigmoid', 'Tanh', 'LeakyRelu', 'Clip', 'HardSigmoid'],
  Add: ['LayerNormalization', 'SimplifiedLayerNormalization', 'Gelu', 'Softmax', 'Div', 'Erf'],
  Mul: ['MatMul', 'Sigmoid'],
  Div: ['Erf', 'MatMul'],
  Erf: ['Add'],
  Transpose: ['MatMul'],
  Relu: ['Clip'],
  Sigmoid: ['Mul'],
  // a LayerNormalization written out (ReduceMean, Sub, Pow, Sqrt, Div): any cut inside it
  ReduceMean: ['Sub', 'Pow', 'Sqrt', 'Add', 'Div', 'Mul'],
  Sub: ['Pow', 'Div', 'Mul', 'ReduceMean'],
  Pow: ['ReduceMean'],
  Sqrt: ['Div', 'Reciprocal']
}

/**
 * Whether ONNX Runtime may fuse a `producer` node with a `reader` of its output. An Add of a weight
 * (a bias) fuses with the Add that reads it (SkipLayerNormalization takes the bias, the skip and the
 * input): that is how the residual stream's bias-then-residual pair is told from a residual Add of two
 * activations, whose output only enters the next fused kernel as an input.
 */
export function mayFuse (producer: { opType?: string, weightBytes: number }, reader: string): boolean {
  const op = producer.opType ?? ''
  if (op === 'Add' && reader === 'Add' && producer.weightBytes > 0) return true
  return FUSED_WITH[op]?.includes(reader) ?? false
}
