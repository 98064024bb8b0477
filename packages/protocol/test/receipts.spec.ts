import { describe, expect, it } from 'vitest'
import { fromString } from 'uint8arrays/from-string'
import { checkReceipt, decodeReceiptBatch, MAX_RECEIPT_BATCH_BYTES, MAX_RECEIPTS_PER_BATCH, Receipt, RECEIPT_PREFIX, ReceiptBatch, receiptPayload } from '../src/index.js'

const worker = Uint8Array.from({ length: 38 }, (_, i) => i)
const submitter = Uint8Array.from({ length: 38 }, (_, i) => 100 + i)
const now = 1_800_000_000_000
const base: Receipt = {
  jobId: 'job-1', pieceId: 4, modelCid: 'bafkreiabc', worker, submitter, rows: 8, work: 800n,
  verified: Receipt.Verification.SPOT, outputsSha256: new Uint8Array(32), issuedAtMs: BigInt(now)
}
const signed = (r: Partial<Receipt>, extra?: Uint8Array): { receipt: Uint8Array, signature: Uint8Array } => {
  const bytes = Receipt.encode({ ...base, ...r })
  return { receipt: extra == null ? bytes : Uint8Array.from([...bytes, ...extra]), signature: new Uint8Array(64) }
}

describe('receipts (docs/protocol.md 6.4)', () => {
  it('a receipt that states work done for the expected worker and submitter is kept', () => {
    const r = checkReceipt(signed({}), { worker, submitter, now })
    expect(r).toMatchObject({ jobId: 'job-1', pieceId: 4, rows: 8, work: 800n, verified: Receipt.Verification.SPOT })
    // the signature covers a prefix no other signed message of Shoal's starts with
    expect(new TextDecoder().decode(receiptPayload(new Uint8Array([1])).subarray(0, RECEIPT_PREFIX.byteLength))).toBe('shoal-receipt:')
  })

  it('refuses what an attacker would send: another worker or submitter, work for itself, no rows, absurd work, a future date, padding, junk', () => {
    const cases: Array<[string, { receipt: Uint8Array, signature: Uint8Array }, RegExp]> = [
      ['another worker', signed({ worker: submitter.map(b => b ^ 1) }), /another worker/],
      ['another submitter', signed({ submitter: worker.map(b => b ^ 1) }), /another submitter/],
      ['work for itself', signed({ submitter: worker }), /for itself/],
      ['no rows', signed({ rows: 0 }), /no rows/],
      ['no work', signed({ work: 0n }), /0 work units/],
      ['a petaFLOP and more a row', signed({ work: 8n * 1_000_000_001n }), /work units for 8 rows/],
      ['a hash of another size', signed({ outputsSha256: new Uint8Array(20) }), /not a sha2-256/],
      ['dated an hour ahead', signed({ issuedAtMs: BigInt(now + 3_600_000) }), /ahead of this node's clock/],
      ['a job id of 200 characters', signed({ jobId: 'j'.repeat(200) }), /too long/],
      ['padding', signed({}, Uint8Array.from([0xfa, 0x3e, 0x40, ...new Uint8Array(64)])), /more bytes than its fields need/],
      ['not a receipt', { receipt: fromString('hello world, this is not protobuf'), signature: new Uint8Array(64) }, /not a valid Receipt/],
      ['too big', { receipt: new Uint8Array(600), signature: new Uint8Array(64) }, /over the 512-byte limit/]
    ]
    for (const [what, receipt, problem] of cases) {
      const r = checkReceipt(receipt, { worker, submitter: what === 'work for itself' ? undefined : submitter, now })
      expect(r, what).toBeTypeOf('string')
      expect(r as string, what).toMatch(problem)
    }
  })

  it('a batch is refused over 64 KiB or over 128 receipts a list, before anything in it is used', () => {
    const one = signed({})
    const many = ReceiptBatch.encode({ issued: Array(MAX_RECEIPTS_PER_BATCH + 1).fill(one), presented: [] })
    expect(many.byteLength).toBeLessThan(MAX_RECEIPT_BATCH_BYTES)
    expect(() => decodeReceiptBatch(many)).toThrow(/not a valid ReceiptBatch/)
    expect(() => decodeReceiptBatch(new Uint8Array(MAX_RECEIPT_BATCH_BYTES + 1))).toThrow(/over the 65536-byte limit/)
    const ok = decodeReceiptBatch(ReceiptBatch.encode({ issued: [one], presented: [one, one] }))
    expect([ok.issued.length, ok.presented.length]).toEqual([1, 2])
  })
})
