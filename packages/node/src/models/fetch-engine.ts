import type { CID } from 'multiformats/cid'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import {
  BLOCK_TIMEOUT_MS, BLOCKS_IN_FLIGHT_PER_FETCH, BLOCKS_IN_FLIGHT_PER_PROVIDER, FETCH_DISCOVERY_INTERVAL_MS, FIND_PROVIDERS_TIMEOUT_MS, MAX_PROVIDERS_PER_FETCH, MIN_BLOCK_TIMEOUT_MS, NO_PROVIDER_TIMEOUT_MS, REFUSAL_RETRY_MS, TIMEOUTS_BEFORE_DROP
} from '../constants.js'
import { ModelFetchError } from '../errors.js'
import { FetchPlan } from './fetch-plan.js'
import type { FetchLimits } from './fetch-plan.js'
import type { Standing } from './standing.js'

/**
 * How blocks travel between two peers, one block from one peer at a time: /shoal/block/1.0.0
 * (block-exchange.ts) or bitswap (bitswap-exchange.ts); tests use an exchange in memory.
 */
export interface BlockExchange {
  /**
   * Asks `peer` for one block. Resolves with bytes that hash to the CID, or null when the peer says it
   * lacks the block; rejects when the signal aborts or the peer cannot be asked; with a
   * `ProviderBusyError` when the peer (or this node) has no room for the request now (asked again
   * later, no fault); with an `InvalidMessageError` or `BadBlockError` when the peer's answer breaks
   * the protocol or is not the block (the provider is then dropped).
   */
  want: (peer: string, block: CID, signal: AbortSignal) => Promise<Uint8Array | null>
  /** The wants of these blocks from `peer` are over (bitswap: a cancel; nothing for an exchange without standing wants). */
  forget: (peer: string, blocks: CID[]) => Promise<void>
  /**
   * Blocks that arrive other than as a `want`'s answer (bitswap's: a block sent unasked, or one that
   * hashes to no wanted CID), each with its sender and the base64 digest of its multihash as the
   * receiver computed it: a block whose digest is no block of the fetch is corrupted.
   */
  onBlock: (listener: (sender: string, digest: string, bytes: Uint8Array) => void) => () => void
}

/** Where a fetch's blocks go: the model store, checked block by block. */
export interface BlockSink {
  /** The block's bytes if they are held already. */
  held: (block: CID) => Promise<Uint8Array | null>
  /**
   * Checks and stores a block (`from` null: it was held already) and returns the blocks it links to.
   * Throwing fails the whole fetch: what it rejects is the model, not the provider.
   */
  accept: (block: CID, bytes: Uint8Array, from: string | null) => Promise<CID[]>
}

/** Time as the engine sees it; tests pass a clock they advance themselves. */
export interface FetchClock {
  now: () => number
  sleep: (ms: number) => Promise<void>
  /** A signal that aborts after `ms`, with a TimeoutError. */
  timeout: (ms: number) => AbortSignal
}

export const systemClock: FetchClock = {
  now: Date.now,
  sleep: async ms => { await new Promise(resolve => setTimeout(resolve, ms)) },
  timeout: ms => AbortSignal.timeout(ms)
}

export interface FetchTiming {
  /** A fetch with no provider that delivers fails after this long. */
  noProviderTimeoutMs: number
  /** Providers are looked for again this often while the fetch runs. */
  discoveryIntervalMs: number
  /** One provider lookup may take this long. */
  lookupTimeoutMs: number
}

export const DEFAULT_FETCH_LIMITS: FetchLimits = {
  blocksInFlight: BLOCKS_IN_FLIGHT_PER_FETCH,
  blocksPerProvider: BLOCKS_IN_FLIGHT_PER_PROVIDER,
  refusalRetryMs: REFUSAL_RETRY_MS,
  blockTimeoutMs: BLOCK_TIMEOUT_MS,
  minBlockTimeoutMs: MIN_BLOCK_TIMEOUT_MS,
  timeoutsBeforeDrop: TIMEOUTS_BEFORE_DROP,
  maxProviders: MAX_PROVIDERS_PER_FETCH
}

export const DEFAULT_FETCH_TIMING: FetchTiming = {
  noProviderTimeoutMs: NO_PROVIDER_TIMEOUT_MS,
  discoveryIntervalMs: FETCH_DISCOVERY_INTERVAL_MS,
  lookupTimeoutMs: FIND_PROVIDERS_TIMEOUT_MS
}

export interface BlockFetchInit {
  root: CID
  exchange: BlockExchange
  sink: BlockSink
  /** Shared across fetches: strikes for bad blocks and timeouts, and who is not asked at all. */
  standing: Standing
  /** This node's peer id (never its own provider). */
  self: string
  /**
   * Finds providers: calls `add` with peers to ask (best first). Throwing says why a lookup failed;
   * the reason is kept for the error of a fetch that finds no one.
   */
  discover: (add: (peers: string[]) => void, signal: AbortSignal) => Promise<void>
  /**
   * `discover` names a fixed set of peers (a fetch restricted to them): once every one of them is
   * dropped, the fetch fails at once, since no one else will join.
   */
  fixedProviders?: boolean
  signal?: AbortSignal
  clock?: FetchClock
  limits?: Partial<FetchLimits>
  timing?: Partial<FetchTiming>
  /** Order of a file's blocks (shuffled, so that peers fetching at once hold different blocks to trade). */
  random?: () => number
  log?: (format: string, ...args: unknown[]) => void
  /** Called whenever the fetch's state changed (a block stored, an ask over, a provider joined or dropped). */
  onChange?: () => void
}

export const digestKey = (cid: CID): string => uint8ArrayToString(cid.multihash.digest, 'base64')

/** Waits a cancels to one peer are gathered for, so that a burst of refusals goes out in one message. */
const FORGET_BATCH_MS = 20

/**
 * One model fetched from many providers, BitTorrent-style: each block is asked of one provider at a
 * time, a few in flight per provider, so that faster providers serve more; a provider that lacks a
 * block is asked again later; one that keeps timing out, or sends a block that matches no CID, is
 * dropped. Its policy is `FetchPlan`; this class only drives it against an exchange and a clock.
 */
export class BlockFetch {
  readonly plan: FetchPlan
  private readonly init: BlockFetchInit
  private readonly clock: FetchClock
  private readonly timing: FetchTiming
  private readonly random: () => number
  /** Every block of the model known so far, by digest (the root, then each node's links). */
  private readonly blocks = new Map<string, CID>()
  private readonly lanes = new Map<string, AbortController>()
  /** Per provider, the blocks asked of it (cancelled at the exchange when the fetch ends). */
  private readonly asked = new Map<string, Map<string, CID>>()
  private readonly forgetting = new Set<string>()
  private readonly stop = new AbortController()
  private fatal: Error | undefined
  private wake: () => void = () => {}
  private changed: Promise<void>
  private lookingUp = false
  private lookupError: string | undefined

  constructor (init: BlockFetchInit) {
    this.init = init
    this.clock = init.clock ?? systemClock
    this.timing = { ...DEFAULT_FETCH_TIMING, ...init.timing }
    this.random = init.random ?? Math.random
    this.plan = new FetchPlan({ ...DEFAULT_FETCH_LIMITS, ...init.limits }, this.clock.now())
    this.changed = new Promise<void>(resolve => { this.wake = resolve })
    this.blocks.set(digestKey(init.root), init.root)
  }

  /** Resolves once every block of the model is in the sink; rejects with why not. */
  async run (): Promise<void> {
    const { signal } = this.init
    const onAbort = (): void => this.stop.abort(signal?.reason)
    signal?.addEventListener('abort', onAbort, { once: true })
    if (signal?.aborted === true) onAbort()
    const unsubscribe = this.init.exchange.onBlock((sender, digest, bytes) => { this.received(sender, digest, bytes) })
    try {
      await this.offer(this.init.root)
      void this.discover()
      let discoveredAt = this.clock.now()
      const { noProviderTimeoutMs, discoveryIntervalMs } = this.timing
      while (this.fatal == null && this.plan.unfinished()) {
        signal?.throwIfAborted()
        // a block in flight may take up to the block timeout before its provider counts as failed
        const patience = this.plan.asking > 0 ? Math.max(noProviderTimeoutMs, this.plan.limits.blockTimeoutMs + 1000) : noProviderTimeoutMs
        if (this.plan.stalled(this.clock.now(), patience)) throw this.stalledError()
        if (this.init.fixedProviders === true && !this.lookingUp && this.plan.candidates > 0 && this.plan.dropped().length >= this.plan.candidates) throw this.droppedError()
        if (this.clock.now() - discoveredAt >= discoveryIntervalMs) {
          discoveredAt = this.clock.now()
          void this.discover()
        }
        await Promise.race([this.changed, this.clock.sleep(discoveryIntervalMs / 4)])
      }
      if (this.fatal != null) throw this.fatal
      signal?.throwIfAborted()
    } finally {
      this.stop.abort()
      for (const lane of this.lanes.values()) lane.abort()
      unsubscribe()
      signal?.removeEventListener('abort', onAbort)
      await Promise.all([...this.asked].map(async ([peer, cids]) => { await this.forget(peer, [...cids.values()]) }))
    }
  }

  /** Adds providers to ask; lanes start round-robin, so that each gets a share of the first blocks. */
  addProviders (peers: string[]): void {
    const added: Array<{ peer: string, signal: AbortSignal }> = []
    for (const peer of peers) {
      if (peer === this.init.self || this.init.standing.excluded(peer) || !this.plan.addProvider(peer, this.clock.now())) continue
      const controller = new AbortController()
      this.lanes.set(peer, controller)
      added.push({ peer, signal: controller.signal })
    }
    if (added.length > 0) this.notify()
    for (let i = 0; i < this.plan.limits.blocksPerProvider; i++) {
      for (const { peer, signal } of added) void this.lane(peer, signal).catch(err => { this.fail(err) })
    }
  }

  private notify (): void {
    this.init.onChange?.()
    const wake = this.wake
    this.changed = new Promise<void>(resolve => { this.wake = resolve })
    wake()
  }

  private fail (err: Error): void {
    this.fatal ??= err
    this.notify()
  }

  private get over (): boolean { return this.fatal != null || this.stop.signal.aborted }

  /** A known block: taken from the sink if held there, else queued to be asked for. */
  private async offer (block: CID): Promise<void> {
    const key = digestKey(block)
    const held = await this.init.sink.held(block)
    if (held != null) await this.accept(block, key, held, null)
    else this.plan.enqueue(key)
  }

  /** A block is here (fetched or held): store it, and offer its children. */
  private async accept (block: CID, key: string, bytes: Uint8Array, from: string | null): Promise<void> {
    if (!this.plan.arrive(key)) return
    let children: CID[]
    try {
      children = await this.init.sink.accept(block, bytes, from)
    } catch (err) {
      this.plan.unstore(key)
      throw err
    }
    this.plan.store(key, from, bytes.byteLength, this.clock.now())
    for (const child of this.shuffled(children)) {
      const childKey = digestKey(child)
      if (this.blocks.has(childKey)) continue
      this.blocks.set(childKey, child)
      await this.offer(child)
    }
    this.notify()
  }

  private shuffled<T> (items: T[]): T[] {
    const out = [...items]
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [out[i], out[j]] = [out[j], out[i]]
    }
    return out
  }

  private dropProvider (peer: string, reason: string): void {
    if (!this.plan.drop(peer, reason)) return
    this.lanes.get(peer)?.abort(new ModelFetchError(reason))
    this.lanes.delete(peer)
    this.init.log?.('fetch %s: dropped %s - %s', this.init.root, peer, reason)
    this.notify()
  }

  /**
   * Every block that reaches the exchange. One of the model is kept whether a lane waits for it or it
   * came unasked (a peer that lacked it when asked may send it on getting it): a bitswap server
   * ignores a new want for a block it sent in the last 5 s, so a block dropped here could not be asked
   * of that peer again soon. One that is no block of the model, from a provider, is a corrupted block.
   */
  private received (sender: string, digest: string, bytes: Uint8Array): void {
    const block = this.blocks.get(digest)
    if (block == null) {
      if (!this.plan.isActive(sender)) return
      this.init.standing.strike(sender, 'bad-block')
      this.dropProvider(sender, 'sent a block that does not match its CID')
      return
    }
    if (this.plan.isHere(digest)) {
      this.plan.duplicateBytes += bytes.byteLength
      return
    }
    if (!this.plan.isActive(sender)) return
    this.accept(block, digest, bytes, sender).catch(err => { this.fail(err) })
  }

  /** One of a provider's lanes: asks for one block after another until none is left for it. */
  private async lane (peer: string, signal: AbortSignal): Promise<void> {
    while (!signal.aborted && !this.over) {
      if (this.plan.saturated()) {
        await this.changed
        continue
      }
      const key = this.plan.take(peer, this.clock.now())
      if (key == null) {
        if (!this.plan.unfinished()) return
        // what is left is in flight elsewhere, or this peer lacks it: wait for a change, or ask again later
        await Promise.race([this.changed, this.clock.sleep(this.plan.limits.refusalRetryMs / 2)])
        continue
      }
      try {
        await this.ask(peer, key, signal)
      } finally {
        this.plan.settle(key)
        this.notify()
      }
    }
  }

  private async ask (peer: string, key: string, signal: AbortSignal): Promise<void> {
    const block = this.blocks.get(key) as CID
    let mine = this.asked.get(peer)
    if (mine == null) this.asked.set(peer, mine = new Map())
    mine.set(key, block)
    const askedAt = this.clock.now()
    const timeoutMs = this.plan.blockTimeout(peer)
    let bytes: Uint8Array | null
    try {
      bytes = await this.init.exchange.want(peer, block, AbortSignal.any([signal, this.stop.signal, this.clock.timeout(timeoutMs)]))
    } catch (err: any) {
      if (signal.aborted || this.over) return // dropped (its reason is recorded), or the fetch is over
      if (err?.name === 'ProviderBusyError') {
        // busy is no fault, not even for the root: ask others, and this peer again later
        this.plan.lacked(peer, key, this.clock.now())
        this.forgetLater(peer)
        return
      }
      if (err?.name === 'InvalidMessageError' || err?.name === 'BadBlockError') {
        // an answer that breaks the protocol, or is another block than the one asked, is no bad luck
        this.init.standing.strike(peer, 'bad-block')
        this.dropProvider(peer, err.name === 'BadBlockError' ? 'sent a block that does not match its CID' : `sent a malformed answer (${String(err.message)})`)
        return
      }
      // a lost message, a slow peer or a broken stream: others are asked for the block; a peer that keeps failing is dropped
      this.init.standing.strike(peer, 'timeout')
      const failure = err?.name === 'TimeoutError' ? undefined : `${String(err?.name ?? 'Error')}: ${String(err?.message ?? err)}`
      const verdict = this.plan.timedOut(peer, key, block.toString(), timeoutMs, this.clock.now(), failure)
      if (verdict.drop) this.dropProvider(peer, verdict.reason)
      else this.forgetLater(peer)
      return
    }
    if (bytes != null) {
      this.plan.timed(peer, this.clock.now() - askedAt)
      await this.accept(block, key, bytes, peer)
    } else if (block.equals(this.init.root)) {
      this.dropProvider(peer, 'does not have the model')
    } else {
      // a peer still fetching the model lacks some blocks: others are asked for this one
      this.plan.lacked(peer, key, this.clock.now())
      this.forgetLater(peer)
    }
  }

  /**
   * A peer lacked a block (or lost it): forget the want at once, so that it does not send the block
   * when it gets it (we will have it from someone else by then) and so that we may ask it again later
   * (a bitswap server answers DONT_HAVE once per want). Wants to one peer are forgotten together.
   */
  private forgetLater (peer: string): void {
    if (this.forgetting.has(peer)) return
    this.forgetting.add(peer)
    void (async () => {
      await this.clock.sleep(FORGET_BATCH_MS)
      const keys = this.plan.unforgotten(peer)
      await this.forget(peer, keys.map(key => this.blocks.get(key) as CID))
      // only now may a lane ask again: a want sent along with the cancel would be merged into it
      this.plan.forgotten(peer, keys)
    })().finally(() => {
      this.forgetting.delete(peer)
      // refusals that came in while this batch was on its way
      if (this.plan.unforgotten(peer).length > 0) this.forgetLater(peer)
    })
  }

  private async forget (peer: string, cids: CID[]): Promise<void> {
    if (cids.length === 0) return
    await this.init.exchange.forget(peer, cids).catch(() => {})
  }

  private async discover (): Promise<void> {
    // one lookup at a time: overlapping ones would flood the DHT on a busy node
    if (this.lookingUp) return
    this.lookingUp = true
    try {
      await this.init.discover(peers => { this.addProviders(peers) }, AbortSignal.any([this.stop.signal, this.clock.timeout(this.timing.lookupTimeoutMs)]))
      this.lookupError = undefined
    } catch (err: any) {
      if (!this.stop.signal.aborted) {
        this.lookupError = err?.name === 'AbortError' || err?.name === 'TimeoutError' ? `no answer within ${this.timing.lookupTimeoutMs} ms` : String(err?.message ?? err)
        this.init.log?.('fetch %s: provider lookup failed - %s', this.init.root, this.lookupError)
      }
    } finally {
      this.lookingUp = false
    }
  }

  private droppedError (): ModelFetchError {
    return new ModelFetchError(`no peer asked could provide model ${this.init.root.toString()} (${this.plan.stallReasons().join('; ')})`)
  }

  private stalledError (): ModelFetchError {
    const { noProviderTimeoutMs } = this.timing
    const asked = this.plan.candidates
    return new ModelFetchError(`no peer could provide model ${this.init.root.toString()} within ${noProviderTimeoutMs} ms` +
      (asked === 0 ? ' (no capacity ad, DHT provider record or hint names one)' : ` (asked ${asked}: ${this.plan.stallReasons().join('; ')})`) +
      (this.lookupError != null ? `; the DHT lookup for providers failed: ${this.lookupError}` : ''))
  }
}
