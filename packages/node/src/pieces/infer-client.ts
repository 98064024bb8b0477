import type { PeerId, Stream } from '@libp2p/interface'
import { commitmentMismatch, commitmentPayload, INFER_PROTOCOL, InferRequest, InferResponse, InvalidMessageError, sha256Of, toTensorInfo, validateTensorInfos } from '@shoal/protocol'
import type { TensorHeader } from '@shoal/protocol'
import type { Tensor } from '@shoal/runtime'
import { PublicKeyCache } from './ed25519-keys.js'
import { readDataInto, readMessage, streamChannel, writeMessageAndData } from './frames.js'
import type { Channel } from './frames.js'
import { PieceError } from './inference-service.js'

export interface PieceRequest {
  jobId: string
  pieceId: number
  modelCid: string
  inputs: Record<string, Tensor>
  /** Time the worker has for the piece, from when it reads the request. */
  deadlineMs: number
  /** Largest answer accepted (output bytes). */
  maxResponseBytes: number
  /**
   * Where the answer's outputs are to be read: asked once the answer's (validated) header is in,
   * one buffer per output in the header's order, each of its byte length; undefined (or no `into`):
   * fresh buffers. The caller answers only for a header it expects; its buffers are written until
   * this call settles or its signal aborts, whichever comes first, whatever comes of the answer.
   */
  into?: (outputs: TensorHeader[]) => Uint8Array[] | undefined
}

export interface PieceResult {
  outputs: Record<string, Tensor>
  computeMs: number
  provider: string
  /** The piece went over a direct data channel (direct-channel.ts), not a libp2p stream. */
  direct?: boolean
  /** The worker's signed commitment to this answer (docs/protocol.md 6.3); absent from a worker that does not sign. */
  commitment?: SignedCommitment
}

/** An encoded AnswerCommitment and the worker's signature over COMMITMENT_PREFIX and it. */
export interface SignedCommitment {
  commitment: Uint8Array
  signature: Uint8Array
  /**
   * The checks left for when the answer is to be kept as evidence: the hashes of the inputs and
   * outputs, and the signature. Undefined: it passes; else why not. Absent: checked already.
   */
  check?: () => string | undefined
}

/**
 * Sends one piece to a peer over /shoal/infer/1.0.0 and returns its outputs. Throws PieceError with
 * the worker's code when it answers with an error; anything else thrown means the peer or the stream
 * failed (treated as a disconnect). `signal` cancels: the stream is reset and the worker stops sending.
 */
export type Dial = (peer: PeerId, protocol: string, options: { signal: AbortSignal, negotiateFully?: boolean }) => Promise<Stream>

/** No stream to the peer could be opened: the piece never left this node (the peer is most likely gone). */
export class PeerUnreachableError extends Error {
  override name = 'PeerUnreachableError'
}

/**
 * Opens a direct data channel for /shoal/infer/1.0.0 to a peer, or resolves undefined when there is
 * none to be had (the piece then goes over a libp2p stream). The channel may be a connection kept
 * from an earlier piece (`reused`); `fresh` asks for a new one.
 */
export type OpenDirect = (peer: PeerId, signal: AbortSignal, fresh?: boolean) => Promise<(Channel & { reused?: boolean }) | undefined>

/**
 * An answer that broke the protocol (not a valid InferResponse, a frame over the limit, tensors that do
 * not add up): the worker's fault, not the link's. A connection that ended mid-answer is not one of
 * them: a worker that died looks the same.
 */
export function isMalformedAnswer (err: any): boolean {
  if (err instanceof InvalidMessageError) return err.reason !== 'truncated'
  // @libp2p/utils' length-prefixed reader: a length over the frame limit, or not a valid varint
  return err?.name === 'InvalidDataLengthError' || err?.name === 'InvalidDataLengthLengthError'
}

/**
 * Runs one piece on `peer`: over a direct data channel when `openDirect` gets one, else over a new
 * /shoal/infer/1.0.0 stream. Every piece goes direct when it can: with connections kept between
 * pieces that is faster at every size (`pnpm bench jobs`, one piece by size: 0.2-0.5x a stream's time;
 * a tiny piece's dispatch overhead ~0.6 ms against ~2 ms); with a new connection per piece only
 * pieces of 1 MiB and more were worth one.
 */
export async function runRemotePiece (dial: Dial, peer: PeerId, request: PieceRequest, signal: AbortSignal, openDirect?: OpenDirect): Promise<PieceResult> {
  const open = async (fresh: boolean): Promise<Channel & { reused?: boolean }> => {
    const direct = await openDirect?.(peer, signal, fresh)
    if (direct != null) return direct
    try {
      // the request goes out with the protocol selection: no round trip waiting for the worker to confirm
      return streamChannel(await dial(peer, INFER_PROTOCOL, { signal, negotiateFully: false }))
    } catch (err: any) {
      if (signal.aborted) throw err
      throw new PeerUnreachableError(String(err.message ?? err))
    }
  }
  const channel = await open(false)
  const state = { answered: false }
  try {
    return await exchange(channel, peer, request, signal, state)
  } catch (err: any) {
    // A kept connection can have died since its last piece (the worker restarted, or dropped it) with
    // the news still on its way: if nothing came back on it, the piece goes once more on a new one.
    // (an answer that came but was malformed is the worker's, not the connection's)
    if (channel.reused !== true || state.answered || err instanceof PieceError || isMalformedAnswer(err) || signal.aborted) throw err
    try {
      return await exchange(await open(true), peer, request, signal, state)
    } catch (again: any) {
      // the peer is gone, not unreachable from the start: the piece did go out, and failed with it
      throw again instanceof PeerUnreachableError ? err : again
    }
  }
}

/** One exchange of /shoal/infer/1.0.0 on `channel`; `state.answered` once the worker's answer began. */
async function exchange (channel: Channel, peer: PeerId, request: PieceRequest, signal: AbortSignal, state: { answered: boolean }): Promise<PieceResult> {
  const entries = Object.entries(request.inputs)
  const direct = channel.kind === 'direct'
  try {
    const lp = channel.frames
    // A worker that refuses early (overloaded, bad header) may stop reading: its answer still comes.
    await writeMessageAndData(lp, InferRequest, {
      jobId: request.jobId,
      pieceId: request.pieceId,
      modelCid: request.modelCid,
      inputs: entries.map(([name, t]) => toTensorInfo({ name, dtype: t.dtype, dims: t.dims, byteLength: t.data.byteLength })),
      deadlineMs: Math.max(1, Math.round(request.deadlineMs))
    }, entries.map(([, t]) => t.data), signal, () => {})
    const response = await readMessage(lp, InferResponse, signal, 'infer response')
    state.answered = true
    if (response.code !== InferResponse.Code.OK) {
      throw new PieceError(response.code, response.message.slice(0, 1000))
    }
    const headers = validateTensorInfos(response.outputs, request.maxResponseBytes, 'infer response')
    const given = request.into?.(headers)
    const parts = given != null && given.length === headers.length && given.every((b, i) => b.byteLength === headers[i].byteLength)
      ? given
      : splitBuffer(new Uint8Array(headers.reduce((n, h) => n + h.byteLength, 0)), headers)
    await readDataInto(lp, parts, signal, 'infer response')
    const outputs: Record<string, Tensor> = {}
    for (const [i, h] of headers.entries()) outputs[h.name] = { dtype: h.dtype, dims: h.dims, data: parts[i] }
    const commitment = await checkCommitment(response, peer, request, parts)
    await channel.close({ signal }).catch(() => {})
    const computeMs = response.computeUs > 0 ? response.computeUs / 1000 : response.computeMs
    return { outputs, computeMs, provider: response.provider, direct, ...(commitment != null ? { commitment } : {}) }
  } catch (err: any) {
    channel.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  }
}

/** One buffer cut into the headers' byte lengths, in order. */
function splitBuffer (data: Uint8Array, headers: TensorHeader[]): Uint8Array[] {
  let offset = 0
  return headers.map(h => data.subarray(offset, (offset += h.byteLength)))
}

/** Workers' public keys, as key objects (bounded): every answer's commitment is verified with one. */
const workerKeys = new PublicKeyCache()

/**
 * A commitment that comes with an answer must describe it and be signed by the worker. What needs no
 * hashing (the piece, job and model it names, the outputs it lists, its size) is checked now: a
 * commitment that fails refuses the answer as malformed (BAD_ANSWER). The hashes and an Ed25519
 * signature are checked only if the answer is to be kept as evidence (`check`): an answer never proven
 * wrong needs no proof, and an unsigned one is accepted anyway, so a bad commitment is no worse than
 * none; hashing every answer's outputs cost the submitter a fifth of its time on a batch of large
 * outputs. Other key types are checked in full now. None is accepted (a worker that does not sign),
 * as is one from a peer whose id does not hold its public key (an RSA key): nothing to check it with.
 */
async function checkCommitment (response: InferResponse, peer: PeerId, request: PieceRequest, data: Uint8Array[]): Promise<SignedCommitment | undefined> {
  if (response.commitment.byteLength === 0 && response.commitmentSignature.byteLength === 0) return undefined
  const names = { jobId: request.jobId, pieceId: request.pieceId, modelCid: request.modelCid, outputs: response.outputs }
  const hashes = (): { inputsSha256: Uint8Array, outputsSha256: Uint8Array } => ({ inputsSha256: sha256Of(Object.values(request.inputs).map(t => t.data)), outputsSha256: sha256Of(data) })
  const key = peer.publicKey
  const signed = { commitment: response.commitment, signature: response.commitmentSignature }
  if (key?.type === 'Ed25519') {
    const problem = commitmentMismatch(response.commitment, names)
    if (problem != null) throw new InvalidMessageError('commitment', `infer response: ${problem}`)
    return {
      ...signed,
      check: () => commitmentMismatch(response.commitment, { ...names, ...hashes() }) ??
        (workerKeys.verifyEd25519(key, commitmentPayload(response.commitment), response.commitmentSignature) ? undefined : 'the commitment is not signed by the worker')
    }
  }
  const problem = commitmentMismatch(response.commitment, { ...names, ...hashes() })
  if (problem != null) throw new InvalidMessageError('commitment', `infer response: ${problem}`)
  if (key == null) return undefined
  const ok = await workerKeys.verify(key, commitmentPayload(response.commitment), response.commitmentSignature)
  if (!ok) throw new InvalidMessageError('commitment', 'infer response: the commitment is not signed by the worker')
  return signed
}
