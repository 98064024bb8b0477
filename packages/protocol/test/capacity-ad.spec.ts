import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { CapacityAd } from '../src/pb/capacity.js'
import { decodeCapacityAd, encodeCapacityAd, InvalidMessageError, MAX_AD_MODELS, MAX_AD_WARM_MODELS, MAX_AD_REFUSED_MODELS, MAX_CAPACITY_AD_BYTES } from '../src/index.js'
import type { Capacity } from '../src/index.js'

async function sampleAd (): Promise<Capacity> {
  const peerId = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
  return {
    peerId,
    version: '0.1.0',
    addrs: ['/ip4/127.0.0.1/tcp/4001', '/ip4/127.0.0.1/tcp/4002/ws'],
    cpu: { model: 'Test CPU', cores: 8 },
    memory: { totalBytes: 16 * 2 ** 30, freeBytes: 8 * 2 ** 30 },
    os: 'linux 6.1',
    arch: 'x64',
    gpu: 'NVIDIA H100',
    providers: [{ name: 'webgpu', gflops: 6100.25 }, { name: 'cpu', gflops: 88.5 }],
    limits: { maxConcurrency: 2, maxMemoryBytes: 2 ** 32, cpuThreads: 8, noGpu: false },
    freeSlots: 2,
    queueLength: 0,
    models: ['bafkreiaaaa', 'bafkreibbbb'],
    warmModels: ['bafkreibbbb'],
    paused: false,
    listedOnly: true,
    refusedModels: ['bafkreicccc'],
    seq: 1_700_000_000_001,
    timestampMs: 1_700_000_000_000,
    intervalMs: 5000,
    leaving: false
  }
}

function reasonOf (fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidMessageError)
    return (err as InvalidMessageError).reason
  }
  throw new Error('expected the ad to be refused')
}

describe('capacity ad codec', () => {
  it('round-trips every field', async () => {
    const ad = await sampleAd()
    expect(decodeCapacityAd(encodeCapacityAd(ad))).toEqual(ad)
  })

  it('keeps a GPU-less ad\'s gpu as null', async () => {
    const ad = { ...await sampleAd(), gpu: null, providers: [{ name: 'cpu', gflops: 12 }] }
    expect(decodeCapacityAd(encodeCapacityAd(ad)).gpu).toBeNull()
  })

  it('refuses bytes that are not a CapacityAd', () => {
    expect(reasonOf(() => decodeCapacityAd(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f])))).toBe('malformed')
  })

  it('refuses an oversized ad before decoding it', () => {
    expect(reasonOf(() => decodeCapacityAd(new Uint8Array(MAX_CAPACITY_AD_BYTES + 1)))).toBe('oversized')
  })

  it('refuses warm models it does not list as held, and too many of them', async () => {
    const ad = await sampleAd()
    expect(() => encodeCapacityAd({ ...ad, warmModels: ['bafkreicccc'] })).toThrow(/warm_models lists a model that models does not/)
    const wire = CapacityAd.decode(encodeCapacityAd(ad))
    wire.models = Array.from({ length: MAX_AD_WARM_MODELS + 1 }, (_, i) => `m${i}`)
    wire.warmModels = wire.models
    expect(reasonOf(() => decodeCapacityAd(CapacityAd.encode(wire)))).toBe('malformed')
    // an older node's ad has none: none are warm
    const older = CapacityAd.decode(encodeCapacityAd(ad))
    older.warmModels = []
    expect(decodeCapacityAd(CapacityAd.encode(older)).warmModels).toEqual([])
  })

  it('a paused node, one serving only what it lists, and the models it refuses: checked, and absent from an older node\'s ad', async () => {
    const ad = await sampleAd()
    const paused = { ...ad, paused: true, freeSlots: 0 }
    expect(decodeCapacityAd(encodeCapacityAd(paused))).toMatchObject({ paused: true, freeSlots: 0 })
    expect(() => encodeCapacityAd({ ...ad, paused: true })).toThrow(/a paused node has no free slots/)
    expect(() => encodeCapacityAd({ ...ad, refusedModels: ['bafkreiaaaa'] })).toThrow(/refused_models lists a model that models lists too/)
    const wire = CapacityAd.decode(encodeCapacityAd(ad))
    wire.refusedModels = Array.from({ length: MAX_AD_REFUSED_MODELS + 1 }, (_, i) => `m${i}`)
    expect(reasonOf(() => decodeCapacityAd(CapacityAd.encode(wire)))).toBe('malformed')
    const older = CapacityAd.decode(encodeCapacityAd(ad))
    older.paused = false
    older.listedOnly = false
    older.refusedModels = []
    expect(decodeCapacityAd(CapacityAd.encode(older))).toMatchObject({ paused: false, listedOnly: false, refusedModels: [] })
  })

  it('refuses an ad with too many models while decoding', async () => {
    const ad = await sampleAd()
    const wire = CapacityAd.decode(encodeCapacityAd(ad))
    wire.models = Array.from({ length: MAX_AD_MODELS + 1 }, (_, i) => `m${i}`)
    expect(reasonOf(() => decodeCapacityAd(CapacityAd.encode(wire)))).toBe('malformed')
  })

  it('refuses missing or implausible fields', async () => {
    const wire = CapacityAd.decode(encodeCapacityAd(await sampleAd()))
    const cases: Array<[string, (w: CapacityAd) => void]> = [
      ['peer id', w => { w.peerId = new Uint8Array([1, 2, 3]) }],
      ['hardware', w => { delete w.hardware }],
      ['cores', w => { w.hardware!.cpuCores = 0 }],
      ['gflops', w => { w.providers[0].gflops = Number.NaN }],
      ['provider name', w => { w.providers[0].name = 'Web GPU!' }],
      ['duplicate provider', w => { w.providers[1].name = w.providers[0].name }],
      ['interval', w => { w.intervalMs = 10 }],
      ['seq', w => { w.seq = 0n }],
      ['address', w => { w.addrs = [new Uint8Array([0xff, 0x01])] }]
    ]
    for (const [, mutate] of cases) {
      const bad = structuredClone(wire)
      mutate(bad)
      expect(reasonOf(() => decodeCapacityAd(CapacityAd.encode(bad)))).toBe('bad-field')
    }
  })

  it('will not encode an ad peers would refuse', async () => {
    const ad = { ...await sampleAd(), intervalMs: 1 }
    expect(() => encodeCapacityAd(ad)).toThrow(InvalidMessageError)
  })
})
