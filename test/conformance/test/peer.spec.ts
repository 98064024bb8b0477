import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readdirSync, readFileSync } from 'node:fs'
import type { ShoalNode } from '@shoal/node'
import { buildCalibrationModel } from '@shoal/runtime/calibration-model'
import { sliceRows, syntheticBatch } from '@shoal/runtime'
import type { Tensor } from '@shoal/runtime'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { formatNpy } from '@shoal/runtime'
import { localRun, runCli, sameBytes, spawnNode, startNode, stopAll, tempDir, TEST_AD_INTERVAL_MS, waitFor, withDynamicBatch } from '../../integration/test/helpers.js'
import { CAPACITY_TOPIC, IndependentPeer, rawModelCid } from '../peer/independent-peer.js'
import type { IndependentPeerInit } from '../peer/independent-peer.js'
import onnxProto from 'onnx-proto'

const { onnx } = onnxProto

/**
 * A peer written from docs/protocol.md and the `.proto` files alone (../peer, protobufjs with its
 * default packed encoding, nothing from @shoal/*) works with Shoal nodes in both roles, and its
 * answers are bit-identical to a local run.
 */

// small enough to be one raw block (section 7.1), with a free batch axis
const MODEL = withDynamicBatch(buildCalibrationModel({ batch: 1, width: 64, layers: 2 }))
const ROWS = 40
const BATCH: Tensor = syntheticBatch([ROWS, 64], 7)

async function withPeer (init: ConstructorParameters<typeof IndependentPeer>[0], node: ShoalNode): Promise<IndependentPeer> {
  const peer = new IndependentPeer(init)
  await peer.start()
  await peer.dial(node.addrs[0])
  return peer
}

describe('a peer written from the spec alone', () => {
  it('uses public packages and the .proto files only, nothing of Shoal\'s code', () => {
    const dir = new URL('../peer/', import.meta.url)
    for (const file of readdirSync(dir)) {
      const imports = [...readFileSync(new URL(file, dir), 'utf8').matchAll(/from '([^']+)'/g)].map(m => m[1])
      expect(imports.length).toBeGreaterThan(0)
      for (const source of imports) expect(source, `${file} imports ${source}`).toMatch(/^(node:|\.\/|@libp2p\/|@chainsafe\/|@multiformats\/|libp2p$|multiformats\/|onnxruntime-node$|protobufjs$)/)
    }
  })

  const nodes: ShoalNode[] = []
  const peers: IndependentPeer[] = []
  let reference: Record<string, Tensor>

  beforeAll(async () => {
    reference = await localRun(MODEL, { input: BATCH })
  })

  afterAll(async () => {
    await Promise.all(peers.map(async p => { await p.stop().catch(() => {}) }))
    await stopAll(nodes)
  })

  it('takes every piece of a Shoal job, with no retries, and the outputs equal a local run bit for bit', async () => {
    const submitter = await startNode()
    nodes.push(submitter)
    const peer = await withPeer({ models: [MODEL], slots: 2 }, submitter)
    peers.push(peer)
    const cid = (await submitter.addModel(MODEL)).cid
    expect(cid).toBe(await rawModelCid(MODEL))
    await waitFor(() => submitter.peers().some(p => p.peerId === peer.peerId.toString() && p.models.includes(cid)), 'the outside peer\'s ad in the submitter\'s table')

    const job = submitter.submitJob(cid, { input: BATCH }, { rowsPerPiece: 8 })
    const result = await job.run()
    const p = result.progress
    expect(p.total).toBe(5)
    expect(p.perPeer).toEqual({ [peer.peerId.toString()]: 5 })
    expect(p.retries).toBe(0)
    expect(p.failures).toEqual([])
    expect(peer.answered.map(a => a.code)).toEqual(['OK', 'OK', 'OK', 'OK', 'OK'])
    expect(Object.keys(result.outputs)).toEqual(Object.keys(reference))
    for (const [name, t] of Object.entries(reference)) expect(sameBytes(result.outputs[name], t)).toBe(true)
  })

  it('gets no pieces while its ad says version 0.1.0, a Shoal version that cannot read packed dims', async () => {
    const submitter = nodes[0]
    const old = await withPeer({ models: [MODEL], version: '0.1.0' }, submitter)
    peers.push(old)
    await waitFor(() => submitter.peers().some(p => p.peerId === old.peerId.toString()), 'the old peer\'s ad in the table')
    const result = await submitter.submitJob(await rawModelCid(MODEL), { input: BATCH }, { rowsPerPiece: 20 }).run()
    expect(old.answered).toEqual([])
    expect(result.progress.perPeer[old.peerId.toString()]).toBeUndefined()
    expect(result.progress.done).toBe(2)
    await old.stop()
    await waitFor(() => !submitter.peers().some(p => p.peerId === old.peerId.toString()), 'the old peer to leave')
  })

  it('submits pieces to a Shoal worker, packed or unpacked, and gets what a local run gives', async () => {
    const worker = await startNode()
    nodes.push(worker)
    const cid = (await worker.addModel(MODEL)).cid
    for (const packed of [true, false]) {
      const peer = await withPeer({ packed }, worker)
      peers.push(peer)
      const rows = sliceRows(BATCH, 8, 5)
      const answer = await peer.infer(worker.peerId, cid, { input: rows }, { pieceId: 3 })
      expect(answer.code).toBe('OK')
      const expected = await localRun(MODEL, { input: rows })
      for (const [name, t] of Object.entries(expected)) expect(sameBytes(answer.outputs[name] as Tensor, t)).toBe(true)
    }
  })

  it('is told why a bad request is refused, and the worker serves the next one', async () => {
    const worker = nodes[1]
    const peer = peers[peers.length - 1]
    const cid = await rawModelCid(MODEL)
    const rows = sliceRows(BATCH, 0, 2)
    // the header announces a byte length that does not match the shape
    const bad = await peer.infer(worker.peerId, cid, { input: { ...rows, dims: [3, 64] } })
    expect(bad.code).toBe('BAD_INPUT')
    expect(bad.message).toMatch(/shape \[3, 64\] of float32 is 768 bytes, the message says 512/)
    // the same CID in another multibase: models are known by their canonical string only
    const upper = await peer.infer(worker.peerId, cid.toUpperCase(), { input: rows })
    expect(upper.code).toBe('BAD_INPUT')
    expect(upper.message).toMatch(/is not a model CID in canonical form/)
    const good = await peer.infer(worker.peerId, cid, { input: rows })
    expect(good.code).toBe('OK')
  })

  it('sees in a Shoal worker\'s ad the pieces waiting behind the one computing (queue_length)', async () => {
    // one inference thread, two slots: the second of two pieces waits for the thread
    const worker = await startNode([], { maxConcurrency: 2 })
    nodes.push(worker)
    const heavy = withDynamicBatch(buildCalibrationModel({ batch: 1, width: 512, layers: 4 }))
    const cid = (await worker.addModel(heavy)).cid
    const peer = await withPeer({}, worker)
    peers.push(peer)
    const seen: number[] = []
    peer.libp2p.services.pubsub.addEventListener('message', (event) => {
      if (event.detail.topic !== CAPACITY_TOPIC) return
      const ad = peer.wire.decode('CapacityAd', event.detail.data)
      if (ad.peerId.length > 0 && Buffer.from(ad.peerId).equals(worker.libp2p.peerId.toMultihash().bytes)) seen.push(ad.queueLength)
    })
    await waitFor(() => seen.length > 0, 'an ad from the worker')
    const input = syntheticBatch([2048, 512], 3)
    const answers = await Promise.all([0, 1].map(async i => await peer.infer(worker.peerId, cid, { input }, { pieceId: i })))
    expect(answers.map(a => a.code)).toEqual(['OK', 'OK'])
    // both count while their inputs arrive; the second still counts while the first computes
    expect(Math.max(...seen)).toBeGreaterThanOrEqual(1)
    expect(Math.max(...seen)).toBeLessThanOrEqual(2)
    await waitFor(() => seen[seen.length - 1] === 0, 'an ad with an empty queue after the pieces')
  })

  it('has each refused answer listed with its peer and reason, and the job still finishes', async () => {
    const submitter = nodes[0]
    await peers[0].stop()
    const cid = await rawModelCid(MODEL)
    // faulty implementations: an answer without the model's output; one whose header's shape does not match its bytes
    // a worker that refuses every piece as BAD_INPUT, and one answering twice the rows: that peer's failures, not the job's
    const faults: Array<[Partial<IndependentPeerInit>, RegExp]> = [
      [{ tamper: answer => { answer.outputs.splice(0) } }, /^BAD_ANSWER: the answer lacks output "output"$/],
      [{ tamper: answer => { answer.outputs[0].dims = [answer.outputs[0].dims[0], 65] } }, /^BAD_ANSWER: infer response tensor "output": shape \[20, 65\] of float32 is 5200 bytes, the message says 5120$/],
      [{ refuseWith: 'BAD_INPUT' }, /^BAD_INPUT: refused by a test hook$/],
      [{ tamper: answer => { const o = answer.outputs[0]; o.dims = [o.dims[0] * 2, ...o.dims.slice(1)]; o.data = new Uint8Array(o.data.byteLength * 2) } }, /^BAD_ANSWER: output "output" has shape \[40, 64\] for a piece of 20 rows$/],
      // the same bytes in another shape: against the model's declared [batch, 64]
      [{ tamper: answer => { const o = answer.outputs[0]; o.dims = [o.dims[0], 2, 32] } }, /^BAD_ANSWER: output "output" has shape \[20, 2, 32\], the model's is \[batch, 64\]$/]
    ]
    for (const [fault, reason] of faults) {
      const faulty = await withPeer({ models: [MODEL], ...fault }, submitter)
      peers.push(faulty)
      await waitFor(() => submitter.peers().map(p => p.peerId).join() === faulty.peerId.toString(), 'the faulty peer alone in the table')
      const job = submitter.submitJob(cid, { input: BATCH }, { rowsPerPiece: 20, maxAttempts: 10 })
      const result = await job.run()
      for (const [name, t] of Object.entries(reference)) expect(sameBytes(result.outputs[name], t)).toBe(true)
      const failures = result.progress.failures
      expect(failures.length).toBeGreaterThan(0)
      expect(result.progress.failedAttempts).toBe(failures.length)
      for (const f of failures) {
        expect(f.peerId).toBe(faulty.peerId.toString())
        expect([0, 1]).toContain(f.piece)
        expect(f.reason).toMatch(reason)
      }
      await faulty.stop()
      await waitFor(() => submitter.peers().length === 0, 'the faulty peer to leave the table')
    }
    // a job sized by the submitter's own run of one row knows each output's shape from that run
    const reshaping = await withPeer({ models: [MODEL], tamper: answer => { const o = answer.outputs[0]; o.dims = [o.dims[0], 1, 64] } }, submitter)
    peers.push(reshaping)
    await waitFor(() => submitter.peers().map(p => p.peerId).join() === reshaping.peerId.toString(), 'the reshaping peer alone in the table')
    const probed = await submitter.submitJob(cid, { input: BATCH }, { maxAttempts: 10 }).run()
    for (const [name, t] of Object.entries(reference)) expect(sameBytes(probed.outputs[name], t)).toBe(true)
    expect(probed.progress.failures.length).toBeGreaterThan(0)
    for (const f of probed.progress.failures) expect(f.reason).toMatch(/^BAD_ANSWER: output "output" has shape \[(\d+), 1, 64\] where \[\1, 64\] was expected$/)
  })

  it('in a job of chosen piece sizes, an output dimension the model leaves open is known from this node\'s own run: a peer that changes it is refused', async () => {
    const submitter = nodes[0]
    for (const p of peers) await p.stop().catch(() => {})
    await waitFor(() => submitter.peers().length === 0, 'the earlier peers to leave the table')
    // y = x over [batch, width], both left open by the model
    const open = onnx.ModelProto.encode({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        name: 'open',
        node: [{ opType: 'Identity', input: ['input'], output: ['output'] }],
        input: [{ name: 'input', type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimParam: 'batch' }, { dimParam: 'width' }] } } } }],
        output: [{ name: 'output', type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: [{ dimParam: 'batch' }, { dimParam: 'width' }] } } } }]
      }
    }).finish()
    const cid = (await submitter.addModel(open)).cid
    // one column more than it was given, with bytes to match: of the model's shape, but not the answer
    const widening = await withPeer({ models: [open], tamper: answer => { const o = answer.outputs[0]; o.dims = [o.dims[0], 65]; o.data = new Uint8Array(o.dims[0] * 65 * 4) } }, submitter)
    peers.push(widening)
    await waitFor(() => submitter.peers().map(p => p.peerId).join() === widening.peerId.toString(), 'the widening peer alone in the table')
    const result = await submitter.submitJob(cid, { input: BATCH }, { rowsPerPiece: 20, maxAttempts: 10 }).run()
    expect(sameBytes(result.outputs.output, BATCH)).toBe(true)
    expect(result.progress.failures.length).toBeGreaterThan(0)
    for (const f of result.progress.failures) {
      expect(f.peerId).toBe(widening.peerId.toString())
      expect(f.reason).toMatch(/^BAD_ANSWER: output "output" has shape \[20, 65\] where \[20, 64\] was expected$/)
    }
    await widening.stop()
    await waitFor(() => submitter.peers().length === 0, 'the widening peer to leave the table')
  })
  it('serves its models over /shoal/block/1.0.0: a Shoal worker without the model fetches it from this submitter and runs the piece', async () => {
    // each step within its own time, so that a stall (seen once in a while in full runs, never alone) says where
    const step = async <T>(what: string | (() => string), work: Promise<T>, ms: number): Promise<T> => await Promise.race([work, new Promise<never>((_resolve, reject) => { setTimeout(() => reject(new Error(`${typeof what === 'string' ? what : what()}: not done within ${ms} ms`)), ms).unref() })])
    const worker = await step('starting the worker', startNode(), 10_000)
    nodes.push(worker)
    const peer = await step('starting the outside peer and dialling the worker', withPeer({ models: [MODEL] }, worker), 10_000)
    peers.push(peer)
    const cid = await rawModelCid(MODEL)
    // a block it does not hold is answered DONT_HAVE: for a root, the provider "does not have the model"
    const other = await rawModelCid(buildCalibrationModel({ batch: 1, width: 8, layers: 1 }))
    await expect(step('the fetch of a model the peer lacks', worker.fetchModel(other, { only: [peer.peerId.toString()] }), 10_000)).rejects.toThrow(/does not have the model/)
    const rows = sliceRows(BATCH, 0, 6)
    // a deadline inside the test's: should the fetch stall, the worker's answer says why
    const answer = await step(() => `the piece (blocks served: ${peer.blocksServed}, block streams: ${peer.blockStreams})`, peer.infer(worker.peerId, cid, { input: rows }, { pieceId: 1, deadlineMs: 20_000 }), 25_000)
    expect(answer.code, `${answer.message} (blocks served: ${peer.blocksServed}, block streams: ${peer.blockStreams})`).toBe('OK')
    const expected = await localRun(MODEL, { input: rows })
    for (const [name, t] of Object.entries(expected)) expect(sameBytes(answer.outputs[name] as Tensor, t)).toBe(true)
    expect(peer.blocksServed).toBe(1)
    expect(worker.models.list().map(m => m.cid)).toContain(cid)
  }, 60_000)
})

describe('refused answers, seen by the user of a Shoal node', () => {
  it('shoal run --json lists each failed attempt with its peer and reason, and the node logs it under shoal:job', async () => {
    const dir = await tempDir('shoal-conformance-')
    const node = await spawnNode(['--data-dir', dir, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--ad-interval', String(TEST_AD_INTERVAL_MS), '--no-gpu', '--cpu-threads', '1'], 30_000, { DEBUG: 'shoal:job' })
    const faulty = new IndependentPeer({ models: [MODEL], tamper: answer => { answer.outputs[0].dtype = 'float64'; answer.outputs[0].data = new Uint8Array(answer.outputs[0].data.byteLength * 2) } })
    try {
      await faulty.start()
      await faulty.dial(node.addrs[0])
      await waitFor(async () => JSON.parse((await runCli(['peers', '--json', '--data-dir', dir])).stdout).length === 1, 'the node to list the outside peer', 20_000)
      const work = await tempDir('shoal-conformance-files-')
      await writeFile(join(work, 'model.onnx'), MODEL)
      await writeFile(join(work, 'x.npy'), formatNpy(BATCH))
      const result = await runCli(['run', join(work, 'model.onnx'), '--input', `input=${join(work, 'x.npy')}`, '--output', join(work, 'out'), '--json', '--rows-per-piece', '20', '--data-dir', dir])
      expect(result.code).toBe(0)
      const summary = JSON.parse(result.stdout)
      expect(summary.failedAttempts).toBeGreaterThan(0)
      expect(summary.failures).toHaveLength(summary.failedAttempts)
      for (const f of summary.failures) {
        expect(f).toEqual({ peerId: faulty.peerId.toString(), piece: expect.any(Number), reason: 'BAD_ANSWER: output "output" is float64, the model\'s is float32' })
      }
      await waitFor(() => /shoal:job .*piece \d+ on 12D3\w+ failed - BAD_ANSWER: output "output" is float64/.test(node.stderr()), 'the failure in the node\'s debug log')
      const text = await runCli(['run', join(work, 'model.onnx'), '--input', `input=${join(work, 'x.npy')}`, '--output', join(work, 'out2'), '--rows-per-piece', '20', '--data-dir', dir])
      expect(text.stdout).toMatch(new RegExp(`failed attempts?:\n    \\d+ x on ${faulty.peerId.toString()}: BAD_ANSWER: output "output" is float64`))
    } finally {
      await faulty.stop().catch(() => {})
      node.proc.kill('SIGKILL')
    }
  })
})
