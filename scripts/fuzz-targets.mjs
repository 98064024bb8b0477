// Fuzzing every decoder that reads what a peer sends: capacity ads, infer requests and responses,
// direct-channel messages, block requests and responses, signed name records, and the ONNX model guard. Inputs are random bytes and
// valid messages with bytes changed, cut or added (fast-check). The property: a decoder accepts, or
// refuses with the error the node turns into an answer or a refusal; it never throws anything else,
// and what it accepts re-encodes to the same message. `pnpm bench fuzz` runs 100 000 inputs per
// decoder; the test suite runs a shorter round (test/conformance/test/fuzz.spec.ts).
import fc from 'fast-check'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import {
  BlockRequest, BlockResponse, decodeCapacityAd, DirectOffer, DirectRequest, encodeCapacityAd, InferRequest, InferResponse,
  InvalidMessageError, validateTensorInfos
} from '@shoal/protocol'
import { decodeModelCid, ModelDagError, parseModelCid } from '@shoal/node/model-cid'
import { NameError, nameKey, signManifest, verifyNameRecord } from '@shoal/node/names'
import { inspectModel, ModelRejectedError } from '@shoal/runtime'
import { buildCalibrationModel } from '@shoal/runtime/calibration-model'

/** Any error a protobuf decoder throws is what the node's frame reader turns into InvalidMessageError. */
function decodes (codec, bytes) {
  try {
    return codec.decode(bytes)
  } catch (err) {
    if (!(err instanceof Error)) throw new Error(`the decoder threw a non-error: ${String(err)}`)
    return undefined
  }
}

/**
 * What the decoder accepted must survive a round trip through its encoder unchanged. Strings compare
 * as well-formed: a string field that is not valid UTF-8 reads with lone surrogates, which encode as
 * U+FFFD (such a string fails every check it meets: names, dtypes, CIDs; docs/protocol.md 5.1).
 */
function roundTrips (codec, message) {
  const plain = (_, v) => typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? [...v] : typeof v === 'string' ? v.toWellFormed() : v
  const again = codec.decode(codec.encode(message))
  if (JSON.stringify(again, plain) !== JSON.stringify(message, plain)) throw new Error('a decoded message did not survive re-encoding')
}

function refusedAs (err, ...classes) {
  if (classes.some(c => err instanceof c)) return 'refused'
  throw err
}

const tensor = { name: 'x', dtype: 'float32', dims: [2n, 3n, 64n, 64n], byteLength: 98304n }

/** The decoders, each with valid messages to start mutations from. */
export async function fuzzTargets () {
  const key = await generateKeyPair('Ed25519')
  const peerId = peerIdFromPrivateKey(key)
  const ad = encodeCapacityAd({
    peerId: peerId.toString(), version: '0.5.0', addrs: ['/ip4/127.0.0.1/tcp/4001'], cpu: { model: 'CPU', cores: 8 },
    memory: { totalBytes: 2 ** 34, freeBytes: 2 ** 33 }, os: 'linux 6.1', arch: 'x64', gpu: null,
    providers: [{ name: 'cpu', gflops: 88.5 }], limits: { maxConcurrency: 2, maxMemoryBytes: 0, cpuThreads: 8, noGpu: true },
    freeSlots: 2, queueLength: 1, models: ['bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'], seq: 1_700_000_000_001, timestampMs: 1_700_000_000_000, intervalMs: 5000, leaving: false
  })
  const manifest = { name: 'det', version: '1', cid: 'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy', publisher: peerId.toString(), issuedAt: 1_795_000_000_000 }
  const record = await signManifest(manifest, key)
  const recordKey = nameKey(manifest.publisher, manifest.name, manifest.version)
  return [
    {
      name: 'capacity ad (decodeCapacityAd)',
      seeds: [ad],
      run: async bytes => {
        try {
          decodeCapacityAd(bytes)
          return 'accepted'
        } catch (err) {
          return refusedAs(err, InvalidMessageError)
        }
      }
    },
    {
      name: 'infer request (decode, then the worker\'s checks)',
      seeds: [InferRequest.encode({ jobId: 'j', pieceId: 3, modelCid: manifest.cid, inputs: [tensor], deadlineMs: 5000 })],
      run: async bytes => {
        const request = decodes(InferRequest, bytes)
        if (request == null) return 'refused'
        roundTrips(InferRequest, request)
        try {
          validateTensorInfos(request.inputs, 256 * 2 ** 20, 'infer request')
          return 'accepted'
        } catch (err) {
          return refusedAs(err, InvalidMessageError)
        }
      }
    },
    {
      name: 'infer response (decode, then the submitter\'s checks)',
      seeds: [InferResponse.encode({ code: InferResponse.Code.OK, message: '', outputs: [tensor], computeMs: 3, provider: 'cpu', computeUs: 3100 })],
      run: async bytes => {
        const response = decodes(InferResponse, bytes)
        if (response == null) return 'refused'
        roundTrips(InferResponse, response)
        try {
          validateTensorInfos(response.outputs, 2 ** 30, 'infer response')
          return 'accepted'
        } catch (err) {
          return refusedAs(err, InvalidMessageError)
        }
      }
    },
    {
      name: 'direct request and offer',
      seeds: [DirectRequest.encode({ protocol: '/shoal/infer/1.0.0', reuse: true }), DirectOffer.encode({ code: DirectOffer.Code.OK, message: '', port: 4003, ticket: new Uint8Array(16).fill(7), key: new Uint8Array(32).fill(9), ttlMs: 10_000, reuse: true })],
      run: async bytes => {
        const request = decodes(DirectRequest, bytes)
        const offer = decodes(DirectOffer, bytes)
        if (request != null) roundTrips(DirectRequest, request)
        if (offer != null) roundTrips(DirectOffer, offer)
        return request != null || offer != null ? 'accepted' : 'refused'
      }
    },
    {
      name: 'block request and response (decode, then the server\'s CID check)',
      seeds: [BlockRequest.encode({ cid: parseModelCid(manifest.cid).bytes }), BlockResponse.encode({ code: BlockResponse.Code.OK, size: 1024 * 1024 })],
      run: async bytes => {
        const request = decodes(BlockRequest, bytes)
        const response = decodes(BlockResponse, bytes)
        if (response != null) roundTrips(BlockResponse, response)
        let served = false
        if (request != null) {
          roundTrips(BlockRequest, request)
          try {
            decodeModelCid(request.cid)
            served = true
          } catch (err) {
            refusedAs(err, ModelDagError)
          }
        }
        return served || response != null ? 'accepted' : 'refused'
      }
    },
    {
      name: 'signed name record (verifyNameRecord)',
      seeds: [record],
      run: async bytes => {
        try {
          await verifyNameRecord(recordKey, bytes)
          return 'accepted'
        } catch (err) {
          return refusedAs(err, NameError)
        }
      }
    },
    {
      name: 'ONNX model guard (inspectModel)',
      seeds: [buildCalibrationModel({ batch: 2, width: 4, layers: 1 })],
      run: async bytes => {
        try {
          await inspectModel(bytes, { maxBytes: 1 << 20, cid: 'fuzz' })
          return 'accepted'
        } catch (err) {
          return refusedAs(err, ModelRejectedError)
        }
      }
    }
  ]
}

/** Random bytes, or a seed with some bytes changed, cut short or grown. */
function inputs (seeds) {
  const mutated = fc.record({
    seed: fc.constantFrom(...seeds),
    changes: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
    cut: fc.option(fc.nat()),
    extra: fc.uint8Array({ maxLength: 16 })
  }).map(({ seed, changes, cut, extra }) => {
    const bytes = Uint8Array.from(seed)
    for (const [at, value] of changes) if (bytes.length > 0) bytes[at % bytes.length] = value
    const kept = cut == null ? bytes : bytes.subarray(0, cut % (bytes.length + 1))
    return Uint8Array.from([...kept, ...extra])
  })
  return fc.oneof({ weight: 1, arbitrary: fc.uint8Array({ maxLength: 512 }) }, { weight: 3, arbitrary: mutated })
}

/** Runs `runs` inputs through `target`; resolves with the counts, rejects with the first input that broke the property. */
export async function fuzz (target, runs, seed) {
  const counts = { accepted: 0, refused: 0 }
  await fc.assert(fc.asyncProperty(inputs(target.seeds), async bytes => {
    counts[await target.run(bytes)]++
  }), { numRuns: runs, seed, endOnFailure: true })
  return counts
}
