import { decodeMessage, encodeMessage, enumeration, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface DirectRequest {
  protocol: string
  reuse: boolean
  port: number
  ticket: Uint8Array<ArrayBuffer>
  key: Uint8Array<ArrayBuffer>
}

export namespace DirectRequest {
  let _codec: Codec<DirectRequest>

  export const codec = (): Codec<DirectRequest> => {
    if (_codec == null) {
      _codec = message<DirectRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.protocol != null && obj.protocol !== '')) {
          w.uint32(10)
          w.string(obj.protocol)
        }

        if ((obj.reuse != null && obj.reuse !== false)) {
          w.uint32(16)
          w.bool(obj.reuse)
        }

        if ((obj.port != null && obj.port !== 0)) {
          w.uint32(24)
          w.uint32(obj.port)
        }

        if ((obj.ticket != null && obj.ticket.byteLength > 0)) {
          w.uint32(34)
          w.bytes(obj.ticket)
        }

        if ((obj.key != null && obj.key.byteLength > 0)) {
          w.uint32(42)
          w.bytes(obj.key)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          protocol: '',
          reuse: false,
          port: 0,
          ticket: uint8ArrayAlloc(0),
          key: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.protocol = reader.string()
              break
            }
            case 2: {
              obj.reuse = reader.bool()
              break
            }
            case 3: {
              obj.port = reader.uint32()
              break
            }
            case 4: {
              obj.ticket = reader.bytes()
              break
            }
            case 5: {
              obj.key = reader.bytes()
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
                field: `${prefix}.protocol`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.reuse`,
                value: reader.bool()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.port`,
                value: reader.uint32()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.ticket`,
                value: reader.bytes()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.key`,
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

  export interface DirectRequestProtocolFieldEvent {
    field: '$.protocol'
    value: string
  }

  export interface DirectRequestReuseFieldEvent {
    field: '$.reuse'
    value: boolean
  }

  export interface DirectRequestPortFieldEvent {
    field: '$.port'
    value: number
  }

  export interface DirectRequestTicketFieldEvent {
    field: '$.ticket'
    value: Uint8Array<ArrayBuffer>
  }

  export interface DirectRequestKeyFieldEvent {
    field: '$.key'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<DirectRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, DirectRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<DirectRequest>): DirectRequest {
    return decodeMessage(buf, DirectRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<DirectRequest>): Generator<DirectRequestProtocolFieldEvent | DirectRequestReuseFieldEvent | DirectRequestPortFieldEvent | DirectRequestTicketFieldEvent | DirectRequestKeyFieldEvent> {
    return streamMessage(buf, DirectRequest.codec(), opts)
  }
}

export interface DirectOffer {
  code: DirectOffer.Code
  message: string
  port: number
  ticket: Uint8Array<ArrayBuffer>
  key: Uint8Array<ArrayBuffer>
  ttlMs: number
  reuse: boolean
}

export namespace DirectOffer {
  export enum Code {
    OK = 'OK',
    UNAVAILABLE = 'UNAVAILABLE',
    BUSY = 'BUSY'
  }

  enum __CodeValues {
    OK = 0,
    UNAVAILABLE = 1,
    BUSY = 2
  }

  export namespace Code {
    export const codec = (): Codec<Code> => {
      return enumeration<Code>(__CodeValues)
    }
  }

  let _codec: Codec<DirectOffer>

  export const codec = (): Codec<DirectOffer> => {
    if (_codec == null) {
      _codec = message<DirectOffer>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.code != null && __CodeValues[obj.code] !== 0) {
          w.uint32(8)
          DirectOffer.Code.codec().encode(obj.code, w)
        }

        if ((obj.message != null && obj.message !== '')) {
          w.uint32(18)
          w.string(obj.message)
        }

        if ((obj.port != null && obj.port !== 0)) {
          w.uint32(24)
          w.uint32(obj.port)
        }

        if ((obj.ticket != null && obj.ticket.byteLength > 0)) {
          w.uint32(34)
          w.bytes(obj.ticket)
        }

        if ((obj.key != null && obj.key.byteLength > 0)) {
          w.uint32(42)
          w.bytes(obj.key)
        }

        if ((obj.ttlMs != null && obj.ttlMs !== 0)) {
          w.uint32(48)
          w.uint32(obj.ttlMs)
        }

        if ((obj.reuse != null && obj.reuse !== false)) {
          w.uint32(56)
          w.bool(obj.reuse)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          code: Code.OK,
          message: '',
          port: 0,
          ticket: uint8ArrayAlloc(0),
          key: uint8ArrayAlloc(0),
          ttlMs: 0,
          reuse: false
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.code = DirectOffer.Code.codec().decode(reader)
              break
            }
            case 2: {
              obj.message = reader.string()
              break
            }
            case 3: {
              obj.port = reader.uint32()
              break
            }
            case 4: {
              obj.ticket = reader.bytes()
              break
            }
            case 5: {
              obj.key = reader.bytes()
              break
            }
            case 6: {
              obj.ttlMs = reader.uint32()
              break
            }
            case 7: {
              obj.reuse = reader.bool()
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
                field: `${prefix}.code`,
                value: DirectOffer.Code.codec().decode(reader)
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.message`,
                value: reader.string()
              }
              break
            }
            case 3: {
              yield {
                field: `${prefix}.port`,
                value: reader.uint32()
              }
              break
            }
            case 4: {
              yield {
                field: `${prefix}.ticket`,
                value: reader.bytes()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.key`,
                value: reader.bytes()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.ttlMs`,
                value: reader.uint32()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.reuse`,
                value: reader.bool()
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

  export interface DirectOfferCodeFieldEvent {
    field: '$.code'
    value: DirectOffer.Code
  }

  export interface DirectOfferMessageFieldEvent {
    field: '$.message'
    value: string
  }

  export interface DirectOfferPortFieldEvent {
    field: '$.port'
    value: number
  }

  export interface DirectOfferTicketFieldEvent {
    field: '$.ticket'
    value: Uint8Array<ArrayBuffer>
  }

  export interface DirectOfferKeyFieldEvent {
    field: '$.key'
    value: Uint8Array<ArrayBuffer>
  }

  export interface DirectOfferTtlMsFieldEvent {
    field: '$.ttlMs'
    value: number
  }

  export interface DirectOfferReuseFieldEvent {
    field: '$.reuse'
    value: boolean
  }

  export function encode (obj: Partial<DirectOffer>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, DirectOffer.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<DirectOffer>): DirectOffer {
    return decodeMessage(buf, DirectOffer.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<DirectOffer>): Generator<DirectOfferCodeFieldEvent | DirectOfferMessageFieldEvent | DirectOfferPortFieldEvent | DirectOfferTicketFieldEvent | DirectOfferKeyFieldEvent | DirectOfferTtlMsFieldEvent | DirectOfferReuseFieldEvent> {
    return streamMessage(buf, DirectOffer.codec(), opts)
  }
}
