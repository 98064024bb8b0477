import { lpStream, streamPair } from '@libp2p/utils'
import { MAX_FRAME_BYTES } from '@shoal/protocol'
import { describe, expect, it } from 'vitest'
import { frames, readData, readMessage } from '../src/pieces/frames.js'
import { isMalformedAnswer } from '../src/pieces/infer-client.js'
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
