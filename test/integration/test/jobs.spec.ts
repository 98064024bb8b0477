import onnxProto from 'onnx-proto'
import { readFile } from 'node:fs/promises'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import { resolveConfig, ShoalNode } from '@shoal/node'
import { PieceError, runRemotePiece } from '@shoal/node/wire'
import { INFER_PROTOCOL, InferRequest, InferResponse } from '@shoal/protocol'
import { lpStream } from '@libp2p/utils'
import { buildCalibrationModel } from '@shoal/runtime/calibration-model'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { DETECTION_MODEL, FIXED_CALIBRATION, images, localRun, metricValue, sameBytes, spawnNode, startJobMesh, startNode, stopAll, tempDir, TEST_AD_INTERVAL_MS, waitFor, withDynamicBatch } from './helpers.js'
import type { NodeProcess } from './helpers.js'
import { endlessLoop, memoryBomb, valueInfoBomb } from './hostile-models.js'

let nodes: ShoalNode[] = []
let procs: NodeProcess[] = []
afterEach(async () => {
  for (const p of procs) p.proc.kill('SIGKILL')
  procs = []
  await stopAll(nodes)
  nodes = []
})

let detection: Uint8Array
beforeAll(async () => { detection = await readFile(DETECTION_MODEL) })

const dial = (node: ShoalNode) => async (peer: any, protocol: string, options: { signal: AbortSignal }) => await node.libp2p.dialProtocol(peer, protocol, options)

/** One piece of `rows` 64x64 images straight to `worker`: its outputs, or the error it answered. */
async function sendPiece (submitter: ShoalNode, worker: ShoalNode, modelCid: string, rows: number): Promise<any> {
  return await runRemotePiece(dial(submitter), peerIdFromString(worker.peerId), {
    jobId: 'j', pieceId: rows, modelCid, inputs: { x: images(rows, 64, 64) }, deadlineMs: 20_000, maxResponseBytes: 1 << 24
  }, AbortSignal.timeout(20_000)).catch(err => err)
}

describe('a batch split across a mesh equals a single ONNX Runtime run, bit for bit', () => {
  it('on a generated model', async () => {
    nodes = await startJobMesh(3)
    const [submitter] = nodes
    const bytes = buildCalibrationModel({ batch: 1, width: 64, layers: 3 })
    // every worker holds the model already, and the submitter has seen each one's ad say so: ten tiny
    // pieces otherwise all go to the first worker known to hold it (the others look a fetch slower)
    const [model] = await Promise.all(nodes.map(async n => await n.addModel(withDynamicBatch(bytes))))
    await waitFor(() => submitter.peers().every(p => p.models.includes(model.cid)), 'every worker\'s ad to list the model')
    const values = Float32Array.from({ length: 40 * 64 }, (_, i) => Math.sin(i))
    const x = { dtype: 'float32' as const, dims: [40, 64], data: new Uint8Array(values.buffer) }
    const result = await submitter.submitJob(model.cid, { input: x }, { rowsPerPiece: 4 }).run()
    const reference = await localRun(withDynamicBatch(bytes), { input: x })
    expect(sameBytes(result.outputs.output, reference.output)).toBe(true)
    expect(result.progress.total).toBe(10)
    expect(result.progress.perProvider).toEqual({ cpu: 10 })
    // the pieces really went to the workers (how they spread depends on which answers first: on a
    // loaded machine one worker may take them all)
    expect(result.progress.perPeer[submitter.peerId]).toBeUndefined()
    const workers = nodes.slice(1).map(n => n.peerId)
    expect(Object.keys(result.progress.perPeer).every(p => workers.includes(p))).toBe(true)
    expect(Object.values(result.progress.perPeer).reduce((a, b) => a + b, 0)).toBe(10)
  })

  it('on a real pretrained model (PP-OCRv4 text detection) over a four-node mesh', async () => {
    nodes = await startJobMesh(3)
    const [submitter, ...workers] = nodes
    const model = await submitter.addModel(detection)
    const x = images(12, 64, 64)
    const result = await submitter.submitJob(model.cid, { x }, { rowsPerPiece: 2 }).run()
    const reference = await localRun(detection, { x })
    const name = Object.keys(reference)[0]
    expect(sameBytes(result.outputs[name], reference[name])).toBe(true)
    // workers fetched the model from the submitter, verified
    await waitFor(() => workers.filter(w => w.models.has(model.cid)).length >= 2, 'the workers to hold the model')
  })
})

describe('peers that fail', () => {
  it('two of four workers killed abruptly mid-job: every piece arrives, outputs identical', async () => {
    const submitter = await startNode()
    nodes = [submitter]
    const model = await submitter.addModel(detection)
    // four worker processes, each inference slowed 4x so that the job is still running when two die
    procs = await Promise.all(Array.from({ length: 4 }, async () => await spawnNode([
      '--data-dir', await tempDir(), '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--no-gpu', '--cpu-threads', '1',
      '--ad-interval', String(TEST_AD_INTERVAL_MS), '--bootstrap', submitter.addrs[0]
    ], 30_000, { SHOAL_TEST_SLOWDOWN: '4' })))
    await waitFor(() => submitter.peers().length === 4, 'the submitter to see four workers', 20_000)
    const x = images(24, 64, 64)
    // Each worker's first piece waits for it to fetch the model and load it, in a process sharing two
    // cores with four others: on a loaded machine that can pass the default 5 s deadline floor, the
    // workers then back off and the (unslowed) submitter runs everything itself. The killed workers are
    // found by their closed connections, not by deadlines, so a longer floor changes nothing under test.
    const job = submitter.submitJob(model.cid, { x }, { rowsPerPiece: 1, timeoutFloorMs: 20_000 })
    let killed = false
    job.onProgress(p => {
      if (!killed && p.done >= 4) {
        killed = true
        procs[0].proc.kill('SIGKILL')
        procs[1].proc.kill('SIGKILL')
      }
    })
    const result = await job.run()
    expect(killed).toBe(true)
    const reference = await localRun(detection, { x })
    const name = Object.keys(reference)[0]
    expect(sameBytes(result.outputs[name], reference[name])).toBe(true)
    expect(result.progress.done).toBe(24)
    expect(result.progress.retries).toBeGreaterThan(0)
    const survivors = [procs[2].peerId, procs[3].peerId]
    expect(Object.keys(result.progress.perPeer).some(p => survivors.includes(p))).toBe(true)
  }, 60_000)

  it('a worker that accepts a piece and never answers: the piece times out and is reassigned', async () => {
    nodes = await startJobMesh(2, [{ gflops: 1000 }, {}])
    const [submitter, mute] = nodes
    // the mute worker takes every piece, on an infer stream or a direct connection, and says nothing
    await mute.libp2p.unhandle(INFER_PROTOCOL)
    await mute.libp2p.handle(INFER_PROTOCOL, () => {}, { maxInboundStreams: 64 })
    mute.libp2p.services.direct.serve(INFER_PROTOCOL, async () => await new Promise(() => {}))
    const model = await submitter.addModel(detection)
    const x = images(6, 64, 64)
    // end-game off: it would copy the mute worker's pieces before their deadline; here the deadline itself is tested
    const result = await submitter.submitJob(model.cid, { x }, { rowsPerPiece: 1, timeoutFloorMs: 1500, endgame: false }).run()
    const reference = await localRun(detection, { x })
    const name = Object.keys(reference)[0]
    expect(sameBytes(result.outputs[name], reference[name])).toBe(true)
    expect(result.progress.retries).toBeGreaterThan(0)
    expect(result.progress.perPeer[mute.peerId]).toBeUndefined()
  }, 30_000)

  it('a worker slowed tenfold does not dominate: end-game duplicates its last pieces', async () => {
    nodes = await startJobMesh(3, [{ slowdown: 10 }])
    const [submitter, slow] = nodes
    // every worker holds the model: the slowdown multiplies compute only, and a fetch that ends a few
    // hundred ms earlier on the slow worker could otherwise let it finish its one piece before the
    // fast ones run out of work (nothing left to copy: seen once in CI). Rows of 128x128 make a
    // piece's compute outweigh what is left of such jitter (session creation).
    const model = await submitter.addModel(detection)
    for (const worker of nodes.slice(1)) await worker.addModel(detection)
    const x = images(16, 128, 128)
    const result = await submitter.submitJob(model.cid, { x }, { rowsPerPiece: 1 }).run()
    const reference = await localRun(detection, { x })
    const name = Object.keys(reference)[0]
    expect(sameBytes(result.outputs[name], reference[name])).toBe(true)
    expect(result.progress.duplicates).toBeGreaterThan(0)
    // the slow worker ran fewer than a fair third of the pieces: the fast ones took the rest and copied its last ones
    expect(result.progress.perPeer[slow.peerId] ?? 0).toBeLessThan(16 / 3)
  }, 30_000)
})

describe('models that cannot be split', () => {
  it('a model whose output drops the batch axis fails the job with a clear error instead of joining garbage', async () => {
    nodes = await startJobMesh(1)
    const [submitter] = nodes
    const { onnx } = onnxProto
    // y = ReduceSum(x, axes=[0], keepdims=0): one row out for the whole batch
    const model = onnx.ModelProto.encode({
      irVersion: 7,
      opsetImport: [{ domain: '', version: 11 }],
      graph: {
        name: 'sum-over-batch',
        node: [{ opType: 'ReduceSum', input: ['x'], output: ['y'], attribute: [{ name: 'axes', type: onnx.AttributeProto.AttributeType.INTS, ints: [0] }, { name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 0 }] }],
        input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'n' }, { dimValue: 4 }] } } } }],
        output: [{ name: 'y', type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 4 }] } } } }]
      }
    }).finish()
    const info = await submitter.addModel(model)
    const x = { dtype: 'float32' as const, dims: [6, 4], data: new Uint8Array(6 * 4 * 4) }
    // the worker's answer is only that worker's failure; the submitter's own run of the piece shows the model
    await expect(submitter.submitJob(info.cid, { x }, { rowsPerPiece: 2 }).run()).rejects.toThrow(/output "y" has shape \[4\] for a piece of 2 rows: the model does not keep the batch axis/)
    // sized by a probe run of one row, the job fails before any peer is asked
    const probed = submitter.submitJob(info.cid, { x })
    await expect(probed.run()).rejects.toThrow(/NOT_SPLITTABLE: output "y" has shape \[4\] for one row/)
    expect(probed.progress().failedAttempts).toBe(0)
  })
})

describe('ads cost something', () => {
  it('5000 ads from peers with no connection (Sybils claiming 10^7 GFLOP/s) get no work; the job runs as usual', async () => {
    nodes = await startJobMesh(1)
    const [submitter, worker] = nodes
    const table = submitter.libp2p.services.capacity.peers
    const real = table.get(worker.peerId)!.capacity
    for (let i = 0; i < 5000; i++) {
      const peerId = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
      table.apply({ ...real, peerId, addrs: [], providers: [{ name: 'cpu', gflops: 1e7 }], seq: 1, timestampMs: Date.now(), intervalMs: 600_000 })
    }
    expect(submitter.peers().length).toBe(5001)
    const model = await submitter.addModel(withDynamicBatch(buildCalibrationModel({ batch: 1, width: 16, layers: 1 })))
    const x = { dtype: 'float32' as const, dims: [32, 16], data: new Uint8Array(32 * 16 * 4) }
    const result = await submitter.submitJob(model.cid, { input: x }, { rowsPerPiece: 4 }).run()
    expect(result.progress.done).toBe(8)
    expect(Object.keys(result.progress.perPeer)).toEqual([worker.peerId])
    expect(result.progress.failedAttempts).toBe(0)
  })
})

describe('cancelling a job', () => {
  it('stops it while its pieces are still being sized (the probe run is not waited for)', async () => {
    // a runtime whose runs never end: ONNX Runtime cannot be interrupted, so the node must not wait
    const config = await resolveConfig({ dataDir: await tempDir(), env: {}, flags: { listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, cpuThreads: 1 } })
    const node = new ShoalNode({ config, calibration: FIXED_CALIBRATION, api: false, runtime: { run: async () => await new Promise(() => {}), close: async () => {} } })
    await node.start()
    nodes = [node]
    const model = await node.addModel(withDynamicBatch(buildCalibrationModel({ batch: 1, width: 8, layers: 1 })))
    const job = node.submitJob(model.cid, { input: { dtype: 'float32', dims: [4, 8], data: new Uint8Array(4 * 8 * 4) } })
    expect(job.progress().state).toBe('planning')
    const ended = job.run().then(() => 'done', err => String(err.message))
    job.cancel('stopped by the user')
    expect(await ended).toBe('stopped by the user')
  })
})

describe('a model with a fixed batch size', () => {
  it('gets pieces of exactly that size, and a batch that does not divide is refused', async () => {
    nodes = await startJobMesh(2)
    const [submitter] = nodes
    const bytes = buildCalibrationModel({ batch: 2, width: 16, layers: 2 })
    const model = await submitter.addModel(bytes)
    const values = Float32Array.from({ length: 6 * 16 }, (_, i) => Math.cos(i))
    const x = { dtype: 'float32' as const, dims: [6, 16], data: new Uint8Array(values.buffer) }
    const result = await submitter.submitJob(model.cid, { input: x }).run()
    expect(result.progress.total).toBe(3)
    // reference: the model can only run 2 rows at a time, so run each pair locally and join
    const parts = []
    for (let start = 0; start < 6; start += 2) {
      parts.push((await localRun(bytes, { input: { ...x, dims: [2, 16], data: x.data.subarray(start * 64, (start + 2) * 64) } })).output)
    }
    expect(Buffer.from(result.outputs.output.data).equals(Buffer.concat(parts.map(p => p.data)))).toBe(true)
    expect(() => submitter.submitJob(model.cid, { input: { ...x, dims: [5, 16], data: x.data.subarray(0, 5 * 64) } })).toThrow(/fixed at 2 rows; 5 rows cannot be cut/)
  })
})

describe('the submitting node itself', () => {
  it('by default the submitter takes a share beside its peers; alone it runs every piece; with peers only it runs none while a peer can', async () => {
    const alone = await startNode([], { peersOnly: false })
    nodes = [alone]
    const model = await alone.addModel(detection)
    const x = images(4, 64, 64)
    const solo = await alone.submitJob(model.cid, { x }, { rowsPerPiece: 1 }).run()
    expect(solo.progress.perPeer).toEqual({ [alone.peerId]: 4 })
    const reference = await localRun(detection, { x })
    const [name] = Object.keys(reference)
    expect(sameBytes(solo.outputs[name], reference[name])).toBe(true)

    const worker = await startNode([alone.addrs[0]])
    nodes.push(worker)
    await waitFor(() => alone.peers().length === 1, 'the worker to be seen')
    const fallback = await alone.submitJob(model.cid, { x: images(8, 64, 64) }, { rowsPerPiece: 1, local: 'fallback' }).run()
    expect(fallback.progress.perPeer[alone.peerId]).toBeUndefined()
    expect(fallback.progress.perPeer[worker.peerId]).toBe(8)
    const shared = await alone.submitJob(model.cid, { x: images(8, 64, 64) }, { rowsPerPiece: 1, endgame: false }).run()
    expect(shared.progress.perPeer[alone.peerId]).toBeGreaterThan(0)
    expect(shared.progress.perPeer[worker.peerId]).toBeGreaterThan(0)
    expect(sameBytes(shared.outputs[name], (await localRun(detection, { x: images(8, 64, 64) }))[name])).toBe(true)
  })
})

describe('models', () => {
  it('a worker without the model fetches it through the swarm from the submitter; a block that does not match its CID is refused', async () => {
    nodes = await startJobMesh(1)
    const [submitter, worker] = nodes
    const model = await submitter.addModel(detection)
    expect(worker.models.has(model.cid)).toBe(false)
    const request = { jobId: 'j', pieceId: 0, modelCid: model.cid, inputs: { x: images(1, 64, 64) }, deadlineMs: 20_000, maxResponseBytes: 1 << 24 }
    submitter.swarm.corruptServedBlocks = true
    const refused = await runRemotePiece(dial(submitter), peerIdFromString(worker.peerId), request, AbortSignal.timeout(20_000)).catch(err => err)
    expect(refused).toBeInstanceOf(PieceError)
    expect(refused.code).toBe(InferResponse.Code.MODEL_UNAVAILABLE)
    expect(refused.message).toContain(`${submitter.peerId}: sent a block that does not match its CID`)
    expect(worker.models.has(model.cid)).toBe(false)
    submitter.swarm.corruptServedBlocks = false
    // the submitter lost standing with the worker, but not so much that it is never asked again
    expect(worker.swarm.standing.excluded(submitter.peerId)).toBe(false)
    const ok = await runRemotePiece(dial(submitter), peerIdFromString(worker.peerId), request, AbortSignal.timeout(20_000))
    expect(ok.outputs['sigmoid_0.tmp_0'].dims).toEqual([1, 1, 64, 64])
    expect(worker.models.has(model.cid)).toBe(true)
  })
})

describe('bad input gets a clear error, and workers go on serving', () => {
  it('wrong dtype, wrong shape, batch sizes that differ, no such model', async () => {
    nodes = await startJobMesh(1)
    const [submitter] = nodes
    const model = await submitter.addModel(detection)
    const x = images(2, 64, 64)
    expect(() => submitter.submitJob(model.cid, { x: { ...x, dtype: 'int32' } })).toThrow(/input "x" is int32, the model wants float32/)
    expect(() => submitter.submitJob(model.cid, { x: { dtype: 'float32', dims: [2, 64, 64], data: new Uint8Array(2 * 64 * 64 * 4) } })).toThrow(/the model wants rank 4/)
    expect(() => submitter.submitJob(model.cid, { x: { dtype: 'float32', dims: [2, 4, 64, 64], data: new Uint8Array(2 * 4 * 64 * 64 * 4) } })).toThrow(/dimension 1 differs/)
    expect(() => submitter.submitJob(model.cid, { x, y: images(3, 64, 64) })).toThrow(/disagree on the batch size/)
    expect(() => submitter.submitJob('bafkreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', { x })).toThrow(/not in this node's store/)
    await expect(submitter.addModel(new TextEncoder().encode('not a model at all'))).rejects.toThrow(/not an ONNX model/)
    // and a good job still runs
    const result = await submitter.submitJob(model.cid, { x }, { rowsPerPiece: 1 }).run()
    expect(result.progress.done).toBe(2)
  })

  it('a piece over the worker\'s size limit is refused with BAD_INPUT, and the worker serves the next one', async () => {
    const submitter = await startNode()
    const worker = await startNode([submitter.addrs[0]], { maxRequestBytes: 100_000 })
    nodes = [submitter, worker]
    await waitFor(() => submitter.peers().length === 1, 'the worker to be seen')
    const model = await submitter.addModel(detection)
    const send = async (rows: number): Promise<any> => await sendPiece(submitter, worker, model.cid, rows)
    const big = await send(4) as PieceError // 4 x 3 x 64 x 64 x 4 bytes = 196608 > 100000
    expect(big).toBeInstanceOf(PieceError)
    expect(big.code).toBe(InferResponse.Code.BAD_INPUT)
    expect(big.message).toMatch(/over the limit of 100000/)
    const small = await send(1) as any
    expect(small.outputs['sigmoid_0.tmp_0'].dims).toEqual([1, 1, 64, 64])
    // the worker's metrics count both answers, and only the piece it ran
    const metrics = await worker.metrics.text()
    expect(metricValue(metrics, 'shoal_worker_pieces_total{outcome="bad_input"}')).toBe(1)
    expect(metricValue(metrics, 'shoal_worker_pieces_total{outcome="ok"}')).toBe(1)
    expect(metricValue(metrics, 'shoal_worker_rows_total')).toBe(1)
    expect(metricValue(metrics, 'shoal_worker_tensor_bytes_total{direction="in",channel="stream"}')).toBe(3 * 64 * 64 * 4)
    expect(metricValue(metrics, 'shoal_worker_tensor_bytes_total{direction="out",channel="stream"}')).toBe(64 * 64 * 4)
    expect(metricValue(metrics, 'shoal_worker_compute_seconds_total{provider="cpu"}')).toBeGreaterThan(0)
    expect(metricValue(metrics, 'shoal_worker_piece_duration_seconds_count')).toBe(1)
  })

  it('an endless Loop is killed at its deadline and a memory bomb stopped at the memory limit; the worker serves the next piece', async () => {
    const submitter = await startNode()
    const worker = await startNode([submitter.addrs[0]], { maxMemoryBytes: 1024 ** 3 })
    nodes = [submitter, worker]
    const honest = await worker.addModel(withDynamicBatch(buildCalibrationModel({ batch: 1, width: 16, layers: 2 })))
    const loop = await worker.addModel(endlessLoop())
    const bomb = await worker.addModel(memoryBomb())
    const piece = async (cid: string, deadlineMs = 20_000): Promise<any> => await runRemotePiece(dial(submitter), peerIdFromString(worker.peerId), {
      jobId: 'j', pieceId: 0, modelCid: cid, inputs: { input: { dtype: 'float32', dims: [2, 16], data: new Uint8Array(2 * 16 * 4) } }, deadlineMs, maxResponseBytes: 1 << 20
    }, AbortSignal.timeout(30_000)).catch(err => err)
    const stopped = await piece(loop.cid, 1500)
    expect(stopped).toBeInstanceOf(PieceError)
    expect(stopped.code).toBe(InferResponse.Code.DEADLINE_EXCEEDED)
    expect((await piece(honest.cid)).outputs.output.dims).toEqual([2, 16])
    // the same model again: refused at once, no process spent on it
    const refused = await piece(loop.cid)
    expect(refused.code).toBe(InferResponse.Code.MODEL_UNAVAILABLE)
    expect(refused.message).toMatch(/outlived its deadline and was killed here; it is refused for \d+ s more/)
    // 3 GiB of zeros asked by a 200-byte model, on a node allowed 1 GiB
    const rssBefore = process.memoryUsage.rss()
    const exploded = await piece(bomb.cid)
    expect(exploded).toBeInstanceOf(PieceError)
    expect(exploded.message).toMatch(/Failed to allocate memory/)
    expect((await piece(bomb.cid)).code).toBe(InferResponse.Code.MODEL_UNAVAILABLE)
    expect(process.memoryUsage.rss() - rssBefore).toBeLessThan(512 * 1024 ** 2)
    expect((await piece(honest.cid)).outputs.output.dims).toEqual([2, 16])
  })

  it('a model whose decode would take the heap is refused by its inspecting process; the node goes on', async () => {
    const node = await startNode([], { maxMemoryBytes: 128 * 1024 ** 2 })
    nodes = [node]
    // two million empty value infos: 4 MB, past every count made before decoding, ~600 MB decoded
    const rssBefore = process.memoryUsage.rss()
    const refused = await node.addModel(valueInfoBomb(2_000_000)).catch(err => err)
    expect(refused.name).toBe('ModelRejectedError')
    expect(refused.message).toMatch(/inspecting the model ended its process/)
    expect(process.memoryUsage.rss() - rssBefore).toBeLessThan(200 * 1024 ** 2)
    expect(node.models.list()).toEqual([])
    const honest = await node.addModel(withDynamicBatch(buildCalibrationModel({ batch: 1, width: 16, layers: 1 })))
    expect(honest.inputs.map(i => i.name)).toEqual(['input'])
  })

  it('pieces naming models nobody has start at most 2 fetches per peer; the next is answered OVERLOADED at once', async () => {
    const submitter = await startNode()
    // slots for all three pieces: only the fetch limit may turn one away
    const worker = await startNode([submitter.addrs[0]], { maxConcurrency: 4 })
    nodes = [submitter, worker]
    const randomCid = async (i: number): Promise<string> => CID.createV1(raw.code, await sha256.digest(new TextEncoder().encode(`nobody has model ${i} ${Math.random()}`))).toString()
    const cids = await Promise.all([0, 1, 2].map(randomCid))
    const answers = await Promise.all(cids.map(async cid => await sendPiece(submitter, worker, cid, 1)))
    // whichever arrived third was turned away; the other two were fetches that found no provider
    expect(answers.map(a => a.code).sort()).toEqual([InferResponse.Code.MODEL_UNAVAILABLE, InferResponse.Code.MODEL_UNAVAILABLE, InferResponse.Code.OVERLOADED])
    expect(answers.find(a => a.code === InferResponse.Code.OVERLOADED).message).toMatch(/no fetch can start now: already fetching 2 models for this peer/)
  })

  it('a client that sends a header and then nothing (slowloris) is dropped; the worker serves the next piece', async () => {
    const submitter = await startNode()
    const worker = await startNode([submitter.addrs[0]], {}, { inputIdleMs: 300 })
    nodes = [submitter, worker]
    await waitFor(() => submitter.peers().length === 1, 'the worker to be seen')
    const model = await submitter.addModel(detection)
    await sendPiece(submitter, worker, model.cid, 1) // the worker fetches the model
    // two streams pin both slots: a valid header announcing 4 images, a deadline of 49 days, then silence
    const stalls = await Promise.all([0, 1].map(async () => {
      const stream = await submitter.libp2p.dialProtocol(peerIdFromString(worker.peerId), INFER_PROTOCOL)
      const lp = lpStream(stream, { maxDataLength: 1 << 20 })
      await lp.write(InferRequest.encode({ jobId: 'slow', pieceId: 0, modelCid: model.cid, inputs: [{ name: 'x', dtype: 'float32', dims: [4n, 3n, 64n, 64n], byteLength: 4n * 3n * 64n * 64n * 4n }], deadlineMs: 0xffffffff }))
      return lp
    }))
    const answers = await Promise.all(stalls.map(async lp => InferResponse.decode((await lp.read({ signal: AbortSignal.timeout(10_000) })).subarray())))
    for (const answer of answers) {
      expect(answer.code).toBe(InferResponse.Code.DEADLINE_EXCEEDED)
      expect(answer.message).toMatch(/inputs stopped arriving \(nothing for 300 ms\)/)
    }
    const ok = await sendPiece(submitter, worker, model.cid, 1)
    expect(ok.outputs['sigmoid_0.tmp_0'].dims).toEqual([1, 1, 64, 64])
  })

  it('one peer holding every slot does not get the next free one while another waits: it goes to the peer turned away', async () => {
    const honest = await startNode()
    const attacker = await startNode([honest.addrs[0]])
    const worker = await startNode([honest.addrs[0]], { maxConcurrency: 2 }, { inputIdleMs: 8000 })
    nodes = [honest, attacker, worker]
    await waitFor(() => honest.peers().length === 2 && attacker.peers().length === 2, 'everyone to be seen')
    const model = await honest.addModel(detection)
    expect((await sendPiece(honest, worker, model.cid, 1)).outputs).toBeDefined() // the worker fetches the model
    const x = images(1, 64, 64)
    // the attacker takes both slots: two valid headers, their inputs held back
    const held = await Promise.all([0, 1].map(async pieceId => {
      const stream = await attacker.libp2p.dialProtocol(peerIdFromString(worker.peerId), INFER_PROTOCOL)
      const lp = lpStream(stream, { maxDataLength: 1 << 24 })
      await lp.write(InferRequest.encode({ jobId: 'greedy', pieceId, modelCid: model.cid, inputs: [{ name: 'x', dtype: 'float32', dims: x.dims.map(BigInt), byteLength: BigInt(x.data.byteLength) }], deadlineMs: 20_000 }))
      return lp
    }))
    const inference = worker.libp2p.services.inference
    await waitFor(() => inference.running === 2, 'the attacker to hold both slots')
    const turnedAway = await sendPiece(honest, worker, model.cid, 1)
    expect(turnedAway).toBeInstanceOf(PieceError)
    expect(turnedAway.message).toMatch(/running 2 pieces, the most this node takes at once/)
    // one of the attacker's pieces finishes, and it asks at once for the slot it gave back
    await held[0].write(x.data)
    expect(InferResponse.decode((await held[0].read({ signal: AbortSignal.timeout(10_000) })).subarray()).code).toBe(InferResponse.Code.OK)
    await waitFor(() => inference.running === 1, 'the slot to be given back')
    const greedy = await sendPiece(attacker, worker, model.cid, 1)
    expect(greedy).toBeInstanceOf(PieceError)
    expect(greedy.code).toBe(InferResponse.Code.OVERLOADED)
    expect(greedy.message).toMatch(/the free slot is kept for a peer turned away before you; try again shortly/)
    // the peer turned away gets it
    const served = await sendPiece(honest, worker, model.cid, 1)
    expect(served.outputs['sigmoid_0.tmp_0'].dims).toEqual([1, 1, 64, 64])
  })

  it('a worker keeps to its memory limit: no piece while it uses too much, none bigger than the limit', async () => {
    let inUse = 0
    const submitter = await startNode()
    const worker = await startNode([submitter.addrs[0]], { maxMemoryBytes: 100_000 }, { memoryInUse: () => inUse })
    nodes = [submitter, worker]
    await waitFor(() => submitter.peers().length === 1, 'the worker to be seen')
    const model = await submitter.addModel(detection)
    // inputs of 196608 bytes can never fit in 100000: refused as bad input, as over --max-request-size
    const big = await sendPiece(submitter, worker, model.cid, 4)
    expect(big).toBeInstanceOf(PieceError)
    expect(big.code).toBe(InferResponse.Code.BAD_INPUT)
    expect(big.message).toMatch(/196608 bytes of inputs are over this node's memory limit of 100000 bytes \(--max-memory\)/)
    // 49152 bytes fit, but not next to 60000 in use: busy for now (the submitter tries elsewhere, costing no attempt)
    inUse = 60_000
    const busy = await sendPiece(submitter, worker, model.cid, 1)
    expect(busy).toBeInstanceOf(PieceError)
    expect(busy.code).toBe(InferResponse.Code.OVERLOADED)
    expect(busy.message).toMatch(/using 60000 bytes of memory.*over its limit of 100000 bytes \(--max-memory\)/)
    // once the memory is free again, the same piece runs
    inUse = 0
    const ok = await sendPiece(submitter, worker, model.cid, 1)
    expect(ok.outputs['sigmoid_0.tmp_0'].dims).toEqual([1, 1, 64, 64])
  })

  it('malformed requests do not disturb the worker', async () => {
    nodes = await startJobMesh(1)
    const [submitter, worker] = nodes
    const stream = await submitter.libp2p.dialProtocol(worker.libp2p.peerId, INFER_PROTOCOL)
    stream.send(Uint8Array.from([5, 1, 2, 3, 4, 5])) // a frame that is not an InferRequest
    const chunks: Uint8Array[] = []
    for await (const chunk of stream) chunks.push(chunk.subarray())
    const answer = InferResponse.decode(Buffer.concat(chunks).subarray(1))
    expect(answer.code).toBe(InferResponse.Code.BAD_INPUT)
    const model = await submitter.addModel(detection)
    const result = await submitter.submitJob(model.cid, { x: images(2, 64, 64) }, { rowsPerPiece: 1 }).run()
    expect(result.progress.perPeer[worker.peerId]).toBe(2)
  })
})
