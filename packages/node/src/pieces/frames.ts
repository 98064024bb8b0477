import { lpStream } from '@libp2p/utils'
import type { AbortOptions, Stream } from '@libp2p/interface'
import type { Uint8ArrayList } from 'uint8arraylist'
import { DATA_FRAME_BYTES, InvalidMessageError, MAX_FRAME_BYTES, MAX_HEADER_FRAME_BYTES } from '@shoal/protocol'

/**
 * Framing of Shoal's request/response protocols: every frame is an unsigned-varint length and that many
 * bytes, at most MAX_FRAME_BYTES; header frames are protobuf messages of at most 64 KiB; data frames
 * carry raw tensor or model bytes. The limit is enforced by the decoder before a frame is buffered.
 */
export interface Frames {
  read: (options?: AbortOptions) => Promise<Uint8ArrayList>
  write: (bytes: Uint8Array | Uint8ArrayList, options?: AbortOptions) => Promise<void>
  /** Several small frames in one write (one TLS record, one system call), where the channel can. */
  writeSmall?: (frames: Uint8Array[], options?: AbortOptions) => Promise<void>
}

/** Frames of at most this many bytes in all are copied behind their length prefixes and go out in one write where the channel can (`writeSmall`). */
export const SMALL_WRITE_BYTES = 64 * 1024

/**
 * One exchange's frames and the means to end it: a libp2p stream (`streamChannel`), or a direct TLS
 * connection (direct-channel.ts) that carries the same frames.
 */
export interface Channel {
  /** What carries the frames. */
  readonly kind: 'stream' | 'direct'
  readonly frames: Frames
  /**
   * Finishes writing; the exchange is over. `final`: nothing more may follow on the connection (a
   * direct connection kept for further exchanges is closed after this one; a stream is always closed).
   */
  close: (options?: AbortOptions & { final?: boolean }) => Promise<void>
  /** Ends the exchange at once (the other side sees a reset). */
  abort: (err: Error) => void
}

/**
 * Bytes a stream may buffer ahead of its reader. libp2p's default (4 MiB) is below Yamux's largest
 * window (16 MiB): a reader that falls behind a fast sender (a busy worker, a loaded machine) had its
 * stream aborted with "Read buffer overflow" mid-tensor. A window plus a frame fits.
 */
const READ_BUFFER_BYTES = 16 * 1024 * 1024 + MAX_FRAME_BYTES

export function frames (stream: Stream): Frames {
  return lpStream(stream, { maxDataLength: MAX_FRAME_BYTES, maxBufferSize: READ_BUFFER_BYTES })
}

/** A channel over a libp2p stream. */
export function streamChannel (stream: Stream): Channel {
  return {
    kind: 'stream',
    frames: frames(stream),
    close: async (options) => { await stream.close(options) },
    abort: (err) => { stream.abort(err) }
  }
}

export async function writeMessage<T> (lp: Frames, codec: { encode: (m: T) => Uint8Array }, message: T, signal: AbortSignal): Promise<void> {
  await lp.write(encodeHeader(codec, message), { signal })
}

function encodeHeader<T> (codec: { encode: (m: T) => Uint8Array }, message: T): Uint8Array {
  const bytes = codec.encode(message)
  if (bytes.byteLength > MAX_HEADER_FRAME_BYTES) throw new InvalidMessageError('too-large', `header of ${bytes.byteLength} bytes is over the ${MAX_HEADER_FRAME_BYTES}-byte limit`)
  return bytes
}

export async function readMessage<T> (lp: Frames, codec: { decode: (b: Uint8Array) => T }, signal: AbortSignal, what: string, maxBytes = MAX_HEADER_FRAME_BYTES): Promise<T> {
  const frame = await lp.read({ signal })
  if (frame.byteLength > maxBytes) throw new InvalidMessageError('too-large', `${what}: header of ${frame.byteLength} bytes is over the ${maxBytes}-byte limit`)
  try {
    return codec.decode(frame.subarray())
  } catch (err: any) {
    throw new InvalidMessageError('malformed', `${what}: not a valid message (${err.message})`)
  }
}

/**
 * A header and its data frames: in one write when they are small and the channel can (a request's
 * or an answer's round trip on a kept direct connection is then two system calls, not four);
 * else the header, then the data (`onDataError`: what to do when writing the data fails).
 */
export async function writeMessageAndData<T> (lp: Frames, codec: { encode: (m: T) => Uint8Array }, message: T, buffers: Uint8Array[], signal: AbortSignal, onDataError?: (err: any) => void): Promise<void> {
  const total = buffers.reduce((n, b) => n + b.byteLength, 0)
  if (lp.writeSmall != null && total <= SMALL_WRITE_BYTES) {
    await lp.writeSmall([encodeHeader(codec, message), ...buffers.filter(b => b.byteLength > 0)], { signal })
    return
  }
  await writeMessage(lp, codec, message, signal)
  const data = writeData(lp, buffers, signal)
  await (onDataError != null ? data.catch(onDataError) : data)
}

/** Sends buffers back to back as data frames of at most 1 MiB (views, no copies). */
export async function writeData (lp: Frames, buffers: Uint8Array[], signal: AbortSignal): Promise<void> {
  for (const buffer of buffers) {
    for (let offset = 0; offset < buffer.byteLength; offset += DATA_FRAME_BYTES) {
      await lp.write(buffer.subarray(offset, Math.min(offset + DATA_FRAME_BYTES, buffer.byteLength)), { signal })
    }
  }
}

/** Reads exactly `total` bytes of data frames into one buffer (whose size the caller has validated). */
export async function readData (lp: Frames, total: number, signal: AbortSignal, what: string): Promise<Uint8Array> {
  return (await readDataParts(lp, [total], signal, what))[0]
}

/**
 * Reads data frames into one buffer per part (`sizes`, whose total the caller has validated): a
 * frame may end inside a part or run across parts. Each buffer is the caller's alone.
 */
export async function readDataParts (lp: Frames, sizes: number[], signal: AbortSignal, what: string, onFrame?: () => void): Promise<Uint8Array[]> {
  return await readDataInto(lp, sizes.map(size => new Uint8Array(size)), signal, what, onFrame)
}

/**
 * Reads data frames into the given buffers, filling each in turn (their total the caller has
 * validated). Nothing is written into them after `signal` aborts.
 */
export async function readDataInto (lp: Frames, parts: Uint8Array[], signal: AbortSignal, what: string, onFrame?: () => void): Promise<Uint8Array[]> {
  const total = parts.reduce((n, part) => n + part.byteLength, 0)
  let part = 0
  let offset = 0
  let read = 0
  while (read < total) {
    const frame = await lp.read({ signal })
    // nothing is written once the signal aborts (a caller's buffers are its own again)
    signal.throwIfAborted()
    onFrame?.()
    if (frame.byteLength === 0 || read + frame.byteLength > total) {
      throw new InvalidMessageError('bad-tensor', `${what}: data frames do not add up to the ${total} bytes announced`)
    }
    for (let chunk of frame) {
      read += chunk.byteLength
      while (chunk.byteLength > 0) {
        while (offset === parts[part].byteLength) { part++; offset = 0 }
        const n = Math.min(chunk.byteLength, parts[part].byteLength - offset)
        parts[part].set(chunk.subarray(0, n), offset)
        offset += n
        chunk = chunk.subarray(n)
      }
    }
  }
  return parts
}

/** Reads and discards `total` bytes of data frames (an OVERLOADED answer still lets the client finish writing). */
export async function drainData (lp: Frames, total: number, signal: AbortSignal): Promise<void> {
  let left = total
  while (left > 0) {
    const frame = await lp.read({ signal })
    if (frame.byteLength === 0 || frame.byteLength > left) return
    left -= frame.byteLength
  }
}
