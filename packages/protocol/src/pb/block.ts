import { decodeMessage, encodeMessage, enumeration, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface BlockRequest {
  cid: Uint8Array<ArrayBuffer>
}

export namespace BlockRequest {
  let _codec: Codec<BlockRequest>

  export const codec = (): Codec<BlockRequest> => {
    if (_codec == null) {
      _codec = message<BlockRequest>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.cid != null && obj.cid.byteLength > 0)) {
          w.uint32(10)
          w.bytes(obj.cid)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          cid: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.cid = reader.bytes()
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
                field: `${prefix}.cid`,
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

  export interface BlockRequestCidFieldEvent {
    field: '$.cid'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<BlockRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, BlockRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<BlockRequest>): BlockRequest {
    return decodeMessage(buf, BlockRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<BlockRequest>): Generator<BlockRequestCidFieldEvent> {
    return streamMessage(buf, BlockRequest.codec(), opts)
  }
}

export interface BlockResponse {
  code: BlockResponse.Code
  size: number
}

export namespace BlockResponse {
  export enum Code {
    OK = 'OK',
    DONT_HAVE = 'DONT_HAVE',
    BUSY = 'BUSY',
    BAD_REQUEST = 'BAD_REQUEST'
  }

  enum __CodeValues {
    OK = 0,
    DONT_HAVE = 1,
    BUSY = 2,
    BAD_REQUEST = 3
  }

  export namespace Code {
    export const codec = (): Codec<Code> => {
      return enumeration<Code>(__CodeValues)
    }
  }

  let _codec: Codec<BlockResponse>

  export const codec = (): Codec<BlockResponse> => {
    if (_codec == null) {
      _codec = message<BlockResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.code != null && __CodeValues[obj.code] !== 0) {
          w.uint32(8)
          BlockResponse.Code.codec().encode(obj.code, w)
        }

        if ((obj.size != null && obj.size !== 0)) {
          w.uint32(16)
          w.uint32(obj.size)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          code: Code.OK,
          size: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.code = BlockResponse.Code.codec().decode(reader)
              break
            }
            case 2: {
              obj.size = reader.uint32()
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
                value: BlockResponse.Code.codec().decode(reader)
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.size`,
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

  export interface BlockResponseCodeFieldEvent {
    field: '$.code'
    value: BlockResponse.Code
  }

  export interface BlockResponseSizeFieldEvent {
    field: '$.size'
    value: number
  }

  export function encode (obj: Partial<BlockResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, BlockResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<BlockResponse>): BlockResponse {
    return decodeMessage(buf, BlockResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<BlockResponse>): Generator<BlockResponseCodeFieldEvent | BlockResponseSizeFieldEvent> {
    return streamMessage(buf, BlockResponse.codec(), opts)
  }
}
