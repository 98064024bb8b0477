import type { Logger, PeerId, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { BLOCK_PROTOCOL, BlockRequest, BlockResponse, InvalidMessageError, MAX_BLOCK_BYTES, MAX_BLOCK_MESSAGE_BYTES } from '@shoal/protocol'
import type { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { equals as uint8ArrayEquals } from 'uint8arrays/equals'
import { lpStream } from '@libp2p/utils'
import { BLOCK_ANSWER_TIMEOUT_MS, BLOCK_SERVE_CONCURRENCY, BLOCK_SERVE_PER_PEER, BLOCK_STREAM_IDLE_MS, BLOCK_STREAMS_PER_CONNECTION, HEADER_TIMEOUT_MS } from '../constants.js'
import { frames, readData, readMessage, writeData, writeMessage } from '../pieces/frames.js'
import type { Frames } from '../pieces/frames.js'
import type { BlockExchange } from './fetch-engine.js'
import { decodeBlockCid } from './model-cid.js'
import type { ServedBlocks } from './bitswap-exchange.js'
import type { SwarmHost } from './swarm-host.js'

/** A block that does not hash to the CID it was sent for. */
export class BadBlockError extends Error {
  override name = 'BadBlockError'
}

/** The provider answered BUSY, or this node has no stream to spare for it: ask again later, or another. */
export class ProviderBusyError extends Error {
  override name = 'ProviderBusyError'
}

/**
 * What a server buffers of a block stream ahead of reading it: requests are 256 bytes at most, so a
 * peer that sends more than a few before reading answers is sending something else (the stream is
 * aborted past this; a stream's default buffer is 17 MiB, times 32 streams a connection).
 */
const SERVER_READ_BUFFER_BYTES = 64 * 1024

/** After its last answer a server waits this long for the fetcher to close its side, then resets the stream. */
const SERVER_LINGER_MS = 2000

/** Peers remembered as speaking bitswap only (the oldest forgotten first). */
const MAX_FALLBACK_PEERS = 4096

interface OpenStream { stream: Stream, lp: Frames, idle?: ReturnType<typeof setTimeout> }

export interface BlockExchangeOptions {
  /** Blocks sent at once to all peers together; requests beyond are answered BUSY. */
  serveConcurrency?: number
  /** Blocks sent at once to one peer; requests beyond are answered BUSY. */
  servePerPeer?: number
  /** A served stream with no request for this long is closed (a fetcher closes its idle streams after a quarter of it). */
  streamIdleMs?: number
}

/**
 * `/shoal/block/1.0.0` (docs/protocol.md 7.3): one block per request, one request at a time on a
 * stream, streams kept open between requests. The server side serves `served` with a bound on blocks
 * in flight and a deadline on every stream; the client side checks every block against its CID.
 */
export class ShoalBlockExchange implements BlockExchange {
  private readonly libp2p: SwarmHost
  private readonly served: ServedBlocks
  private readonly log: Logger
  /** Idle streams per peer, ready for the next request. */
  private readonly idle = new Map<string, OpenStream[]>()
  /** Streams being served now, aborted when the node stops. */
  private readonly inbound = new Set<Stream>()
  private serving = 0
  /** Blocks being sent, per peer. */
  private readonly servingTo = new Map<string, number>()
  private readonly serveConcurrency: number
  private readonly servePerPeer: number
  private readonly streamIdleMs: number

  constructor (libp2p: SwarmHost, served: ServedBlocks, options: BlockExchangeOptions = {}) {
    this.libp2p = libp2p
    this.served = served
    this.serveConcurrency = options.serveConcurrency ?? BLOCK_SERVE_CONCURRENCY
    this.servePerPeer = options.servePerPeer ?? BLOCK_SERVE_PER_PEER
    this.streamIdleMs = options.streamIdleMs ?? BLOCK_STREAM_IDLE_MS
    this.log = libp2p.logger.forComponent('shoal:block')
  }

  async start (): Promise<void> {
    const limits = { maxInboundStreams: BLOCK_STREAMS_PER_CONNECTION, maxOutboundStreams: BLOCK_STREAMS_PER_CONNECTION }
    await this.libp2p.handle(BLOCK_PROTOCOL, (stream, connection) => { void this.serve(stream, connection.remotePeer) }, limits)
  }

  async stop (): Promise<void> {
    this.stopped = true
    await this.libp2p.unhandle(BLOCK_PROTOCOL)
    for (const stream of this.inbound) stream.abort(new Error('the node is stopping'))
    for (const streams of this.idle.values()) for (const s of streams) this.discard(s)
    this.idle.clear()
  }

  private stopped = false

  /** Serves one stream: requests one after another until the peer closes it or stays silent too long. */
  private async serve (stream: Stream, peer: PeerId): Promise<void> {
    // requests are small: a frame over MAX_BLOCK_MESSAGE_BYTES is refused before it is buffered
    const lp = lpStream(stream, { maxDataLength: MAX_BLOCK_MESSAGE_BYTES, maxBufferSize: SERVER_READ_BUFFER_BYTES })
    this.inbound.add(stream)
    try {
      for (;;) {
        let request: BlockRequest
        try {
          request = await readMessage(lp, BlockRequest, AbortSignal.timeout(this.streamIdleMs), 'block request', MAX_BLOCK_MESSAGE_BYTES)
        } catch (err: any) {
          // the peer closed its side (done) or went silent: the stream ends; anything else it sent is no request
          const ended = err?.name === 'UnexpectedEOFError' || err?.name === 'TimeoutError' || err?.name === 'AbortError' || stream.readStatus !== 'readable'
          if (!ended) await this.answer(lp, { code: BlockResponse.Code.BAD_REQUEST, size: 0 })
          break
        }
        let cid: CID
        try {
          cid = decodeBlockCid(request.cid)
        } catch {
          await this.answer(lp, { code: BlockResponse.Code.BAD_REQUEST, size: 0 })
          break
        }
        const key = peer.toString()
        const mine = this.servingTo.get(key) ?? 0
        if (this.serving >= this.serveConcurrency || mine >= this.servePerPeer) {
          await this.answer(lp, { code: BlockResponse.Code.BUSY, size: 0 })
          continue
        }
        this.serving++
        this.servingTo.set(key, mine + 1)
        try {
          // the whole answer, reading the block included, within BLOCK_ANSWER_TIMEOUT_MS of the request
          const signal = AbortSignal.timeout(BLOCK_ANSWER_TIMEOUT_MS)
          // one read: a block this node lacks (or that eviction removed) fails it, and is DONT_HAVE
          const block = await this.served.get(cid).catch(() => null)
          if (block == null || block.byteLength === 0 || block.byteLength > MAX_BLOCK_BYTES) {
            await this.answer(lp, { code: BlockResponse.Code.DONT_HAVE, size: 0 })
            continue
          }
          await writeMessage(lp, BlockResponse, { code: BlockResponse.Code.OK, size: block.byteLength }, signal)
          await writeData(lp, [block], signal)
        } finally {
          this.serving--
          const left = (this.servingTo.get(key) ?? 1) - 1
          if (left > 0) this.servingTo.set(key, left)
          else this.servingTo.delete(key)
        }
      }
      await stream.close({ signal: AbortSignal.timeout(SERVER_LINGER_MS) })
      // close() ends our side only: a peer that keeps its side open would keep the stream for good
      if (stream.status === 'open') setTimeout(() => { if (stream.status === 'open') stream.abort(new Error('the fetcher did not close its side')) }, SERVER_LINGER_MS).unref()
    } catch (err: any) {
      this.log('serving blocks to %p failed - %s', peer, err.message)
      stream.abort(err)
    } finally {
      this.inbound.delete(stream)
    }
  }

  private async answer (lp: Frames, response: BlockResponse): Promise<void> {
    await writeMessage(lp, BlockResponse, response, AbortSignal.timeout(HEADER_TIMEOUT_MS))
  }

  async want (peer: string, block: CID, signal: AbortSignal): Promise<Uint8Array | null> {
    if (this.stopped) throw new Error('the block exchange is stopped')
    const open = this.reusable(peer) ?? await this.open(peer, signal)
    let response: BlockResponse
    let bytes: Uint8Array | undefined
    try {
      await writeMessage(open.lp, BlockRequest, { cid: block.bytes }, signal)
      response = await readMessage(open.lp, BlockResponse, signal, 'block response', MAX_BLOCK_MESSAGE_BYTES)
      if (response.code === BlockResponse.Code.OK) {
        if (response.size < 1 || response.size > MAX_BLOCK_BYTES) throw new InvalidMessageError('too-large', `block response: a block of ${response.size} bytes (1 to ${MAX_BLOCK_BYTES})`)
        bytes = await readData(open.lp, response.size, signal, 'block')
      }
    } catch (err) {
      this.discard(open, err as Error)
      throw err
    }
    if (response.code === BlockResponse.Code.BAD_REQUEST) {
      this.discard(open)
      throw new InvalidMessageError('malformed', `${peer} refused the request for ${block.toString()} as malformed`)
    }
    this.release(peer, open)
    if (response.code === BlockResponse.Code.BUSY) throw new ProviderBusyError(`${peer} is serving too many blocks`)
    if (bytes == null) return null
    // the fetch that asked drops the provider (and no other fetch hears of it: each strike is one)
    if (!uint8ArrayEquals((await sha256.digest(bytes)).digest, block.multihash.digest)) throw new BadBlockError(`${peer} sent a block that does not hash to ${block.toString()}`)
    return bytes
  }

  /** Nothing to forget: a request is over once answered. */
  async forget (): Promise<void> {}

  /** Every block answers a request: none arrives unasked, and a wrong one is the asking fetch's `BadBlockError`. */
  onBlock (): () => void {
    return () => {}
  }

  /** An idle stream to `peer` that is still open both ways, if there is one. */
  private reusable (peer: string): OpenStream | undefined {
    const streams = this.idle.get(peer)
    for (let open = streams?.pop(); open != null; open = streams?.pop()) {
      if (open.idle != null) clearTimeout(open.idle)
      if (open.stream.status === 'open' && open.stream.writeStatus === 'writable' && open.stream.readStatus === 'readable') return open
      this.discard(open)
    }
    return undefined
  }

  private async open (peer: string, signal: AbortSignal): Promise<OpenStream> {
    try {
      const stream = await this.libp2p.dialProtocol(peerIdFromString(peer), BLOCK_PROTOCOL, { signal })
      return { stream, lp: frames(stream) }
    } catch (err: any) {
      // this node's own limit on streams to that peer (several fetches asking it at once): not the peer's fault
      if (err?.name === 'TooManyOutboundProtocolStreamsError') throw new ProviderBusyError(`no block stream to spare for ${peer} (${String(err.message)})`)
      throw err
    }
  }

  /** Keeps a stream for the next request to that peer, closing it if none comes soon. */
  private release (peer: string, open: OpenStream): void {
    if (this.stopped) {
      this.discard(open)
      return
    }
    let streams = this.idle.get(peer)
    if (streams == null) this.idle.set(peer, streams = [])
    streams.push(open)
    open.idle = setTimeout(() => {
      const list = this.idle.get(peer)
      const i = list?.indexOf(open) ?? -1
      if (i >= 0) list?.splice(i, 1)
      if (list?.length === 0) this.idle.delete(peer)
      void open.stream.close({ signal: AbortSignal.timeout(2000) }).catch(() => { open.stream.abort(new Error('closing an idle block stream failed')) })
    }, this.streamIdleMs / 4)
    open.idle.unref?.()
  }

  private discard (open: OpenStream, err: Error = new Error('block stream no longer needed')): void {
    if (open.idle != null) clearTimeout(open.idle)
    open.stream.abort(err)
  }
}

/**
 * Asks each peer over `primary` unless it does not speak that protocol, then over `fallback` (peers of
 * an older release that serve bitswap only). Blocks reported by either reach the listeners.
 */
export class FallbackExchange implements BlockExchange {
  private readonly primary: BlockExchange
  private readonly fallback: BlockExchange
  /** Peers that answered `na` to the primary protocol (forgotten past this many, oldest first). */
  private readonly fallbackPeers = new Set<string>()

  constructor (primary: BlockExchange, fallback: BlockExchange) {
    this.primary = primary
    this.fallback = fallback
  }

  async want (peer: string, block: CID, signal: AbortSignal): Promise<Uint8Array | null> {
    if (!this.fallbackPeers.has(peer)) {
      try {
        return await this.primary.want(peer, block, signal)
      } catch (err: any) {
        if (err?.name !== 'UnsupportedProtocolError') throw err
        this.fallbackPeers.add(peer)
        if (this.fallbackPeers.size > MAX_FALLBACK_PEERS) this.fallbackPeers.delete(this.fallbackPeers.values().next().value as string)
      }
    }
    return await this.fallback.want(peer, block, signal)
  }

  async forget (peer: string, blocks: CID[]): Promise<void> {
    await (this.fallbackPeers.has(peer) ? this.fallback : this.primary).forget(peer, blocks)
  }

  onBlock (listener: (sender: string, digest: string, bytes: Uint8Array) => void): () => void {
    const off = [this.primary.onBlock(listener), this.fallback.onBlock(listener)]
    return () => { for (const f of off) f() }
  }
}
