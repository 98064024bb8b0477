/** A tensor file (.npy) that cannot be used: says which file and what is wrong with it. */
export class TensorFileError extends Error {
  override name = 'TensorFileError'
}

/** A model refused before loading (too big, not ONNX, external data, custom operators). */
export class ModelRejectedError extends Error {
  override name = 'ModelRejectedError'
  constructor (readonly reason: 'too-large' | 'too-complex' | 'not-onnx' | 'external-data' | 'custom-domain', message: string) {
    super(message)
  }
}
