import { randomUUID } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { peerIdFromMultihash, peerIdFromString } from '@libp2p/peer-id'
import type { Connection, PeerId, PrivateKey, Stream } from '@libp2p/interface'
import {
  checkReceipt, decodeReceiptBatch, MAX_RECEIPT_BATCH_BYTES, Receipt, RECEIPT_PROTOCOL, ReceiptAck, ReceiptBatch, receiptPayload
} from '@shoal/protocol'
import type { SignedReceipt } from '@shoal/protocol'
import { CreditLedger } from '@shoal/scheduler'
import type { PeerCredit, PresentedReceipt } from '@shoal/scheduler'
import * as Digest from 'multiformats/hashes/digest'
import {
  CREDIT_SAVE_DELAY_MS, MAX_EARNED_RECEIPTS, MAX_QUEUED_RECEIPTS_PER_PEER, MAX_RECEIPT_OUTBOX_PEERS, RECEIPT_MIN_INTERVAL_MS, RECEIPT_PRESENT_INTERVAL_MS,
  RECEIPT_SEND_SPACING_MS, RECEIPT_TIMEOUT_MS, REQUEST_RECEIPT_WINDOW_MS
} from '../constants.js'
import { writePrivateFile } from '../data-dir.js'
import { dataDirFiles } from '../data-dir-layout.js'
import { PublicKeyCache, signerFor } from '../pieces/ed25519-keys.js'
import { frames, readMessage, writeMessage } from '../pieces/frames.js'
import { EarnedReceipts } from './earned-receipts.js'
import { ReceiptOutbox } from './receipt-outbox.js'
import type { EarnedReceipt, EarnedSummary } from './earned-receipts.js'

/** How a piece's kept answer was verified, as a receipt states it. */
export type Verified = 'unchecked' | 'spot' | 'quorum' | 'canary'

/** A piece of a job whose answer from `peerId` the job kept. */
export interface CreditedPiece {
  pieceId: number
  peerId: string
  rows: number
  verified: Verified
  /** sha2-256 of the outputs, from the worker's commitment (absent without one). */
  outputsSha256?: Uint8Array
}

/** An ended job's kept answers from peers, for receipts. */
export interface CreditedJob {
  jobId: string
  modelCid: string
  /** The model's cost per row, in work units (ms at 1 GFLOP/s), as the job measured it. */
  unitsPerRow: number
  pieces: CreditedPiece[]
}

/** The node's side of libp2p that receipts need. */
export interface ReceiptNet {
  handle: (protocol: string, handler: (stream: Stream, connection: Connection) => void, options: { maxInboundStreams: number, maxOutboundStreams: number }) => Promise<void>
  unhandle: (protocol: string) => Promise<void>
  dialProtocol: (peer: PeerId, protocol: string, options: { signal: AbortSignal }) => Promise<Stream>
}

export interface CreditKeeperInit {
  dataDir: string
  privateKey: PrivateKey
  peerId: PeerId
  now?: () => number
  log?: (format: string, ...args: unknown[]) => void
  /** A test hook: signs receipts instead of the node's key. */
  signReceipt?: (payload: Uint8Array) => Promise<Uint8Array>
}

/** What a node has given and earned, for `shoal node status`, the API and the dashboard. */
export interface CreditView {
  earned: EarnedSummary
  /** Work units this node signed receipts for, in all (since it started). */
  issued: { receipts: number, work: number }
  /** Peers with credit here, the most credited first (at most 50). */
  peers: PeerCredit[]
  halfLifeDays: number
}

const VERIFIED: Record<Verified, Receipt.Verification> = {
  unchecked: Receipt.Verification.UNCHECKED,
  spot: Receipt.Verification.SPOT,
  quorum: Receipt.Verification.QUORUM,
  canary: Receipt.Verification.CANARY
}

/**
 * Contribution credit for a node (docs/trust.md, "Credit"; docs/protocol.md 6.4): signs receipts for
 * the pieces its jobs kept from peers (and credits those peers in its own ledger), keeps the receipts
 * peers sign for its work, shows them to the peers it sends pieces to, and weighs what peers show it.
 * A worker orders the submitters waiting for its slots by `priority`.
 */
export class CreditKeeper {
  readonly ledger: CreditLedger
  readonly earned = new EarnedReceipts(MAX_EARNED_RECEIPTS)
  private readonly now: () => number
  private readonly sign: (payload: Uint8Array) => Promise<Uint8Array>
  private readonly keys = new PublicKeyCache()
  private readonly self: Uint8Array
  private net?: ReceiptNet
  /** When each peer was last shown this node's receipts, and when its last batch was read (bounded). */
  private readonly presentedTo = new Map<string, number>()
  private readonly lastInbound = new Map<string, number>()
  private issuedReceipts = 0
  private issuedWork = 0
  private saveTimer?: ReturnType<typeof setTimeout>
  private saving: Promise<void> = Promise.resolve()
  private readonly outbox: ReceiptOutbox
  /** Requests answered by each peer, by model, since the last window's receipts (bounded by the outbox's peers). */
  private readonly answered = new Map<string, { peerId: string, modelCid: string, rows: number, work: number, unchecked: boolean }>()
  private answeredTimer?: ReturnType<typeof setTimeout>
  private readonly signing = new Set<Promise<void>>()

  constructor (private readonly init: CreditKeeperInit) {
    this.now = init.now ?? Date.now
    this.ledger = new CreditLedger(this.now, {}, init.peerId.toString())
    this.sign = init.signReceipt ?? signerFor(init.privateKey)
    this.self = init.peerId.toMultihash().bytes
    this.outbox = new ReceiptOutbox({
      send: async (peer, batch) => { await this.send(peer, batch) },
      spacingMs: RECEIPT_SEND_SPACING_MS,
      maxPerPeer: MAX_QUEUED_RECEIPTS_PER_PEER,
      maxPeers: MAX_RECEIPT_OUTBOX_PEERS,
      now: this.now,
      ...(init.log != null ? { log: init.log } : {})
    })
  }

  /** Reads credit.json and receipts.json; what cannot be read is left out, with a warning returned. */
  async load (): Promise<string[]> {
    const warnings: string[] = []
    const files = dataDirFiles(this.init.dataDir)
    const read = async (file: string, use: (json: unknown) => void): Promise<void> => {
      try {
        use(JSON.parse(await readFile(file, 'utf8')))
      } catch (err: any) {
        if (err.code !== 'ENOENT') warnings.push(`cannot read ${file} (${String(err.message)}); it starts afresh`)
      }
    }
    await read(files.credit, json => { this.ledger.load(json) })
    await read(files.receipts, json => { this.earned.load(json, signed => this.readEarned(signed, undefined)) })
    return warnings
  }

  async start (net: ReceiptNet): Promise<void> {
    this.net = net
    await net.handle(RECEIPT_PROTOCOL, (stream, connection) => { void this.serve(stream, connection.remotePeer) }, { maxInboundStreams: 2, maxOutboundStreams: 4 })
  }

  /** Stops serving, lets receipts on their way go (bounded by their deadline) and saves. */
  async stop (): Promise<void> {
    await this.net?.unhandle(RECEIPT_PROTOCOL).catch(() => {})
    clearTimeout(this.answeredTimer)
    this.answeredTimer = undefined
    this.signAnswered()
    await Promise.allSettled([...this.signing])
    // what is on its way goes (bounded by its deadline); what still waits for its turn is dropped
    await this.outbox.close()
    this.net = undefined
    clearTimeout(this.saveTimer)
    this.saveTimer = undefined
    await this.save()
  }

  /** A submitter's credit with this node: the order in which its pieces get contended slots. */
  priority (peer: string): number {
    return this.ledger.credit(peer)
  }

  view (): CreditView {
    return {
      earned: this.earned.summary(),
      issued: { receipts: this.issuedReceipts, work: this.issuedWork },
      peers: this.ledger.peers().slice(0, 50),
      halfLifeDays: 7
    }
  }

  /**
   * An ended job's kept answers: a signed receipt for each, the peer credited here, and the receipts
   * sent to it (in the background; a worker that is gone loses them, the credit here stays).
   */
  async credited (job: CreditedJob): Promise<void> {
    if (job.pieces.length === 0) return
    const byPeer = new Map<string, SignedReceipt[]>()
    for (const piece of job.pieces) {
      const signed = await this.receipt(piece.peerId, {
        jobId: job.jobId,
        pieceId: piece.pieceId,
        modelCid: job.modelCid,
        rows: piece.rows,
        work: Math.max(1, Math.ceil(piece.rows * job.unitsPerRow)),
        verified: VERIFIED[piece.verified],
        outputsSha256: new Uint8Array(piece.outputsSha256 ?? [])
      })
      if (signed == null) continue
      const list = byPeer.get(piece.peerId) ?? []
      list.push(signed)
      byPeer.set(piece.peerId, list)
    }
    this.saveSoon()
    for (const [peer, receipts] of byPeer) this.outbox.issue(peer, receipts)
  }

  /**
   * A request `peerId` answered and this node kept: credited and receipted with the other
   * requests it answers for the model within REQUEST_RECEIPT_WINDOW_MS (one receipt for them all,
   * job id `requests:<uuid>`: a stream of small requests costs one signature a second, not one each).
   */
  requestAnswered (answer: { peerId: string, modelCid: string, rows: number, unitsPerRow: number, checked: boolean }): void {
    if (answer.peerId === this.init.peerId.toString() || answer.rows < 1) return
    const key = `${answer.peerId}\n${answer.modelCid}`
    let entry = this.answered.get(key)
    if (entry == null) {
      if (this.answered.size >= MAX_RECEIPT_OUTBOX_PEERS) return
      entry = { peerId: answer.peerId, modelCid: answer.modelCid, rows: 0, work: 0, unchecked: false }
      this.answered.set(key, entry)
    }
    entry.rows += answer.rows
    entry.work += answer.rows * answer.unitsPerRow
    entry.unchecked ||= !answer.checked
    if (this.answeredTimer == null) {
      this.answeredTimer = setTimeout(() => { this.answeredTimer = undefined; this.signAnswered() }, REQUEST_RECEIPT_WINDOW_MS)
      this.answeredTimer.unref?.()
    }
  }

  /** One receipt for each peer and model of the requests answered in the window that ended. */
  private signAnswered (): void {
    const entries = [...this.answered.values()]
    this.answered.clear()
    if (entries.length === 0) return
    const task = (async () => {
      for (const e of entries) {
        const signed = await this.receipt(e.peerId, {
          jobId: `requests:${randomUUID()}`,
          pieceId: 0,
          modelCid: e.modelCid,
          rows: Math.min(e.rows, 0xffffffff),
          work: Math.max(1, Math.ceil(e.work)),
          verified: e.unchecked ? Receipt.Verification.UNCHECKED : Receipt.Verification.SPOT,
          outputsSha256: new Uint8Array(0)
        })
        if (signed != null) this.outbox.issue(e.peerId, [signed])
      }
      this.saveSoon()
    })().catch(err => { this.init.log?.('receipts of requests: %s', err.message ?? err) })
    this.signing.add(task)
    void task.finally(() => this.signing.delete(task))
  }

  /** Signs a receipt for `peer`'s work and credits it here; undefined for this node itself or a peer id that is not one. */
  private async receipt (peer: string, fields: Omit<Receipt, 'worker' | 'submitter' | 'issuedAtMs' | 'work'> & { work: number }): Promise<SignedReceipt | undefined> {
    if (peer === this.init.peerId.toString()) return undefined
    let worker: PeerId
    try {
      worker = peerIdOf(peer)
    } catch {
      return undefined
    }
    const receipt = Receipt.encode({
      ...fields,
      worker: new Uint8Array(worker.toMultihash().bytes),
      submitter: new Uint8Array(this.self),
      work: BigInt(fields.work),
      issuedAtMs: BigInt(Math.floor(this.now()))
    })
    const signature = await this.sign(receiptPayload(receipt))
    this.ledger.given(peer, fields.work)
    this.issuedReceipts++
    this.issuedWork += fields.work
    return { receipt, signature: new Uint8Array(signature) }
  }

  /** This node is about to ask `peer` for work: it is shown this node's receipts, once in a while. */
  presentTo (peer: string): void {
    if (this.net == null || this.earned.size === 0) return
    const last = this.presentedTo.get(peer)
    if (last != null && this.now() - last < RECEIPT_PRESENT_INTERVAL_MS) return
    remember(this.presentedTo, peer, this.now())
    this.outbox.present(peer, this.earned.toPresent())
  }

  private async send (peer: string, batch: ReceiptBatch): Promise<ReceiptAck> {
    if (this.net == null) throw new Error('the node is stopping')
    const signal = AbortSignal.timeout(RECEIPT_TIMEOUT_MS)
    const stream = await this.net.dialProtocol(peerIdOf(peer), RECEIPT_PROTOCOL, { signal })
    try {
      const lp = frames(stream)
      await writeMessage(lp, ReceiptBatch, batch, signal)
      const ack = await readMessage(lp, ReceiptAck, signal, 'receipt ack', 64)
      await stream.close({ signal })
      return ack
    } catch (err: any) {
      stream.abort(err)
      throw err
    }
  }

  /** One inbound batch: receipts for this node's work, or a peer's proof of its own. */
  private async serve (stream: Stream, remote: PeerId): Promise<void> {
    const peer = remote.toString()
    const now = this.now()
    const last = this.lastInbound.get(peer)
    if (last != null && now - last < RECEIPT_MIN_INTERVAL_MS) {
      stream.abort(new Error('receipts sent too often'))
      return
    }
    remember(this.lastInbound, peer, now)
    const signal = AbortSignal.timeout(RECEIPT_TIMEOUT_MS)
    try {
      const lp = frames(stream)
      const batch = await readMessage(lp, { decode: decodeReceiptBatch }, signal, 'receipt batch', MAX_RECEIPT_BATCH_BYTES)
      let issuedKept = 0
      for (const signed of batch.issued) {
        const earned = this.readEarned(signed, remote)
        if (earned != null && this.earned.add(earned)) issuedKept++
      }
      const presented: PresentedReceipt[] = []
      const remoteBytes = remote.toMultihash().bytes
      for (const signed of batch.presented) {
        const r = checkReceipt(signed, { worker: remoteBytes, now: this.now() })
        if (typeof r === 'string') continue
        const signer = signerOf(r)
        if (signer == null || signer.equals(this.init.peerId) || !(await this.verify(signer, signed))) continue
        presented.push({ signer: signer.toString(), work: Number(r.work), at: Number(r.issuedAtMs) })
      }
      this.ledger.present(peer, presented)
      if (issuedKept > 0 || presented.length > 0) this.saveSoon()
      await writeMessage(lp, ReceiptAck, { issuedKept, presentedKept: presented.length }, signal)
      await stream.close({ signal })
    } catch (err: any) {
      this.init.log?.('receipts from %s: %s', peer, err.message ?? err)
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }

  /**
   * A receipt for this node's work, if it is one: signed by `submitter` (on arrival; at load the file
   * is this node's own and the signatures were checked when the receipts came).
   */
  private readEarned (signed: SignedReceipt, submitter: PeerId | undefined): EarnedReceipt | undefined {
    const r = checkReceipt(signed, { worker: this.self, ...(submitter != null ? { submitter: submitter.toMultihash().bytes } : {}), now: this.now() })
    if (typeof r === 'string') return undefined
    const signer = submitter ?? signerOf(r)
    if (signer == null) return undefined
    if (submitter != null) {
      const key = submitter.publicKey
      if (key?.type !== 'Ed25519' || !this.keys.verifyEd25519(key, receiptPayload(signed.receipt), signed.signature)) return undefined
    }
    return { signed, submitter: signer.toString(), jobId: r.jobId, pieceId: r.pieceId, rows: r.rows, work: Number(r.work), verified: r.verified, issuedAtMs: Number(r.issuedAtMs) }
  }

  private async verify (signer: PeerId, signed: SignedReceipt): Promise<boolean> {
    const key = signer.publicKey
    if (key == null) return false
    return await this.keys.verify(key, receiptPayload(signed.receipt), signed.signature)
  }

  private saveSoon (): void {
    if (this.saveTimer != null) return
    this.saveTimer = setTimeout(() => {
      this.saveTimer = undefined
      void this.save()
    }, CREDIT_SAVE_DELAY_MS)
    this.saveTimer.unref?.()
  }

  private async save (): Promise<void> {
    this.saving = this.saving.then(async () => {
      const files = dataDirFiles(this.init.dataDir)
      await writePrivateFile(files.credit, JSON.stringify(this.ledger) + '\n').catch(() => {})
      await writePrivateFile(files.receipts, JSON.stringify(this.earned) + '\n').catch(() => {})
    })
    await this.saving
  }
}

/** A receipt's submitter as a peer id, if its bytes are one (a key embedded, to check signatures with). */
function signerOf (r: Receipt): PeerId | undefined {
  try {
    return peerIdFromMultihash(Digest.decode(r.submitter))
  } catch {
    return undefined
  }
}

function peerIdOf (peer: string): PeerId {
  return peerIdFromString(peer)
}

/** Keeps at most 4096 peers' times (the oldest entry dropped first). */
function remember (map: Map<string, number>, peer: string, at: number): void {
  map.delete(peer)
  map.set(peer, at)
  if (map.size > 4096) map.delete(map.keys().next().value as string)
}
