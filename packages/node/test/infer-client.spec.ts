import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { lpStream, streamPair } from '@libp2p/utils'
import { AnswerCommitment, commitmentPayload, InferRequest, MAX_FRAME_BYTES, sha256Of, toTensorInfo } from '@shoal/protocol'
import type { Tensor } from '@shoal/runtime'
import { describe, expect, it } from 'vitest'
import { frames, readData, readMessage, writeData, writeMessage } from '../src/pieces/frames.js'
import { isMalformedAnswer, runRemotePiece } from '../src/pieces/infer-client.js'
import type { PieceRequest } from '../src/pieces/infer-client.js'
import { InferResponse } from '@shoal/protocol'

const signal = (): AbortSignal => AbortSignal.timeout(5000)

/** What reading an answer throws when the worker sent `bytes` (raw, unframed) and closed. */
async function readFailure (bytes: Uint8Array, read: (lp: ReturnType<typeof frames>) => Promise<unknown>): Promise<unknown> {
  const [a, b] = await streamPair()
  void (async () => { a.send(bytes); await a.close() })()
  return await read(frames(b)).then(() => { throw new Error('expected the read to fail') }, err => err)
}

describe('which failed answers are the worker\'s fault (BAD_ANSWER) and which are a disconnect', () => {
  it('a frame over the 1 MiB limit, an invalid length or an undecodable header is malformed', async () => {
    // a length of 2^21 - 1 bytes
    const tooLong = await readFailure(Uint8Array.from([0xff, 0xff, 0x7f]), async lp => await readMessage(lp, InferResponse, signal(), 'answer'))
    expect((tooLong as Error).name).toBe('InvalidDataLengthError')
    expect(isMalformedAnswer(tooLong)).toBe(true)
    // a length written in 4 bytes: longer than any frame's needs
    const badVarint = await readFailure(Uint8Array.from([0x80, 0x80, 0x80, 0x01]), async lp => await readMessage(lp, InferResponse, signal(), 'answer'))
    expect((badVarint as Error).name).toBe('InvalidDataLengthLengthError')
    expect(isMalformedAnswer(badVarint)).toBe(true)
    // a frame holding field 1 (code) with an undeclared value
    const undecodable = await readFailure(Uint8Array.from([2, 0x08, 0x09]), async lp => await readMessage(lp, InferResponse, signal(), 'answer'))
    expect(isMalformedAnswer(undecodable)).toBe(true)
    expect(String((undecodable as Error).message)).toMatch(/not a valid message/)
  })

  it('an answer cut short by the end of the stream is not: a worker that died looks the same', async () => {
    const [a, b] = await streamPair()
    const writer = lpStream(a, { maxDataLength: MAX_FRAME_BYTES })
    void (async () => { await writer.write(new Uint8Array(10)); await a.close() })()
    const err = await readData(frames(b), 100, signal(), 'answer').then(() => undefined, e => e)
    expect(err).toBeDefined()
    expect(isMalformedAnswer(err)).toBe(false)
  })
})

describe('a worker\'s signed commitment to its answer (docs/protocol.md 6.3)', async () => {
  const x: Tensor = { dtype: 'float32', dims: [2, 2], data: new Uint8Array(Float32Array.from([1, 2, 3, 4]).buffer) }
  const request: PieceRequest = { jobId: 'job-1', pieceId: 3, modelCid: 'bafkreiabc', inputs: { x }, deadlineMs: 5000, maxResponseBytes: 1 << 20 }
  const key = await generateKeyPair('Ed25519')
  const worker = peerIdFromPrivateKey(key)

  /** Runs the piece against a fake worker answering y = x, with the commitment `commit` makes (or none). */
  async function run (commit?: (c: AnswerCommitment) => { commitment: Uint8Array, signature: Uint8Array } | Promise<{ commitment: Uint8Array, signature: Uint8Array }>, piece = request): Promise<unknown> {
    const [client, server] = await streamPair()
    void (async () => {
      const lp = frames(server)
      const req = await readMessage(lp, InferRequest, signal(), 'request')
      const data = await readData(lp, x.data.byteLength, signal(), 'request')
      const outputs = [toTensorInfo({ name: 'y', dtype: 'float32', dims: [2, 2], byteLength: data.byteLength })]
      const signed = commit == null ? undefined : await commit({ jobId: req.jobId, pieceId: req.pieceId, modelCid: req.modelCid, inputsSha256: sha256Of([data]), outputs, outputsSha256: sha256Of([data]) })
      await writeMessage(lp, InferResponse, { code: InferResponse.Code.OK, message: '', outputs, computeMs: 1, computeUs: 1000, provider: 'cpu', commitment: signed?.commitment ?? new Uint8Array(), commitmentSignature: signed?.signature ?? new Uint8Array() }, signal())
      await writeData(lp, [data], signal())
      await server.close()
    })()
    return await runRemotePiece(async () => client, worker, piece, signal()).catch(err => err)
  }
  const sign = async (c: AnswerCommitment): Promise<{ commitment: Uint8Array, signature: Uint8Array }> => {
    const commitment = AnswerCommitment.encode(c)
    return { commitment, signature: await key.sign(commitmentPayload(commitment)) }
  }

  it('a commitment that describes the answer and is signed by the worker is kept with it', async () => {
    const result: any = await run(sign)
    expect(result.outputs.y.data).toEqual(x.data)
    const c = AnswerCommitment.decode(result.commitment.commitment)
    expect(c).toMatchObject({ jobId: 'job-1', pieceId: 3, modelCid: 'bafkreiabc' })
    expect(await worker.publicKey.verify(commitmentPayload(result.commitment.commitment), result.commitment.signature)).toBe(true)
  })

  it('the answer is read into the buffers `into` gives for its header (its hashes still checkable), or into its own when they do not fit', async () => {
    const region = new Uint8Array(64)
    const headers: unknown[] = []
    const result: any = await run(sign, { ...request, into: h => { headers.push(h); return [region.subarray(16, 32)] } })
    expect(headers).toEqual([[{ name: 'y', dtype: 'float32', dims: [2, 2], byteLength: 16 }]])
    expect(result.outputs.y.data.buffer).toBe(region.buffer)
    expect(result.outputs.y.data.byteOffset).toBe(16)
    expect(region.subarray(16, 32)).toEqual(x.data)
    expect(result.commitment.check()).toBeUndefined()
    const small = new Uint8Array(8)
    const own: any = await run(sign, { ...request, into: () => [small] })
    expect(own.outputs.y.data).toEqual(x.data)
    expect(own.outputs.y.data.buffer).not.toBe(small.buffer)
  })

  it('an answer without one is taken (a worker that does not sign), with no evidence', async () => {
    const result: any = await run()
    expect(result.outputs.y.data).toEqual(x.data)
    expect(result.commitment).toBeUndefined()
  })

  it('one for another piece, listing other outputs, or padded is refused as malformed (BAD_ANSWER) at once', async () => {
    const cases: Array<[string, (c: AnswerCommitment) => Promise<{ commitment: Uint8Array, signature: Uint8Array }>, RegExp]> = [
      ['another piece', async c => await sign({ ...c, pieceId: 4 }), /names job job-1 piece 4/],
      ['other outputs listed', async c => await sign({ ...c, outputs: [{ ...c.outputs[0], name: 'z' }] }), /outputs are not the answer's/],
      // padded with an unknown field of 20 KiB: signed, but evidence must not be that big
      ['padding', async c => { const encoded = AnswerCommitment.encode(c); const pad = new Uint8Array(20 * 1024 + 4); pad.set([0xfa, 0x3e, 0x80, 0xa0, 0x01]); const commitment = Uint8Array.from([...encoded, ...pad.subarray(0, 5), ...new Uint8Array(20 * 1024)]); return { commitment, signature: await key.sign(commitmentPayload(commitment)) } }, /more bytes than its fields need/]
    ]
    for (const [what, commit, message] of cases) {
      const err = await run(commit)
      expect(isMalformedAnswer(err), what).toBe(true)
      expect(String((err as Error).message), what).toMatch(message)
    }
  })

  it('hashes that are not the answer\'s, or a signature of another key, are found when the answer is to be evidence, not paid for on every answer', async () => {
    const other = await generateKeyPair('Ed25519')
    const cases: Array<[string, (c: AnswerCommitment) => Promise<{ commitment: Uint8Array, signature: Uint8Array }>, RegExp]> = [
      ['other output bytes', async c => await sign({ ...c, outputsSha256: sha256Of([new Uint8Array(16)]) }), /outputs hash is not that of the output bytes received/],
      ['other inputs', async c => await sign({ ...c, inputsSha256: sha256Of([]) }), /inputs hash is not that of the inputs sent/],
      ['another key', async c => { const commitment = AnswerCommitment.encode(c); return { commitment, signature: await other.sign(commitmentPayload(commitment)) } }, /not signed by the worker/],
      ['no prefix', async c => { const commitment = AnswerCommitment.encode(c); return { commitment, signature: await key.sign(commitment) } }, /not signed by the worker/]
    ]
    for (const [what, commit, message] of cases) {
      const result: any = await run(commit)
      expect(result.outputs.y.data, what).toEqual(x.data)
      expect(result.commitment.check(), what).toMatch(message)
    }
    // and a right one passes the same checks
    const right: any = await run(sign)
    expect(right.commitment.check()).toBeUndefined()
  })
})
