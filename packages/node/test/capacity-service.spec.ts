import { describe, expect, it } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import type { Message } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { CAPACITY_TOPIC, encodeCapacityAd } from '@shoal/protocol'
import type { Capacity } from '@shoal/protocol'
import { answersNewcomer, CapacityService } from '../src/mesh/capacity-service.js'
import type { CapacityServiceComponents } from '../src/mesh/capacity-service.js'
import { NEWCOMER_ANSWERS, SHOAL_VERSION } from '../src/constants.js'

/** 1000 evenly spread draws in [0, 1): how many answer. */
function answers (knownPeers: number): number {
  let n = 0
  for (let i = 0; i < 1000; i++) if (answersNewcomer((i + 0.5) / 1000, knownPeers)) n++
  return n
}

describe('answering a newcomer', () => {
  it(`in a mesh of up to ${NEWCOMER_ANSWERS} peers every node answers`, () => {
    expect(answers(0)).toBe(1000)
    expect(answers(NEWCOMER_ANSWERS)).toBe(1000)
  })

  it('in a larger mesh a node answers with probability NEWCOMER_ANSWERS / peers: a newcomer gets about that many answers', () => {
    expect(answers(NEWCOMER_ANSWERS * 2)).toBe(500)
    expect(answers(100)).toBe(Math.round(1000 * NEWCOMER_ANSWERS / 100))
    // expected answers across the whole mesh stay NEWCOMER_ANSWERS whatever its size
    for (const peers of [16, 50, 200]) expect(answers(peers) / 1000 * peers).toBeCloseTo(NEWCOMER_ANSWERS, 0)
  })
})

describe('CapacityService\'s validator: what gossipsub delivers or drops', () => {
  const NOW = 1_800_000_000_000

  async function setup (): Promise<{ validate: (source: PeerId, message: Message) => TopicValidatorResult, service: CapacityService }> {
    const self = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const components = {
      peerId: self,
      peerStore: { merge: async () => {} },
      addressManager: { getAddresses: () => [] },
      logger: { forComponent: () => Object.assign(() => {}, { error: () => {}, trace: () => {}, enabled: false }) },
      pubsub: {}
    } as unknown as CapacityServiceComponents
    const service = new CapacityService(components, { intervalMs: 1000, local: () => { throw new Error('not publishing') }, now: () => NOW, random: () => 0.99 })
    // the validator gossipsub calls for every ad on the topic (private: registered in afterStart)
    return { validate: (service as any).validate, service }
  }

  async function ad (overrides: Partial<Capacity> = {}): Promise<{ author: PeerId, capacity: Capacity }> {
    const author = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    return {
      author,
      capacity: {
        peerId: author.toString(), version: SHOAL_VERSION, addrs: [], cpu: { model: 'test', cores: 4 }, memory: { totalBytes: 2 ** 33, freeBytes: 2 ** 32 },
        os: 'linux', arch: 'x64', gpu: null, providers: [{ name: 'cpu', gflops: 10 }], limits: { maxConcurrency: 2, maxMemoryBytes: 0, cpuThreads: 4, noGpu: true },
        freeSlots: 2, queueLength: 0, models: [], seq: 5, timestampMs: NOW, intervalMs: 1000, leaving: false, ...overrides
      }
    }
  }

  const signed = (from: PeerId, data: Uint8Array): Message => ({ type: 'signed', from, data, topic: CAPACITY_TOPIC, sequenceNumber: 1n, signature: new Uint8Array(64), key: from.publicKey! } as Message)

  it('accepts an ad from its own author into the peer table', async () => {
    const { validate, service } = await setup()
    const { author, capacity } = await ad()
    expect(validate(author, signed(author, encodeCapacityAd(capacity)))).toBe(TopicValidatorResult.Accept)
    expect(service.peers.get(author.toString())?.capacity.cpu.cores).toBe(4)
  })

  it('rejects an ad signed by another peer than the one it describes, and bytes that are not an ad', async () => {
    const { validate, service } = await setup()
    const { capacity } = await ad()
    const { author: forger } = await ad()
    expect(validate(forger, signed(forger, encodeCapacityAd(capacity)))).toBe(TopicValidatorResult.Reject)
    expect(validate(forger, signed(forger, Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f])))).toBe(TopicValidatorResult.Reject)
    expect(validate(forger, { type: 'unsigned', data: new Uint8Array(), topic: CAPACITY_TOPIC } as Message)).toBe(TopicValidatorResult.Reject)
    expect(service.refused).toEqual({ forged: 1, malformed: 1, unsigned: 1 })
    expect(service.peers.size).toBe(0)
  })

  it('ignores a replayed ad and one from too far in the past or future, without penalty', async () => {
    const { validate, service } = await setup()
    const { author, capacity } = await ad()
    validate(author, signed(author, encodeCapacityAd(capacity)))
    expect(validate(author, signed(author, encodeCapacityAd({ ...capacity, cpu: { model: 'test', cores: 99 } })))).toBe(TopicValidatorResult.Ignore)
    expect(validate(author, signed(author, encodeCapacityAd({ ...capacity, seq: 6, timestampMs: NOW - 3_600_000 })))).toBe(TopicValidatorResult.Ignore)
    expect(validate(author, signed(author, encodeCapacityAd({ ...capacity, seq: 7, timestampMs: NOW + 3_600_000 })))).toBe(TopicValidatorResult.Ignore)
    expect(service.refused).toEqual({ replayed: 1, stale: 1, future: 1 })
    expect(service.peers.get(author.toString())?.capacity.cpu.cores).toBe(4)
  })
})
