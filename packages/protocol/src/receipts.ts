/**
 * Receipts (docs/protocol.md 6.4): what a submitter signs for a piece of work it accepted from a
 * worker. The worker keeps them as its proof of work done; a node weighs a peer's requests by what it
 * signed for that peer itself and, capped, by what peers it dealt with signed (docs/trust.md,
 * "Credit"). Pure: encoding and checks here, signing and verifying with peers' keys in @shoal/node.
 */
import { concat } from 'uint8arrays/concat'
import { equals } from 'uint8arrays/equals'
import { fromString as uint8ArrayFromString } from 'uint8arrays/from-string'
import { MAX_ID_LENGTH, MAX_RECEIPT_BATCH_BYTES, MAX_RECEIPT_BYTES, MAX_RECEIPT_CLOCK_SKEW_MS, MAX_RECEIPT_WORK_PER_ROW, MAX_RECEIPTS_PER_BATCH } from './constants.js'
import { InvalidMessageError } from './errors.js'
import { Receipt, ReceiptBatch } from './pb/receipt.js'
import type { SignedReceipt } from './pb/receipt.js'

/**
 * The signature covers these bytes followed by the encoded receipt: no other message a peer signs (a
 * capacity ad, an answer's commitment, a name record) can pass as a receipt, nor a receipt as one.
 */
export const RECEIPT_PREFIX = uint8ArrayFromString('shoal-receipt:')

/** The bytes a submitter signs for a receipt. */
export function receiptPayload (receipt: Uint8Array): Uint8Array {
  return concat([RECEIPT_PREFIX, receipt])
}

/** A ReceiptBatch frame, decoded within its limits; throws InvalidMessageError. */
export function decodeReceiptBatch (bytes: Uint8Array): ReceiptBatch {
  if (bytes.byteLength > MAX_RECEIPT_BATCH_BYTES) throw new InvalidMessageError('too-large', `a receipt batch of ${bytes.byteLength} bytes is over the ${MAX_RECEIPT_BATCH_BYTES}-byte limit`)
  try {
    return ReceiptBatch.decode(bytes, { limits: { issued: MAX_RECEIPTS_PER_BATCH, presented: MAX_RECEIPTS_PER_BATCH } })
  } catch (err: any) {
    throw new InvalidMessageError('malformed', `not a valid ReceiptBatch (${err.message})`)
  }
}

/** What a receiver expects of a receipt: whose work it states, and who signed it (binary peer ids), if it knows. */
export interface ReceiptExpectation {
  worker?: Uint8Array
  submitter?: Uint8Array
  /** The receiver's clock, ms since the Unix epoch. */
  now: number
}

/**
 * A signed receipt's decoded receipt, or why it is not one to keep: not a valid Receipt, bigger than
 * its fields need, ids too long, no rows or no work, more work a row than any model, a hash that is
 * not sha2-256, dated ahead of the receiver's clock, a worker that signed for itself, or another
 * worker or submitter than expected. The signature is the caller's to check (with the submitter's key).
 */
export function checkReceipt (signed: SignedReceipt, expected: ReceiptExpectation): Receipt | string {
  const bytes = signed.receipt
  if (bytes.byteLength > MAX_RECEIPT_BYTES) return `a receipt of ${bytes.byteLength} bytes is over the ${MAX_RECEIPT_BYTES}-byte limit`
  let r: Receipt
  try {
    r = Receipt.decode(bytes)
  } catch (err: any) {
    return `not a valid Receipt (${err.message})`
  }
  if (bytes.byteLength > Receipt.encode(r).byteLength + 64) return 'the receipt carries more bytes than its fields need'
  if (r.jobId.length === 0 || r.jobId.length > MAX_ID_LENGTH || r.modelCid.length === 0 || r.modelCid.length > MAX_ID_LENGTH) return 'the receipt\'s job id or model CID is empty or too long'
  if (r.worker.byteLength === 0 || r.submitter.byteLength === 0 || r.worker.byteLength > MAX_ID_LENGTH || r.submitter.byteLength > MAX_ID_LENGTH) return 'the receipt\'s worker or submitter is not a peer id'
  if (equals(r.worker, r.submitter)) return 'the receipt is for work a node did for itself'
  if (r.rows < 1) return 'the receipt states no rows'
  if (r.work < 1n || r.work > BigInt(r.rows) * BigInt(MAX_RECEIPT_WORK_PER_ROW)) return `the receipt states ${r.work} work units for ${r.rows} rows`
  if (r.outputsSha256.byteLength !== 0 && r.outputsSha256.byteLength !== 32) return 'the receipt\'s outputs hash is not a sha2-256'
  if (r.issuedAtMs > BigInt(Math.floor(expected.now + MAX_RECEIPT_CLOCK_SKEW_MS))) return 'the receipt is dated ahead of this node\'s clock'
  if (expected.worker != null && !equals(r.worker, expected.worker)) return 'the receipt is for another worker'
  if (expected.submitter != null && !equals(r.submitter, expected.submitter)) return 'the receipt is signed for another submitter'
  return r
}
