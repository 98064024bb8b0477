import type { Connection, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { DIRECT_PROTOCOL, INFER_PROTOCOL, MAX_FRAME_BYTES } from '@shoal/protocol'
import { DIRECT_CLIENT_IDLE_MS, DIRECT_IDLE_PER_PEER, DIRECT_RETRY_AFTER_MS } from '../constants.js'
import { DirectUnavailableError, openDirectChannel, openReverseChannel } from './direct-channel.js'
import type { ReverseTicket, SocketFrames } from './direct-channel.js'
import type { Channel } from './frames.js'

export interface DirectPoolInit {
  /** The node's open libp2p connections to a peer. */
  connections: (peer: PeerId) => Connection[]
  /**
   * How to get a direct connection to a peer: `dial` its listener; `reverse`, have it connect back to
   * this node's (it cannot be reached, this node can); `none`. Default `dial`.
   */
  mode?: (peer: PeerId) => 'dial' | 'reverse' | 'none'
  /** A ticket for `peer` to connect back to this node's listener with (reverse), if it can issue one. */
  reverse?: (peer: PeerId) => ReverseTicket | undefined
  /** False once the node is stopping: connections are then closed, not kept. */
  running: () => boolean
  log: (format: string, ...args: unknown[]) => void
}

/**
 * The submitter's side of the direct data channel (docs/protocol.md 6.1): opens a channel for a
 * piece, keeps a connection that ended cleanly for the next piece to that peer, and remembers peers
 * whose channel failed, whose pieces then use libp2p streams for a while.
 */
export class DirectPool {
  private readonly init: DirectPoolInit
  /** Peers whose direct channel failed to open, until when their pieces use libp2p streams. */
  private readonly refused = new Map<string, number>()
  /** Direct connections kept between pieces, per peer (reuse). */
  private readonly idle = new Map<string, Array<{ conn: SocketFrames, timer: NodeJS.Timeout }>>()

  constructor (init: DirectPoolInit) {
    this.init = init
  }

  /**
   * A direct data channel for a piece to `peer`: a connection kept from an earlier piece (`reused`;
   * not with `fresh`), or a new one; or undefined: no open TCP connection to it whose address we could
   * connect to again, the peer offers none, or the channel failed to open (then that peer's pieces use
   * libp2p streams for DIRECT_RETRY_AFTER_MS).
   */
  async channelTo (peer: PeerId, signal: AbortSignal, fresh = false): Promise<(Channel & { reused?: boolean }) | undefined> {
    const key = peer.toString()
    for (let idle = fresh ? undefined : this.idle.get(key)?.pop(); idle != null; idle = this.idle.get(key)?.pop()) {
      clearTimeout(idle.timer)
      if (idle.conn.reusable(true)) return this.exchange(key, idle.conn, true)
      idle.conn.abort(new Error('no longer usable'))
    }
    if ((this.refused.get(key) ?? 0) > Date.now()) return undefined
    const mode = this.init.mode?.(peer) ?? 'dial'
    if (mode === 'none') return undefined
    const connection = this.init.connections(peer).find(c => c.status === 'open' && directlyDialable(c.remoteAddr))
    const host = connection?.remoteAddr.getComponents().find(c => c.name === 'ip4' || c.name === 'ip6')?.value
    if (connection == null || host == null) return undefined
    const ticket = mode === 'reverse' ? this.init.reverse?.(peer) : undefined
    if (mode === 'reverse' && ticket == null) return undefined
    try {
      const stream = await connection.newStream(DIRECT_PROTOCOL, { signal, negotiateFully: false })
      const conn = ticket != null
        ? await openReverseChannel(stream, ticket, INFER_PROTOCOL, signal, true)
        : await openDirectChannel(stream, host, INFER_PROTOCOL, MAX_FRAME_BYTES, signal, true)
      return conn.reuse ? this.exchange(key, conn) : conn
    } catch (err: any) {
      if (signal.aborted) throw err
      // a busy peer may have a ticket for the next piece; any other failure will not mend itself soon
      if (!(err instanceof DirectUnavailableError && err.busy)) {
        const now = Date.now()
        for (const [other, until] of this.refused) if (until <= now) this.refused.delete(other)
        this.refused.set(key, now + DIRECT_RETRY_AFTER_MS)
      }
      this.init.log('no direct channel to %p, using a libp2p stream - %s', peer, err.message)
      return undefined
    }
  }

  /** Closes the connections kept between pieces. */
  closeIdle (): void {
    for (const list of this.idle.values()) {
      for (const { conn, timer } of list) {
        clearTimeout(timer)
        conn.abort(new Error('the node is stopping'))
      }
    }
    this.idle.clear()
  }

  /**
   * One piece's exchange on a direct connection that may carry more: when it ends cleanly the
   * connection waits for the next piece to that peer (at most DIRECT_IDLE_PER_PEER of them, each for
   * DIRECT_CLIENT_IDLE_MS), saving the next piece the offer and the TLS handshake.
   */
  private exchange (key: string, conn: SocketFrames, reused = false): Channel & { reused: boolean } {
    const exchange = conn.exchange(kept => {
      const idle = this.idle.get(key) ?? []
      if (!kept || !conn.reusable(true) || idle.length >= DIRECT_IDLE_PER_PEER || !this.init.running()) {
        conn.close().catch(() => {})
        return
      }
      const entry = {
        conn,
        timer: setTimeout(() => {
          const list = this.idle.get(key) ?? []
          const i = list.indexOf(entry)
          if (i >= 0) list.splice(i, 1)
          if (list.length === 0) this.idle.delete(key)
          conn.close().catch(() => {})
        }, DIRECT_CLIENT_IDLE_MS)
      }
      entry.timer.unref()
      idle.push(entry)
      this.idle.set(key, idle)
    })
    return { ...exchange, reused }
  }
}

/** A plain TCP address (not relayed, not a browser transport): the same host can be reached on another port. */
function directlyDialable (addr: Multiaddr): boolean {
  const names = addr.getComponents().map(c => c.name)
  return (names[0] === 'ip4' || names[0] === 'ip6') && names[1] === 'tcp' && !names.includes('p2p-circuit')
}
