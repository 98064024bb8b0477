import { withBitswap } from '@helia/bitswap'
import type { Libp2p, Logger, PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { base64 } from 'multiformats/bases/base64'
import type { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import {
  BLOCK_TIMEOUT_MS, BLOCKS_IN_FLIGHT_PER_FETCH, BLOCKS_IN_FLIGHT_PER_PROVIDER, FETCH_DISCOVERY_INTERVAL_MS, FIND_PROVIDERS_TIMEOUT_MS, KEPT_FINISHED_FETCHES, MIN_BLOCK_TIMEOUT_MS, NO_PROVIDER_TIMEOUT_MS, REFUSAL_RETRY_MS, TIMEOUTS_BEFORE_DROP
} from '../constants.js'
import { decodeBlock, ModelDagError, parseModelCid } from './model-dag.js'
import type { ModelEntry, ModelStore } from './model-store.js'
import type { NodeMetrics } from '../metrics.js'
import { Standing } from './standing.js'

/** What a finished fetch reports (`shoal model get --json`). */
export interface FetchSummary {
  cid: string
  /** The model file's size. */
  bytes: number
  wallMs: number
  blocks: number
  /** Blocks already in the store when the fetch began (a resumed fetch). */
  heldBlocks: number
  /** The peers that served blocks, with how many bytes each. */
  providers: Array<{ peerId: string, bytes: number }>
  /** Bytes of blocks that arrived again after a copy was already here (wasted transfer). */
  duplicateBytes: number
  /** Peers dropped during the fetch, and why. */
  dropped: Array<{ peerId: string, reason: string }>
}

/** A fetch in progress, as GET /v1/fetches/:cid shows it. */
export interface FetchProgress {
  cid: string
  state: 'fetching' | 'done' | 'failed'
  /** 0 until the root block says. */
  bytes: number
  bytesDone: number
  blocks: number
  blocksDone: number
  heldBlocks: number
  providers: Array<{ peerId: string, bytes: number }>
  /** Providers known to this fetch (asked or about to be). */
  candidates: number
  startedAt: number
  error: string | null
  summary: FetchSummary | null
}

export interface FetchOptions {
  /** Peers to ask first (the submitter of a piece). */
  hints?: string[]
  /** Ask only these peers: no capacity ads, no DHT. */
  only?: string[]
  signal?: AbortSignal
}

export class ModelFetchError extends Error {
  override name = 'ModelFetchError'
}

export interface ModelSwarmInit {
  libp2p: Libp2p<{ dht: { cancelReprovide: (cid: CID) => Promise<void> } }>
  store: ModelStore
  /** Peers whose capacity ads list the model. */
  adHolders: (cid: string) => string[]
  /** Tests shorten how long a fetch waits for a provider to appear. */
  noProviderTimeoutMs?: number
  /** Where blocks served and fetches are counted (`GET /metrics`). */
  metrics?: NodeMetrics
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

/** Leaf size of the model profile (docs/protocol.md 7.1). */
const LEAF_BYTES = 1024 * 1024

const digestKey = (cid: CID): string => uint8ArrayToString(cid.multihash.digest, 'base64')

function shuffled<T> (items: T[]): T[] {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]]
  }
  return out
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
 * Models travel between nodes over bitswap (/ipfs/bitswap/1.2.0, from @helia/bitswap, serving this
 * node's blockstore). Fetching is Shoal's own: providers come from capacity ads, the DHT and hints;
 * each block is asked of one provider at a time, a few in flight per provider, so that faster
 * providers serve more; every block is checked against its CID on arrival; a provider that sends a bad
 * block is dropped from the fetch and loses standing. Blocks already held are not asked for again.
 */
export class ModelSwarm {
  private readonly init: ModelSwarmInit
  private readonly log: Logger
  private broker?: BitswapInternals
  private readonly fetches = new Map<string, { progress: FetchProgress, done: Promise<FetchSummary> }>()
  private readonly stopping = new AbortController()
  /** Per fetch: digests of its blocks and who it is asking, to recognise a corrupted block on arrival. */
  private readonly watchers = new Set<(sender: string, digest: string, block: Uint8Array) => void>()
  readonly standing = new Standing()
  /** Test-only: blocks this node serves have one byte flipped. */
  corruptServedBlocks = false

  constructor (init: ModelSwarmInit) {
    this.init = init
    this.log = init.libp2p.logger.forComponent('shoal:swarm')
  }

  async start (): Promise<void> {
    const store = this.init.store
    const self = this
    // what bitswap serves from: the store's blocks, or (test hook) corrupted copies
    const served = {
      has: async (cid: CID) => await store.hasBlock(cid),
      get: async function * (cid: CID) {
        const block = await store.readBlock(cid)
        self.init.metrics?.blockServed(block.byteLength)
        if (self.corruptServedBlocks) {
          const copy = new Uint8Array(block)
          copy[copy.length - 1] ^= 0xff
          yield copy
        } else {
          yield block
        }
      },
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
      libp2p: this.init.libp2p,
      logger: this.init.libp2p.logger,
      blockstore: served,
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
      for (const watch of this.watchers) watch(sender, digest, evt.detail.block)
    })
  }

  async stop (): Promise<void> {
    // fetches in flight end now, not at their own timeouts, with an error that says why
    this.stopping.abort(new ModelFetchError('the node is stopping'))
    await this.broker?.stop()
  }

  /** Sends `peer` a cancel for these wants (failures are ignored: the wants expire anyway). */
  private async sendCancels (peer: PeerId, cids: Iterable<CID>): Promise<void> {
    const list = [...cids]
    if (list.length === 0) return
    await this.broker?.bitswap.network.sendMessage(peer, cancelMessage(list), { signal: AbortSignal.timeout(2000) }).catch(() => {})
  }

  /** Announces in the DHT that this node holds `cid` (kad-dht refreshes the record until cancelled). */
  announce (cid: string): void {
    const run = async (): Promise<void> => {
      await this.init.libp2p.contentRouting.provide(parseModelCid(cid) as any, { signal: AbortSignal.timeout(60_000) })
    }
    run().catch(err => { this.log('announcing %s failed - %s', cid, err.message) })
  }

  async unannounce (cid: string): Promise<void> {
    await this.init.libp2p.services.dht.cancelReprovide(parseModelCid(cid)).catch(() => {})
  }

  progress (cid: string): FetchProgress | undefined {
    return this.fetches.get(cid)?.progress
  }

  listFetches (): FetchProgress[] {
    return [...this.fetches.values()].map(f => f.progress)
  }

  /**
   * Fetches a model into the store from every peer that has it; `hints` are peers to ask first (the
   * submitter of a piece); `only` restricts the fetch to the given peers (no ads, no DHT). One fetch
   * per CID at a time: a second caller shares the first's. Resolves once the model is stored and checked.
   */
  async fetch (cid: string, options: FetchOptions = {}): Promise<FetchSummary> {
    const root = parseModelCid(cid)
    const existing = this.fetches.get(cid)
    if (existing?.progress.state === 'fetching') return await existing.done
    const held = this.init.store.info(cid)
    if (held != null) {
      // an earlier fetch's outcome (failed, say) no longer describes this model
      if (existing?.progress.state !== 'done') this.fetches.delete(cid)
      return { cid, bytes: held.bytes, wallMs: 0, blocks: 0, heldBlocks: 0, providers: [], duplicateBytes: 0, dropped: [] }
    }
    const progress: FetchProgress = {
      cid, state: 'fetching', bytes: 0, bytesDone: 0, blocks: 1, blocksDone: 0, heldBlocks: 0, providers: [], candidates: 0, startedAt: Date.now(), error: null, summary: null
    }
    const done = this.run(root, progress, options)
    this.fetches.set(cid, { progress, done })
    done.then(summary => {
      progress.state = 'done'
      progress.summary = summary
      this.init.metrics?.modelFetches.inc({ outcome: 'done' })
    }, err => {
      progress.state = 'failed'
      progress.error = err.message
      this.init.metrics?.modelFetches.inc({ outcome: 'failed' })
    }).finally(() => {
      // the API shows recent fetches; older finished ones are forgotten
      const finished = [...this.fetches].filter(([, f]) => f.progress.state !== 'fetching')
      for (const [key] of finished.slice(0, Math.max(0, finished.length - KEPT_FINISHED_FETCHES))) this.fetches.delete(key)
    })
    return await done
  }

  private async run (root: CID, progress: FetchProgress, options: FetchOptions): Promise<FetchSummary> {
    const outer = AbortSignal.any([options.signal, this.stopping.signal].filter(s => s != null))
    const cid = root.toString()
    const store = this.init.store
    const wantList = this.broker?.bitswap.wantList
    if (wantList == null) throw new ModelFetchError('the model swarm is not started')
    const release = store.use(cid)
    const stop = new AbortController()
    const onOuterAbort = (): void => stop.abort(outer.reason)
    outer.addEventListener('abort', onOuterAbort, { once: true })
    if (outer.aborted) onOuterAbort()
    const self = this.init.libp2p.peerId.toString()

    // blocks: known (digest -> CID), queued (to ask), in flight, stored
    const known = new Map<string, CID>([[digestKey(root), root]])
    const queue: CID[] = []
    const inFlight = new Set<string>()
    const stored = new Set<string>()
    const served = new Map<string, number>()
    const dropped = new Map<string, string>()
    const candidates = new Set<string>()
    const asked = new Map<string, { peerId: PeerId, cids: Map<string, CID> }>()
    const lanes = new Map<string, AbortController>()
    /** Per peer, blocks it said it lacks (a peer still fetching holds part of the model). */
    const refused = new Map<string, Map<string, { cid: CID, at: number, cancelled: boolean }>>()
    const accepting = new Set<string>()
    /** Peers that said they lack some block (kept for the error message when the fetch stalls). */
    const lackedBy = new Set<string>()
    const timeouts = new Map<string, number>()
    /** How long recent blocks took from asking to arriving. */
    const blockTimes: number[] = []
    /** Patience for one block: generous until a few blocks have shown how long they take here. */
    const blockTimeout = (): number => {
      if (blockTimes.length < 4) return BLOCK_TIMEOUT_MS
      const median = [...blockTimes].sort((a, b) => a - b)[Math.floor(blockTimes.length / 2)]
      return Math.min(BLOCK_TIMEOUT_MS, Math.max(MIN_BLOCK_TIMEOUT_MS, 8 * median))
    }
    let announced = false
    let duplicateBytes = 0
    let fatal: Error | undefined
    let wake: () => void = () => {}
    let changed = new Promise<void>(resolve => { wake = resolve })
    const notify = (): void => {
      const w = wake
      changed = new Promise<void>(resolve => { wake = resolve })
      w()
    }
    let lastProgressAt = Date.now()

    /** A block is here (fetched or held): store it, and queue its children. */
    const accept = async (block: CID, bytes: Uint8Array, from: string | null): Promise<void> => {
      const key = digestKey(block)
      if (stored.has(key) || accepting.has(key)) return
      accepting.add(key)
      try {
        await storeBlock(block, key, bytes, from)
      } finally {
        accepting.delete(key)
      }
    }
    const storeBlock = async (block: CID, key: string, bytes: Uint8Array, from: string | null): Promise<void> => {
      const node = decodeBlock(block, bytes)
      if (block.equals(root)) {
        const size = node.kind === 'leaf' ? node.bytes : node.fileSize
        if (size > store.maxModelBytes) throw new ModelFetchError(`model ${cid} is ${size} bytes, over this node's limit of ${store.maxModelBytes} (--max-model-size)`)
        store.checkRoom(size)
        progress.bytes = size
      }
      if (from != null) await store.blockstore.put(block, bytes)
      else progress.heldBlocks++
      stored.add(key)
      lastProgressAt = Date.now()
      progress.blocksDone++
      if (node.kind === 'leaf') progress.bytesDone += node.bytes
      if (from != null) {
        this.init.metrics?.modelFetchedBytes.inc(bytes.byteLength)
        served.set(from, (served.get(from) ?? 0) + bytes.byteLength)
        progress.providers = [...served].map(([peerId, bytes]) => ({ peerId, bytes }))
      }
      // a hostile root may claim a small file and link to far more: stop at what the root announced
      if (progress.bytesDone > progress.bytes) throw new ModelDagError(`model ${cid}: its blocks add up to more than the ${progress.bytes} bytes its root announces`)
      if (node.kind === 'file') {
        progress.blocks += node.children.length
        if (progress.blocks > 2 * Math.ceil(progress.bytes / LEAF_BYTES) + 8) throw new ModelDagError(`model ${cid} has more blocks than a file of ${progress.bytes} bytes can have`)
        // in random order, as BitTorrent does: peers fetching at once then hold different blocks to trade
        for (const child of shuffled(node.children)) {
          const childKey = digestKey(child)
          if (known.has(childKey)) continue
          known.set(childKey, child)
          if (await store.hasBlock(child)) {
            await accept(child, await store.readBlock(child), null)
          } else {
            queue.push(child)
          }
        }
      }
      if (block.equals(root) && !announced && options.only == null) {
        // from now on this node serves the blocks it has: others fetching the model can ask it
        announced = true
        this.announce(cid)
      }
      notify()
    }

    const dropProvider = (peer: string, reason: string): void => {
      if (dropped.has(peer)) return
      dropped.set(peer, reason)
      lanes.get(peer)?.abort(new ModelFetchError(reason))
      lanes.delete(peer)
      this.log('fetch %s: dropped %s - %s', cid, peer, reason)
      notify()
    }

    const watch = (sender: string, digest: string, block: Uint8Array): void => {
      const cidOf = known.get(digest)
      if (cidOf == null) {
        // a block from a provider of this fetch whose bytes hash to no block of the model: corrupted
        if (!lanes.has(sender)) return
        this.standing.strike(sender, 'bad-block')
        dropProvider(sender, 'sent a block that does not match its CID')
        return
      }
      // a block of the model: the answer a lane waits for, or one sent unasked (a peer that lacked it
      // when asked sends it on getting it, as bitswap keeps the want). Keep it either way: a server
      // ignores a new want for a block it sent in the last 5 s, so a block dropped here could not be
      // asked of that peer again soon.
      if (stored.has(digest) || accepting.has(digest)) {
        duplicateBytes += block.byteLength
        return
      }
      if (lanes.has(sender)) {
        const i = queue.findIndex(c => digestKey(c) === digest)
        if (i >= 0) queue.splice(i, 1)
        accept(cidOf, block, sender).catch(err => {
          if (!stored.has(digest)) queue.unshift(cidOf)
          fatal ??= err
          notify()
        })
      }
    }
    this.watchers.add(watch)

    /** The next queued block this peer has not said it lacks (or said so long enough ago, and the want was cancelled). */
    const take = (peer: string): CID | undefined => {
      const lacks = refused.get(peer)
      const now = Date.now()
      const i = lacks == null
        ? 0
        : queue.findIndex(c => {
          const r = lacks.get(digestKey(c))
          return r == null || (r.cancelled && now - r.at >= REFUSAL_RETRY_MS)
        })
      if (i < 0) return undefined
      const block = queue.splice(i, 1)[0]
      lacks?.delete(digestKey(block))
      return block
    }

    /**
     * A peer lacked a block (or lost it): cancel the want at once, so that it does not send the block
     * when it gets it (we will have it from someone else by then) and so that we may ask it again later
     * (a server answers DONT_HAVE once per want). Cancels to one peer go out together.
     */
    const cancelling = new Set<string>()
    const flushCancels = (peer: string, peerId: PeerId): void => {
      if (cancelling.has(peer)) return
      cancelling.add(peer)
      void (async () => {
        await new Promise(resolve => setTimeout(resolve, 20))
        const due = [...(refused.get(peer)?.values() ?? [])].filter(r => !r.cancelled)
        await this.sendCancels(peerId, due.map(r => r.cid))
        // only now may a lane ask again: a want queued with the cancel would be merged into it
        for (const r of due) r.cancelled = true
      })().finally(() => {
        cancelling.delete(peer)
        // refusals that came in while this batch was on its way
        if ([...(refused.get(peer)?.values() ?? [])].some(r => !r.cancelled)) flushCancels(peer, peerId)
      })
    }
    const lacked = (peer: string, peerId: PeerId, block: CID): void => {
      let lacks = refused.get(peer)
      if (lacks == null) refused.set(peer, lacks = new Map())
      lacks.set(digestKey(block), { cid: block, at: Date.now(), cancelled: false })
      flushCancels(peer, peerId)
    }

    const lane = async (peer: string, peerId: PeerId, signal: AbortSignal): Promise<void> => {
      while (!signal.aborted && fatal == null && !stop.signal.aborted) {
        if (inFlight.size >= BLOCKS_IN_FLIGHT_PER_FETCH) {
          // enough is on its way; many providers must not mean a flood of blocks at once
          await changed
          continue
        }
        const block = take(peer)
        if (block == null) {
          if (queue.length === 0 && inFlight.size === 0 && accepting.size === 0) return
          // what is left is in flight elsewhere, or this peer lacks it: wait for a change, or ask again later
          await Promise.race([changed, new Promise(resolve => setTimeout(resolve, REFUSAL_RETRY_MS / 2))])
          continue
        }
        const key = digestKey(block)
        inFlight.add(key)
        let mine = asked.get(peer)
        if (mine == null) asked.set(peer, mine = { peerId, cids: new Map() })
        mine.cids.set(key, block)
        const askedAt = Date.now()
        const timeoutMs = blockTimeout()
        try {
          const answer = await wantList.wantSessionBlock(block, peerId, { signal: AbortSignal.any([signal, stop.signal, AbortSignal.timeout(timeoutMs)]) })
          if (answer.has && answer.block != null) {
            blockTimes.push(Date.now() - askedAt)
            if (blockTimes.length > 32) blockTimes.shift()
            await accept(block, answer.block, peer)
          } else if (block.equals(root)) {
            if (!stored.has(key)) queue.unshift(block)
            dropProvider(peer, 'does not have the model')
          } else {
            // a peer still fetching the model lacks some blocks: others are asked for this one
            lackedBy.add(peer)
            lacked(peer, peerId, block)
            if (!stored.has(key)) queue.unshift(block)
          }
        } catch (err: any) {
          if (!stored.has(key)) queue.unshift(block)
          if (signal.aborted || stop.signal.aborted) {
            // this provider was dropped (its reason is recorded), or the fetch is over
          } else if (err instanceof ModelDagError || err instanceof ModelFetchError || err.name === 'StorageFullError') {
            fatal ??= err
          } else {
            // a lost message or a slow peer: others are asked for the block; a peer that keeps
            // timing out is dropped
            this.standing.strike(peer, 'timeout')
            const n = (timeouts.get(peer) ?? 0) + 1
            timeouts.set(peer, n)
            if (n >= TIMEOUTS_BEFORE_DROP) {
              dropProvider(peer, `no answer for ${n} blocks (the last, ${block.toString()}, within ${timeoutMs} ms)`)
            } else {
              lacked(peer, peerId, block)
            }
          }
        } finally {
          inFlight.delete(key)
          notify()
        }
      }
    }

    /** Starts asking new providers; lanes are started round-robin, so that each gets a share of the first blocks. */
    const addCandidates = (peers: string[]): void => {
      const added: Array<{ peer: string, peerId: PeerId, signal: AbortSignal }> = []
      for (const peer of peers) {
        if (peer === self || candidates.has(peer) || dropped.has(peer) || this.standing.excluded(peer)) continue
        let peerId: PeerId
        try {
          peerId = peerIdFromString(peer)
        } catch {
          continue
        }
        candidates.add(peer)
        const controller = new AbortController()
        lanes.set(peer, controller)
        added.push({ peer, peerId, signal: controller.signal })
      }
      if (added.length === 0) return
      progress.candidates = candidates.size
      lastProgressAt = Date.now()
      for (let i = 0; i < BLOCKS_IN_FLIGHT_PER_PROVIDER; i++) {
        for (const { peer, peerId, signal } of added) void lane(peer, peerId, signal).catch(err => { fatal ??= err; notify() })
      }
    }

    let lookingUp = false
    let lookupError: string | undefined
    const discover = async (): Promise<void> => {
      if (options.only != null) {
        addCandidates(options.only)
        return
      }
      addCandidates(this.standing.rank([...options.hints ?? [], ...this.init.adHolders(cid)]))
      // one DHT lookup at a time: overlapping ones would flood the DHT on a busy node
      if (lookingUp) return
      lookingUp = true
      try {
        const signal = AbortSignal.any([stop.signal, AbortSignal.timeout(FIND_PROVIDERS_TIMEOUT_MS)])
        for await (const provider of this.init.libp2p.contentRouting.findProviders(root as any, { signal })) {
          addCandidates([provider.id.toString()])
        }
        lookupError = undefined
      } catch (err: any) {
        // kept to say why a fetch found no one (a DHT with no peers, a lookup that timed out)
        if (!stop.signal.aborted && err?.name !== 'NotFoundError') {
          lookupError = err?.name === 'AbortError' || err?.name === 'TimeoutError' ? `no answer within ${FIND_PROVIDERS_TIMEOUT_MS} ms` : String(err?.message ?? err)
          this.log('fetch %s: provider lookup failed - %s', cid, lookupError)
        }
      } finally {
        lookingUp = false
      }
    }

    const started = Date.now()
    try {
      if (await store.hasBlock(root)) {
        await accept(root, await store.readBlock(root), null)
      } else {
        queue.push(root)
      }
      void discover()
      let discoveredAt = Date.now()
      const noProviderTimeout = this.init.noProviderTimeoutMs ?? NO_PROVIDER_TIMEOUT_MS
      while (fatal == null && (queue.length > 0 || inFlight.size > 0 || accepting.size > 0)) {
        outer?.throwIfAborted()
        // a block in flight may take up to BLOCK_TIMEOUT_MS before its provider counts as failed
        const patience = inFlight.size > 0 ? Math.max(noProviderTimeout, BLOCK_TIMEOUT_MS + 1000) : noProviderTimeout
        if (Date.now() - lastProgressAt > patience) {
          const why = [...dropped].map(([p, r]) => `${p}: ${r}`)
          const lacking = [...lackedBy].filter(p => !dropped.has(p))
          if (lacking.length > 0) why.push(`${lacking.join(', ')}: lack the remaining blocks`)
          throw new ModelFetchError(`no peer could provide model ${cid} within ${noProviderTimeout} ms` +
            (candidates.size === 0 ? ' (no capacity ad, DHT provider record or hint names one)' : ` (asked ${candidates.size}: ${why.join('; ')})`) +
            (lookupError != null ? `; the DHT lookup for providers failed: ${lookupError}` : ''))
        }
        if (Date.now() - discoveredAt >= FETCH_DISCOVERY_INTERVAL_MS) {
          discoveredAt = Date.now()
          void discover()
        }
        await Promise.race([changed, new Promise(resolve => setTimeout(resolve, FETCH_DISCOVERY_INTERVAL_MS / 4))])
      }
      if (fatal != null) throw fatal
      outer?.throwIfAborted()
      const entry: ModelEntry = await store.complete(cid)
      if (!announced) this.announce(cid)
      return {
        cid,
        bytes: entry.bytes,
        wallMs: Date.now() - started,
        blocks: progress.blocks,
        heldBlocks: progress.heldBlocks,
        providers: [...served].map(([peerId, bytes]) => ({ peerId, bytes })),
        duplicateBytes,
        dropped: [...dropped].map(([peerId, reason]) => ({ peerId, reason }))
      }
    } catch (err) {
      // blocks stay for a later fetch to resume from, but this node no longer offers them
      if (announced) await this.unannounce(cid)
      throw err
    } finally {
      stop.abort()
      for (const controller of lanes.values()) controller.abort()
      this.watchers.delete(watch)
      await Promise.all([...asked.values()].map(async ({ peerId, cids }) => { await this.sendCancels(peerId, cids.values()) }))
      outer?.removeEventListener('abort', onOuterAbort)
      release()
    }
  }
}
