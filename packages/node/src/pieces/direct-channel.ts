import { randomBytes } from 'node:crypto'
import { connect as tlsConnect, createSecureContext, createServer as createTlsServer } from 'node:tls'
import type { SecureContext, Server as TlsServer, TLSSocket } from 'node:tls'
import { serviceCapabilities } from '@libp2p/interface'
import type { AbortOptions, ComponentLogger, Connection, Logger, PeerId, Startable, Stream } from '@libp2p/interface'
import type { Registrar } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'
import {
  DIRECT_CIPHER_SUITES, DIRECT_KEY_BYTES, DIRECT_PROTOCOL, DIRECT_TICKET_BYTES, DirectOffer, DirectRequest,
  InvalidMessageError, MAX_DIRECT_MESSAGE_BYTES
} from '@shoal/protocol'
import { encode as encodeVarint, decode as decodeVarint } from 'uint8-varint'
import { Uint8ArrayList } from 'uint8arraylist'
import {
  DIRECT_CONNECT_TIMEOUT_MS, DIRECT_MAX_CONNECTIONS, DIRECT_READ_BUFFER_BYTES, DIRECT_SERVER_IDLE_MS, DIRECT_TICKET_TTL_MS,
  DIRECT_TICKETS_PER_PEER, DIRECT_TICKETS_TOTAL, HEADER_TIMEOUT_MS
} from '../constants.js'
import { ListenError } from '../errors.js'
import { frames, readMessage, SMALL_WRITE_BYTES, writeMessage } from './frames.js'
import type { Channel, Frames } from './frames.js'

/**
 * The direct data channel (docs/protocol.md 6.1). Tensor bytes on a libp2p stream pass through Noise,
 * Yamux and libp2p's stream layers, all in JavaScript: about 110-175 MB/s on loopback against 1-2 GB/s
 * for a raw socket. A piece with big tensors can instead run its protocol over a TLS 1.3 connection
 * straight to the worker: OpenSSL encrypts, and the only JavaScript left is the framing.
 *
 * Authentication rides on the libp2p connection: over a /shoal/direct/1.0.0 stream (Noise, so the
 * peer is who its id says) the worker hands out a one-time ticket and a random 32-byte key; the TLS
 * handshake uses that key as an external pre-shared key, so each side proves it holds it, and the
 * worker knows which peer a connection belongs to. No certificates.
 */

/** A frame channel over a TLS socket: the same framing as `frames()` on a libp2p stream. */
export class SocketFrames implements Channel {
  readonly kind = 'direct'
  readonly frames: Frames
  /** Both sides agreed to run several exchanges on this connection, one after another (the offer's `reuse`). */
  reuse = false
  private readonly buffer = new Uint8ArrayList()
  private wake: (() => void) | undefined
  private ended = false
  private failure: Error | undefined
  /** Bytes the buffer must hold before the waiting reader can make progress. */
  private needed = 0

  constructor (readonly socket: TLSSocket, private readonly maxFrameBytes: number) {
    socket.on('data', (chunk: Buffer) => {
      this.buffer.append(chunk)
      if (this.buffer.byteLength >= DIRECT_READ_BUFFER_BYTES) socket.pause()
      // the reader wakes once the frame it waits for is whole, not for every 16 KiB TLS record
      if (this.buffer.byteLength >= this.needed) this.notify()
    })
    socket.on('end', () => { this.ended = true; this.notify() })
    socket.on('error', (err) => { this.failure = err; this.notify() })
    socket.on('close', () => { this.ended = true; this.notify() })
    this.frames = {
      read: async (options) => await this.read(options),
      write: async (bytes, options) => { await this.write(bytes, options) },
      writeSmall: async (frames, options) => { await this.write(new Uint8ArrayList(...frames.flatMap(f => [encodeVarint(f.byteLength), f])), options, true) }
    }
  }

  /**
   * Whether another exchange may start on the connection: it is open both ways and nothing has
   * failed; on the side that starts exchanges, also nothing unread is left of the last one.
   */
  reusable (emptyBuffer: boolean): boolean {
    return this.reuse && this.failure == null && !this.ended && !this.socket.destroyed && this.socket.writable &&
      (!emptyBuffer || this.buffer.byteLength === 0)
  }

  /**
   * Waits for the first bytes of the next exchange: true when they are here, false when the other
   * side ended the connection, it failed, or `idleMs` passed first.
   */
  async waitForData (idleMs: number): Promise<boolean> {
    while (this.buffer.byteLength === 0) {
      if (this.failure != null || this.ended || this.socket.destroyed) return false
      this.needed = 1
      const woke = await new Promise<boolean>(resolve => {
        const timer = setTimeout(() => { this.wake = undefined; resolve(false) }, idleMs)
        this.wake = () => { clearTimeout(timer); resolve(true) }
      })
      if (!woke) return false
    }
    return true
  }

  /**
   * One exchange on a connection kept for several: its `close` leaves the connection open unless
   * `final`, and tells `onEnd` whether the connection may carry another; its `abort` breaks it.
   */
  exchange (onEnd: (kept: boolean) => void): Channel {
    let ended = false
    const end = (kept: boolean): void => {
      if (ended) return
      ended = true
      onEnd(kept)
    }
    return {
      kind: 'direct',
      frames: this.frames,
      close: async (options) => { end(options?.final !== true) },
      abort: (err) => { this.abort(err); end(false) }
    }
  }

  private notify (): void {
    const wake = this.wake
    this.wake = undefined
    wake?.()
  }

  private async read (options: AbortOptions = {}): Promise<Uint8ArrayList> {
    for (;;) {
      const frame = this.takeFrame()
      if (frame instanceof Uint8ArrayList) {
        if (this.buffer.byteLength < DIRECT_READ_BUFFER_BYTES && this.socket.isPaused()) this.socket.resume()
        return frame
      }
      this.needed = frame
      if (this.failure != null) throw this.failure
      if (this.ended) throw new InvalidMessageError('truncated', 'the direct connection ended in the middle of the exchange')
      options.signal?.throwIfAborted()
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => { this.wake = undefined; reject(options.signal?.reason) }
        options.signal?.addEventListener('abort', onAbort, { once: true })
        this.wake = () => { options.signal?.removeEventListener('abort', onAbort); resolve() }
      })
    }
  }

  /**
   * The next whole frame, or while it is still arriving the bytes the buffer must hold for it. A
   * length over the limit is refused before anything is buffered for it.
   */
  private takeFrame (): Uint8ArrayList | number {
    const available = this.buffer.byteLength
    let prefix = 0
    while (prefix < Math.min(available, 9) && (this.buffer.get(prefix) & 0x80) !== 0) prefix++
    if (prefix >= 9) throw new InvalidMessageError('malformed', 'a frame length is not a valid varint')
    if (prefix >= available) return available + 1
    const length = decodeVarint(this.buffer)
    if (length > this.maxFrameBytes) throw new InvalidMessageError('too-large', `a frame of ${length} bytes is over the ${this.maxFrameBytes}-byte limit`)
    if (available < prefix + 1 + length) return prefix + 1 + length
    const frame = this.buffer.sublist(prefix + 1, prefix + 1 + length)
    this.buffer.consume(prefix + 1 + length)
    return frame
  }

  /** Writes one frame, or (`framed`) bytes that are frames already, prefixes and all. */
  private async write (bytes: Uint8Array | Uint8ArrayList, options: AbortOptions = {}, framed = false): Promise<void> {
    options.signal?.throwIfAborted()
    if (this.failure != null) throw this.failure
    // a write to a closed socket would wait for a 'drain' that never comes
    if (this.socket.destroyed || this.socket.writableEnded) throw new Error('the direct connection is closed')
    let more: boolean
    if (framed) {
      more = this.socket.write(bytes.subarray())
    } else if (bytes.byteLength <= SMALL_WRITE_BYTES) {
      // a header goes out as one TLS record (the socket does not wait to fill a packet)
      const frame = new Uint8ArrayList(encodeVarint(bytes.byteLength), bytes)
      more = this.socket.write(frame.subarray())
    } else {
      this.socket.write(encodeVarint(bytes.byteLength))
      more = true
      for (const chunk of bytes instanceof Uint8Array ? [bytes] : bytes) more = this.socket.write(chunk)
    }
    if (more) return
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error): void => {
        this.socket.off('drain', onDrain)
        this.socket.off('close', onClose)
        options.signal?.removeEventListener('abort', onAbort)
        if (err != null) reject(err)
        else resolve()
      }
      const onDrain = (): void => { done() }
      const onClose = (): void => { done(this.failure ?? new Error('the direct connection closed')) }
      const onAbort = (): void => { done(options.signal?.reason) }
      this.socket.on('drain', onDrain)
      this.socket.on('close', onClose)
      options.signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  /** Ends this side's writing and waits for the connection to close (the other side ends too). */
  async close (options: AbortOptions = {}): Promise<void> {
    if (this.socket.destroyed) return
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => { this.socket.destroy(); reject(options.signal?.reason) }
      options.signal?.addEventListener('abort', onAbort, { once: true })
      this.socket.once('close', () => { options.signal?.removeEventListener('abort', onAbort); resolve() })
      this.socket.end()
    })
  }

  abort (err: Error): void {
    this.failure ??= err
    this.socket.destroy()
  }
}

/** Serves one protocol's exchange on a channel; `remotePeer` is who opened it. */
export type ChannelHandler = (channel: Channel, remotePeer: PeerId) => Promise<void>

export interface DirectChannelInit {
  /** Serve direct connections at all; when false, every request is answered UNAVAILABLE. */
  enabled: boolean
  /** Host the TLS listener binds (the host of the node's first TCP listen address). */
  host: string
  /** Its TCP port; 0 picks a free one. */
  port: number
  /** The most bytes one frame may carry on a direct connection. */
  maxFrameBytes: number
  /** Agree to run several exchanges on a connection when a client asks (default true; tests turn it off to play an older node). */
  reuse?: boolean
}

export interface DirectChannelComponents {
  registrar: Registrar
  logger: ComponentLogger
}

interface Ticket {
  id: string
  key: Buffer
  peer: PeerId
  protocol: string
  /** The connection will carry exchanges one after another (the client asked, the offer agreed). */
  reuse: boolean
  expires: NodeJS.Timeout
  /** Reverse: this node is the client; the connection goes to whoever waits for it, not to a handler. */
  onReverse?: (channel: SocketFrames) => void
}

/** What a reverse request tells the peer, and the connection it will open, once it has. */
export interface ReverseTicket {
  port: number
  ticket: Uint8Array<ArrayBuffer>
  key: Uint8Array<ArrayBuffer>
  /** Resolves with the peer's connection; rejects when the ticket expires unused. */
  connected: Promise<SocketFrames>
  /** Gives the ticket up (the peer answered that it will not connect). */
  cancel: () => void
}

/**
 * The worker side: a TLS 1.3 listener that accepts only connections whose pre-shared key is an unused
 * ticket's, and the /shoal/direct/1.0.0 handler that issues tickets to peers over their libp2p
 * connection. A connection with a valid ticket is handed to the protocol's handler with the peer the
 * ticket was issued to.
 */
export class DirectChannelService implements Startable {
  private readonly components: DirectChannelComponents
  private readonly init: DirectChannelInit
  private readonly log: Logger
  private readonly handlers = new Map<string, ChannelHandler>()
  private readonly tickets = new Map<string, Ticket>()
  private readonly ticketOf = new WeakMap<TLSSocket, Ticket>()
  private readonly open = new Set<TLSSocket>()
  private server: TlsServer | undefined
  /** Reverse connections being opened, per peer. */
  private readonly reversing = new Map<string, number>()
  private boundPort = 0
  private accepted = 0

  constructor (components: DirectChannelComponents, init: DirectChannelInit) {
    this.components = components
    this.init = init
    this.log = components.logger.forComponent('shoal:direct')
  }

  readonly [Symbol.toStringTag] = '@shoal/direct-channel'
  readonly [serviceCapabilities] = ['@shoal/direct-channel']

  /** Where the listener is bound, or null when there is none (off, or not started). */
  get listening (): { host: string, port: number } | null {
    return this.server == null ? null : { host: this.init.host, port: this.boundPort }
  }

  /** Direct connections accepted since start (each one a TLS handshake). */
  get connectionsAccepted (): number {
    return this.accepted
  }

  /** Direct connections open now. */
  get connectionsOpen (): number {
    return this.open.size
  }

  /** Lets `protocol` run over direct connections, served by `handler`. */
  serve (protocol: string, handler: ChannelHandler): void {
    this.handlers.set(protocol, handler)
  }

  async start (): Promise<void> {
    await this.components.registrar.handle(DIRECT_PROTOCOL, (stream, connection) => { void this.onRequest(stream, connection) }, {
      maxInboundStreams: DIRECT_TICKETS_PER_PEER,
      maxOutboundStreams: DIRECT_TICKETS_PER_PEER
    })
    if (!this.init.enabled) return
    const server = createTlsServer({
      minVersion: 'TLSv1.3',
      ciphers: DIRECT_CIPHER_SUITES,
      handshakeTimeout: DIRECT_CONNECT_TIMEOUT_MS,
      pskCallback: (socket, identity) => {
        const ticket = this.tickets.get(identity)
        if (ticket == null) return null
        // one attempt per ticket, whether or not its handshake then succeeds
        this.forget(ticket)
        this.ticketOf.set(socket, ticket)
        return ticket.key
      }
    })
    server.maxConnections = DIRECT_MAX_CONNECTIONS
    server.on('secureConnection', (socket: TLSSocket) => { this.onConnection(socket) })
    server.on('tlsClientError', (err) => { this.log('refused a direct connection - %s', err.message) })
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(this.init.port, this.init.host, () => { server.off('error', reject); resolve() })
      })
    } catch (err: any) {
      const why = err.code === 'EADDRINUSE' ? 'address already in use' : err.code === 'EADDRNOTAVAIL' ? 'no such address on this machine' : err.message
      throw new ListenError(`cannot listen for direct connections on ${this.init.host} port ${this.init.port}: ${why} (choose another with --direct-port, 0 for any free port, or --no-direct)`)
    }
    const address = server.address()
    this.boundPort = typeof address === 'object' && address != null ? address.port : 0
    this.server = server
  }

  async stop (): Promise<void> {
    await this.components.registrar.unhandle(DIRECT_PROTOCOL)
    for (const ticket of this.tickets.values()) clearTimeout(ticket.expires)
    this.tickets.clear()
    const server = this.server
    this.server = undefined
    if (server == null) return
    const closed = new Promise<void>(resolve => { server.close(() => { resolve() }) })
    // exchanges still running end with the node
    for (const socket of this.open) socket.destroy()
    await closed
  }

  /** Breaks every open direct connection at once (a simulated crash: `ShoalNode.kill`). */
  abortAll (): void {
    for (const socket of this.open) socket.destroy()
  }

  /**
   * Reverse: a ticket for `peer` to open a direct connection to this node's listener, on which this
   * node then runs `protocol` as the client (the peer cannot be reached; this node can). Undefined when
   * this node has no listener, or the peer holds too many tickets already.
   */
  expectReverse (peer: PeerId, protocol: string, reuse: boolean): ReverseTicket | undefined {
    if (this.server == null || this.tickets.size >= DIRECT_TICKETS_TOTAL) return undefined
    let held = 0
    for (const t of this.tickets.values()) if (t.peer.equals(peer)) held++
    if (held >= DIRECT_TICKETS_PER_PEER) return undefined
    const id = randomBytes(DIRECT_TICKET_BYTES)
    let resolve!: (channel: SocketFrames) => void
    let reject!: (err: Error) => void
    const connected = new Promise<SocketFrames>((res, rej) => { resolve = res; reject = rej })
    connected.catch(() => {})
    const ticket: Ticket = {
      id: id.toString('hex'),
      key: randomBytes(DIRECT_KEY_BYTES),
      peer,
      protocol,
      reuse,
      expires: setTimeout(() => { this.forget(ticket); reject(new DirectUnavailableError('the peer did not connect back in time')) }, DIRECT_TICKET_TTL_MS),
      onReverse: resolve
    }
    ticket.expires.unref()
    this.tickets.set(ticket.id, ticket)
    return {
      port: this.boundPort,
      ticket: new Uint8Array(id),
      key: new Uint8Array(ticket.key),
      connected,
      cancel: () => { this.forget(ticket); reject(new DirectUnavailableError('the peer will not connect back')) }
    }
  }

  private onConnection (socket: TLSSocket): void {
    const ticket = this.ticketOf.get(socket)
    if (ticket == null) {
      socket.destroy()
      return
    }
    if (ticket.onReverse != null) {
      // a peer that could not be reached connected back: this node runs the protocol on it as the client
      socket.setNoDelay(true)
      this.accepted++
      this.open.add(socket)
      socket.once('close', () => this.open.delete(socket))
      const channel = new SocketFrames(socket, this.init.maxFrameBytes)
      channel.reuse = ticket.reuse
      ticket.onReverse(channel)
      return
    }
    const handler = this.handlers.get(ticket.protocol)
    if (handler == null) {
      socket.destroy()
      return
    }
    socket.setNoDelay(true)
    this.accepted++
    this.open.add(socket)
    socket.once('close', () => this.open.delete(socket))
    const channel = new SocketFrames(socket, this.init.maxFrameBytes)
    this.serveChannel(channel, handler, ticket.protocol, ticket.peer, ticket.reuse)
  }

  /** Serves `protocol` on a direct connection for `peer`: one exchange, or one after another with `reuse`. */
  private serveChannel (channel: SocketFrames, handler: ChannelHandler, protocol: string, peer: PeerId, reuse: boolean): void {
    if (reuse) {
      channel.reuse = true
      void this.serveExchanges(channel, handler, protocol, peer)
      return
    }
    handler(channel, peer).catch((err: any) => {
      this.log('direct %s exchange with %p failed - %s', protocol, peer, err.message)
      channel.abort(err)
    })
  }

  /**
   * A connection that carries exchanges one after another: each starts when its first bytes arrive
   * (the client sends a request only once it has read the whole answer to the last), until the client
   * ends the connection, an exchange fails or ends it (`final`), or none comes for the idle time.
   */
  private async serveExchanges (conn: SocketFrames, handler: ChannelHandler, protocol: string, peer: PeerId): Promise<void> {
    while (await conn.waitForData(DIRECT_SERVER_IDLE_MS)) {
      let kept = false
      const exchange = conn.exchange(k => { kept = k })
      try {
        await handler(exchange, peer)
      } catch (err: any) {
        this.log('direct %s exchange with %p failed - %s', protocol, peer, err.message)
        exchange.abort(err)
      }
      if (!kept || !conn.reusable(false)) break
    }
    await conn.close().catch(() => {})
  }

  private forget (ticket: Ticket): void {
    clearTimeout(ticket.expires)
    this.tickets.delete(ticket.id)
  }

  private async onRequest (stream: Stream, connection: Connection): Promise<void> {
    const lp = frames(stream)
    const signal = AbortSignal.timeout(HEADER_TIMEOUT_MS)
    let offer: DirectOffer
    try {
      const request = await readMessage(lp, DirectRequest, signal, 'direct request', MAX_DIRECT_MESSAGE_BYTES)
      offer = request.ticket.byteLength > 0 ? await this.connectBack(request, connection) : this.offer(request.protocol, request.reuse, connection.remotePeer)
    } catch (err: any) {
      stream.abort(err)
      return
    }
    try {
      await writeMessage(lp, DirectOffer, offer, signal)
      await stream.close({ signal })
    } catch (err: any) {
      stream.abort(err)
    }
  }

  /**
   * Reverse: the client can be reached and this node cannot: it connects to the client's listener at
   * the IP of their libp2p connection with the client's ticket, serves the protocol on that
   * connection, and says so (or why not) in its offer.
   */
  private async connectBack (request: DirectRequest, connection: Connection): Promise<DirectOffer> {
    const peer = connection.remotePeer
    const handler = this.handlers.get(request.protocol)
    if (handler == null) return refusal(DirectOffer.Code.UNAVAILABLE, `${request.protocol.slice(0, 100)} is not served over direct connections here`)
    if (request.key.byteLength !== DIRECT_KEY_BYTES || request.ticket.byteLength !== DIRECT_TICKET_BYTES || request.port < 1 || request.port > 65535) throw new Error('a malformed reverse direct request')
    const host = dialableHost(connection.remoteAddr)
    if (host == null) return refusal(DirectOffer.Code.UNAVAILABLE, 'no address to connect back to over this connection')
    // bounded as inbound connections are: a peer cannot make this node open connections without end
    const mine = this.reversing.get(peer.toString()) ?? 0
    if (mine >= DIRECT_TICKETS_PER_PEER || this.open.size >= DIRECT_MAX_CONNECTIONS) return refusal(DirectOffer.Code.BUSY, 'too many direct connections to this peer or in all')
    this.reversing.set(peer.toString(), mine + 1)
    let channel: SocketFrames
    try {
      channel = await connectTls(host, request.port, request.ticket, request.key, this.init.maxFrameBytes, AbortSignal.timeout(DIRECT_CONNECT_TIMEOUT_MS))
    } catch (err: any) {
      return refusal(DirectOffer.Code.UNAVAILABLE, `cannot connect back: ${String(err.message).slice(0, 200)}`)
    } finally {
      const left = (this.reversing.get(peer.toString()) ?? 1) - 1
      if (left > 0) this.reversing.set(peer.toString(), left)
      else this.reversing.delete(peer.toString())
    }
    const socket = channel.socket
    this.open.add(socket)
    socket.once('close', () => this.open.delete(socket))
    const reuse = request.reuse && this.init.reuse !== false
    this.serveChannel(channel, handler, request.protocol, peer, reuse)
    return { code: DirectOffer.Code.OK, message: '', port: 0, ticket: new Uint8Array(), key: new Uint8Array(), ttlMs: 0, reuse }
  }

  private offer (protocol: string, reuse: boolean, peer: PeerId): DirectOffer {
    const refuse = refusal
    if (this.server == null || !this.handlers.has(protocol)) return refuse(DirectOffer.Code.UNAVAILABLE, `${protocol.slice(0, 100)} is not served over direct connections here`)
    if (this.tickets.size >= DIRECT_TICKETS_TOTAL) return refuse(DirectOffer.Code.BUSY, `${this.tickets.size} direct tickets outstanding, the most this node issues`)
    let held = 0
    for (const t of this.tickets.values()) if (t.peer.equals(peer)) held++
    if (held >= DIRECT_TICKETS_PER_PEER) return refuse(DirectOffer.Code.BUSY, `this peer holds ${held} unused direct tickets, the most one peer may`)
    const id = randomBytes(DIRECT_TICKET_BYTES)
    const ticket: Ticket = {
      id: id.toString('hex'),
      key: randomBytes(DIRECT_KEY_BYTES),
      peer,
      protocol,
      reuse: reuse && this.init.reuse !== false,
      expires: setTimeout(() => { this.forget(ticket) }, DIRECT_TICKET_TTL_MS)
    }
    ticket.expires.unref()
    this.tickets.set(ticket.id, ticket)
    return { code: DirectOffer.Code.OK, message: '', port: this.boundPort, ticket: new Uint8Array(id), key: new Uint8Array(ticket.key), ttlMs: DIRECT_TICKET_TTL_MS, reuse: ticket.reuse }
  }
}

export function directChannelService (init: DirectChannelInit): (components: DirectChannelComponents) => DirectChannelService {
  return (components) => new DirectChannelService(components, init)
}

/** Why a direct channel could not be opened (the caller uses the libp2p stream instead). */
export class DirectUnavailableError extends Error {
  override name = 'DirectUnavailableError'
  /** The peer refused for now (too many tickets out), not for good. */
  constructor (message: string, readonly busy = false) {
    super(message)
  }
}

let clientContext: SecureContext | undefined

/**
 * The TLS settings of every client connection, made once: creating them for each connection (what
 * `tls.connect` does when given none) was about a tenth of the CPU of opening a direct channel.
 */
function directClientContext (): SecureContext {
  clientContext ??= createSecureContext({ minVersion: 'TLSv1.3', ciphers: DIRECT_CIPHER_SUITES })
  return clientContext
}

/**
 * The client side: asks `peer` for a ticket over `stream` (a fresh /shoal/direct/1.0.0 stream on a
 * connection whose remote IP is `host`), then opens the TLS connection to `host` and returns it as a
 * channel for `protocol`. With `reuse` it asks to run several exchanges on it; the result's `reuse`
 * says whether the worker agreed (then each exchange goes through `exchange()`). Throws
 * DirectUnavailableError when the peer offers none or the connection cannot be made.
 */
export async function openDirectChannel (stream: Stream, host: string, protocol: string, maxFrameBytes: number, signal: AbortSignal, reuse = false): Promise<SocketFrames> {
  let offer: DirectOffer
  const lp = frames(stream)
  try {
    const deadline = AbortSignal.any([signal, AbortSignal.timeout(HEADER_TIMEOUT_MS)])
    await writeMessage(lp, DirectRequest, { protocol, reuse }, deadline)
    offer = await readMessage(lp, DirectOffer, deadline, 'direct offer', MAX_DIRECT_MESSAGE_BYTES)
    await stream.close({ signal: deadline }).catch(() => {})
  } catch (err: any) {
    stream.abort(err)
    throw new DirectUnavailableError(`no direct offer: ${err.message}`)
  }
  if (offer.code !== DirectOffer.Code.OK) throw new DirectUnavailableError(`${String(offer.code)}: ${offer.message.slice(0, 200)}`, offer.code === DirectOffer.Code.BUSY)
  if (offer.ticket.byteLength !== DIRECT_TICKET_BYTES || offer.key.byteLength !== DIRECT_KEY_BYTES || offer.port < 1 || offer.port > 65535) {
    throw new DirectUnavailableError('the direct offer is malformed (ticket, key or port)')
  }
  const channel = await connectTls(host, offer.port, offer.ticket, offer.key, maxFrameBytes, signal)
  channel.reuse = reuse && offer.reuse
  return channel
}

/**
 * The TLS side that connects: TCP to `host:port`, TLS 1.3 with the ticket's pre-shared key, within
 * DIRECT_CONNECT_TIMEOUT_MS (and `signal`). Throws DirectUnavailableError when it cannot.
 */
async function connectTls (host: string, port: number, ticket: Uint8Array, psk: Uint8Array, maxFrameBytes: number, signal: AbortSignal): Promise<SocketFrames> {
  const identity = Buffer.from(ticket).toString('hex')
  const key = Buffer.from(psk)
  const socket = tlsConnect({
    host,
    port,
    secureContext: directClientContext(),
    pskCallback: () => ({ psk: key, identity }),
    // the pre-shared key authenticates the server; there is no certificate to check
    checkServerIdentity: () => undefined
  })
  const deadline = AbortSignal.any([signal, AbortSignal.timeout(DIRECT_CONNECT_TIMEOUT_MS)])
  try {
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => { reject(new Error(`not connected within ${DIRECT_CONNECT_TIMEOUT_MS} ms`)) }
      deadline.addEventListener('abort', onAbort, { once: true })
      socket.once('secureConnect', () => { deadline.removeEventListener('abort', onAbort); resolve() })
      socket.once('error', (err) => { deadline.removeEventListener('abort', onAbort); reject(err) })
    })
  } catch (err: any) {
    socket.destroy()
    if (signal.aborted) throw signal.reason
    throw new DirectUnavailableError(`direct connection to ${host}:${port} failed: ${err.message}`)
  }
  socket.setNoDelay(true)
  return new SocketFrames(socket, maxFrameBytes)
}

/**
 * Reverse, the client side: asks `peer` over `stream` to connect back to this node's listener with
 * `ticket` (this node can be reached, the peer cannot), and returns that connection, on which this
 * node is the client of `protocol`. Throws DirectUnavailableError when the peer will not or cannot.
 */
export async function openReverseChannel (stream: Stream, ticket: ReverseTicket, protocol: string, signal: AbortSignal, reuse = false): Promise<SocketFrames> {
  const lp = frames(stream)
  let offer: DirectOffer
  try {
    // the peer answers once it has connected (a TCP connection and a TLS handshake)
    const deadline = AbortSignal.any([signal, AbortSignal.timeout(HEADER_TIMEOUT_MS + DIRECT_CONNECT_TIMEOUT_MS)])
    await writeMessage(lp, DirectRequest, { protocol, reuse, port: ticket.port, ticket: ticket.ticket, key: ticket.key }, deadline)
    offer = await readMessage(lp, DirectOffer, deadline, 'direct offer', MAX_DIRECT_MESSAGE_BYTES)
    await stream.close({ signal: deadline }).catch(() => {})
  } catch (err: any) {
    stream.abort(err)
    ticket.cancel()
    throw new DirectUnavailableError(`no reverse direct connection: ${err.message}`)
  }
  if (offer.code !== DirectOffer.Code.OK) {
    ticket.cancel()
    throw new DirectUnavailableError(`${String(offer.code)}: ${offer.message.slice(0, 200)}`, offer.code === DirectOffer.Code.BUSY)
  }
  // a worker that knows no reverse requests offers a ticket of its own instead of connecting back
  if (offer.ticket.byteLength > 0) {
    ticket.cancel()
    throw new DirectUnavailableError('the peer does not connect back (it offered a ticket of its own)')
  }
  const channel = await ticket.connected
  channel.reuse = reuse && offer.reuse
  return channel
}

/** An answer that offers no direct connection, and why. */
function refusal (code: DirectOffer.Code, message: string): DirectOffer {
  return { code, message, port: 0, ticket: new Uint8Array(), key: new Uint8Array(), ttlMs: 0, reuse: false }
}

/** The IP of a TCP connection's remote address (or WebSockets over TCP), not a relayed one. */
export function dialableHost (addr: Multiaddr): string | undefined {
  const components = addr.getComponents()
  const names = components.map(c => c.name)
  if (!((names[0] === 'ip4' || names[0] === 'ip6') && names[1] === 'tcp' && !names.includes('p2p-circuit'))) return undefined
  return components[0].value
}
