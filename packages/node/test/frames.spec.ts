import { streamPair } from '@libp2p/utils'
import { InferRequest, MAX_FRAME_BYTES } from '@shoal/protocol'
import { describe, expect, it } from 'vitest'
import { frames, readData, readMessage, writeData, writeMessage } from '../src/frames.js'

const signal = (): AbortSignal => AbortSignal.timeout(5000)

describe('frames', () => {
  it('carries a header and a large buffer in 1 MiB data frames', async () => {
    const [a, b] = await streamPair()
    const data = Uint8Array.from({ length: 2.5 * MAX_FRAME_BYTES }, (_, i) => i % 251)
    const sent = (async () => {
      const lp = frames(a)
      await writeMessage(lp, InferRequest, { jobId: 'j', pieceId: 3, modelCid: 'm', inputs: [], deadlineMs: 5 }, signal())
      await writeData(lp, [data], signal())
    })()
    const lp = frames(b)
    const header = await readMessage(lp, InferRequest, signal(), 'test')
    expect(header).toMatchObject({ jobId: 'j', pieceId: 3 })
    const received = await readData(lp, data.byteLength, signal(), 'test')
    await sent
    expect(Buffer.from(received).equals(Buffer.from(data))).toBe(true)
  })

  it('refuses data frames that overrun what the header announced', async () => {
    const [a, b] = await streamPair()
    void writeData(frames(a), [new Uint8Array(100)], signal()).catch(() => {})
    await expect(readData(frames(b), 60, signal(), 'test')).rejects.toThrow(/do not add up to the 60 bytes announced/)
  })

  it('refuses a header that is not the expected message', async () => {
    const [a, b] = await streamPair()
    void frames(a).write(Uint8Array.from([0xff, 0xff, 0xff]), { signal: signal() }).catch(() => {})
    await expect(readMessage(frames(b), InferRequest, signal(), 'test header')).rejects.toMatchObject({ name: 'InvalidMessageError', reason: 'malformed' })
  })

  it('refuses a frame longer than 1 MiB before reading it', async () => {
    const [a, b] = await streamPair()
    // a varint length of 2 MiB, and no more
    a.send(Uint8Array.from([0x80, 0x80, 0x80, 0x01]))
    await expect(frames(b).read({ signal: signal() })).rejects.toThrow(/too long|length/i)
  })
})
