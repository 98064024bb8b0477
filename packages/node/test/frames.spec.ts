import { streamPair } from '@libp2p/utils'
import { InferRequest, MAX_FRAME_BYTES } from '@shoal/protocol'
import { describe, expect, it } from 'vitest'
import { frames, readData, readDataInto, readDataParts, readMessage, writeData, writeMessage } from '../src/pieces/frames.js'
import type { Frames } from '../src/pieces/frames.js'
import { Uint8ArrayList } from 'uint8arraylist'

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

  it('reads data into one buffer per part, whatever the frames\' boundaries', async () => {
    // frames of 3 bytes (each of two chunks) across parts of 5, 0, 1 and 4 bytes
    const bytes = Uint8Array.from({ length: 10 }, (_, i) => i + 1)
    const queued: Uint8ArrayList[] = []
    for (let i = 0; i < bytes.byteLength; i += 3) {
      const frame = bytes.subarray(i, Math.min(i + 3, bytes.byteLength))
      queued.push(new Uint8ArrayList(frame.subarray(0, 1), frame.subarray(1)))
    }
    const lp: Frames = { read: async () => queued.shift()!, write: async () => {} }
    const parts = await readDataParts(lp, [5, 0, 1, 4], signal(), 'test')
    expect(parts.map(p => [...p])).toEqual([[1, 2, 3, 4, 5], [], [6], [7, 8, 9, 10]])
    // each part has a buffer of its own, which a receiver can move to another thread
    expect(parts.every(p => p.byteOffset === 0 && p.byteLength === p.buffer.byteLength)).toBe(true)
    expect(queued).toHaveLength(0)
  })

  it('reads into buffers it is given, and writes nothing into them once its signal aborts', async () => {
    const into = [new Uint8Array(4), new Uint8Array(4)]
    const controller = new AbortController()
    let reads = 0
    // the second frame arrives as the reader is aborted: it must not land in the caller's buffer
    const lp: Frames = {
      read: async () => {
        if (++reads === 2) controller.abort(new Error('the piece was cancelled'))
        return new Uint8ArrayList(Uint8Array.from([reads, reads, reads, reads]))
      },
      write: async () => {}
    }
    await expect(readDataInto(lp, into, controller.signal, 'test')).rejects.toThrow(/cancelled/)
    expect(into.map(p => [...p])).toEqual([[1, 1, 1, 1], [0, 0, 0, 0]])
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
