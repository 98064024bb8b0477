import { withBitswap } from '@helia/bitswap'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { base64 } from 'multiformats/bases/base64'
import type { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { digestKey } from './fetch-engine.js'
import type { BlockExchange } from './fetch-engine.js'
import type { SwarmHost } from './swarm-host.js'

/** What bitswap serves: the store's blocks. */
export interface ServedBlocks {
  has: (cid: CID) => Promise<boolean>
  get: (cid: CID) => Promise<Uint8Array>
}

/** Where the bitswap internals used here live (pinned @helia/bitswap; docs/decisions.md). */
interface BitswapInternals {
  start: () => Promise<void>
  stop: () => Promise<void>
  bitswap: {
    wantList: EventTarget & {
      wantSessionBlock: (cid: CID, peer: PeerId, options: { signal: AbortSignal }) => Promise<{ has: boolean, block?: Uint8Array }>
    }
    network: {
      sendMessage: (peer: PeerId, message: unknown, options: { signal: AbortSignal }) => Promise<void>
    }
  }
}

/**
 * @helia/bitswap sends one message at a time to each peer by default, so a fetcher's requests are
 * answered one block after another however many it has in flight; serving several at once lets
 * several blocks share the connection (docs/benchmarks.md).
 */
const BITSWAP_OPTIONS = {
  sendBlocksConcurrency: 8,
  sendBlocksMaxQueueLength: 256,
  // a message of a few 1 MiB blocks to a busy peer can take more than bitswap's default 10 s; a lost
  // message costs a fetcher a block timeout (BLOCK_TIMEOUT_MS, longer than these)
  messageSendTimeout: 20_000,
  messageReceiveTimeout: 20_000
}

/**
 * A bitswap message cancelling wants, in the shape @helia/bitswap's network queue takes. A server keeps
 * a block it sent in its ledger for 5 s and ignores a new want for it meanwhile; cancelling at the end
 * of a fetch lets the next fetch of the same blocks from the same peer be answered at once.
 */
function cancelMessage (cids: CID[]): unknown {
  return {
    full: false,
    pendingBytes: 0,
    wantlist: new Map(cids.map(cid => [base64.encode(cid.multihash.bytes), { cid: cid.bytes, priority: 1, wantType: 0, cancel: true, sendDontHave: false }])),
    blocks: new Map(),
    blockPresences: new Map()
  }
}

/**
 * The block exchange over bitswap (/ipfs/bitswap/1.2.0, from @helia/bitswap): serves `served` to
 * every peer and asks one block of one peer at a time (`wantSessionBlock`). Bitswap checks each
 * block against its CID; a block matching no want still reaches `onBlock`, so the fetch can tell a
 * corrupted block from a late one.
 */
export class BitswapExchange implements BlockExchange {
  private readonly libp2p: SwarmHost
  private readonly served: ServedBlocks
  private broker?: BitswapInternals
  private readonly listeners = new Set<(sender: string, digest: string, bytes: Uint8Array) => void>()

  constructor (libp2p: SwarmHost, served: ServedBlocks) {
    this.libp2p = libp2p
    this.served = served
  }

  async start (): Promise<void> {
    const served = this.served
    const blockstore = {
      has: async (cid: CID) => await served.has(cid),
      get: async function * (cid: CID) { yield await served.get(cid) },
      put: async (cid: CID) => cid
    }
    const noRouting = { findProviders: async function * () {}, provide: async () => {} }
    let broker: BitswapInternals | undefined
    let mixin: { start: (h: unknown) => Promise<void> } | undefined
    // @helia/bitswap plugs into a Helia node; this is the part of one that it uses (docs/decisions.md)
    const host = {
      status: 'starting',
      hasBlockBroker: () => false,
      addBlockBroker: (b: BitswapInternals) => { broker = b },
      addMixin: (m: typeof mixin) => { mixin = m },
      libp2p: this.libp2p,
      logger: this.libp2p.logger,
      blockstore,
      routing: noRouting,
      getHasher: async (code: number) => {
        if (code === sha256.code) return sha256
        throw new Error(`no hasher for multihash code ${code}: model blocks are sha2-256`)
      }
    }
    withBitswap(host as any, BITSWAP_OPTIONS)
    await mixin?.start(host)
    if (broker?.bitswap?.wantList?.wantSessionBlock == null) throw new Error('@helia/bitswap changed its internals: pin the version in pnpm-workspace.yaml (docs/decisions.md)')
    this.broker = broker
    broker.bitswap.wantList.addEventListener('block', (evt: any) => {
      const sender = evt.detail.sender.toString()
      const digest = digestKey(evt.detail.cid)
      for (const listener of this.listeners) listener(sender, digest, evt.detail.block)
    })
  }

  async stop (): Promise<void> {
    await this.broker?.stop()
  }

  async want (peer: string, block: CID, signal: AbortSignal): Promise<Uint8Array | null> {
    if (this.broker == null) throw new Error('the block exchange is not started')
    const answer = await this.broker.bitswap.wantList.wantSessionBlock(block, peerIdFromString(peer), { signal })
    return answer.has && answer.block != null ? answer.block : null
  }

  async forget (peer: string, blocks: CID[]): Promise<void> {
    await this.broker?.bitswap.network.sendMessage(peerIdFromString(peer), cancelMessage(blocks), { signal: AbortSignal.timeout(2000) })
  }

  onBlock (listener: (sender: string, digest: string, bytes: Uint8Array) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }
}
