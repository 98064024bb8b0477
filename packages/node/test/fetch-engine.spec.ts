import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { describe, expect, it } from 'vitest'
import { BlockFetch, digestKey } from '../src/models/fetch-engine.js'
import type { BlockExchange, BlockFetchInit, BlockSink, FetchClock } from '../src/models/fetch-engine.js'
import { Standing } from '../src/models/standing.js'

/** A clock that moves only when every promise has settled that can settle without it: runs are deterministic and instant. */
class FakeClock implements FetchClock {
  private t = 0
  private seq = 0
  private timers: Array<{ at: number, seq: number, fire: () => void }> = []

  now = (): number => this.t
  sleep = async (ms: number): Promise<void> => { await new Promise<void>(resolve => { this.at(ms, resolve) }) }
  timeout = (ms: number): AbortSignal => {
    const controller = new AbortController()
    this.at(ms, () => { controller.abort(new DOMException('timed out', 'TimeoutError')) })
    return controller.signal
  }

  private at (ms: number, fire: () => void): void {
    this.timers.push({ at: this.t + ms, seq: this.seq++, fire })
  }

  /** Runs `work` to its end, moving time from timer to timer whenever nothing else can happen. */
  async run<T> (work: Promise<T>, limitMs = 10 * 60_000): Promise<T> {
    let outcome: { ok: true, value: T } | { ok: false, error: unknown } | undefined
    work.then(value => { outcome = { ok: true, value } }, error => { outcome = { ok: false, error } })
    for (;;) {
      for (let i = 0; i < 5; i++) await new Promise(resolve => setImmediate(resolve))
      if (outcome != null) {
        if (outcome.ok) return outcome.value
        throw outcome.error
      }
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq)
      const next = this.timers.shift()
      if (next == null) throw new Error('deadlock: nothing left to wait for')
      if (next.at > limitMs) throw new Error(`still running at ${limitMs} ms`)
      this.t = Math.max(this.t, next.at)
      next.fire()
    }
  }
}

function block (text: string): { cid: CID, bytes: Uint8Array } {
  const bytes = new TextEncoder().encode(text)
  return { cid: CID.create(1, raw.code, sha256.digest(bytes) as any), bytes }
}

/** A model of one root linking to `n` leaves; the sink reads the links from this table, as the real one decodes them. */
function dag (n: number): { root: CID, blocks: Map<string, Uint8Array>, links: Map<string, CID[]>, cids: CID[] } {
  const leaves = Array.from({ length: n }, (_, i) => block(`leaf ${i}`))
  const root = block(`root of ${n}`)
  const blocks = new Map([[digestKey(root.cid), root.bytes], ...leaves.map(l => [digestKey(l.cid), l.bytes] as const)])
  return { root: root.cid, blocks, links: new Map([[digestKey(root.cid), leaves.map(l => l.cid)]]), cids: [root.cid, ...leaves.map(l => l.cid)] }
}

interface FakePeer {
  /** Digests of the blocks it holds. */
  holds: Set<string>
  latencyMs: number
  /** Never answers. */
  silent?: boolean
  /** Sends a block with its last byte flipped instead of the one asked for. */
  corrupt?: boolean
  /** Answers BUSY (the exchange's ProviderBusyError) until then, on the fake clock. */
  busyUntil?: number
}

/** Peers in memory, answering wants after their latency, as bitswap does: blocks reach `onBlock` too. */
class MemoryExchange implements BlockExchange {
  readonly peers = new Map<string, FakePeer>()
  readonly asks: Array<{ peer: string, digest: string }> = []
  readonly forgotten: Array<{ peer: string, digests: string[] }> = []
  maxInFlight = 0
  private inFlight = 0
  private readonly listeners = new Set<(sender: string, digest: string, bytes: Uint8Array) => void>()

  constructor (private readonly clock: FakeClock, private readonly blocks: Map<string, Uint8Array>) {}

  async want (peer: string, cid: CID, signal: AbortSignal): Promise<Uint8Array | null> {
    const p = this.peers.get(peer)
    if (p == null) throw new Error(`no peer ${peer}`)
    const digest = digestKey(cid)
    this.asks.push({ peer, digest })
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight)
    try {
      const aborted = new Promise<never>((_resolve, reject) => {
        if (signal.aborted) reject(signal.reason)
        signal.addEventListener('abort', () => reject(signal.reason), { once: true })
      })
      await Promise.race([this.clock.sleep(p.latencyMs), aborted])
      if (p.silent === true) return await aborted
      if ((p.busyUntil ?? 0) > this.clock.now()) throw Object.assign(new Error(`${peer} is serving too many blocks`), { name: 'ProviderBusyError' })
      if (!p.holds.has(digest)) return null
      const bytes = this.blocks.get(digest) as Uint8Array
      if (p.corrupt === true) {
        const copy = new Uint8Array(bytes)
        copy[copy.length - 1] ^= 0xff
        const wrong = digestKey(CID.create(1, raw.code, sha256.digest(copy) as any))
        for (const listener of this.listeners) listener(peer, wrong, copy)
        // bitswap resolves no want with a block that does not hash to it
        return await aborted
      }
      for (const listener of this.listeners) listener(peer, digest, bytes)
      return bytes
    } finally {
      this.inFlight--
    }
  }

  async forget (peer: string, blocks: CID[]): Promise<void> {
    this.forgotten.push({ peer, digests: blocks.map(digestKey) })
  }

  onBlock (listener: (sender: string, digest: string, bytes: Uint8Array) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  askedOf (peer: string): number { return this.asks.filter(a => a.peer === peer).length }
}

/** A fetch of a model of `leaves` leaves over a fresh exchange; `peers` as given, the sink in memory. */
function setup (leaves: number, peers: Record<string, Partial<FakePeer> & { holds?: 'all' | number }>, init: Partial<BlockFetchInit> = {}): {
  clock: FakeClock, exchange: MemoryExchange, fetch: BlockFetch, stored: Map<string, string | null>, model: ReturnType<typeof dag>
} {
  const clock = new FakeClock()
  const model = dag(leaves)
  const exchange = new MemoryExchange(clock, model.blocks)
  for (const [id, p] of Object.entries(peers)) {
    const count = p.holds === 'all' || p.holds == null ? model.cids.length : p.holds
    exchange.peers.set(id, { latencyMs: 10, ...p, holds: new Set(model.cids.slice(0, count).map(digestKey)) })
  }
  /** digest -> who it came from (null: held already) */
  const stored = new Map<string, string | null>()
  const sink: BlockSink = {
    held: async () => null,
    accept: async (cid, _bytes, from) => {
      const key = digestKey(cid)
      if (stored.has(key)) throw new Error(`block ${cid.toString()} stored twice`)
      stored.set(key, from)
      return model.links.get(key) ?? []
    }
  }
  const fetch = new BlockFetch({
    root: model.root,
    exchange,
    sink,
    standing: new Standing(clock.now),
    self: 'me',
    clock,
    discover: async add => { add(Object.keys(peers)) },
    random: () => 0.5,
    ...init
  })
  return { clock, exchange, fetch, stored, model }
}

describe('the block fetch engine', () => {
  it('gets every block once from two providers; the faster serves more, and no block is asked of two at once', async () => {
    const { clock, exchange, fetch, stored, model } = setup(40, { fast: { latencyMs: 5 }, slow: { latencyMs: 60 } })
    await clock.run(fetch.run())
    expect([...stored.keys()].sort()).toEqual(model.cids.map(digestKey).sort())
    // every block asked exactly once: nobody failed, so nothing was asked twice
    expect(exchange.asks.length).toBe(model.cids.length)
    const served = Object.fromEntries(fetch.plan.served().map(s => [s.peerId, s.bytes]))
    expect(served.fast).toBeGreaterThan(3 * served.slow)
    expect(fetch.plan.duplicateBytes).toBe(0)
    expect(fetch.plan.dropped()).toEqual([])
  })

  it('asks at most blocksInFlight blocks at once however many providers there are', async () => {
    const peers = Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`p${i}`, { latencyMs: 20 }]))
    const { clock, exchange, fetch } = setup(100, peers, { limits: { blocksInFlight: 16, blocksPerProvider: 8 } })
    await clock.run(fetch.run())
    expect(exchange.maxInFlight).toBe(16)
  })

  it('blocks already held are taken from the sink and never asked for', async () => {
    const model = dag(10)
    const heldKeys = new Set(model.cids.slice(0, 6).map(digestKey)) // the root and five leaves
    const { clock, exchange, fetch, stored } = setup(10, { a: {} }, {
      root: model.root,
      sink: {
        held: async cid => heldKeys.has(digestKey(cid)) ? model.blocks.get(digestKey(cid)) as Uint8Array : null,
        accept: async (cid, _bytes, from) => { stored.set(digestKey(cid), from); return model.links.get(digestKey(cid)) ?? [] }
      }
    })
    await clock.run(fetch.run())
    expect(stored.size).toBe(11)
    expect([...stored].filter(([, from]) => from == null).length).toBe(6)
    expect(exchange.asks.map(a => a.digest).sort()).toEqual(model.cids.slice(6).map(digestKey).sort())
  })

  it('a partial holder serves what it has; what it lacks comes from others, and its wants for those are forgotten', async () => {
    const { clock, exchange, fetch, stored, model } = setup(30, { partial: { holds: 11, latencyMs: 1 }, full: { latencyMs: 50 } })
    await clock.run(fetch.run())
    expect(stored.size).toBe(31)
    const fromPartial = [...stored].filter(([, from]) => from === 'partial').map(([key]) => key)
    const partialHolds = new Set(model.cids.slice(0, 11).map(digestKey))
    expect(fromPartial.length).toBeGreaterThan(0)
    expect(fromPartial.every(key => partialHolds.has(key))).toBe(true)
    // every block it lacked and was asked for was forgotten at the exchange (so it will not send it later)
    const lackedAsks = new Set(exchange.asks.filter(a => a.peer === 'partial' && !partialHolds.has(a.digest)).map(a => a.digest))
    expect(lackedAsks.size).toBeGreaterThan(0)
    const forgotten = new Set(exchange.forgotten.filter(f => f.peer === 'partial').flatMap(f => f.digests))
    for (const key of lackedAsks) expect(forgotten.has(key)).toBe(true)
    expect(fetch.plan.dropped()).toEqual([])
    expect(fetch.plan.stallReasons()).toEqual(['partial: lack the remaining blocks'])
  })

  it('a provider still fetching is asked again, once its wants were forgotten, for what it lacked: the fetch completes as it gets the rest', async () => {
    const { clock, exchange, fetch, stored, model } = setup(10, { growing: { holds: 4 } }, { timing: { noProviderTimeoutMs: 30_000 } })
    void clock.sleep(3000).then(() => { for (const cid of model.cids) exchange.peers.get('growing')?.holds.add(digestKey(cid)) })
    await clock.run(fetch.run())
    expect(stored.size).toBe(11)
    expect([...stored.values()].every(from => from === 'growing')).toBe(true)
    // the leaves it lacked at first were asked at least twice: before and after it got them
    const late = model.cids.slice(4).map(digestKey)
    for (const key of late) expect(exchange.asks.filter(a => a.digest === key).length).toBeGreaterThan(1)
    expect(clock.now()).toBeGreaterThanOrEqual(3000)
    expect(clock.now()).toBeLessThan(3000 + 2 * 1000)
  })

  it('a provider that never answers is dropped after three timeouts, with a strike each; the fetch finishes from the other', async () => {
    const standing = new Standing(() => 0)
    const { clock, fetch, stored } = setup(20, { mute: { silent: true }, ok: { latencyMs: 10 } }, { standing, limits: { blocksPerProvider: 2 } })
    await clock.run(fetch.run())
    expect(stored.size).toBe(21)
    expect(fetch.plan.dropped()).toEqual([{ peerId: 'mute', reason: expect.stringMatching(/^no answer for 3 blocks \(the last, \S+, within \d+ ms\)$/) }])
    expect(standing.weight('mute')).toBe(3)
    expect(standing.weight('ok')).toBe(0)
  })

  it('a provider that sends a corrupted block is dropped at once and loses standing; the block comes from another', async () => {
    const standing = new Standing(() => 0)
    const { clock, fetch, stored, model } = setup(12, { liar: { corrupt: true, latencyMs: 1 }, honest: { latencyMs: 30 } }, { standing })
    await clock.run(fetch.run())
    expect(stored.size).toBe(13)
    expect([...stored.values()].every(from => from === 'honest')).toBe(true)
    expect(fetch.plan.dropped()).toEqual([{ peerId: 'liar', reason: 'sent a block that does not match its CID' }])
    expect(standing.weight('liar')).toBe(3)
    expect(model.cids.length).toBe(13)
  })

  it('a provider that answers BUSY, even for the root, is asked again later and not held against it', async () => {
    const standing = new Standing(() => 0)
    const { clock, exchange, fetch, stored } = setup(6, { seed: { busyUntil: 2500 } }, { standing })
    await clock.run(fetch.run())
    expect(stored.size).toBe(7)
    expect(fetch.plan.dropped()).toEqual([])
    expect(standing.weight('seed')).toBe(0)
    // the root was asked more than once: busy, then served
    expect(exchange.asks.filter(a => a.digest === [...stored.keys()][0]).length).toBeGreaterThan(1)
    expect(clock.now()).toBeGreaterThanOrEqual(2500)
  })

  it('asks at most maxProviders providers, however many the lookups name', async () => {
    const peers = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`p${i}`, { latencyMs: 5 }]))
    const { clock, exchange, fetch } = setup(10, peers, { limits: { maxProviders: 32 } })
    await clock.run(fetch.run())
    expect(fetch.plan.candidates).toBe(32)
    expect(new Set(exchange.asks.map(a => a.peer)).size).toBeLessThanOrEqual(32)
  })

  it('a provider without the root is dropped as not having the model', async () => {
    const { clock, fetch, stored } = setup(3, { none: { holds: 0 }, full: { latencyMs: 40 } })
    await clock.run(fetch.run())
    expect(stored.size).toBe(4)
    expect(fetch.plan.dropped()).toEqual([{ peerId: 'none', reason: 'does not have the model' }])
  })

  it('with no provider, the fetch fails after the no-provider timeout and says why, with the lookup\'s error', async () => {
    const { clock, fetch } = setup(3, {}, {
      timing: { noProviderTimeoutMs: 5000 },
      discover: async () => { throw new Error('the DHT has no peers') }
    })
    const error = await clock.run(fetch.run()).catch(err => err)
    expect(error.name).toBe('ModelFetchError')
    expect(error.message).toMatch(/^no peer could provide model \S+ within 5000 ms \(no capacity ad, DHT provider record or hint names one\); the DHT lookup for providers failed: the DHT has no peers$/)
    expect(clock.now()).toBeGreaterThan(5000)
    expect(clock.now()).toBeLessThan(8000)
  })

  it('a fetch restricted to given peers fails as soon as each has been dropped, without waiting for others to join', async () => {
    const { clock, fetch } = setup(3, { none: { holds: 0, latencyMs: 10 } }, { fixedProviders: true, timing: { noProviderTimeoutMs: 5000 } })
    const error = await clock.run(fetch.run()).catch(err => err)
    expect(error.message).toMatch(/^no peer asked could provide model \S+ \(none: does not have the model\)$/)
    expect(clock.now()).toBeLessThan(1000)
    // without the restriction, the same fetch waits for a provider to join
    const open = setup(3, { none: { holds: 0, latencyMs: 10 } }, { timing: { noProviderTimeoutMs: 5000 } })
    await open.clock.run(open.fetch.run()).catch(() => {})
    expect(open.clock.now()).toBeGreaterThan(5000)
  })

  it('a fetch whose only provider holds part of the model fails, naming it as lacking the rest', async () => {
    const { clock, fetch, stored } = setup(8, { partial: { holds: 4 } }, { timing: { noProviderTimeoutMs: 3000 } })
    const error = await clock.run(fetch.run()).catch(err => err)
    expect(error.message).toMatch(/\(asked 1: partial: lack the remaining blocks\)$/)
    expect(stored.size).toBe(4)
  })

  it('providers found by a later lookup join the fetch', async () => {
    let rounds = 0
    const { clock, fetch, stored } = setup(6, { early: { holds: 0 }, late: {} }, {
      timing: { discoveryIntervalMs: 1000 },
      discover: async add => { add(++rounds === 1 ? ['early'] : ['early', 'late']) }
    })
    await clock.run(fetch.run())
    expect(stored.size).toBe(7)
    expect(rounds).toBeGreaterThan(1)
    expect([...stored.values()].every(from => from === 'late')).toBe(true)
  })

  it('never asks itself or a peer whose standing excludes it', async () => {
    const standing = new Standing(() => 0)
    standing.strike('banned', 'bad-block')
    standing.strike('banned', 'bad-block')
    const { clock, exchange, fetch } = setup(5, { me: {}, banned: { latencyMs: 1 }, ok: { latencyMs: 20 } }, { standing })
    await clock.run(fetch.run())
    expect(exchange.askedOf('me')).toBe(0)
    expect(exchange.askedOf('banned')).toBe(0)
    expect(exchange.askedOf('ok')).toBe(6)
  })

  it('a block the sink rejects fails the fetch with the sink\'s error, not the provider', async () => {
    const model = dag(4)
    const standing = new Standing(() => 0)
    const { clock, fetch } = setup(4, { a: {} }, {
      root: model.root,
      standing,
      sink: {
        held: async () => null,
        accept: async cid => {
          if (!cid.equals(model.root)) throw Object.assign(new Error('the disk is full'), { name: 'StorageFullError' })
          return model.links.get(digestKey(cid)) ?? []
        }
      }
    })
    const error = await clock.run(fetch.run()).catch(err => err)
    expect(error.name).toBe('StorageFullError')
    expect(fetch.plan.dropped()).toEqual([])
    expect(standing.weight('a')).toBe(0)
  })

  it('an abort ends the fetch with its reason, and every want still open is forgotten', async () => {
    const controller = new AbortController()
    const { clock, exchange, fetch } = setup(50, { slow: { latencyMs: 1000 } }, { signal: controller.signal })
    const run = fetch.run()
    void clock.sleep(2500).then(() => { controller.abort(new Error('the node is stopping')) })
    const error = await clock.run(run).catch(err => err)
    expect(error.message).toBe('the node is stopping')
    const asked = new Set(exchange.asks.map(a => a.digest))
    const forgotten = new Set(exchange.forgotten.filter(f => f.peer === 'slow').flatMap(f => f.digests))
    expect(asked.size).toBeGreaterThan(1)
    for (const key of asked) expect(forgotten.has(key)).toBe(true)
  })
})
