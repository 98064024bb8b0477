import { connect as tlsConnect } from 'node:tls'
import type { TLSSocket } from 'node:tls'
import { randomBytes } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import { DirectUnavailableError, frames, openDirectChannel, openReverseChannel, readMessage, runRemotePiece, writeMessage } from '@shoal/node/wire'
import type { PieceAttempt, ShoalNode } from '@shoal/node'
import { DIRECT_CIPHER_SUITES, DIRECT_PROTOCOL, DirectOffer, DirectRequest, INFER_PROTOCOL, InferResponse, MAX_FRAME_BYTES } from '@shoal/protocol'
import { buildCalibrationModel } from '@shoal/runtime/calibration-model'
import { afterEach, describe, expect, it } from 'vitest'
import { localRun, metricValue, sameBytes, startNode, stopAll, waitFor, withDynamicBatch } from './helpers.js'

let nodes: ShoalNode[] = []
afterEach(async () => {
  await stopAll(nodes)
  nodes = []
})

/** A batch for pieces of 1 MiB of input each (512 rows of 512 float32), on a 512-wide generated model. */
async function bigPieceJob (submitter: ShoalNode, rows = 2048): Promise<{ cid: string, x: any, bytes: Uint8Array }> {
  const bytes = withDynamicBatch(buildCalibrationModel({ batch: 1, width: 512, layers: 2 }))
  const { cid } = await submitter.addModel(bytes)
  const values = Float32Array.from({ length: rows * 512 }, (_, i) => Math.sin(i))
  return { cid, bytes, x: { dtype: 'float32' as const, dims: [rows, 512], data: new Uint8Array(values.buffer) } }
}

/** A submitter and one worker (started with these flags and test hooks) that it sees. */
async function workerPair (flags: Record<string, unknown> = {}, init: Parameters<typeof startNode>[2] = {}): Promise<[ShoalNode, ShoalNode]> {
  const submitter = await startNode()
  const worker = await startNode([submitter.addrs[0]], flags, init)
  nodes = [submitter, worker]
  await waitFor(() => submitter.peers().length === 1, 'the submitter to see the worker')
  return [submitter, worker]
}

/** Asks `to` for a direct-channel ticket over a libp2p stream, as openDirectChannel does. */
async function requestOffer (from: ShoalNode, to: ShoalNode, protocol: string): Promise<DirectOffer> {
  const stream = await from.libp2p.dialProtocol(to.libp2p.peerId, DIRECT_PROTOCOL)
  const lp = frames(stream)
  const signal = AbortSignal.timeout(5000)
  await writeMessage(lp, DirectRequest, { protocol }, signal)
  const offer = await readMessage(lp, DirectOffer, signal, 'offer')
  await stream.close()
  return offer
}

/** A TLS 1.3 handshake with an external pre-shared key; resolves with the socket once it is secure. */
async function handshake (port: number, identity: string, key: Uint8Array): Promise<TLSSocket> {
  const socket = tlsConnect({ host: '127.0.0.1', port, minVersion: 'TLSv1.3', ciphers: DIRECT_CIPHER_SUITES, pskCallback: () => ({ psk: Buffer.from(key), identity }), checkServerIdentity: () => undefined })
  return await new Promise((resolve, reject) => {
    socket.once('secureConnect', () => { resolve(socket) })
    socket.once('error', reject)
  })
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

describe('the direct data channel (TLS 1.3 with a one-time key, docs/protocol.md 6.1)', () => {
  it('carries pieces of 1 MiB and more; the outputs equal a local run bit for bit', async () => {
    const submitter = await startNode()
    const workers = await Promise.all([0, 1].map(async () => await startNode([submitter.addrs[0]])))
    nodes = [submitter, ...workers]
    await waitFor(() => submitter.peers().length === 2, 'the submitter to see both workers')
    const { cid, x, bytes } = await bigPieceJob(submitter)
    const result = await submitter.submitJob(cid, { input: x }, { rowsPerPiece: 512 }).run()
    const reference = await localRun(bytes, { input: x })
    expect(sameBytes(result.outputs.output, reference.output)).toBe(true)
    const remote = workers.reduce((n, w) => n + (result.progress.perPeer[w.peerId] ?? 0), 0)
    expect(remote).toBeGreaterThan(0)
    // every remote piece (and any end-game copy) came back over a direct connection
    expect(result.progress.directPieces).toBeGreaterThanOrEqual(remote)
    // and the workers' metrics say so: inputs came in on the direct channel, none on streams
    for (const worker of workers) {
      const text = await worker.metrics.text()
      const served = metricValue(text, 'shoal_worker_pieces_total{outcome="ok"}')!
      const pieceBytes = 512 * 512 * 4
      const directIn = metricValue(text, 'shoal_worker_tensor_bytes_total{direction="in",channel="direct"}') ?? 0
      // an end-game copy cancelled after its inputs arrived counts its bytes but no answer
      expect(directIn % pieceBytes).toBe(0)
      expect(directIn).toBeGreaterThanOrEqual(served * pieceBytes)
      expect(metricValue(text, 'shoal_worker_tensor_bytes_total{direction="in",channel="stream"}')).toBeUndefined()
    }
  })

  it('reverse: a worker that cannot be reached connects back to the submitter\'s listener with its ticket, and the piece runs on that connection', async () => {
    const [submitter, worker] = await workerPair()
    const { cid, x, bytes } = await bigPieceJob(submitter, 512)
    await worker.addModel(bytes)
    const acceptedBefore = submitter.libp2p.services.direct.connectionsAccepted
    const ticket = submitter.libp2p.services.direct.expectReverse(worker.libp2p.peerId, INFER_PROTOCOL, false)!
    expect(ticket.port).toBe(submitter.status().direct?.port)
    const stream = await submitter.libp2p.dialProtocol(worker.libp2p.peerId, DIRECT_PROTOCOL)
    const channel = await openReverseChannel(stream, ticket, INFER_PROTOCOL, AbortSignal.timeout(10_000))
    // the connection came in on the submitter's listener
    expect(submitter.libp2p.services.direct.connectionsAccepted).toBe(acceptedBefore + 1)
    const result = await runRemotePiece(async () => { throw new Error('no stream: the piece goes over the reverse channel') }, worker.libp2p.peerId, { jobId: 'reverse', pieceId: 0, modelCid: cid, inputs: { input: x }, deadlineMs: 20_000, maxResponseBytes: 1 << 30 }, AbortSignal.timeout(20_000), async () => channel)
    expect(result.direct).toBe(true)
    expect(sameBytes(result.outputs.output, (await localRun(bytes, { input: x })).output)).toBe(true)
    // a ticket works once: asking the worker to connect back with it again fails, and the worker says why
    const again = await submitter.libp2p.dialProtocol(worker.libp2p.peerId, DIRECT_PROTOCOL)
    await expect(openReverseChannel(again, ticket, INFER_PROTOCOL, AbortSignal.timeout(10_000))).rejects.toThrow(DirectUnavailableError)
  })

  it('reverse requests a peer could abuse: malformed ones get no answer, one to a port that is no listener is answered UNAVAILABLE; the worker keeps serving', async () => {
    const [submitter, worker] = await workerPair()
    const ask = async (fields: Record<string, unknown>): Promise<DirectOffer | 'reset'> => {
      const stream = await submitter.libp2p.dialProtocol(worker.libp2p.peerId, DIRECT_PROTOCOL)
      const lp = frames(stream)
      const signal = AbortSignal.timeout(8000)
      await writeMessage(lp, DirectRequest, { protocol: INFER_PROTOCOL, ...fields }, signal)
      return await readMessage(lp, DirectOffer, signal, 'offer').catch(() => 'reset' as const)
    }
    // a ticket of the wrong size, a key of the wrong size, port 0
    expect(await ask({ port: 4000, ticket: randomBytes(15), key: randomBytes(32) })).toBe('reset')
    expect(await ask({ port: 4000, ticket: randomBytes(16), key: randomBytes(31) })).toBe('reset')
    expect(await ask({ port: 0, ticket: randomBytes(16), key: randomBytes(32) })).toBe('reset')
    // a port where nothing listens (the submitter's libp2p port is no TLS listener): the worker cannot connect back and says so
    const port = Number(submitter.addrs[0].split('/tcp/')[1].split('/')[0])
    const offer = await ask({ port, ticket: randomBytes(16), key: randomBytes(32) })
    expect(offer).not.toBe('reset')
    expect((offer as DirectOffer).code).toBe(DirectOffer.Code.UNAVAILABLE)
    expect((offer as DirectOffer).message).toMatch(/cannot connect back/)
    // and it still serves ordinary offers
    expect((await requestOffer(submitter, worker, INFER_PROTOCOL)).code).toBe(DirectOffer.Code.OK)
  })

  it('a worker that crashes with direct pieces in flight: they go to the other worker, outputs identical', async () => {
    const submitter = await startNode()
    // slowed so that the job is still running when one dies
    const workers = await Promise.all([0, 1].map(async () => await startNode([submitter.addrs[0]], {}, { slowdown: 4 })))
    nodes = [submitter, ...workers]
    await waitFor(() => submitter.peers().length === 2, 'the submitter to see both workers')
    const { cid, x, bytes } = await bigPieceJob(submitter, 4096)
    const job = submitter.submitJob(cid, { input: x }, { rowsPerPiece: 512 })
    const attempts: PieceAttempt[] = []
    job.onPieceAttempt(a => attempts.push(a))
    let killed = false
    job.onProgress(p => {
      if (!killed && p.done >= 1 && p.inFlight > 0) {
        killed = true
        // as a crash: connections and direct connections broken, no goodbye
        void workers[0].kill()
      }
    })
    const result = await job.run()
    expect(killed).toBe(true)
    expect(sameBytes(result.outputs.output, (await localRun(bytes, { input: x })).output)).toBe(true)
    expect(result.progress.total).toBe(8)
    // the dead worker had pieces in flight: they failed there and were done elsewhere
    const lost = attempts.filter(a => a.peerId === workers[0].peerId && a.outcome === 'failed')
    expect(lost.length).toBeGreaterThan(0)
    for (const a of lost) expect(attempts.some(b => b.pieceId === a.pieceId && b.outcome === 'done' && b.peerId !== workers[0].peerId)).toBe(true)
    expect(result.progress.perPeer[workers[1].peerId]).toBeGreaterThan(0)
    expect(result.progress.directPieces).toBeGreaterThan(0)
  })

  it('runs the next pieces to a worker on the connections of the last: a TLS handshake per piece in flight, not per piece', async () => {
    const [submitter, worker] = await workerPair()
    const { cid, x, bytes } = await bigPieceJob(submitter, 4096)
    const reference = await localRun(bytes, { input: x })
    const result = await submitter.submitJob(cid, { input: x }, { rowsPerPiece: 512 }).run()
    expect(sameBytes(result.outputs.output, reference.output)).toBe(true)
    expect(result.progress.directPieces).toBe(8)
    // a window of 2 pieces in flight: 2 connections carried all 8
    const accepted = worker.libp2p.services.direct.connectionsAccepted
    expect(accepted).toBeGreaterThan(0)
    expect(accepted).toBeLessThanOrEqual(2)
    // the next job, a moment later, finds them still open
    const again = await submitter.submitJob(cid, { input: x }, { rowsPerPiece: 512 }).run()
    expect(sameBytes(again.outputs.output, reference.output)).toBe(true)
    expect(again.progress.directPieces).toBe(8)
    expect(worker.libp2p.services.direct.connectionsAccepted).toBe(accepted)
    // which the worker's metrics show
    const metrics = await worker.metrics.text()
    expect(metricValue(metrics, 'shoal_direct_connections_accepted_total')).toBe(accepted)
    expect(metricValue(metrics, 'shoal_direct_connections')).toBe(worker.libp2p.services.direct.connectionsOpen)
    expect(worker.libp2p.services.direct.connectionsOpen).toBeGreaterThan(0)
  })

  it('a worker that does not keep connections (an older node) gets one per piece', async () => {
    const [submitter, worker] = await workerPair({}, { directReuse: false })
    const { cid, x, bytes } = await bigPieceJob(submitter, 4096)
    const result = await submitter.submitJob(cid, { input: x }, { rowsPerPiece: 512 }).run()
    expect(sameBytes(result.outputs.output, (await localRun(bytes, { input: x })).output)).toBe(true)
    expect(result.progress.directPieces).toBe(8)
    expect(worker.libp2p.services.direct.connectionsAccepted).toBe(8)
  })

  it('kept connections that the worker dropped cost no piece: the next job completes, outputs identical', async () => {
    const [submitter, worker] = await workerPair()
    const { cid, x, bytes } = await bigPieceJob(submitter, 4096)
    const reference = await localRun(bytes, { input: x })
    await submitter.submitJob(cid, { input: x }, { rowsPerPiece: 512 }).run()
    const before = worker.libp2p.services.direct.connectionsAccepted
    worker.libp2p.services.direct.abortAll()
    const result = await submitter.submitJob(cid, { input: x }, { rowsPerPiece: 512 }).run()
    expect(sameBytes(result.outputs.output, reference.output)).toBe(true)
    // a piece that met a dead kept connection went again on a new one: no retry, no piece elsewhere
    expect(result.progress.retries).toBe(0)
    expect(result.progress.perPeer[worker.peerId]).toBe(8)
    expect(result.progress.directPieces).toBe(8)
    expect(worker.libp2p.services.direct.connectionsAccepted).toBeGreaterThan(before)
  })

  it('a kept connection carries exchanges one after another; the worker ends it after a final one', async () => {
    const a = await startNode()
    const b = await startNode([a.addrs[0]])
    nodes = [a, b]
    await waitFor(() => a.peers().length === 1, 'the nodes to see each other')
    // echoes a frame; a frame [0] is answered [255] and ends the connection, as an error answer does
    b.libp2p.services.direct.serve('/test/echo/1', async (channel) => {
      const frame = (await channel.frames.read()).subarray()
      await channel.frames.write(frame[0] === 0 ? Uint8Array.of(255) : frame)
      await channel.close({ final: frame[0] === 0 })
    })
    const open = async (reuse: boolean) => await openDirectChannel(await a.libp2p.dialProtocol(b.libp2p.peerId, DIRECT_PROTOCOL), '127.0.0.1', '/test/echo/1', MAX_FRAME_BYTES, AbortSignal.timeout(5000), reuse)
    // kept only when asked for
    const single = await open(false)
    expect(single.reuse).toBe(false)
    single.abort(new Error('not used'))
    const conn = await open(true)
    expect(conn.reuse).toBe(true)
    let accepted = 0
    for (const n of [1, 2, 3]) {
      let kept: boolean | undefined
      const exchange = conn.exchange(k => { kept = k })
      await exchange.frames.write(Uint8Array.of(n))
      expect([...(await exchange.frames.read()).subarray()]).toEqual([n])
      await exchange.close()
      expect(kept).toBe(true)
      expect(conn.reusable(true)).toBe(true)
      // no new connection after the first exchange
      if (n === 1) accepted = b.libp2p.services.direct.connectionsAccepted
      else expect(b.libp2p.services.direct.connectionsAccepted).toBe(accepted)
    }
    const last = conn.exchange(() => {})
    await last.frames.write(Uint8Array.of(0))
    expect([...(await last.frames.read()).subarray()]).toEqual([255])
    await waitFor(() => !conn.reusable(true), 'the worker to end the connection')
  })

  it('a worker started with --no-direct gets the same pieces over libp2p streams', async () => {
    const [submitter, worker] = await workerPair({ direct: false })
    expect(worker.libp2p.services.direct.listening).toBeNull()
    const { cid, x, bytes } = await bigPieceJob(submitter)
    const result = await submitter.submitJob(cid, { input: x }, { rowsPerPiece: 512 }).run()
    expect(sameBytes(result.outputs.output, (await localRun(bytes, { input: x })).output)).toBe(true)
    expect(result.progress.perPeer[worker.peerId]).toBeGreaterThan(0)
    expect(result.progress.directPieces).toBe(0)
    // and the worker says why when asked
    await expect(openDirectChannel(await submitter.libp2p.dialProtocol(worker.libp2p.peerId, DIRECT_PROTOCOL), '127.0.0.1', INFER_PROTOCOL, MAX_FRAME_BYTES, AbortSignal.timeout(5000)))
      .rejects.toThrow(/UNAVAILABLE/)
  })

  it('a peer that does not speak /shoal/direct/1.0.0 (an older node) gets its pieces over libp2p streams', async () => {
    const [submitter, worker] = await workerPair()
    await worker.libp2p.services.direct.stop()
    const { cid, x, bytes } = await bigPieceJob(submitter)
    const result = await submitter.submitJob(cid, { input: x }, { rowsPerPiece: 512 }).run()
    expect(sameBytes(result.outputs.output, (await localRun(bytes, { input: x })).output)).toBe(true)
    expect(result.progress.perPeer[worker.peerId]).toBeGreaterThan(0)
    expect(result.progress.directPieces).toBe(0)
  })

  it('a connection needs an unused ticket and its key, and belongs to the peer the ticket was issued to', async () => {
    const a = await startNode()
    const b = await startNode([a.addrs[0]])
    nodes = [a, b]
    await waitFor(() => a.peers().length === 1, 'the nodes to see each other')
    const seen: string[] = []
    b.libp2p.services.direct.serve('/test/echo/1', async (channel, peer) => {
      seen.push(peer.toString())
      await channel.frames.write(await channel.frames.read())
      await channel.close()
    })
    const channel = await openDirectChannel(await a.libp2p.dialProtocol(b.libp2p.peerId, DIRECT_PROTOCOL), '127.0.0.1', '/test/echo/1', MAX_FRAME_BYTES, AbortSignal.timeout(5000))
    await channel.frames.write(Uint8Array.from([1, 2, 3]))
    expect([...(await channel.frames.read()).subarray()]).toEqual([1, 2, 3])
    await channel.close()
    expect(seen).toEqual([a.peerId])

    // a wrong key fails the handshake, and burns the ticket
    const first = await requestOffer(a, b, '/test/echo/1')
    expect(first.code).toBe(DirectOffer.Code.OK)
    await expect(handshake(first.port, hex(first.ticket), randomBytes(32))).rejects.toThrow()
    await expect(handshake(first.port, hex(first.ticket), first.key)).rejects.toThrow()
    // a made-up ticket fails; a real one works once
    await expect(handshake(first.port, hex(randomBytes(16)), randomBytes(32))).rejects.toThrow()
    const second = await requestOffer(a, b, '/test/echo/1')
    const socket = await handshake(second.port, hex(second.ticket), second.key)
    socket.destroy()
    await expect(handshake(second.port, hex(second.ticket), second.key)).rejects.toThrow()
    // a protocol the node does not serve this way is refused over the offer stream
    const refused = await openDirectChannel(await a.libp2p.dialProtocol(b.libp2p.peerId, DIRECT_PROTOCOL), '127.0.0.1', '/not/served/1', MAX_FRAME_BYTES, AbortSignal.timeout(5000)).catch(err => err)
    expect(refused).toBeInstanceOf(DirectUnavailableError)
    expect(refused.message).toMatch(/UNAVAILABLE/)
  })

  it('one peer holds at most 16 unused tickets: the next request is answered BUSY', async () => {
    const a = await startNode()
    const b = await startNode([a.addrs[0]])
    nodes = [a, b]
    await waitFor(() => a.peers().length === 1, 'the nodes to see each other')
    const offers = []
    for (let i = 0; i < 17; i++) offers.push(await requestOffer(a, b, INFER_PROTOCOL))
    expect(offers.slice(0, 16).every(o => o.code === DirectOffer.Code.OK)).toBe(true)
    expect(new Set(offers.slice(0, 16).map(o => hex(o.ticket))).size).toBe(16)
    expect(offers[16].code).toBe(DirectOffer.Code.BUSY)
    // using one frees a place
    const socket = await handshake(offers[0].port, hex(offers[0].ticket), offers[0].key)
    socket.destroy()
    expect((await requestOffer(a, b, INFER_PROTOCOL)).code).toBe(DirectOffer.Code.OK)
  })

  it('a frame over the size limit on a direct connection gets BAD_INPUT, and the worker serves the next piece', async () => {
    const [submitter, worker] = await workerPair()
    const offer = await requestOffer(submitter, worker, INFER_PROTOCOL)
    const socket = await handshake(offer.port, hex(offer.ticket), offer.key)
    const answer: Buffer[] = []
    socket.on('data', (d: Buffer) => answer.push(d))
    const closed = new Promise(resolve => socket.once('close', resolve))
    socket.write(Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x04])) // a frame length of 1 GiB
    await closed
    const bytes = Buffer.concat(answer)
    const response = InferResponse.decode(bytes.subarray(1, 1 + bytes[0]))
    expect(response.code).toBe(InferResponse.Code.BAD_INPUT)
    expect(response.message).toMatch(/over the 1048576-byte limit/)
    // a real piece, direct, still runs
    const { cid, x } = await bigPieceJob(submitter)
    const result = await runRemotePiece(
      async (peer, protocol, options) => await submitter.libp2p.dialProtocol(peer, protocol, options),
      peerIdFromString(worker.peerId),
      { jobId: 'j', pieceId: 0, modelCid: cid, inputs: { input: { ...x, dims: [512, 512], data: x.data.subarray(0, 512 * 512 * 4) } }, deadlineMs: 30_000, maxResponseBytes: 1 << 24 },
      AbortSignal.timeout(30_000),
      async (peer, signal) => await openDirectChannel(await submitter.libp2p.dialProtocol(peer, DIRECT_PROTOCOL, { signal }), '127.0.0.1', INFER_PROTOCOL, MAX_FRAME_BYTES, signal)
    )
    expect(result.direct).toBe(true)
    expect(result.outputs.output.dims).toEqual([512, 512])
  })

  it('a direct port already in use is a clear error at start', async () => {
    const a = await startNode()
    nodes = [a]
    await expect(startNode([], { directPort: a.libp2p.services.direct.listening?.port })).rejects.toThrow(/cannot listen for direct connections on 127.0.0.1 port \d+: address already in use \(choose another with --direct-port/)
  })
})
