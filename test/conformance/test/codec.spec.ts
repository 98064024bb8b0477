import { describe, expect, it } from 'vitest'
import protobuf from 'protobufjs'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { modelCid } from '@shoal/runtime'
import {
  AnswerCommitment, BlockRequest, BlockResponse, CapacityAdMessage, DirectOffer, DirectRequest, HardwareMessage, InferRequest, InferResponse, LimitsMessage,
  ProviderMessage, TensorInfo
} from '@shoal/protocol'
import { loadWire } from '../peer/wire.js'
import type { MessageName } from '../peer/wire.js'

/**
 * Every message on Shoal's protocols, encoded and decoded by an independent proto3 implementation
 * (protobufjs reading the `.proto` files), must round-trip through Shoal's generated codecs: packed and
 * unpacked repeated scalars, unknown fields of every wire type, and fields at their defaults omitted.
 */

interface ShoalCodec { encode: (value: any) => Uint8Array, decode: (bytes: Uint8Array) => any }

const SHOAL: Record<MessageName, ShoalCodec> = {
  CapacityAd: CapacityAdMessage,
  Hardware: HardwareMessage,
  Provider: ProviderMessage,
  Limits: LimitsMessage,
  TensorInfo,
  InferRequest,
  InferResponse,
  AnswerCommitment,
  DirectRequest,
  DirectOffer,
  BlockRequest,
  BlockResponse
}

const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values)
const hardware = { cpuModel: 'AMD EPYC 9654', cpuCores: 96, memoryTotalBytes: '412316860416', memoryFreeBytes: '9007199254740991', os: 'linux 6.1.0', arch: 'x64', gpu: 'NVIDIA H200' }
const limits = { maxConcurrency: 4, maxMemoryBytes: '17179869184', cpuThreads: 8, noGpu: true }
const provider = { name: 'webgpu', gflops: 6102.5 }
const tensor = { name: 'images', dtype: 'float32', dims: ['16', '3', '640', '640'], byteLength: '78643200' }
// every field set to a value other than its default, so that each one is on the wire
const SAMPLES: Record<MessageName, Record<string, unknown>> = {
  CapacityAd: {
    peerId: bytes(0, 36, 8, 1, 18, 32, ...Array.from({ length: 32 }, (_, i) => i)),
    version: '0.1.0+outside',
    addrs: [bytes(4, 127, 0, 0, 1, 6, 15, 161), bytes(4, 10, 0, 0, 2, 6, 0x10, 0)],
    hardware,
    providers: [{ name: 'cpu', gflops: 880.25 }, provider],
    limits,
    freeSlots: 3,
    queueLength: 2,
    models: ['bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi'],
    seq: '1795000000123',
    timestampMs: '1795000000000',
    leaving: true,
    intervalMs: 5000
  },
  Hardware: hardware,
  Provider: provider,
  Limits: limits,
  TensorInfo: tensor,
  InferRequest: {
    jobId: '6f1c0e0a-2f7e-4c1b-9f59-1f6c2b9a0d11',
    pieceId: 41,
    modelCid: 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi',
    inputs: [tensor, { name: 'mask', dtype: 'bool', dims: ['16', '1'], byteLength: '16' }],
    deadlineMs: 30000
  },
  InferResponse: {
    code: 'OVERLOADED',
    message: 'running 4 pieces',
    outputs: [{ name: 'logits', dtype: 'float16', dims: ['16', '1000'], byteLength: '32000' }, { name: 'ids', dtype: 'int64', dims: ['16'], byteLength: '128' }],
    computeMs: 12,
    provider: 'cpu',
    computeUs: 12345,
    commitment: bytes(10, 5, 106, 111, 98, 45, 49),
    commitmentSignature: bytes(...Array.from({ length: 64 }, (_, i) => (i * 11) % 256))
  },
  AnswerCommitment: {
    jobId: '6f1c0e0a-2f7e-4c1b-9f59-1f6c2b9a0d11',
    pieceId: 41,
    modelCid: 'bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi',
    inputsSha256: bytes(...Array.from({ length: 32 }, (_, i) => i)),
    outputs: [{ name: 'logits', dtype: 'float16', dims: ['16', '1000'], byteLength: '32000' }],
    outputsSha256: bytes(...Array.from({ length: 32 }, (_, i) => 255 - i))
  },
  DirectRequest: { protocol: '/shoal/infer/1.0.0', reuse: true, port: 40124, ticket: bytes(...Array.from({ length: 16 }, (_, i) => i + 1)), key: bytes(...Array.from({ length: 32 }, (_, i) => 200 - i)) },
  DirectOffer: { code: 'BUSY', message: 'too many tickets', port: 40123, ticket: bytes(...Array.from({ length: 16 }, (_, i) => 255 - i)), key: bytes(...Array.from({ length: 32 }, (_, i) => i * 7)), ttlMs: 10000, reuse: true },
  BlockRequest: { cid: bytes(1, 0x55, 0x12, 0x20, ...Array.from({ length: 32 }, (_, i) => i * 3)) },
  BlockResponse: { code: 'DONT_HAVE', size: 1048576 }
}
const NAMES = Object.keys(SAMPLES) as MessageName[]

const packed = loadWire()
const unpacked = loadWire({ packed: false })

/** One comparable form for both libraries' objects: 64-bit integers as strings, bytes as hex, no absent fields. */
function canonical (value: unknown): unknown {
  if (value == null) return undefined
  if (typeof value === 'bigint') return value.toString()
  if (value instanceof Uint8Array) return `hex:${Buffer.from(value).toString('hex')}`
  if (Array.isArray(value)) return value.map(canonical)
  if (typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) {
      const c = canonical(v)
      if (c !== undefined) out[k] = c
    }
    return out
  }
  return value
}

/** protobufjs's plain form to the objects Shoal's codecs take: 64-bit integers as bigints. */
function toShoal (type: protobuf.Type, value: Record<string, any>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const field of type.fieldsArray) {
    const v = value[field.name]
    if (v === undefined) continue
    const one = (x: any): unknown => field.resolvedType instanceof protobuf.Type
      ? toShoal(field.resolvedType, x)
      : ['uint64', 'int64', 'sint64', 'fixed64', 'sfixed64'].includes(field.type) ? BigInt(x) : x
    out[field.name] = field.repeated ? (v as any[]).map(one) : one(v)
  }
  return out
}

/** Appends a field of each wire type under numbers no `.proto` of Shoal uses. */
function withUnknownFields (encoded: Uint8Array): Uint8Array {
  const w = protobuf.Writer.create()
  w.uint32((1000 << 3) | 0).uint64(123456789)
  w.uint32((1001 << 3) | 1).fixed64(42)
  w.uint32((1002 << 3) | 2).bytes(bytes(1, 2, 3, 4, 5))
  w.uint32((1003 << 3) | 5).fixed32(7)
  const tail = w.finish()
  // unknown fields in front as well as behind: a parser must skip them wherever they are
  return Uint8Array.from([...tail, ...encoded, ...tail])
}

describe('Shoal codecs against an independent proto3 implementation', () => {
  for (const name of NAMES) {
    describe(name, () => {
      const sample = SAMPLES[name]
      const expected = canonical(packed.decode(name, packed.encode(name, sample)))

      it('decodes what protobufjs encodes, packed (proto3 default) and unpacked', () => {
        for (const wire of [packed, unpacked]) {
          expect(canonical(SHOAL[name].decode(wire.encode(name, sample)))).toEqual(expected)
        }
      })

      it('encodes byte for byte what protobufjs encodes, and protobufjs reads it back', () => {
        const ours = SHOAL[name].encode(toShoal(packed.type(name), sample))
        expect(Buffer.from(ours).toString('hex')).toBe(Buffer.from(packed.encode(name, sample)).toString('hex'))
        expect(canonical(packed.decode(name, ours))).toEqual(expected)
      })

      it('ignores unknown fields of every wire type', () => {
        expect(canonical(SHOAL[name].decode(withUnknownFields(packed.encode(name, sample))))).toEqual(expected)
      })

      it('omits fields at their default value and reads omitted fields as defaults', () => {
        expect(SHOAL[name].encode({}).byteLength).toBe(0)
        expect(canonical(SHOAL[name].decode(new Uint8Array(0)))).toEqual(canonical(packed.decode(name, new Uint8Array(0))))
        // every scalar field at its default: nothing of it on the wire, as protobufjs writes it with the field absent
        const type = packed.type(name)
        const zeroed: Record<string, unknown> = { ...sample }
        const absent: Record<string, unknown> = { ...sample }
        for (const field of type.fieldsArray) {
          if (field.repeated || field.resolvedType instanceof protobuf.Type) continue
          zeroed[field.name] = field.resolvedType != null ? Object.keys((field.resolvedType as protobuf.Enum).values)[0] : field.typeDefault instanceof Uint8Array ? new Uint8Array(0) : typeof field.typeDefault === 'object' ? '0' : field.typeDefault
          delete absent[field.name]
        }
        const ours = SHOAL[name].encode(toShoal(type, zeroed))
        expect(Buffer.from(ours).toString('hex')).toBe(Buffer.from(packed.encode(name, absent)).toString('hex'))
      })
    })
  }

  it('writes 64-bit values between 2^31 and 2^32 as protobufjs does (the memory of a 4 GB machine)', () => {
    // found by fuzzing: protons-runtime wrote such a value as one byte where it had counted five
    for (const value of ['2147483648', '3221225472', '4294967295']) {
      const hardware = { ...SAMPLES.Hardware, memoryTotalBytes: value, memoryFreeBytes: value }
      expect(Buffer.from(HardwareMessage.encode(toShoal(packed.type('Hardware'), hardware))).toString('hex')).toBe(Buffer.from(packed.encode('Hardware', hardware)).toString('hex'))
      const limits = { ...SAMPLES.Limits, maxMemoryBytes: value }
      expect(LimitsMessage.decode(LimitsMessage.encode(toShoal(packed.type('Limits'), limits))).maxMemoryBytes).toBe(BigInt(value))
      const t = { ...tensor, byteLength: value }
      expect(Buffer.from(TensorInfo.encode(toShoal(packed.type('TensorInfo'), t))).toString('hex')).toBe(Buffer.from(packed.encode('TensorInfo', t)).toString('hex'))
    }
  })

  it('reads an unknown field inside a nested message (a tensor of a request)', () => {
    const w = protobuf.Writer.create()
    w.uint32((3 << 3) | 2).string('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy')
    w.uint32((4 << 3) | 2).bytes(withUnknownFields(packed.encode('TensorInfo', tensor)))
    const decoded = InferRequest.decode(w.finish())
    expect(canonical(decoded.inputs)).toEqual([canonical(packed.decode('TensorInfo', packed.encode('TensorInfo', tensor)))])
  })

  it('reads a repeated scalar split across packed and unpacked records, as the spec requires', () => {
    // proto3: a parser concatenates every record of a repeated field, whatever its encoding
    const w = protobuf.Writer.create()
    w.uint32((3 << 3) | 2).fork().uint64(2).uint64(3).ldelim()
    w.uint32((3 << 3) | 0).uint64(640)
    w.uint32((3 << 3) | 2).fork().uint64(480).ldelim()
    expect(TensorInfo.decode(w.finish()).dims).toEqual([2n, 3n, 640n, 480n])
  })

  it('refuses a packed record that overruns its message or ends inside a value', () => {
    const inner = protobuf.Writer.create()
    inner.uint32((3 << 3) | 2).uint32(5).uint64(2) // announces 5 bytes, the message holds 1
    const outer = protobuf.Writer.create()
    outer.uint32((4 << 3) | 2).bytes(inner.finish())
    outer.uint32((2 << 3) | 0).uint32(9)
    expect(() => InferRequest.decode(outer.finish())).toThrow(/overruns/)
    // the varint's continuation bit runs past the record's end
    expect(() => TensorInfo.decode(bytes((3 << 3) | 2, 1, 0x80, 1))).toThrow(/inside a value/)
  })

  it('keeps the per-field limit on packed dims (a hostile header cannot grow an array past it)', () => {
    const w = protobuf.Writer.create()
    w.uint32((3 << 3) | 2).fork()
    for (let i = 0; i < 100; i++) w.uint64(1)
    w.ldelim()
    expect(() => TensorInfo.decode(w.finish(), { limits: { dims: 8 } })).toThrow(/too many elements/)
  })

  it('gives a model over 1 MiB the CID that docs/protocol.md 7.1\'s byte layout of its root gives', async () => {
    const file = Uint8Array.from({ length: 2.5 * 2 ** 20 }, (_, i) => i % 251)
    const leaves = [0, 1, 2].map(i => file.subarray(i * 2 ** 20, Math.min(file.length, (i + 1) * 2 ** 20)))
    const node = protobuf.Writer.create()
    for (const leaf of leaves) {
      const cid = CID.createV1(0x55, await sha256.digest(leaf))
      // Links (field 2) first, each: Hash, an empty Name, Tsize
      node.uint32((2 << 3) | 2).fork().uint32((1 << 3) | 2).bytes(cid.bytes).uint32((2 << 3) | 2).bytes(new Uint8Array(0)).uint32(3 << 3).uint64(leaf.length).ldelim()
    }
    // then Data: UnixFS Type File, filesize, blocksizes unpacked
    const data = protobuf.Writer.create().uint32(1 << 3).uint32(2).uint32(3 << 3).uint64(file.length)
    for (const leaf of leaves) data.uint32(4 << 3).uint64(leaf.length)
    node.uint32((1 << 3) | 2).bytes(data.finish())
    const root = CID.createV1(0x70, await sha256.digest(node.finish()))
    expect(root.toString()).toBe(await modelCid(file))
  })
})
