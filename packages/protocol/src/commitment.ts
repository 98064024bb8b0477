/**
 * A worker's signed commitment to an answer (docs/protocol.md 6.3): which piece of which job of which
 * model, a hash of the inputs it read and of the outputs it sent. The submitter checks it against the
 * answer it received and keeps it as evidence when the answer proves wrong. Pure: hashing and
 * comparison here, signing and verifying with the peer's key in @shoal/node.
 */
import { createHash } from 'node:crypto'
import { concat } from 'uint8arrays/concat'
import { fromString as uint8ArrayFromString } from 'uint8arrays/from-string'
import { equals } from 'uint8arrays/equals'
import { AnswerCommitment, TensorInfo } from './pb/infer.js'

/**
 * The signature covers these bytes followed by the encoded commitment: no other message a peer signs
 * (a capacity ad, a name record) can pass as a commitment, nor a commitment as one of them.
 */
export const COMMITMENT_PREFIX = uint8ArrayFromString('shoal-answer-commitment:')

/** sha2-256 of buffers back to back. */
export function sha256Of (buffers: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const hash = createHash('sha256')
  for (const b of buffers) hash.update(b)
  const digest = new Uint8Array(32)
  digest.set(hash.digest())
  return digest
}

/** The bytes a worker signs for a commitment. */
export function commitmentPayload (commitment: Uint8Array): Uint8Array {
  return concat([COMMITMENT_PREFIX, commitment])
}

function sameTensorInfos (a: TensorInfo[], b: TensorInfo[]): boolean {
  return a.length === b.length && a.every((x, i) => {
    const y = b[i]
    return x.name === y.name && x.dtype === y.dtype && x.byteLength === y.byteLength && x.dims.length === y.dims.length && x.dims.every((d, k) => d === y.dims[k])
  })
}

/**
 * Why an encoded commitment does not describe this answer, or undefined when it does: the piece, job
 * and model of the request, the inputs the submitter sent, the outputs and output bytes it received.
 * Without the two hashes, only what needs no hashing is compared (the rest can wait until the answer
 * is to be kept as evidence: docs/protocol.md 6.3).
 */
export function commitmentMismatch (bytes: Uint8Array, expected: Omit<AnswerCommitment, 'outputs' | 'inputsSha256' | 'outputsSha256'> & { outputs: TensorInfo[], inputsSha256?: Uint8Array, outputsSha256?: Uint8Array }): string | undefined {
  let c: AnswerCommitment
  try {
    c = AnswerCommitment.decode(bytes)
  } catch (err: any) {
    return `the commitment is not a valid AnswerCommitment (${err.message})`
  }
  // padding (unknown fields) would make a peer's evidence as big as a header: twice what its fields need is plenty for any encoder
  if (bytes.byteLength > 2 * AnswerCommitment.encode(c).byteLength + 256) return 'the commitment carries more bytes than its fields need'
  if (c.jobId !== expected.jobId || c.pieceId !== expected.pieceId || c.modelCid !== expected.modelCid) return `the commitment names job ${c.jobId.slice(0, 128)} piece ${c.pieceId} of model ${c.modelCid.slice(0, 128)}, not this piece`
  if (expected.inputsSha256 != null && !equals(c.inputsSha256, expected.inputsSha256)) return 'the commitment\'s inputs hash is not that of the inputs sent'
  if (!sameTensorInfos(c.outputs, expected.outputs)) return 'the commitment\'s outputs are not the answer\'s'
  if (expected.outputsSha256 != null && !equals(c.outputsSha256, expected.outputsSha256)) return 'the commitment\'s outputs hash is not that of the output bytes received'
  return undefined
}
