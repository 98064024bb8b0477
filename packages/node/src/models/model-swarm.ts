import { serviceCapabilities, serviceDependencies } from '@libp2p/interface'
import type { ContentRouting, Logger } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import type { CID } from 'multiformats/cid'
import { BLOCK_ANSWER_TIMEOUT_MS, KEPT_FINISHED_FETCHES, MANIFEST_FETCH_TIMEOUT_MS, MAX_PIECE_FETCHES, MAX_PIECE_FETCHES_PER_PEER } from '../constants.js'
import { FetchBusyError, ModelFetchError } from '../errors.js'
import type { NodeMetrics } from '../metrics.js'
import { BitswapExchange } from './bitswap-exchange.js'
import type { ServedBlocks } from './bitswap-exchange.js'
import { FallbackExchange, ShoalBlockExchange } from './block-exchange.js'
import { BlockFetch } from './fetch-engine.js'
import type { BlockExchange } from './fetch-engine.js'
import { decodeBlock, ModelDagError, parseModelCid } from './model-dag.js'
import { PIPELINE_CODEC } from './model-cid.js'
import { CID as CIDClass } from 'multiformats/cid'
import type { ModelEntry, ModelStore } from './model-store.js'
import { Standing } from './standing.js'
import { swarmHost } from './swarm-host.js'
import type { SwarmHost, SwarmHostComponents } from './swarm-host.js'

export { ModelFetchError } from '../errors.js'

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

export interface ModelSwarmComponents extends SwarmHostComponents {
  contentRouting: ContentRouting
  /** kad-dht (the service named `dht`): provider records are withdrawn from refreshing through it. */
  dht: { cancelReprovide: (cid: CID) => Promise<void> }
  /** The capacity service: peers whose ads list a model are asked for it. */
  capacity: { peers: { list: () => Array<{ capacity: { peerId: string, models: string[] } }> } }
}

export interface ModelSwarmInit {
  store: ModelStore
  /** Tests shorten how long a fetch waits for a provider to appear. */
  noProviderTimeoutMs?: number
  /** Where blocks served and fetches are counted (`GET /metrics`). */
  metrics?: NodeMetrics
  /**
   * How this node fetches: `shoal` (default) over /shoal/block/1.0.0, with bitswap for peers that do
   * not serve it; `bitswap` over bitswap alone (for comparing the two). It serves both either way.
   */
  fetchOver?: 'shoal' | 'bitswap'
  /** The pipeline manifests this node holds, served as blocks of their own (docs/protocol.md 8.1). */
  manifests?: { bytes: (cid: string) => Uint8Array | undefined, cids: () => string[] }
}

/** Leaf size of the model profile (docs/protocol.md 7.1). */
const LEAF_BYTES = 1024 * 1024

/**
 * Models travel between nodes over /shoal/block/1.0.0 (block-exchange.ts; bitswap-exchange.ts for
 * older peers), serving this node's store. Fetching is Shoal's own (fetch-engine.ts): providers come from capacity ads, the DHT and hints; each block is
 * asked of one provider at a time, a few in flight per provider, so that faster providers serve more;
 * every block is checked against its CID on arrival; a provider that sends a bad block is dropped from
 * the fetch and loses standing. Blocks already held are not asked for again. This class keeps the
 * fetches in progress, checks each block against what the model's root announced, and announces the
 * models it holds in the DHT.
 */
export class ModelSwarm {
  readonly [Symbol.toStringTag] = '@shoal/swarm'
  readonly [serviceCapabilities] = ['@shoal/swarm']
  readonly [serviceDependencies] = ['@libp2p/kad-dht', '@shoal/capacity']
  private readonly components: ModelSwarmComponents
  private readonly init: ModelSwarmInit
  private readonly host: SwarmHost
  private readonly log: Logger
  /** Model fetches started by each peer's pieces, now. */
  private readonly pieceFetches = new Map<string, number>()
  private readonly bitswap: BitswapExchange
  private readonly blocks: ShoalBlockExchange
  private readonly exchange: BlockExchange
  private readonly fetches = new Map<string, { progress: FetchProgress, done: Promise<FetchSummary> }>()
  private readonly stopping = new AbortController()
  readonly standing = new Standing()
  /** Test-only: blocks this node serves have one byte flipped. */
  corruptServedBlocks = false

  constructor (components: ModelSwarmComponents, init: ModelSwarmInit) {
    this.components = components
    this.init = init
    this.host = swarmHost(components)
    this.log = components.logger.forComponent('shoal:swarm')
    const store = init.store
    const manifest = (cid: CID): Uint8Array | undefined => cid.code === PIPELINE_CODEC ? init.manifests?.bytes(cid.toString()) : undefined
    const served: ServedBlocks = {
      has: async cid => manifest(cid) != null || await store.hasBlock(cid),
      get: async cid => {
        const block = manifest(cid) ?? await store.readBlock(cid)
        this.init.metrics?.blockServed(block.byteLength)
        if (!this.corruptServedBlocks) return block
        const copy = new Uint8Array(block)
        copy[copy.length - 1] ^= 0xff
        return copy
      }
    }
    this.bitswap = new BitswapExchange(this.host, served)
    this.blocks = new ShoalBlockExchange(this.host, served)
    this.exchange = init.fetchOver === 'bitswap' ? this.bitswap : new FallbackExchange(this.blocks, this.bitswap)
  }

  async start (): Promise<void> {
    await this.bitswap.start()
    try {
      await this.blocks.start()
    } catch (err) {
      await this.bitswap.stop()
      throw err
    }
  }

  /** Once libp2p has started: the models held are announced in the DHT. */
  afterStart (): void {
    for (const model of this.init.store.list()) this.announce(model.cid)
    for (const cid of this.init.manifests?.cids() ?? []) this.announce(cid)
  }

  async stop (): Promise<void> {
    // fetches in flight end now, not at their own timeouts, with an error that says why
    this.stopping.abort(new ModelFetchError('the node is stopping'))
    await this.blocks.stop()
    await this.bitswap.stop()
  }

  /** Announces in the DHT that this node holds `cid`, a model or a pipeline manifest (kad-dht refreshes the record until cancelled). */
  announce (cid: string): void {
    const run = async (): Promise<void> => {
      await this.components.contentRouting.provide(blockCid(cid) as any, { signal: AbortSignal.timeout(60_000) })
    }
    run().catch(err => { this.log('announcing %s failed - %s', cid, err.message) })
  }

  async unannounce (cid: string): Promise<void> {
    await this.components.dht.cancelReprovide(parseModelCid(cid)).catch(() => {})
  }

  /**
   * Gets a pipeline manifest's bytes from a peer that has them: `hints` first, then the DHT's providers,
   * then every peer in the peer table, one at a time, each block checked against the CID (a provider that
   * sends other bytes is skipped). Fails naming what was tried once no one had it within `timeoutMs`.
   */
  async fetchManifest (cid: string, options: { hints?: string[], timeoutMs?: number, signal?: AbortSignal } = {}): Promise<Uint8Array> {
    const root = blockCid(cid)
    if (root.code !== PIPELINE_CODEC) throw new ModelFetchError(`${cid} is not a pipeline CID`)
    const signal = AbortSignal.any([AbortSignal.timeout(options.timeoutMs ?? this.init.noProviderTimeoutMs ?? MANIFEST_FETCH_TIMEOUT_MS), this.stopping.signal, ...(options.signal != null ? [options.signal] : [])])
    const self = this.components.peerId.toString()
    const asked = new Set<string>([self])
    const problems: string[] = []
    const ask = async (peer: string): Promise<Uint8Array | undefined> => {
      if (asked.has(peer)) return undefined
      asked.add(peer)
      try {
        return (await this.blocks.want(peer, root, AbortSignal.any([signal, AbortSignal.timeout(BLOCK_ANSWER_TIMEOUT_MS)]))) ?? undefined
      } catch (err: any) {
        if (problems.length < 8) problems.push(`${peer}: ${String(err.message)}`)
        return undefined
      }
    }
    for (const peer of options.hints ?? []) {
      const bytes = await ask(peer)
      if (bytes != null) return bytes
    }
    try {
      for await (const provider of this.components.contentRouting.findProviders(root as any, { signal })) {
        const bytes = await ask(provider.id.toString())
        if (bytes != null) return bytes
      }
    } catch (err: any) {
      if (signal.aborted && this.stopping.signal.aborted) throw new ModelFetchError('the node is stopping')
    }
    for (const entry of this.components.capacity.peers.list()) {
      if (signal.aborted) break
      const bytes = await ask(entry.capacity.peerId)
      if (bytes != null) return bytes
    }
    throw new ModelFetchError(`no peer gave pipeline ${cid} (asked ${asked.size - 1}${problems.length > 0 ? `: ${problems.join('; ')}` : ''}): its publisher or a node that ran it must be reachable`)
  }

  /** Peers whose capacity ads list the model. */
  private adHolders (cid: string): string[] {
    return this.components.capacity.peers.list().filter(e => e.capacity.models.includes(cid)).map(e => e.capacity.peerId)
  }

  /**
   * A fetch a peer's piece asks for, with that peer as a provider: joining a fetch already under way
   * is free, but a peer may start at most MAX_PIECE_FETCHES_PER_PEER fetches at once and all peers
   * MAX_PIECE_FETCHES (pieces naming hundreds of random CIDs once started as many fetches); past that
   * it is refused with FetchBusyError (the piece is answered OVERLOADED).
   */
  async fetchForPeer (cid: string, peer: string): Promise<FetchSummary> {
    if (this.progress(cid)?.state === 'fetching') return await this.fetch(cid, { hints: [peer] })
    const mine = this.pieceFetches.get(peer) ?? 0
    const all = [...this.pieceFetches.values()].reduce((a, b) => a + b, 0)
    if (mine >= MAX_PIECE_FETCHES_PER_PEER || all >= MAX_PIECE_FETCHES) {
      throw new FetchBusyError(`already fetching ${mine} models for this peer and ${all} in all (at most ${MAX_PIECE_FETCHES_PER_PEER} and ${MAX_PIECE_FETCHES})`)
    }
    this.pieceFetches.set(peer, mine + 1)
    try {
      return await this.fetch(cid, { hints: [peer] })
    } finally {
      const left = (this.pieceFetches.get(peer) ?? 1) - 1
      if (left <= 0) this.pieceFetches.delete(peer)
      else this.pieceFetches.set(peer, left)
    }
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
    const cid = root.toString()
    const store = this.init.store
    const release = store.use(cid)
    let announced = false
    const started = Date.now()
    const fetch: BlockFetch = new BlockFetch({
      root,
      exchange: this.exchange,
      standing: this.standing,
      self: this.components.peerId.toString(),
      signal: AbortSignal.any([options.signal, this.stopping.signal].filter(s => s != null)),
      fixedProviders: options.only != null,
      timing: this.init.noProviderTimeoutMs != null ? { noProviderTimeoutMs: this.init.noProviderTimeoutMs } : {},
      log: this.log,
      sink: {
        held: async block => await store.heldBlock(block),
        accept: async (block, bytes, from) => {
          const children = await this.storeBlock(root, progress, block, bytes, from)
          if (block.equals(root) && !announced && options.only == null) {
            // from now on this node serves the blocks it has: others fetching the model can ask it
            announced = true
            this.announce(cid)
          }
          return children
        }
      },
      discover: async (add, signal) => {
        const onlyValid = (peers: string[]): string[] => peers.filter(isPeerId)
        if (options.only != null) {
          add(onlyValid(options.only))
        } else {
          add(this.standing.rank(onlyValid([...options.hints ?? [], ...this.adHolders(cid)])))
          await this.lookUpProviders(root, add, signal)
        }
      },
      onChange: () => {
        progress.providers = fetch.plan.served()
        progress.candidates = fetch.plan.candidates
      }
    })
    try {
      await fetch.run()
      const entry: ModelEntry = await store.complete(cid)
      if (!announced) this.announce(cid)
      return {
        cid,
        bytes: entry.bytes,
        wallMs: Date.now() - started,
        blocks: progress.blocks,
        heldBlocks: progress.heldBlocks,
        providers: fetch.plan.served(),
        duplicateBytes: fetch.plan.duplicateBytes,
        dropped: fetch.plan.dropped()
      }
    } catch (err) {
      // blocks stay for a later fetch to resume from, but this node no longer offers them
      if (announced) await this.unannounce(cid)
      throw err
    } finally {
      release()
    }
  }

  /** Providers from the DHT; a lookup that finds none is no error (ads and hints may still name some). */
  private async lookUpProviders (root: CID, add: (peers: string[]) => void, signal: AbortSignal): Promise<void> {
    try {
      for await (const provider of this.components.contentRouting.findProviders(root as any, { signal })) add([provider.id.toString()])
    } catch (err: any) {
      if (err?.name !== 'NotFoundError') throw err
    }
  }

  /**
   * Checks one block of a model against what its root announced and stores it (`from` null: held
   * already); returns the blocks it links to. A hostile root may claim a small file and link to far
   * more: the fetch stops at what the root announced.
   */
  private async storeBlock (root: CID, progress: FetchProgress, block: CID, bytes: Uint8Array, from: string | null): Promise<CID[]> {
    const store = this.init.store
    const cid = root.toString()
    const node = decodeBlock(block, bytes)
    if (block.equals(root)) {
      const size = node.kind === 'leaf' ? node.bytes : node.fileSize
      if (size > store.maxModelBytes) throw new ModelFetchError(`model ${cid} is ${size} bytes, over this node's limit of ${store.maxModelBytes} (--max-model-size)`)
      store.checkRoom(size)
      progress.bytes = size
    }
    // checked before the block is written: a block past what the root announced never reaches the disk
    if (node.kind === 'leaf' && progress.bytesDone + node.bytes > progress.bytes) throw new ModelDagError(`model ${cid}: its blocks add up to more than the ${progress.bytes} bytes its root announces`)
    if (from != null) {
      await store.blockstore.put(block, bytes)
      this.init.metrics?.modelFetchedBytes.inc(bytes.byteLength)
    } else {
      progress.heldBlocks++
    }
    progress.blocksDone++
    if (node.kind === 'leaf') progress.bytesDone += node.bytes
    if (node.kind !== 'file') return []
    progress.blocks += node.children.length
    if (progress.blocks > 2 * Math.ceil(progress.bytes / LEAF_BYTES) + 8) throw new ModelDagError(`model ${cid} has more blocks than a file of ${progress.bytes} bytes can have`)
    return node.children
  }
}

function isPeerId (text: string): boolean {
  try {
    peerIdFromString(text)
    return true
  } catch {
    return false
  }
}

/** ModelSwarm as a libp2p service (the service named `swarm`). */
export function modelSwarm (init: ModelSwarmInit): (components: ModelSwarmComponents) => ModelSwarm {
  return components => new ModelSwarm(components, init)
}

/** A model's CID, or a pipeline manifest's (announced and served alike). */
function blockCid (text: string): CID {
  try {
    const cid = CIDClass.parse(text)
    if (cid.code === PIPELINE_CODEC && cid.version === 1) return cid
  } catch {}
  return parseModelCid(text)
}
