/**
 * A Shoal peer written from docs/protocol.md and the `.proto` files alone, with public npm packages
 * (libp2p and its family, protobufjs, onnxruntime-node, multiformats) and nothing from `@shoal/*`. It
 * publishes a capacity ad, serves `/shoal/infer/1.0.0` as a worker, serves its models' blocks over
 * `/shoal/block/1.0.0`, and submits pieces to other workers as a client. Its messages are encoded by protobufjs as any proto3 implementation would: repeated
 * scalars packed.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { peerIdFromString } from '@libp2p/peer-id'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import type { Libp2p, PeerId, Stream } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import * as ort from 'onnxruntime-node'
import os from 'node:os'
import { loadWire } from './wire.js'
import type { Wire } from './wire.js'

// docs/protocol.md: section 3 (topic), 5 (framing), 6 (infer), 7.3 (blocks)
export const CAPACITY_TOPIC = 'shoal/capacity/1'
export const INFER_PROTOCOL = '/shoal/infer/1.0.0'
export const BLOCK_PROTOCOL = '/shoal/block/1.0.0'
const MAX_FRAME = 1024 * 1024
const HEADER_TIMEOUT_MS = 10_000
const RAW_CODEC = 0x55

/** A tensor as it travels: its bytes are the elements in row-major order, little-endian. */
export interface WireTensor {
  dtype: string
  dims: number[]
  data: Uint8Array
}

export interface PieceAnswer {
  code: string
  message: string
  outputs: Record<string, WireTensor>
}

export interface IndependentPeerInit {
  /** Models this peer holds: their bytes (each at most 1 MiB: one raw block, section 7.1). */
  models?: Uint8Array[]
  /** Pieces it runs at once (`limits.max_concurrency`). */
  slots?: number
  /** Advertised throughput (`providers[0].gflops`). */
  gflops?: number
  /** How often it publishes its ad, ms. */
  adIntervalMs?: number
  /** Software version in its ad (`version`). */
  version?: string
  /** Encode repeated scalars packed (proto3's default, true) or unpacked: a Shoal node must read both. */
  packed?: boolean
  /** Test hook: answer every piece with this error code and a message instead of running it. */
  refuseWith?: string
  /** Test hook: changes an OK answer before it is sent (a faulty implementation). */
  tamper?: (answer: { outputs: Array<{ name: string, dtype: string, dims: number[], data: Uint8Array }> }) => void
}

const TYPED: Record<string, new (buffer: ArrayBuffer, offset: number, length: number) => ArrayBufferView> = {
  float32: Float32Array, float64: Float64Array, int8: Int8Array, uint8: Uint8Array, int16: Int16Array, uint16: Uint16Array,
  int32: Int32Array, uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array, bool: Uint8Array, float16: Uint16Array
}
const ITEM: Record<string, number> = { float32: 4, float64: 8, int8: 1, uint8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, int64: 8, uint64: 8, bool: 1, float16: 2 }

/** A model's CID (section 7.1): a file of at most 1 MiB is one raw block, CIDv1 raw sha2-256. */
export async function rawModelCid (bytes: Uint8Array): Promise<string> {
  if (bytes.byteLength > MAX_FRAME) throw new Error('this peer handles only models of one block (at most 1 MiB)')
  return CID.createV1(RAW_CODEC, await sha256.digest(bytes)).toString()
}

export class IndependentPeer {
  readonly wire: Wire
  /** Pieces it answered, in order: the piece id and the code. */
  readonly answered: Array<{ pieceId: number, code: string }> = []
  /** Blocks it sent over /shoal/block/1.0.0, and the streams they came on. */
  blocksServed = 0
  blockStreams = 0
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>()
  private readonly models = new Map<string, Uint8Array>()
  private readonly init: IndependentPeerInit
  private running = 0
  private leaving = false
  private seq = BigInt(Date.now()) * 1000n
  private timer?: ReturnType<typeof setInterval>
  libp2p!: Libp2p<{ pubsub: ReturnType<ReturnType<typeof gossipsub>> }>

  constructor (init: IndependentPeerInit = {}) {
    this.init = init
    this.wire = loadWire({ packed: init.packed })
  }

  get peerId (): PeerId {
    return this.libp2p.peerId
  }

  async start (): Promise<void> {
    for (const bytes of this.init.models ?? []) this.models.set(await rawModelCid(bytes), bytes)
    this.libp2p = await createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionManager: { allow: ['/ip4/127.0.0.1'] },
      services: {
        identify: identify(),
        // section 3.1: StrictSign; loopback peers are not penalised for sharing an IP
        pubsub: gossipsub({ globalSignaturePolicy: 'StrictSign', allowPublishToZeroTopicPeers: true, scoreParams: { IPColocationFactorWhitelist: new Set(['127.0.0.1']) } })
      }
    })
    await this.libp2p.handle(INFER_PROTOCOL, (stream) => { void this.serve(stream) }, { maxInboundStreams: 32 })
    await this.libp2p.handle(BLOCK_PROTOCOL, (stream) => { void this.serveBlocks(stream) }, { maxInboundStreams: 32 })
    this.libp2p.services.pubsub.subscribe(CAPACITY_TOPIC)
    const interval = this.init.adIntervalMs ?? 300
    this.timer = setInterval(() => { void this.publishAd() }, interval)
  }

  async stop (): Promise<void> {
    clearInterval(this.timer)
    // section 3.4: a clean shutdown sends one last ad with leaving = true
    this.leaving = true
    await this.publishAd()
    await this.libp2p.stop()
    for (const session of this.sessions.values()) await (await session).release()
  }

  async dial (addr: string): Promise<void> {
    await this.libp2p.dial(multiaddr(addr))
  }

  /** Section 3.2: the ad, as the gossipsub message's data. */
  adBytes (): Uint8Array {
    const slots = this.init.slots ?? 2
    return this.wire.encode('CapacityAd', {
      peerId: this.peerId.toMultihash().bytes,
      version: this.init.version ?? '0.0.1-outside',
      addrs: this.libp2p.getMultiaddrs().map(a => multiaddr(a.toString().replace(/\/p2p\/.*$/, '')).bytes),
      hardware: { cpuModel: os.cpus()[0]?.model ?? '', cpuCores: os.cpus().length, memoryTotalBytes: String(os.totalmem()), memoryFreeBytes: String(os.freemem()), os: `${os.platform()} ${os.release()}`, arch: os.arch(), gpu: '' },
      providers: [{ name: 'cpu', gflops: this.init.gflops ?? 50 }],
      limits: { maxConcurrency: slots, maxMemoryBytes: '0', cpuThreads: 1, noGpu: true },
      freeSlots: Math.max(0, slots - this.running),
      queueLength: 0,
      models: [...this.models.keys()],
      seq: String(++this.seq),
      timestampMs: String(Date.now()),
      leaving: this.leaving,
      intervalMs: this.init.adIntervalMs ?? 300
    })
  }

  async publishAd (): Promise<void> {
    await this.libp2p.services.pubsub.publish(CAPACITY_TOPIC, this.adBytes()).catch(() => {})
  }

  /** Section 6, worker side. */
  private async serve (stream: Stream): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: MAX_FRAME })
    let pieceId = -1
    const answer = async (response: Record<string, unknown>, data: Uint8Array[] = []): Promise<void> => {
      this.answered.push({ pieceId, code: String(response.code) })
      await lp.write(this.wire.encode('InferResponse', response))
      for (const buffer of data) {
        for (let o = 0; o < buffer.byteLength; o += MAX_FRAME) await lp.write(buffer.subarray(o, Math.min(o + MAX_FRAME, buffer.byteLength)))
      }
      await stream.close()
    }
    try {
      const request = this.wire.decode('InferRequest', (await lp.read({ signal: AbortSignal.timeout(HEADER_TIMEOUT_MS) })).subarray())
      pieceId = request.pieceId
      const infos = request.inputs as Array<{ name: string, dtype: string, dims: string[], byteLength: string }>
      for (const t of infos) {
        const expected = t.dims.reduce((n, d) => n * Number(d), 1) * (ITEM[t.dtype] ?? NaN)
        if (expected !== Number(t.byteLength)) { await answer({ code: 'BAD_INPUT', message: `tensor ${t.name}: byte length does not match its shape` }); return }
      }
      if (this.init.refuseWith != null) { await answer({ code: this.init.refuseWith, message: 'refused by a test hook' }); return }
      const model = this.models.get(request.modelCid)
      if (model == null) { await answer({ code: 'MODEL_UNAVAILABLE', message: 'this peer does not hold the model' }); return }
      this.running++
      try {
        const signal = AbortSignal.timeout(Math.max(1, request.deadlineMs))
        const feeds: Record<string, ort.Tensor> = {}
        for (const t of infos) {
          const data = new Uint8Array(Number(t.byteLength))
          for (let at = 0; at < data.byteLength;) {
            const frame = (await lp.read({ signal })).subarray()
            data.set(frame, at)
            at += frame.byteLength
          }
          feeds[t.name] = new ort.Tensor(t.dtype as any, new TYPED[t.dtype](data.buffer, 0, data.byteLength / ITEM[t.dtype]) as any, t.dims.map(Number))
        }
        const session = await this.session(request.modelCid, model)
        const started = performance.now()
        const results = await session.run(feeds)
        const us = Math.round((performance.now() - started) * 1000)
        const outputs = session.outputNames.map(name => {
          const t = results[name]
          const view = t.data as ArrayBufferView
          return { name, dtype: t.type, dims: t.dims.map(Number), data: new Uint8Array(view.buffer, view.byteOffset, view.byteLength) }
        })
        this.init.tamper?.({ outputs })
        await answer({
          code: 'OK',
          message: '',
          outputs: outputs.map(o => ({ name: o.name, dtype: o.dtype, dims: o.dims, byteLength: o.data.byteLength })),
          computeMs: Math.round(us / 1000),
          provider: 'cpu',
          computeUs: us
        }, outputs.map(o => o.data))
      } finally {
        this.running--
      }
    } catch (err: any) {
      stream.abort(err)
    }
  }

  /** Section 7.3, server side: one request after another on the stream, each answered with the block or DONT_HAVE. */
  private async serveBlocks (stream: Stream): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: MAX_FRAME })
    this.blockStreams++
    try {
      for (;;) {
        let frame
        try {
          frame = await lp.read({ signal: AbortSignal.timeout(20_000) })
        } catch {
          break // the fetcher closed the stream, or stayed silent
        }
        const request = this.wire.decode('BlockRequest', frame.subarray())
        // a model of one block: its CID is the raw CID of its bytes
        const text = CID.decode(request.cid).toString()
        const model = this.models.get(text)
        if (model == null) {
          await lp.write(this.wire.encode('BlockResponse', { code: 'DONT_HAVE' }))
          continue
        }
        this.blocksServed++
        await lp.write(this.wire.encode('BlockResponse', { code: 'OK', size: model.byteLength }))
        await lp.write(model)
      }
      await stream.close()
    } catch (err: any) {
      stream.abort(err)
    }
  }

  private async session (cid: string, bytes: Uint8Array): Promise<ort.InferenceSession> {
    let session = this.sessions.get(cid)
    if (session == null) {
      session = ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 })
      this.sessions.set(cid, session)
    }
    return await session
  }

  /** Section 6, client side: sends one piece to `worker` and reads its answer. */
  async infer (worker: string, modelCid: string, inputs: Record<string, WireTensor>, options: { pieceId?: number, deadlineMs?: number } = {}): Promise<PieceAnswer> {
    const stream = await this.libp2p.dialProtocol(peerIdFromString(worker), INFER_PROTOCOL)
    const lp = lpStream(stream, { maxDataLength: MAX_FRAME })
    const entries = Object.entries(inputs)
    await lp.write(this.wire.encode('InferRequest', {
      jobId: 'outside-job',
      pieceId: options.pieceId ?? 0,
      modelCid,
      inputs: entries.map(([name, t]) => ({ name, dtype: t.dtype, dims: t.dims, byteLength: t.data.byteLength })),
      deadlineMs: options.deadlineMs ?? 30_000
    }))
    // a worker that refuses early may stop reading: its answer still comes, so write errors wait for it
    const writing = (async () => {
      for (const [, t] of entries) {
        for (let o = 0; o < t.data.byteLength; o += MAX_FRAME) await lp.write(t.data.subarray(o, Math.min(o + MAX_FRAME, t.data.byteLength)))
      }
    })().catch(() => {})
    const signal = AbortSignal.timeout((options.deadlineMs ?? 30_000) + HEADER_TIMEOUT_MS)
    const response = this.wire.decode('InferResponse', (await lp.read({ signal })).subarray())
    await writing
    const outputs: Record<string, WireTensor> = {}
    if (response.code === 'OK') {
      for (const o of response.outputs as Array<{ name: string, dtype: string, dims: string[], byteLength: string }>) {
        const data = new Uint8Array(Number(o.byteLength))
        for (let at = 0; at < data.byteLength;) {
          const frame = (await lp.read({ signal })).subarray()
          data.set(frame, at)
          at += frame.byteLength
        }
        outputs[o.name] = { dtype: o.dtype, dims: o.dims.map(Number), data }
      }
    }
    await stream.close().catch(() => {})
    return { code: response.code, message: response.message, outputs }
  }
}
