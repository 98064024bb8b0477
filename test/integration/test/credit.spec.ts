import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import { resolveConfig, ShoalNode } from '@shoal/node'
import { Receipt, RECEIPT_PROTOCOL, ReceiptAck, ReceiptBatch, receiptPayload } from '@shoal/protocol'
import { buildCalibrationModel } from '@shoal/runtime/calibration-model'
import type { PieceRuntime, Tensor } from '@shoal/runtime'
import { afterEach, describe, expect, it } from 'vitest'
import { delayedRuntime, FIXED_CALIBRATION, startNode, stopAll, tempDir, TEST_AD_INTERVAL_MS, waitFor, withDynamicBatch } from './helpers.js'

let nodes: ShoalNode[] = []
afterEach(async () => {
  await stopAll(nodes)
  nodes = []
})

const model = withDynamicBatch(buildCalibrationModel({ batch: 1, width: 64, layers: 2 }))
const rows = (n: number, seed = 1): Record<string, Tensor> => ({ input: { dtype: 'float32', dims: [n, 64], data: new Uint8Array(Float32Array.from({ length: n * 64 }, (_, i) => Math.sin(i + seed)).buffer) } })


async function node (bootstrap: string[], flags: Record<string, unknown> = {}, init: { runtime?: PieceRuntime, dataDir?: string } = {}): Promise<ShoalNode> {
  const config = await resolveConfig({ dataDir: init.dataDir ?? await tempDir(), flags: { listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, mdns: false, adIntervalMs: TEST_AD_INTERVAL_MS, cpuThreads: 1, peersOnly: true, ...flags }, env: {} })
  const n = new ShoalNode({ config, calibration: FIXED_CALIBRATION, api: false, meshKeeperIntervalMs: 500, noProviderTimeoutMs: 3000, ...(init.runtime != null ? { runtime: init.runtime } : {}) })
  await n.start()
  return n
}

describe('contribution credit: receipts for work done (docs/trust.md, "Credit")', () => {
  it('a worker gets a signed receipt for each piece its submitter kept, and keeps them across a restart; the submitter credits it', async () => {
    const submitter = await startNode()
    const worker = await startNode([submitter.addrs[0]])
    nodes = [submitter, worker]
    const { cid } = await submitter.addModel(model)
    await worker.addModel(model)
    await waitFor(() => submitter.peers().some(p => p.models.includes(cid)), 'the worker\'s ad')
    const result = await submitter.submitJob(cid, rows(16), { rowsPerPiece: 4 }).run()
    expect(result.progress.perPeer[worker.peerId]).toBe(4)
    await waitFor(() => worker.status().credit.earned.receipts === 4, 'the worker\'s receipts')
    const earned = worker.status().credit.earned
    expect(earned).toMatchObject({ receipts: 4, rows: 16, submitters: 1 })
    expect(earned.work).toBeGreaterThanOrEqual(4)
    const given = submitter.status().credit
    expect(given.issued).toEqual({ receipts: 4, work: earned.work })
    expect(given.peers.map(p => p.peerId)).toEqual([worker.peerId])
    // (decayed since: by a 7-day half-life, about a millionth a second)
    expect(given.peers[0].direct / earned.work).toBeCloseTo(1, 5)
    // the receipts are the submitter's signatures over what it kept, each verified (newcomers are checked)
    const dataDir = worker.config.dataDir
    await worker.stop()
    const saved = JSON.parse(await readFile(join(dataDir, 'receipts.json'), 'utf8'))
    expect(saved).toHaveLength(4)
    const key = peerIdFromString(submitter.peerId).publicKey!
    for (const s of saved) {
      const bytes = Buffer.from(s.receipt, 'base64')
      expect(await key.verify(receiptPayload(bytes), Buffer.from(s.signature, 'base64'))).toBe(true)
      expect(Receipt.decode(bytes)).toMatchObject({ jobId: result.jobId, rows: 4, verified: Receipt.Verification.SPOT })
    }
    const again = await node([submitter.addrs[0]], {}, { dataDir })
    nodes.push(again)
    expect(again.peerId).toBe(worker.peerId)
    expect(again.status().credit.earned.receipts).toBe(4)
  })

  it('requests a worker answered are receipted together, one receipt a second for the worker and model; two jobs run at once both reach it', async () => {
    const submitter = await startNode([], { maxConcurrency: 0 })
    const worker = await startNode([submitter.addrs[0]])
    nodes = [submitter, worker]
    const { cid } = await submitter.addModel(model)
    await worker.addModel(model)
    await waitFor(() => submitter.peers().some(p => p.models.includes(cid)), 'the worker\'s ad')
    for (let i = 0; i < 5; i++) expect((await submitter.infer(cid, rows(3, i), { verify: 'off' })).peerId).toBe(worker.peerId)
    await waitFor(() => worker.status().credit.earned.receipts === 1, 'the requests\' receipt')
    expect(worker.status().credit.earned).toMatchObject({ receipts: 1, rows: 15, submitters: 1 })
    expect(submitter.status().credit.peers[0]).toMatchObject({ peerId: worker.peerId })
    // two jobs whose receipts go out at the same moment: the worker reads one batch per 250 ms, so the second waits its turn
    await Promise.all([1, 2].map(async seed => await submitter.submitJob(cid, rows(4, seed), { rowsPerPiece: 2, verify: 'off' }).run()))
    await waitFor(() => worker.status().credit.earned.receipts === 5, 'both jobs\' receipts')
    expect(worker.status().credit.earned.rows).toBe(15 + 8)
    expect(submitter.status().credit.issued.receipts).toBe(5)
  })

  it('what an attacker sends is kept out: receipts it signed for another worker, forged signatures, a stranger\'s for itself, junk; the node serves on', async () => {
    const target = await startNode()
    nodes = [target]
    const key = await generateKeyPair('Ed25519')
    const attackerConfig = await resolveConfig({ dataDir: await tempDir(), flags: { listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [target.addrs[0]], mdns: false, adIntervalMs: TEST_AD_INTERVAL_MS, cpuThreads: 1, peersOnly: true }, env: {} })
    const attacker = new ShoalNode({ config: attackerConfig, calibration: FIXED_CALIBRATION, api: false, meshKeeperIntervalMs: 500 })
    await attacker.start()
    nodes.push(attacker)
    const self = peerIdFromString(attacker.peerId).toMultihash().bytes
    const targetId = peerIdFromString(target.peerId).toMultihash().bytes
    const stranger = peerIdFromPrivateKey(key)
    const receipt = (r: Partial<Receipt>): Uint8Array => Receipt.encode({ jobId: 'j', pieceId: 0, modelCid: 'bafkreiabc', worker: targetId, submitter: self, rows: 4, work: 1000n, verified: Receipt.Verification.SPOT, outputsSha256: new Uint8Array(32), issuedAtMs: BigInt(Date.now()), ...r })
    const send = async (bytes: Uint8Array): Promise<ReceiptAck | Error> => {
      const stream = await attacker.libp2p.dialProtocol(peerIdFromString(target.peerId), RECEIPT_PROTOCOL, { signal: AbortSignal.timeout(5000) })
      const lp = lpStream(stream)
      try {
        await lp.write(bytes)
        const ack = ReceiptAck.decode((await lp.read({ signal: AbortSignal.timeout(5000) })).subarray())
        await stream.close()
        return ack
      } catch (err: any) {
        return err
      }
    }
    const forOther = receipt({ worker: self.map(b => b ^ 1) })
    const forged = receipt({ pieceId: 1 })
    // a stranger's receipt "for the target's work", passed off as issued by the attacker
    const strangers = receipt({ submitter: stranger.toMultihash().bytes, pieceId: 2 })
    const batch = ReceiptBatch.encode({
      issued: [
        { receipt: forOther, signature: await key.sign(receiptPayload(forOther)) },
        { receipt: forged, signature: new Uint8Array(64).fill(7) },
        { receipt: strangers, signature: await key.sign(receiptPayload(strangers)) }
      ],
      // receipts "for the attacker's work" that the stranger (whom the target never dealt with) signed
      presented: [{ receipt: receipt({ worker: self, submitter: stranger.toMultihash().bytes, pieceId: 3 }), signature: await key.sign(receiptPayload(receipt({ worker: self, submitter: stranger.toMultihash().bytes, pieceId: 3 }))) }]
    })
    const ack = await send(batch)
    expect(ack).toEqual({ issuedKept: 0, presentedKept: 1 })
    expect(target.status().credit.earned.receipts).toBe(0)
    // shown, but the stranger never worked for the target: the attacker has no credit by it
    expect(target.status().credit.peers).toEqual([])
    await new Promise(resolve => setTimeout(resolve, 300))
    expect(await send(Buffer.from('not a receipt batch at all, but a frame of text'))).toBeInstanceOf(Error)
    await new Promise(resolve => setTimeout(resolve, 300))
    // a batch sent too soon after the last is not read
    await send(ReceiptBatch.encode({ issued: [], presented: [] }))
    expect(await send(ReceiptBatch.encode({ issued: [], presented: [] }))).toBeInstanceOf(Error)
    // the node still works for everyone
    const { cid } = await target.addModel(model)
    expect((await target.submitJob(cid, rows(2), { local: 'share' }).run()).outputs.output.dims).toEqual([2, 64])
  })
})

describe('contribution credit: who gets a busy worker\'s slots', () => {
  it('a contributor\'s job and a free rider\'s job at once on the same busy workers: the contributor\'s finishes first; an idle worker still serves the free rider', async () => {
    // two workers of one slot each, whose pieces take 40 ms and more
    const hub = await node([], { maxConcurrency: 0 })
    const w1 = await node([hub.addrs[0]], { maxConcurrency: 1 }, { runtime: delayedRuntime(40) })
    const w2 = await node([hub.addrs[0]], { maxConcurrency: 1 }, { runtime: delayedRuntime(40) })
    // the contributor first works for both workers' jobs
    const contributorDir = await tempDir()
    let contributor = await node([hub.addrs[0]], { maxConcurrency: 2 }, { dataDir: contributorDir })
    nodes = [hub, w1, w2, contributor]
    const { cid } = await w1.addModel(model)
    await Promise.all([w2, contributor].map(async n => await n.addModel(model)))
    await waitFor(() => [w1, w2].every(w => w.peers().some(p => p.peerId === contributor.peerId && p.models.includes(cid))), 'the contributor\'s ad')
    await Promise.all([w1, w2].map(async w => await w.submitJob(cid, rows(16), { rowsPerPiece: 2, verify: 'off' }).run()))
    await waitFor(() => [w1, w2].every(w => w.status().credit.peers.some(p => p.peerId === contributor.peerId)), 'the contributor\'s credit with both workers')
    // it comes back as a submitter only (same identity), beside a free rider that never served anyone
    await contributor.stop()
    contributor = await node([hub.addrs[0]], { maxConcurrency: 0 }, { dataDir: contributorDir })
    const freeRider = await node([hub.addrs[0]], { maxConcurrency: 0 })
    nodes.push(contributor, freeRider)
    await Promise.all([contributor, freeRider].map(async n => await n.addModel(model)))
    const workers = [w1.peerId, w2.peerId]
    await waitFor(() => [contributor, freeRider].every(n => workers.every(w => n.peers().some(p => p.peerId === w && p.models.includes(cid)))), 'both submitters to see both workers')
    // alone, on idle workers, the free rider is served at once: no credit needed
    const alone = await freeRider.submitJob(cid, rows(4), { rowsPerPiece: 2, verify: 'off' }).run()
    expect(alone.progress.failedAttempts).toBe(0)
    const ended: string[] = []
    const run = async (who: ShoalNode, name: string): Promise<void> => {
      const result = await who.submitJob(cid, rows(24, name.length), { rowsPerPiece: 2, verify: 'off' }).run()
      expect(Object.keys(result.progress.perPeer).every(p => workers.includes(p))).toBe(true)
      ended.push(name)
    }
    await Promise.all([run(contributor, 'contributor'), run(freeRider, 'free rider')])
    expect(ended).toEqual(['contributor', 'free rider'])
  }, 60_000)
})
