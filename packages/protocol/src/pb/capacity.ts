import { decodeMessage, encodeMessage, MaxLengthError, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface CapacityAd {
  peerId: Uint8Array<ArrayBuffer>
  version: string
  addrs: Uint8Array<ArrayBuffer>[]
  hardware?: Hardware
  providers: Provider[]
  limits?: Limits
  freeSlots: number
  queueLength: number
  models: string[]
  seq: bigint
  timestampMs: bigint
  leaving: boolean
  intervalMs: number
  warmModels: string[]
  paused: boolean
  listedOnly: boolean
  refusedModels: string[]
}

export namespace CapacityAd {
  let _codec: Codec<CapacityAd>

  export const codec = (): Codec<CapacityAd> => {
    if (_codec == null) {
      _codec = message<CapacityAd>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.peerId != null && obj.peerId.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.peerId)
        }

        if ((obj.version != null && obj.version !== '')) {
          w.uint32(18)
          w.string(obj.version)
        }

        if (obj.addrs != null && obj.addrs.length > 0) {
          for (const value of obj.addrs) {
            w.uint32(26)
            w.bytes(value)
          }
        }

        if (obj.hardware != null) {
          w.uint32(34)
          Hardware.codec().encode(obj.hardware, w)
        }

        if (obj.providers != null && obj.providers.length > 0) {
          for (const value of obj.providers) {
            w.uint32(42)
            Provider.codec().encode(value, w)
          }
        }

        if (obj.limits != null) {
          w.uint32(50)
          Limits.codec().encode(obj.limits, w)
        }

        if ((obj.freeSlots != null && obj.freeSlots !== 0)) {
          w.uint32(56)
          w.uint32(obj.freeSlots)
        }

        if ((obj.queueLength != null && obj.queueLength !== 0)) {
          w.uint32(64)
          w.uint32(obj.queueLength)
        }

        if (obj.models != null && obj.models.length > 0) {
          for (const value of obj.models) {
            w.uint32(74)
            w.string(value)
          }
        }

        if ((obj.seq != null && obj.seq !== 0n)) {
          w.uint32(80)
          w.uint64(obj.seq)
        }

        if ((obj.timestampMs != null && obj.timestampMs !== 0n)) {
          w.uint32(88)
          w.uint64(obj.timestampMs)
        }

        if ((obj.leaving != null && obj.leaving !== false)) {
          w.uint32(96)
          w.bool(obj.leaving)
        }

        if ((obj.intervalMs != null && obj.intervalMs !== 0)) {
          w.uint32(104)
          w.uint32(obj.intervalMs)
        }

        if (obj.warmModels != null && obj.warmModels.length > 0) {
          for (const value of obj.warmModels) {
            w.uint32(114)
            w.string(value)
          }
        }

        if ((obj.paused != null && obj.paused !== false)) {
          w.uint32(120)
          w.bool(obj.paused)
        }

        if ((obj.listedOnly != null && obj.listedOnly !== false)) {
          w.uint32(128)
          w.bool(obj.listedOnly)
        }

        if (obj.refusedModels != null && obj.refusedModels.length > 0) {
          for (const value of obj.refusedModels) {
            w.uint32(138)
            w.string(value)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          peerId: uint8ArrayAlloc(0),
          version: '',
          addrs: [],
          providers: [],
          freeSlots: 0,
          queueLength: 0,
          models: [],
          seq: 0n,
          timestampMs: 0n,
          leaving: false,
          intervalMs: 0,
          warmModels: [],
          paused: false,
          listedOnly: false,
          refusedModels: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.peerId = reader.bytes()
              break
            }
            case 2: {
              obj.version = reader.string()
              break
            }
            case 3: {
              if (opts.limits?.addrs != null && obj.addrs.length === opts.limits.addrs) {
                throw new MaxLengthError('Decode error - repeated field "addrs" had too many elements')
              }

              obj.addrs.push(reader.bytes())
              break
            }
            case 4: {
              obj.hardware = Hardware.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.hardware
              })
              break
            }
            case 5: {
              if (opts.limits?.providers != null && obj.providers.length === opts.limits.providers) {
                throw new MaxLengthError('Decode error - repeated field "providers" had too many elements')
              }

              obj.providers.push(Provider.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.providers$
              }))
              break
            }
            case 6: {
              obj.limits = Limits.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.limits
              })
              break
            }
            case 7: {
              obj.freeSlots = reader.uint32()
              break
            }
            case 8: {
              obj.queueLength = reader.uint32()
              break
            }
            case 9: {
              if (opts.limits?.models != null && obj.models.length === opts.limits.models) {
                throw new MaxLengthError('Decode error - repeated field "models" had too many elements')
              }

              obj.models.push(reader.string())
              break
            }
            case 10: {
              obj.seq = reader.uint64()
              break
            }
            case 11: {
              obj.timestampMs = reader.uint64()
              break
            }
            case 12: {
              obj.leaving = reader.bool()
              break
            }
            case 13: {
              obj.intervalMs = reader.uint32()
              break
            }
            case 14: {
              if (opts.limits?.warmModels != null && obj.warmModels.length === opts.limits.warmModels) {
                throw new MaxLengthError('Decode error - repeated field "warmModels" had too many elements')
              }

              obj.warmModels.push(reader.string())
              break
            }
            case 15: {
              obj.paused = reader.bool()
              break
            }
            case 16: {
              obj.listedOnly = reader.bool()
              break
            }
            case 17: {
              if (opts.limits?.refusedModels != null && obj.refusedModels.length === opts.limits.refusedModels) {
                throw new MaxLengthError('Decode error - repeated field "refusedModels" had too many elements')
              }

              obj.refusedModels.push(reader.string())
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const obj = {
          addrs: 0,
          providers: 0,
          models: 0,
          warmModels: 0,
          refusedModels: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.peerId`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.version`,
                value: reader.string()
              }
              break
            }
            case 3: {
              if (opts.limits?.addrs != null && obj.addrs === opts.limits.addrs) {
                throw new MaxLengthError('Streaming decode error - repeated field "addrs" had too many elements')
              }

              yield {
                field: `${prefix}.addrs[]`,
                index: obj.addrs,
                value: reader.bytes()
              }

              obj.addrs++

              break
            }
            case 4: {
              yield * Hardware.codec().stream(reader, reader.uint32(), `${prefix}.hardware`, {
                limits: opts.limits?.hardware
              })

              break
            }
            case 5: {
              if (opts.limits?.providers != null && obj.providers === opts.limits.providers) {
                throw new MaxLengthError('Streaming decode error - repeated field "providers" had too many elements')
              }

              for (const evt of Provider.codec().stream(reader, reader.uint32(), `${prefix}.providers[]`, {
                limits: opts.limits?.providers$
              })) {
                yield {
                  ...evt,
                  index: obj.providers
                }
              }

              obj.providers++

              break
            }
            case 6: {
              yield * Limits.codec().stream(reader, reader.uint32(), `${prefix}.limits`, {
                limits: opts.limits?.limits
              })

              break
            }
            case 7: {
              yield {
                field: `${prefix}.freeSlots`,
                value: reader.uint32()
              }
              break
            }
            case 8: {
              yield {
                field: `${prefix}.queueLength`,
                value: reader.uint32()
              }
              break
            }
            case 9: {
              if (opts.limits?.models != null && obj.models === opts.limits.models) {
                throw new MaxLengthError('Streaming decode error - repeated field "models" had too many elements')
              }

              yield {
                field: `${prefix}.models[]`,
                index: obj.models,
                value: reader.string()
              }

              obj.models++

              break
            }
            case 10: {
              yield {
                field: `${prefix}.seq`,
                value: reader.uint64()
              }
              break
            }
            case 11: {
              yield {
                field: `${prefix}.timestampMs`,
                value: reader.uint64()
              }
              break
            }
            case 12: {
              yield {
                field: `${prefix}.leaving`,
                value: reader.bool()
              }
              break
            }
            case 13: {
              yield {
                field: `${prefix}.intervalMs`,
                value: reader.uint32()
              }
              break
            }
            case 14: {
              if (opts.limits?.warmModels != null && obj.warmModels === opts.limits.warmModels) {
                throw new MaxLengthError('Streaming decode error - repeated field "warmModels" had too many elements')
              }

              yield {
                field: `${prefix}.warmModels[]`,
                index: obj.warmModels,
                value: reader.string()
              }

              obj.warmModels++

              break
            }
            case 15: {
              yield {
                field: `${prefix}.paused`,
                value: reader.bool()
              }
              break
            }
            case 16: {
              yield {
                field: `${prefix}.listedOnly`,
                value: reader.bool()
              }
              break
            }
            case 17: {
              if (opts.limits?.refusedModels != null && obj.refusedModels === opts.limits.refusedModels) {
                throw new MaxLengthError('Streaming decode error - repeated field "refusedModels" had too many elements')
              }

              yield {
                field: `${prefix}.refusedModels[]`,
                index: obj.refusedModels,
                value: reader.string()
              }

              obj.refusedModels++

              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface CapacityAdPeerIdFieldEvent {
    field: '$.peerId'
    value: Uint8Array<ArrayBuffer>
  }

  export interface CapacityAdVersionFieldEvent {
    field: '$.version'
    value: string
  }

  export interface CapacityAdAddrsFieldEvent {
    field: '$.addrs[]'
    index: number
    value: Uint8Array<ArrayBuffer>
  }

  export interface CapacityAdHardwareCpuModelFieldEvent {
    field: '$.hardware.cpuModel'
    value: string
  }

  export interface CapacityAdHardwareCpuCoresFieldEvent {
    field: '$.hardware.cpuCores'
    value: number
  }

  export interface CapacityAdHardwareMemoryTotalBytesFieldEvent {
    field: '$.hardware.memoryTotalBytes'
    value: bigint
  }

  export interface CapacityAdHardwareMemoryFreeBytesFieldEvent {
    field: '$.hardware.memoryFreeBytes'
    value: bigint
  }

  export interface CapacityAdHardwareOsFieldEvent {
    field: '$.hardware.os'
    value: string
  }

  export interface CapacityAdHardwareArchFieldEvent {
    field: '$.hardware.arch'
    value: string
  }

  export interface CapacityAdHardwareGpuFieldEvent {
    field: '$.hardware.gpu'
    value: string
  }

  export interface CapacityAdProvidersNameFieldEvent {
    field: '$.providers[].name'
    value: string
    index: number
  }

  export interface CapacityAdProvidersGflopsFieldEvent {
    field: '$.providers[].gflops'
    value: number
    index: number
  }

  export interface CapacityAdLimitsMaxConcurrencyFieldEvent {
    field: '$.limits.maxConcurrency'
    value: number
  }

  export interface CapacityAdLimitsMaxMemoryBytesFieldEvent {
    field: '$.limits.maxMemoryBytes'
    value: bigint
  }

  export interface CapacityAdLimitsCpuThreadsFieldEvent {
    field: '$.limits.cpuThreads'
    value: number
  }

  export interface CapacityAdLimitsNoGpuFieldEvent {
    field: '$.limits.noGpu'
    value: boolean
  }

  export interface CapacityAdFreeSlotsFieldEvent {
    field: '$.freeSlots'
    value: number
  }

  export interface CapacityAdQueueLengthFieldEvent {
    field: '$.queueLength'
    value: number
  }

  export interface CapacityAdModelsFieldEvent {
    field: '$.models[]'
    index: number
    value: string
  }

  export interface CapacityAdSeqFieldEvent {
    field: '$.seq'
    value: bigint
  }

  export interface CapacityAdTimestampMsFieldEvent {
    field: '$.timestampMs'
    value: bigint
  }

  export interface CapacityAdLeavingFieldEvent {
    field: '$.leaving'
    value: boolean
  }

  export interface CapacityAdIntervalMsFieldEvent {
    field: '$.intervalMs'
    value: number
  }

  export interface CapacityAdWarmModelsFieldEvent {
    field: '$.warmModels[]'
    index: number
    value: string
  }

  export interface CapacityAdPausedFieldEvent {
    field: '$.paused'
    value: boolean
  }

  export interface CapacityAdListedOnlyFieldEvent {
    field: '$.listedOnly'
    value: boolean
  }

  export interface CapacityAdRefusedModelsFieldEvent {
    field: '$.refusedModels[]'
    index: number
    value: string
  }

  export function encode (obj: Partial<CapacityAd>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, CapacityAd.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<CapacityAd>): CapacityAd {
    return decodeMessage(buf, CapacityAd.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<CapacityAd>): Generator<CapacityAdPeerIdFieldEvent | CapacityAdVersionFieldEvent | CapacityAdAddrsFieldEvent | CapacityAdHardwareCpuModelFieldEvent | CapacityAdHardwareCpuCoresFieldEvent | CapacityAdHardwareMemoryTotalBytesFieldEvent | CapacityAdHardwareMemoryFreeBytesFieldEvent | CapacityAdHardwareOsFieldEvent | CapacityAdHardwareArchFieldEvent | CapacityAdHardwareGpuFieldEvent | CapacityAdProvidersNameFieldEvent | CapacityAdProvidersGflopsFieldEvent | CapacityAdLimitsMaxConcurrencyFieldEvent | CapacityAdLimitsMaxMemoryBytesFieldEvent | CapacityAdLimitsCpuThreadsFieldEvent | CapacityAdLimitsNoGpuFieldEvent | CapacityAdFreeSlotsFieldEvent | CapacityAdQueueLengthFieldEvent | CapacityAdModelsFieldEvent | CapacityAdSeqFieldEvent | CapacityAdTimestampMsFieldEvent | CapacityAdLeavingFieldEvent | CapacityAdIntervalMsFieldEvent | CapacityAdWarmModelsFieldEvent | CapacityAdPausedFieldEvent | CapacityAdListedOnlyFieldEvent | CapacityAdRefusedModelsFieldEvent> {
    return streamMessage(buf, CapacityAd.codec(), opts)
  }
}

export interface Hardware {
  cpuModel: string
  cpuCores: number
  memoryTotalBytes: bigint
  memoryFreeBytes: bigint
  os: string
  arch: string
  gpu: string
}

export namespace Hardware {
  let _codec: Codec<Hardware>

  export const codec = (): Codec<Hardware> => {
    if (_codec == null) {
      _codec = message<Hardware>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.cpuModel != null && obj.cpuModel !== '')) {
          w.uint32(10)
          w.string(obj.cpuModel)
        }

        if ((obj.cpuCores != null && obj.cpuCores !== 0)) {
          w.uint32(16)
          w.uint32(obj.cpuCores)
        }

        if ((obj.memoryTotalBytes != null && obj.memoryTotalBytes !== 0n)) {
          w.uint32(24)
          w.uint64(obj.memoryTotalBytes)
        }

        if ((obj.memoryFreeBytes != null && obj.memoryFreeBytes !== 0n)) {
          w.uint32(32)
          w.uint64(obj.memoryFreeBytes)
        }

        if ((obj.os != null && obj.os !== '')) {
          w.uint32(42)
          w.string(obj.os)
        }

        if ((obj.arch != null && obj.arch !== '')) {
          w.uint32(50)
          w.string(obj.arch)
        }

        if ((obj.gpu != null && obj.gpu !== '')) {
          w.uint32(58)
          w.string(obj.gpu)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          cpuModel: '',
          cpuCores: 0,
          memoryTotalBytes: 0n,
          memoryFreeBytes: 0n,
          os: '',
          arch: '',
          gpu: ''
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.cpuModel = reader.string()
              break
            }
            case 2: {
              obj.cpuCores = reader.uint32()
              break
            }
            case 3: {
              obj.memoryTotalBytes = reader.uint64()
              break
            }
            case 4: {
              obj.memoryFreeBytes = reader.uint64()
              break
            }
            case 5: {
              obj.os = reader.string()
              break
            }
            case 6: {
              obj.arch = reader.string()
              break
            }
            case 7: {
              obj.gpu = reader.string()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.cpuModel`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.cpuCores`,
                value: reader.uint32()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.memoryTotalBytes`,
                value: reader.uint64()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.memoryFreeBytes`,
                value: reader.uint64()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.os`,
                value: reader.string()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.arch`,
                value: reader.string()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.gpu`,
                value: reader.string()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface HardwareCpuModelFieldEvent {
    field: '$.cpuModel'
    value: string
  }

  export interface HardwareCpuCoresFieldEvent {
    field: '$.cpuCores'
    value: number
  }

  export interface HardwareMemoryTotalBytesFieldEvent {
    field: '$.memoryTotalBytes'
    value: bigint
  }

  export interface HardwareMemoryFreeBytesFieldEvent {
    field: '$.memoryFreeBytes'
    value: bigint
  }

  export interface HardwareOsFieldEvent {
    field: '$.os'
    value: string
  }

  export interface HardwareArchFieldEvent {
    field: '$.arch'
    value: string
  }

  export interface HardwareGpuFieldEvent {
    field: '$.gpu'
    value: string
  }

  export function encode (obj: Partial<Hardware>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Hardware.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Hardware>): Hardware {
    return decodeMessage(buf, Hardware.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Hardware>): Generator<HardwareCpuModelFieldEvent | HardwareCpuCoresFieldEvent | HardwareMemoryTotalBytesFieldEvent | HardwareMemoryFreeBytesFieldEvent | HardwareOsFieldEvent | HardwareArchFieldEvent | HardwareGpuFieldEvent> {
    return streamMessage(buf, Hardware.codec(), opts)
  }
}

export interface Provider {
  name: string
  gflops: number
}

export namespace Provider {
  let _codec: Codec<Provider>

  export const codec = (): Codec<Provider> => {
    if (_codec == null) {
      _codec = message<Provider>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.name != null && obj.name !== '')) {
          w.uint32(10)
          w.string(obj.name)
        }

        if ((obj.gflops != null && obj.gflops !== 0)) {
          w.uint32(21)
          w.float(obj.gflops)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          name: '',
          gflops: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.name = reader.string()
              break
            }
            case 2: {
              obj.gflops = reader.float()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.name`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.gflops`,
                value: reader.float()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface ProviderNameFieldEvent {
    field: '$.name'
    value: string
  }

  export interface ProviderGflopsFieldEvent {
    field: '$.gflops'
    value: number
  }

  export function encode (obj: Partial<Provider>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Provider.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Provider>): Provider {
    return decodeMessage(buf, Provider.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Provider>): Generator<ProviderNameFieldEvent | ProviderGflopsFieldEvent> {
    return streamMessage(buf, Provider.codec(), opts)
  }
}

export interface Limits {
  maxConcurrency: number
  maxMemoryBytes: bigint
  cpuThreads: number
  noGpu: boolean
}

export namespace Limits {
  let _codec: Codec<Limits>

  export const codec = (): Codec<Limits> => {
    if (_codec == null) {
      _codec = message<Limits>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.maxConcurrency != null && obj.maxConcurrency !== 0)) {
          w.uint32(8)
          w.uint32(obj.maxConcurrency)
        }

        if ((obj.maxMemoryBytes != null && obj.maxMemoryBytes !== 0n)) {
          w.uint32(16)
          w.uint64(obj.maxMemoryBytes)
        }

        if ((obj.cpuThreads != null && obj.cpuThreads !== 0)) {
          w.uint32(24)
          w.uint32(obj.cpuThreads)
        }

        if ((obj.noGpu != null && obj.noGpu !== false)) {
          w.uint32(32)
          w.bool(obj.noGpu)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          maxConcurrency: 0,
          maxMemoryBytes: 0n,
          cpuThreads: 0,
          noGpu: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.maxConcurrency = reader.uint32()
              break
            }
            case 2: {
              obj.maxMemoryBytes = reader.uint64()
              break
            }
            case 3: {
              obj.cpuThreads = reader.uint32()
              break
            }
            case 4: {
              obj.noGpu = reader.bool()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.maxConcurrency`,
                value: reader.uint32()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.maxMemoryBytes`,
                value: reader.uint64()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.cpuThreads`,
                value: reader.uint32()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.noGpu`,
                value: reader.bool()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface LimitsMaxConcurrencyFieldEvent {
    field: '$.maxConcurrency'
    value: number
  }

  export interface LimitsMaxMemoryBytesFieldEvent {
    field: '$.maxMemoryBytes'
    value: bigint
  }

  export interface LimitsCpuThreadsFieldEvent {
    field: '$.cpuThreads'
    value: number
  }

  export interface LimitsNoGpuFieldEvent {
    field: '$.noGpu'
    value: boolean
  }

  export function encode (obj: Partial<Limits>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Limits.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Limits>): Limits {
    return decodeMessage(buf, Limits.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Limits>): Generator<LimitsMaxConcurrencyFieldEvent | LimitsMaxMemoryBytesFieldEvent | LimitsCpuThreadsFieldEvent | LimitsNoGpuFieldEvent> {
    return streamMessage(buf, Limits.codec(), opts)
  }
}
