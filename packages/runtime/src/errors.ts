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

/**
 * A run the sandbox stopped or will not start (process-sessions.ts): 'deadline' (killed past its
 * signal), 'crashed' (its process died), 'memory' (it ran out of, or held too much, memory),
 * 'refused' (its model did one of these lately), 'unavailable' (the machine's fault, not the model's:
 * no process could be started, or the machine was too busy to give it the CPU it needed).
 */
export class SandboxError extends Error {
  override name = 'SandboxError'
  constructor (readonly kind: 'deadline' | 'crashed' | 'memory' | 'refused' | 'unavailable', message: string) {
    super(message)
  }
}
