import { decodeMessage, encodeMessage, enumeration, MaxLengthError, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface Receipt {
  jobId: string
  pieceId: number
  modelCid: string
  worker: Uint8Array<ArrayBuffer>
  submitter: Uint8Array<ArrayBuffer>
  rows: number
  work: bigint
  verified: Receipt.Verification
  outputsSha256: Uint8Array<ArrayBuffer>
  issuedAtMs: bigint
}

export namespace Receipt {
  export enum Verification {
    UNCHECKED = 'UNCHECKED',
    SPOT = 'SPOT',
    QUORUM = 'QUORUM',
    CANARY = 'CANARY'
  }

  enum __VerificationValues {
    UNCHECKED = 0,
    SPOT = 1,
    QUORUM = 2,
    CANARY = 3
  }

  export namespace Verification {
    export const codec = (): Codec<Verification> => {
      return enumeration<Verification>(__VerificationValues)
    }
  }

  let _codec: Codec<Receipt>

  export const codec = (): Codec<Receipt> => {
    if (_codec == null) {
      _codec = message<Receipt>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.jobId != null && obj.jobId !== '')) {
          w.uint32(10)
          w.string(obj.jobId)
        }

        if ((obj.pieceId != null && obj.pieceId !== 0)) {
          w.uint32(16)
          w.uint32(obj.pieceId)
        }

        if ((obj.modelCid != null && obj.modelCid !== '')) {
          w.uint32(26)
          w.string(obj.modelCid)
        }

        if ((obj.worker != null && obj.worker.byteLength > 0)) {
          w.uint32(34)
          w.bytes(obj.worker)
        }

        if ((obj.submitter != null && obj.submitter.byteLength > 0)) {
          w.uint32(42)
          w.bytes(obj.submitter)
        }

        if ((obj.rows != null && obj.rows !== 0)) {
          w.uint32(48)
          w.uint32(obj.rows)
        }

        if ((obj.work != null && obj.work !== 0n)) {
          w.uint32(56)
          w.uint64(obj.work)
        }

        if (obj.verified != null && __VerificationValues[obj.verified] !== 0) {
          w.uint32(64)
          Receipt.Verification.codec().encode(obj.verified, w)
        }

        if ((obj.outputsSha256 != null && obj.outputsSha256.byteLength > 0)) {
          w.uint32(74)
          w.bytes(obj.outputsSha256)
        }

        if ((obj.issuedAtMs != null && obj.issuedAtMs !== 0n)) {
          w.uint32(80)
          w.uint64(obj.issuedAtMs)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          jobId: '',
          pieceId: 0,
          modelCid: '',
          worker: uint8ArrayAlloc(0),
          submitter: uint8ArrayAlloc(0),
          rows: 0,
          work: 0n,
          verified: Verification.UNCHECKED,
          outputsSha256: uint8ArrayAlloc(0),
          issuedAtMs: 0n
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.jobId = reader.string()
              break
            }
            case 2: {
              obj.pieceId = reader.uint32()
              break
            }
            case 3: {
              obj.modelCid = reader.string()
              break
            }
            case 4: {
              obj.worker = reader.bytes()
              break
            }
            case 5: {
              obj.submitter = reader.bytes()
              break
            }
            case 6: {
              obj.rows = reader.uint32()
              break
            }
            case 7: {
              obj.work = reader.uint64()
              break
            }
            case 8: {
              obj.verified = Receipt.Verification.codec().decode(reader)
              break
            }
            case 9: {
              obj.outputsSha256 = reader.bytes()
              break
            }
            case 10: {
              obj.issuedAtMs = reader.uint64()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.jobId`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.pieceId`,
                value: reader.uint32()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.modelCid`,
                value: reader.string()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.worker`,
                value: reader.bytes()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.submitter`,
                value: reader.bytes()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.rows`,
                value: reader.uint32()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.work`,
                value: reader.uint64()
              }
              break
            }
            case 8: {
              yield {
                field: `${prefix}.verified`,
                value: Receipt.Verification.codec().decode(reader)
              }
              break
            }
            case 9: {
              yield {
                field: `${prefix}.outputsSha256`,
                value: reader.bytes()
              }
              break
            }
            case 10: {
              yield {
                field: `${prefix}.issuedAtMs`,
                value: reader.uint64()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface ReceiptJobIdFieldEvent {
    field: '$.jobId'
    value: string
  }

  export interface ReceiptPieceIdFieldEvent {
    field: '$.pieceId'
    value: number
  }

  export interface ReceiptModelCidFieldEvent {
    field: '$.modelCid'
    value: string
  }

  export interface ReceiptWorkerFieldEvent {
    field: '$.worker'
    value: Uint8Array<ArrayBuffer>
  }

  export interface ReceiptSubmitterFieldEvent {
    field: '$.submitter'
    value: Uint8Array<ArrayBuffer>
  }

  export interface ReceiptRowsFieldEvent {
    field: '$.rows'
    value: number
  }

  export interface ReceiptWorkFieldEvent {
    field: '$.work'
    value: bigint
  }

  export interface ReceiptVerifiedFieldEvent {
    field: '$.verified'
    value: Receipt.Verification
  }

  export interface ReceiptOutputsSha256FieldEvent {
    field: '$.outputsSha256'
    value: Uint8Array<ArrayBuffer>
  }

  export interface ReceiptIssuedAtMsFieldEvent {
    field: '$.issuedAtMs'
    value: bigint
  }

  export function encode (obj: Partial<Receipt>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, Receipt.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Receipt>): Receipt {
    return decodeMessage(buf, Receipt.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<Receipt>): Generator<ReceiptJobIdFieldEvent | ReceiptPieceIdFieldEvent | ReceiptModelCidFieldEvent | ReceiptWorkerFieldEvent | ReceiptSubmitterFieldEvent | ReceiptRowsFieldEvent | ReceiptWorkFieldEvent | ReceiptVerifiedFieldEvent | ReceiptOutputsSha256FieldEvent | ReceiptIssuedAtMsFieldEvent> {
    return streamMessage(buf, Receipt.codec(), opts)
  }
}

export interface SignedReceipt {
  receipt: Uint8Array<ArrayBuffer>
  signature: Uint8Array<ArrayBuffer>
}

export namespace SignedReceipt {
  let _codec: Codec<SignedReceipt>

  export const codec = (): Codec<SignedReceipt> => {
    if (_codec == null) {
      _codec = message<SignedReceipt>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.receipt != null && obj.receipt.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.receipt)
        }

        if ((obj.signature != null && obj.signature.byteLength > 0)) {
          w.uint32(18)
          w.bytes(obj.signature)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          receipt: uint8ArrayAlloc(0),
          signature: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.receipt = reader.bytes()
              break
            }
            case 2: {
              obj.signature = reader.bytes()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.receipt`,
                value: reader.bytes()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.signature`,
                value: reader.bytes()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface SignedReceiptReceiptFieldEvent {
    field: '$.receipt'
    value: Uint8Array<ArrayBuffer>
  }

  export interface SignedReceiptSignatureFieldEvent {
    field: '$.signature'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<SignedReceipt>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, SignedReceipt.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SignedReceipt>): SignedReceipt {
    return decodeMessage(buf, SignedReceipt.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<SignedReceipt>): Generator<SignedReceiptReceiptFieldEvent | SignedReceiptSignatureFieldEvent> {
    return streamMessage(buf, SignedReceipt.codec(), opts)
  }
}

export interface ReceiptBatch {
  issued: SignedReceipt[]
  presented: SignedReceipt[]
}

export namespace ReceiptBatch {
  let _codec: Codec<ReceiptBatch>

  export const codec = (): Codec<ReceiptBatch> => {
    if (_codec == null) {
      _codec = message<ReceiptBatch>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.issued != null && obj.issued.length > 0) {
          for (const value of obj.issued) {
            w.uint32(10)
            SignedReceipt.codec().encode(value, w)
          }
        }

        if (obj.presented != null && obj.presented.length > 0) {
          for (const value of obj.presented) {
            w.uint32(18)
            SignedReceipt.codec().encode(value, w)
          }
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          issued: [],
          presented: []
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.issued != null && obj.issued.length === opts.limits.issued) {
                throw new MaxLengthError('Decode error - repeated field "issued" had too many elements')
              }

              obj.issued.push(SignedReceipt.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.issued$
              }))
              break
            }
            case 2: {
              if (opts.limits?.presented != null && obj.presented.length === opts.limits.presented) {
                throw new MaxLengthError('Decode error - repeated field "presented" had too many elements')
              }

              obj.presented.push(SignedReceipt.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.presented$
              }))
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const obj = {
          issued: 0,
          presented: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              if (opts.limits?.issued != null && obj.issued === opts.limits.issued) {
                throw new MaxLengthError('Streaming decode error - repeated field "issued" had too many elements')
              }

              for (const evt of SignedReceipt.codec().stream(reader, reader.uint32(), `${prefix}.issued[]`, {
                limits: opts.limits?.issued$
              })) {
                yield {
                  ...evt,
                  index: obj.issued
                }
              }

              obj.issued++

              break
            }
            case 2: {
              if (opts.limits?.presented != null && obj.presented === opts.limits.presented) {
                throw new MaxLengthError('Streaming decode error - repeated field "presented" had too many elements')
              }

              for (const evt of SignedReceipt.codec().stream(reader, reader.uint32(), `${prefix}.presented[]`, {
                limits: opts.limits?.presented$
              })) {
                yield {
                  ...evt,
                  index: obj.presented
                }
              }

              obj.presented++

              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface ReceiptBatchIssuedReceiptFieldEvent {
    field: '$.issued[].receipt'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface ReceiptBatchIssuedSignatureFieldEvent {
    field: '$.issued[].signature'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface ReceiptBatchPresentedReceiptFieldEvent {
    field: '$.presented[].receipt'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export interface ReceiptBatchPresentedSignatureFieldEvent {
    field: '$.presented[].signature'
    value: Uint8Array<ArrayBuffer>
    index: number
  }

  export function encode (obj: Partial<ReceiptBatch>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ReceiptBatch.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ReceiptBatch>): ReceiptBatch {
    return decodeMessage(buf, ReceiptBatch.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ReceiptBatch>): Generator<ReceiptBatchIssuedReceiptFieldEvent | ReceiptBatchIssuedSignatureFieldEvent | ReceiptBatchPresentedReceiptFieldEvent | ReceiptBatchPresentedSignatureFieldEvent> {
    return streamMessage(buf, ReceiptBatch.codec(), opts)
  }
}

export interface ReceiptAck {
  issuedKept: number
  presentedKept: number
}

export namespace ReceiptAck {
  let _codec: Codec<ReceiptAck>

  export const codec = (): Codec<ReceiptAck> => {
    if (_codec == null) {
      _codec = message<ReceiptAck>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.issuedKept != null && obj.issuedKept !== 0)) {
          w.uint32(8)
          w.uint32(obj.issuedKept)
        }

        if ((obj.presentedKept != null && obj.presentedKept !== 0)) {
          w.uint32(16)
          w.uint32(obj.presentedKept)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          issuedKept: 0,
          presentedKept: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.issuedKept = reader.uint32()
              break
            }
            case 2: {
              obj.presentedKept = reader.uint32()
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }

        return obj
      }, function * (reader, length, prefix, opts = {}) {
        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.issuedKept`,
                value: reader.uint32()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.presentedKept`,
                value: reader.uint32()
              }
              break
            }
            default: {
              reader.skipType(tag & 7)
              break
            }
          }
        }
      })
    }

    return _codec
  }

  export interface ReceiptAckIssuedKeptFieldEvent {
    field: '$.issuedKept'
    value: number
  }

  export interface ReceiptAckPresentedKeptFieldEvent {
    field: '$.presentedKept'
    value: number
  }

  export function encode (obj: Partial<ReceiptAck>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, ReceiptAck.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ReceiptAck>): ReceiptAck {
    return decodeMessage(buf, ReceiptAck.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<ReceiptAck>): Generator<ReceiptAckIssuedKeptFieldEvent | ReceiptAckPresentedKeptFieldEvent> {
    return streamMessage(buf, ReceiptAck.codec(), opts)
  }
}
