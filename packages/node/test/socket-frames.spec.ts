import { createServer, connect } from 'node:net'
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import { InferRequest, MAX_FRAME_BYTES } from '@shoal/protocol'
import { afterEach, describe, expect, it } from 'vitest'
import { SocketFrames } from '../src/pieces/direct-channel.js'
import { readData, readMessage, SMALL_WRITE_BYTES, writeData, writeMessage, writeMessageAndData } from '../src/pieces/frames.js'

// SocketFrames runs over TLS in production; its framing only needs a socket, so these tests use a
// plain loopback TCP pair and write raw bytes where they need to.

const signal = (): AbortSignal => AbortSignal.timeout(5000)
const open: Socket[] = []
afterEach(() => { for (const s of open.splice(0)) s.destroy() })

async function socketPair (): Promise<[Socket, Socket]> {
  const server = createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const accepted = new Promise<Socket>(resolve => server.once('connection', resolve))
  const port = (server.address() as { port: number }).port
  const client = connect(port, '127.0.0.1')
  await new Promise(resolve => client.once('connect', resolve))
  const other = await accepted
  server.close()
  open.push(client, other)
  return [client, other]
}

const framesOn = (socket: Socket, max = MAX_FRAME_BYTES): SocketFrames => new SocketFrames(socket as TLSSocket, max)

describe('SocketFrames: the direct channel\'s framing', () => {
  it('carries a header and 2.5 MiB of data frames, read slower than written', async () => {
    const [a, b] = await socketPair()
    const data = Uint8Array.from({ length: 2.5 * MAX_FRAME_BYTES }, (_, i) => i % 251)
    const sender = framesOn(a)
    const sent = (async () => {
      await writeMessage(sender.frames, InferRequest, { jobId: 'j', pieceId: 3, modelCid: 'm', inputs: [], deadlineMs: 5 }, signal())
      await writeData(sender.frames, [data, data], signal())
    })()
    const receiver = framesOn(b)
    expect(await readMessage(receiver.frames, InferRequest, signal(), 'test')).toMatchObject({ jobId: 'j', pieceId: 3 })
    await new Promise(resolve => setTimeout(resolve, 50)) // the sender runs ahead
    const received = await readData(receiver.frames, 2 * data.byteLength, signal(), 'test')
    await sent
    expect(Buffer.from(received.subarray(0, data.byteLength)).equals(Buffer.from(data))).toBe(true)
    expect(Buffer.from(received.subarray(data.byteLength)).equals(Buffer.from(data))).toBe(true)
  })

  it('a small header and its data go out in one write; large data after the header, in frames', async () => {
    const [a, b] = await socketPair()
    const writes: number[] = []
    const write = a.write.bind(a)
    a.write = ((chunk: Uint8Array, ...rest: any[]) => { writes.push(chunk.byteLength); return write(chunk, ...rest) }) as typeof a.write
    const sender = framesOn(a)
    const receiver = framesOn(b)
    const header = { jobId: 'j', pieceId: 3, modelCid: 'm', inputs: [], deadlineMs: 5 }
    const small = [Uint8Array.from([1, 2, 3]), new Uint8Array(0), Uint8Array.from([4])]
    await writeMessageAndData(sender.frames, InferRequest, header, small, signal())
    expect(writes).toHaveLength(1)
    expect(await readMessage(receiver.frames, InferRequest, signal(), 'test')).toMatchObject({ jobId: 'j', pieceId: 3 })
    expect([...await readData(receiver.frames, 4, signal(), 'test')]).toEqual([1, 2, 3, 4])
    writes.length = 0
    const large = new Uint8Array(SMALL_WRITE_BYTES + 1).fill(9)
    const sent = writeMessageAndData(sender.frames, InferRequest, header, [large], signal())
    expect(await readMessage(receiver.frames, InferRequest, signal(), 'test')).toMatchObject({ pieceId: 3 })
    expect(Buffer.from(await readData(receiver.frames, large.byteLength, signal(), 'test')).equals(Buffer.from(large))).toBe(true)
    await sent
    expect(writes.length).toBeGreaterThan(1)
  })

  it('reassembles frames whose bytes arrive one at a time, and splits several frames sent at once', async () => {
    const [a, b] = await socketPair()
    const receiver = framesOn(b)
    // a 300-byte frame (two-byte length prefix 0xac 0x02), written a byte at a time
    const body = Uint8Array.from({ length: 300 }, (_, i) => i % 7)
    const bytes = [0xac, 0x02, ...body]
    const reading = receiver.frames.read({ signal: signal() })
    for (const byte of bytes) {
      a.write(Uint8Array.from([byte]))
      await new Promise(resolve => setImmediate(resolve))
    }
    expect([...(await reading).subarray()]).toEqual([...body])
    // three frames in one write
    a.write(Uint8Array.from([1, 9, 2, 8, 8, 0, 3, 7, 7, 7]))
    expect([...(await receiver.frames.read({ signal: signal() })).subarray()]).toEqual([9])
    expect([...(await receiver.frames.read({ signal: signal() })).subarray()]).toEqual([8, 8])
    expect((await receiver.frames.read({ signal: signal() })).byteLength).toBe(0)
    expect([...(await receiver.frames.read({ signal: signal() })).subarray()]).toEqual([7, 7, 7])
  })

  it('refuses a frame longer than the limit from its length alone, and a length that is not a varint', async () => {
    const [a, b] = await socketPair()
    a.write(Uint8Array.from([0x80, 0x80, 0x40])) // 1 MiB: one byte over a 1 MiB - 1 limit
    await expect(framesOn(b, MAX_FRAME_BYTES - 1).frames.read({ signal: signal() })).rejects.toThrow(/frame of 1048576 bytes is over the 1048575-byte limit/)
    const [c, d] = await socketPair()
    c.write(new Uint8Array(9).fill(0xff))
    await expect(framesOn(d).frames.read({ signal: signal() })).rejects.toThrow(/not a valid varint/)
  })

  it('a connection that ends mid-frame is an error, not a short frame; a read gives up with its signal', async () => {
    const [a, b] = await socketPair()
    const receiver = framesOn(b)
    a.end(Uint8Array.from([10, 1, 2, 3]))
    await expect(receiver.frames.read({ signal: signal() })).rejects.toThrow(/ended in the middle/)
    const [, d] = await socketPair()
    await expect(framesOn(d).frames.read({ signal: AbortSignal.timeout(50) })).rejects.toThrow()
  })

  it('a write after the connection closed fails at once', async () => {
    const [a] = await socketPair()
    const sender = framesOn(a)
    sender.abort(new Error('gone'))
    await expect(sender.frames.write(new Uint8Array(2 * MAX_FRAME_BYTES).subarray(0, MAX_FRAME_BYTES), { signal: signal() })).rejects.toThrow(/gone|closed/)
  })
})
