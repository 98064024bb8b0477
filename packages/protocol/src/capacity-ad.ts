import { peerIdFromMultihash, peerIdFromString as peerIdFromStringImpl } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import * as Digest from 'multiformats/hashes/digest'
import { CapacityAd as CapacityAdMessage } from './pb/capacity.js'
import {
  MAX_AD_ADDRS, MAX_AD_INTERVAL_MS, MAX_AD_MODELS, MAX_AD_PROVIDERS, MAX_AD_TEXT_LENGTH,
  MAX_CAPACITY_AD_BYTES, MAX_CPU_CORES, MAX_PROVIDER_GFLOPS, MIN_AD_INTERVAL_MS, MAX_AD_WARM_MODELS, MAX_AD_REFUSED_MODELS } from './constants.js'
import { InvalidMessageError } from './errors.js'

/**
 * A node's capacity as plain data: what the peer table stores, the HTTP API returns and the scheduler
 * reads. The wire form is `CapacityAd` in pb/capacity.proto; `encodeCapacityAd` and `decodeCapacityAd`
 * convert between the two.
 */
export interface Capacity {
  peerId: string
  version: string
  addrs: string[]
  cpu: { model: string, cores: number }
  memory: { totalBytes: number, freeBytes: number }
  os: string
  arch: string
  /** GPU adapter name, or null when no GPU provider works (or the volunteer turned GPUs off). */
  gpu: string | null
  providers: ProviderCapacity[]
  limits: VolunteerLimits
  freeSlots: number
  queueLength: number
  models: string[]
  /** Of `models`, those it keeps an open session of (at most MAX_AD_WARM_MODELS); absent from older nodes' ads: none. */
  warmModels?: string[]
  /** It takes no new pieces now (paused, or outside its volunteer's hours, idleness or power); absent from older nodes' ads: false. */
  paused?: boolean
  /** It takes pieces only of the models in `models`. */
  listedOnly?: boolean
  /** Models it refuses pieces of (at most MAX_AD_REFUSED_MODELS). */
  refusedModels?: string[]
  /** Publisher's sequence number: strictly increasing, also across restarts. */
  seq: number
  timestampMs: number
  intervalMs: number
  leaving: boolean
}

export interface ProviderCapacity {
  /** ONNX Runtime execution provider: "cpu", "webgpu", ... */
  name: string
  /** Measured throughput on the calibration model. */
  gflops: number
}

export interface VolunteerLimits {
  maxConcurrency: number
  /** 0 means the volunteer set no limit. */
  maxMemoryBytes: number
  cpuThreads: number
  noGpu: boolean
}

const PROVIDER_NAME = /^[a-z0-9_-]{1,32}$/
const VERSION = /^[0-9A-Za-z.+-]{1,32}$/

function invalid (reason: string, message: string): never {
  throw new InvalidMessageError(reason, `invalid capacity ad: ${message}`)
}

function text (value: string, field: string, min = 0): string {
  if (value.length < min || value.length > MAX_AD_TEXT_LENGTH) {
    invalid('bad-field', `${field} must be ${min}-${MAX_AD_TEXT_LENGTH} characters, got ${value.length}`)
  }
  return value
}

function count (value: number, field: string, max: number, min = 0): number {
  if (!Number.isInteger(value) || value < min || value > max) invalid('bad-field', `${field} must be an integer in [${min}, ${max}], got ${value}`)
  return value
}

function safeNumber (value: bigint, field: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) invalid('bad-field', `${field} is too large`)
  return Number(value)
}

/**
 * Decodes and validates an ad's bytes. Size is checked before decoding and repeated fields are capped
 * while decoding, so nothing proportional to a claimed size is allocated. Throws `InvalidMessageError`.
 */
export function decodeCapacityAd (bytes: Uint8Array): Capacity {
  if (bytes.byteLength > MAX_CAPACITY_AD_BYTES) {
    invalid('oversized', `${bytes.byteLength} bytes is over the ${MAX_CAPACITY_AD_BYTES}-byte limit`)
  }
  let ad: CapacityAdMessage
  try {
    ad = CapacityAdMessage.decode(bytes, {
      limits: { addrs: MAX_AD_ADDRS, providers: MAX_AD_PROVIDERS, models: MAX_AD_MODELS, warmModels: MAX_AD_WARM_MODELS, refusedModels: MAX_AD_REFUSED_MODELS }
    })
  } catch (err: any) {
    invalid('malformed', `not a CapacityAd protobuf (${err.message})`)
  }

  let peerId: string
  try {
    peerId = peerIdFromMultihash(Digest.decode(ad.peerId)).toString()
  } catch {
    invalid('bad-field', 'peer_id is not a peer id multihash')
  }
  if (ad.hardware == null) invalid('bad-field', 'hardware is missing')
  if (ad.limits == null) invalid('bad-field', 'limits is missing')
  if (!VERSION.test(ad.version)) invalid('bad-field', 'version must be 1-32 characters of [0-9A-Za-z.+-]')

  const addrs = ad.addrs.map(bytes => {
    try {
      return multiaddr(bytes).toString()
    } catch {
      invalid('bad-field', 'addrs holds a malformed multiaddr')
    }
  })
  const providers = ad.providers.map(p => {
    if (!PROVIDER_NAME.test(p.name)) invalid('bad-field', 'provider name must match [a-z0-9_-]{1,32}')
    if (!Number.isFinite(p.gflops) || p.gflops < 0 || p.gflops > MAX_PROVIDER_GFLOPS) {
      invalid('bad-field', `provider ${p.name} has implausible throughput ${p.gflops}`)
    }
    // float on the wire: keep the two decimals the publisher measured, not float32's noise
    return { name: p.name, gflops: Math.round(p.gflops * 100) / 100 }
  })
  if (new Set(providers.map(p => p.name)).size !== providers.length) invalid('bad-field', 'a provider is listed twice')
  const models = ad.models.map(m => text(m, 'models[]', 1))
  const warmModels = ad.warmModels.map(m => text(m, 'warm_models[]', 1))
  if (warmModels.some(m => !models.includes(m))) invalid('bad-field', 'warm_models lists a model that models does not')
  const refusedModels = ad.refusedModels.map(m => text(m, 'refused_models[]', 1))
  if (refusedModels.some(m => models.includes(m))) invalid('bad-field', 'refused_models lists a model that models lists too')
  if (ad.paused && ad.freeSlots !== 0) invalid('bad-field', 'a paused node has no free slots')
  const hw = ad.hardware
  const gpu = text(hw.gpu, 'hardware.gpu')

  if (ad.seq === 0n) invalid('bad-field', 'seq must be positive')
  if (ad.timestampMs === 0n) invalid('bad-field', 'timestamp_ms must be positive')

  return {
    peerId,
    version: ad.version,
    addrs,
    cpu: { model: text(hw.cpuModel, 'hardware.cpu_model'), cores: count(hw.cpuCores, 'hardware.cpu_cores', MAX_CPU_CORES, 1) },
    memory: {
      totalBytes: safeNumber(hw.memoryTotalBytes, 'hardware.memory_total_bytes'),
      freeBytes: safeNumber(hw.memoryFreeBytes, 'hardware.memory_free_bytes')
    },
    os: text(hw.os, 'hardware.os', 1),
    arch: text(hw.arch, 'hardware.arch', 1),
    gpu: gpu === '' ? null : gpu,
    providers,
    limits: {
      maxConcurrency: count(ad.limits.maxConcurrency, 'limits.max_concurrency', 65535),
      maxMemoryBytes: safeNumber(ad.limits.maxMemoryBytes, 'limits.max_memory_bytes'),
      cpuThreads: count(ad.limits.cpuThreads, 'limits.cpu_threads', MAX_CPU_CORES),
      noGpu: ad.limits.noGpu
    },
    freeSlots: count(ad.freeSlots, 'free_slots', 65535),
    queueLength: count(ad.queueLength, 'queue_length', 0xffffffff),
    models,
    warmModels,
    paused: ad.paused,
    listedOnly: ad.listedOnly,
    refusedModels,
    seq: safeNumber(ad.seq, 'seq'),
    timestampMs: safeNumber(ad.timestampMs, 'timestamp_ms'),
    intervalMs: count(ad.intervalMs, 'interval_ms', MAX_AD_INTERVAL_MS, MIN_AD_INTERVAL_MS),
    leaving: ad.leaving
  }
}

/** Encodes an ad for the wire. The caller's own ad is validated too, so a node never sends what peers refuse. */
export function encodeCapacityAd (capacity: Capacity): Uint8Array {
  const bytes = CapacityAdMessage.encode({
    peerId: peerIdFromString(capacity.peerId),
    version: capacity.version,
    addrs: capacity.addrs.map(a => multiaddr(a).bytes as Uint8Array<ArrayBuffer>),
    hardware: {
      cpuModel: capacity.cpu.model,
      cpuCores: capacity.cpu.cores,
      memoryTotalBytes: BigInt(capacity.memory.totalBytes),
      memoryFreeBytes: BigInt(capacity.memory.freeBytes),
      os: capacity.os,
      arch: capacity.arch,
      gpu: capacity.gpu ?? ''
    },
    providers: capacity.providers,
    limits: {
      maxConcurrency: capacity.limits.maxConcurrency,
      maxMemoryBytes: BigInt(capacity.limits.maxMemoryBytes),
      cpuThreads: capacity.limits.cpuThreads,
      noGpu: capacity.limits.noGpu
    },
    freeSlots: capacity.freeSlots,
    queueLength: capacity.queueLength,
    models: capacity.models,
    warmModels: capacity.warmModels ?? [],
    paused: capacity.paused ?? false,
    listedOnly: capacity.listedOnly ?? false,
    refusedModels: capacity.refusedModels ?? [],
    seq: BigInt(capacity.seq),
    timestampMs: BigInt(capacity.timestampMs),
    leaving: capacity.leaving,
    intervalMs: capacity.intervalMs
  })
  decodeCapacityAd(bytes)
  return bytes
}

function peerIdFromString (peerId: string): Uint8Array<ArrayBuffer> {
  return peerIdFromStringImpl(peerId).toMultihash().bytes as Uint8Array<ArrayBuffer>
}
