import { decodeMessage, encodeMessage, enumeration, MaxLengthError, message, streamMessage } from 'protons-runtime'
import { alloc as uint8ArrayAlloc } from 'uint8arrays/alloc'
import type { Codec, DecodeOptions } from 'protons-runtime'
import type { Uint8ArrayList } from 'uint8arraylist'

export interface TensorInfo {
  name: string
  dtype: string
  dims: bigint[]
  byteLength: bigint
}

export namespace TensorInfo {
  let _codec: Codec<TensorInfo>

  export const codec = (): Codec<TensorInfo> => {
    if (_codec == null) {
      _codec = message<TensorInfo>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if ((obj.name != null && obj.name !== '')) {
          w.uint32(10)
          w.string(obj.name)
        }

        if ((obj.dtype != null && obj.dtype !== '')) {
          w.uint32(18)
          w.string(obj.dtype)
        }

        if (obj.dims != null && obj.dims.length > 0) {
          w.uint32(26)
          w.fork()
          for (const value of obj.dims) {
            w.uint64(value)
          }
          w.ldelim()
        }

        if ((obj.byteLength != null && obj.byteLength !== 0n)) {
          w.uint32(32)
          w.uint64(obj.byteLength)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          name: '',
          dtype: '',
          dims: [],
          byteLength: 0n
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.name = reader.string()
              break
            }
            case 2: {
              obj.dtype = reader.string()
              break
            }
            case 3: {
              if ((tag & 7) === 2) {
                const packedEnd = reader.uint32() + reader.pos
                if (packedEnd > end) {
                  throw new Error('Decode error - packed field "dims" overruns its message')
                }
                while (reader.pos < packedEnd) {
              if (opts.limits?.dims != null && obj.dims.length === opts.limits.dims) {
                throw new MaxLengthError('Decode error - repeated field "dims" had too many elements')
              }

                  obj.dims.push(reader.uint64())
                }
                if (reader.pos !== packedEnd) {
                  throw new Error('Decode error - packed field "dims" ends inside a value')
                }
                break
              }

              if (opts.limits?.dims != null && obj.dims.length === opts.limits.dims) {
                throw new MaxLengthError('Decode error - repeated field "dims" had too many elements')
              }

              obj.dims.push(reader.uint64())
              break
            }
            case 4: {
              obj.byteLength = reader.uint64()
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
          dims: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.name`,
                value: reader.string()
              }
              break
            }
            case 2: {
              yield {
                field: `${prefix}.dtype`,
                value: reader.string()
              }
              break
            }
            case 3: {
              if ((tag & 7) === 2) {
                const packedEnd = reader.uint32() + reader.pos
                if (packedEnd > end) {
                  throw new Error('Streaming decode error - packed field "dims" overruns its message')
                }
                while (reader.pos < packedEnd) {
              if (opts.limits?.dims != null && obj.dims === opts.limits.dims) {
                throw new MaxLengthError('Streaming decode error - repeated field "dims" had too many elements')
              }

              yield {
                field: `${prefix}.dims[]`,
                index: obj.dims,
                value: reader.uint64()
              }

              obj.dims++

                }
                if (reader.pos !== packedEnd) {
                  throw new Error('Streaming decode error - packed field "dims" ends inside a value')
                }
                break
              }

              if (opts.limits?.dims != null && obj.dims === opts.limits.dims) {
                throw new MaxLengthError('Streaming decode error - repeated field "dims" had too many elements')
              }

              yield {
                field: `${prefix}.dims[]`,
                index: obj.dims,
                value: reader.uint64()
              }

              obj.dims++

              break
            }
            case 4: {
              yield {
                field: `${prefix}.byteLength`,
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

  export interface TensorInfoNameFieldEvent {
    field: '$.name'
    value: string
  }

  export interface TensorInfoDtypeFieldEvent {
    field: '$.dtype'
    value: string
  }

  export interface TensorInfoDimsFieldEvent {
    field: '$.dims[]'
    index: number
    value: bigint
  }

  export interface TensorInfoByteLengthFieldEvent {
    field: '$.byteLength'
    value: bigint
  }

  export function encode (obj: Partial<TensorInfo>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, TensorInfo.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TensorInfo>): TensorInfo {
    return decodeMessage(buf, TensorInfo.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<TensorInfo>): Generator<TensorInfoNameFieldEvent | TensorInfoDtypeFieldEvent | TensorInfoDimsFieldEvent | TensorInfoByteLengthFieldEvent> {
    return streamMessage(buf, TensorInfo.codec(), opts)
  }
}

export interface InferRequest {
  jobId: string
  pieceId: number
  modelCid: string
  inputs: TensorInfo[]
  deadlineMs: number
}

export namespace InferRequest {
  let _codec: Codec<InferRequest>

  export const codec = (): Codec<InferRequest> => {
    if (_codec == null) {
      _codec = message<InferRequest>((obj, w, opts = {}) => {
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

        if (obj.inputs != null && obj.inputs.length > 0) {
          for (const value of obj.inputs) {
            w.uint32(34)
            TensorInfo.codec().encode(value, w)
          }
        }

        if ((obj.deadlineMs != null && obj.deadlineMs !== 0)) {
          w.uint32(40)
          w.uint32(obj.deadlineMs)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          jobId: '',
          pieceId: 0,
          modelCid: '',
          inputs: [],
          deadlineMs: 0
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
              if (opts.limits?.inputs != null && obj.inputs.length === opts.limits.inputs) {
                throw new MaxLengthError('Decode error - repeated field "inputs" had too many elements')
              }

              obj.inputs.push(TensorInfo.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.inputs$
              }))
              break
            }
            case 5: {
              obj.deadlineMs = reader.uint32()
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
          inputs: 0
        }

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
              if (opts.limits?.inputs != null && obj.inputs === opts.limits.inputs) {
                throw new MaxLengthError('Streaming decode error - repeated field "inputs" had too many elements')
              }

              for (const evt of TensorInfo.codec().stream(reader, reader.uint32(), `${prefix}.inputs[]`, {
                limits: opts.limits?.inputs$
              })) {
                yield {
                  ...evt,
                  index: obj.inputs
                }
              }

              obj.inputs++

              break
            }
            case 5: {
              yield {
                field: `${prefix}.deadlineMs`,
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

  export interface InferRequestJobIdFieldEvent {
    field: '$.jobId'
    value: string
  }

  export interface InferRequestPieceIdFieldEvent {
    field: '$.pieceId'
    value: number
  }

  export interface InferRequestModelCidFieldEvent {
    field: '$.modelCid'
    value: string
  }

  export interface InferRequestInputsNameFieldEvent {
    field: '$.inputs[].name'
    value: string
    index: number
  }

  export interface InferRequestInputsDtypeFieldEvent {
    field: '$.inputs[].dtype'
    value: string
    index: number
  }

  export interface InferRequestInputsDimsFieldEvent {
    field: '$.inputs[].dims[]'
    index: number
    value: bigint
  }

  export interface InferRequestInputsByteLengthFieldEvent {
    field: '$.inputs[].byteLength'
    value: bigint
    index: number
  }

  export interface InferRequestDeadlineMsFieldEvent {
    field: '$.deadlineMs'
    value: number
  }

  export function encode (obj: Partial<InferRequest>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, InferRequest.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<InferRequest>): InferRequest {
    return decodeMessage(buf, InferRequest.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<InferRequest>): Generator<InferRequestJobIdFieldEvent | InferRequestPieceIdFieldEvent | InferRequestModelCidFieldEvent | InferRequestInputsNameFieldEvent | InferRequestInputsDtypeFieldEvent | InferRequestInputsDimsFieldEvent | InferRequestInputsByteLengthFieldEvent | InferRequestDeadlineMsFieldEvent> {
    return streamMessage(buf, InferRequest.codec(), opts)
  }
}

export interface InferResponse {
  code: InferResponse.Code
  message: string
  outputs: TensorInfo[]
  computeMs: number
  provider: string
  computeUs: number
  commitment: Uint8Array<ArrayBuffer>
  commitmentSignature: Uint8Array<ArrayBuffer>
}

export namespace InferResponse {
  export enum Code {
    OK = 'OK',
    MODEL_UNAVAILABLE = 'MODEL_UNAVAILABLE',
    BAD_INPUT = 'BAD_INPUT',
    OVERLOADED = 'OVERLOADED',
    DEADLINE_EXCEEDED = 'DEADLINE_EXCEEDED',
    INTERNAL = 'INTERNAL'
  }

  enum __CodeValues {
    OK = 0,
    MODEL_UNAVAILABLE = 1,
    BAD_INPUT = 2,
    OVERLOADED = 3,
    DEADLINE_EXCEEDED = 4,
    INTERNAL = 5
  }

  export namespace Code {
    export const codec = (): Codec<Code> => {
      return enumeration<Code>(__CodeValues)
    }
  }

  let _codec: Codec<InferResponse>

  export const codec = (): Codec<InferResponse> => {
    if (_codec == null) {
      _codec = message<InferResponse>((obj, w, opts = {}) => {
        if (opts.lengthDelimited !== false) {
          w.fork()
        }

        if (obj.code != null && __CodeValues[obj.code] !== 0) {
          w.uint32(8)
          InferResponse.Code.codec().encode(obj.code, w)
        }

        if ((obj.message != null && obj.message !== '')) {
          w.uint32(18)
          w.string(obj.message)
        }

        if (obj.outputs != null && obj.outputs.length > 0) {
          for (const value of obj.outputs) {
            w.uint32(26)
            TensorInfo.codec().encode(value, w)
          }
        }

        if ((obj.computeMs != null && obj.computeMs !== 0)) {
          w.uint32(32)
          w.uint32(obj.computeMs)
        }

        if ((obj.provider != null && obj.provider !== '')) {
          w.uint32(42)
          w.string(obj.provider)
        }

        if ((obj.computeUs != null && obj.computeUs !== 0)) {
          w.uint32(48)
          w.uint32(obj.computeUs)
        }

        if ((obj.commitment != null && obj.commitment.byteLength > 0)) {
          w.uint32(58)
          w.bytes(obj.commitment)
        }

        if ((obj.commitmentSignature != null && obj.commitmentSignature.byteLength > 0)) {
          w.uint32(66)
          w.bytes(obj.commitmentSignature)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          code: Code.OK,
          message: '',
          outputs: [],
          computeMs: 0,
          provider: '',
          computeUs: 0,
          commitment: uint8ArrayAlloc(0),
          commitmentSignature: uint8ArrayAlloc(0)
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              obj.code = InferResponse.Code.codec().decode(reader)
              break
            }
            case 2: {
              obj.message = reader.string()
              break
            }
            case 3: {
              if (opts.limits?.outputs != null && obj.outputs.length === opts.limits.outputs) {
                throw new MaxLengthError('Decode error - repeated field "outputs" had too many elements')
              }

              obj.outputs.push(TensorInfo.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.outputs$
              }))
              break
            }
            case 4: {
              obj.computeMs = reader.uint32()
              break
            }
            case 5: {
              obj.provider = reader.string()
              break
            }
            case 6: {
              obj.computeUs = reader.uint32()
              break
            }
            case 7: {
              obj.commitment = reader.bytes()
              break
            }
            case 8: {
              obj.commitmentSignature = reader.bytes()
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
          outputs: 0
        }

        const end = length == null ? reader.len : reader.pos + length

        while (reader.pos < end) {
          const tag = reader.uint32()

          switch (tag >>> 3) {
            case 1: {
              yield {
                field: `${prefix}.code`,
                value: InferResponse.Code.codec().decode(reader)
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
              if (opts.limits?.outputs != null && obj.outputs === opts.limits.outputs) {
                throw new MaxLengthError('Streaming decode error - repeated field "outputs" had too many elements')
              }

              for (const evt of TensorInfo.codec().stream(reader, reader.uint32(), `${prefix}.outputs[]`, {
                limits: opts.limits?.outputs$
              })) {
                yield {
                  ...evt,
                  index: obj.outputs
                }
              }

              obj.outputs++

              break
            }
            case 4: {
              yield {
                field: `${prefix}.computeMs`,
                value: reader.uint32()
              }
              break
            }
            case 5: {
              yield {
                field: `${prefix}.provider`,
                value: reader.string()
              }
              break
            }
            case 6: {
              yield {
                field: `${prefix}.computeUs`,
                value: reader.uint32()
              }
              break
            }
            case 7: {
              yield {
                field: `${prefix}.commitment`,
                value: reader.bytes()
              }
              break
            }
            case 8: {
              yield {
                field: `${prefix}.commitmentSignature`,
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

  export interface InferResponseCodeFieldEvent {
    field: '$.code'
    value: InferResponse.Code
  }

  export interface InferResponseMessageFieldEvent {
    field: '$.message'
    value: string
  }

  export interface InferResponseOutputsNameFieldEvent {
    field: '$.outputs[].name'
    value: string
    index: number
  }

  export interface InferResponseOutputsDtypeFieldEvent {
    field: '$.outputs[].dtype'
    value: string
    index: number
  }

  export interface InferResponseOutputsDimsFieldEvent {
    field: '$.outputs[].dims[]'
    index: number
    value: bigint
  }

  export interface InferResponseOutputsByteLengthFieldEvent {
    field: '$.outputs[].byteLength'
    value: bigint
    index: number
  }

  export interface InferResponseComputeMsFieldEvent {
    field: '$.computeMs'
    value: number
  }

  export interface InferResponseProviderFieldEvent {
    field: '$.provider'
    value: string
  }

  export interface InferResponseComputeUsFieldEvent {
    field: '$.computeUs'
    value: number
  }

  export interface InferResponseCommitmentFieldEvent {
    field: '$.commitment'
    value: Uint8Array<ArrayBuffer>
  }

  export interface InferResponseCommitmentSignatureFieldEvent {
    field: '$.commitmentSignature'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<InferResponse>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, InferResponse.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<InferResponse>): InferResponse {
    return decodeMessage(buf, InferResponse.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<InferResponse>): Generator<InferResponseCodeFieldEvent | InferResponseMessageFieldEvent | InferResponseOutputsNameFieldEvent | InferResponseOutputsDtypeFieldEvent | InferResponseOutputsDimsFieldEvent | InferResponseOutputsByteLengthFieldEvent | InferResponseComputeMsFieldEvent | InferResponseProviderFieldEvent | InferResponseComputeUsFieldEvent | InferResponseCommitmentFieldEvent | InferResponseCommitmentSignatureFieldEvent> {
    return streamMessage(buf, InferResponse.codec(), opts)
  }
}

export interface AnswerCommitment {
  jobId: string
  pieceId: number
  modelCid: string
  inputsSha256: Uint8Array<ArrayBuffer>
  outputs: TensorInfo[]
  outputsSha256: Uint8Array<ArrayBuffer>
}

export namespace AnswerCommitment {
  let _codec: Codec<AnswerCommitment>

  export const codec = (): Codec<AnswerCommitment> => {
    if (_codec == null) {
      _codec = message<AnswerCommitment>((obj, w, opts = {}) => {
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

        if ((obj.inputsSha256 != null && obj.inputsSha256.byteLength > 0)) {
          w.uint32(34)
          w.bytes(obj.inputsSha256)
        }

        if (obj.outputs != null && obj.outputs.length > 0) {
          for (const value of obj.outputs) {
            w.uint32(42)
            TensorInfo.codec().encode(value, w)
          }
        }

        if ((obj.outputsSha256 != null && obj.outputsSha256.byteLength > 0)) {
          w.uint32(50)
          w.bytes(obj.outputsSha256)
        }

        if (opts.lengthDelimited !== false) {
          w.ldelim()
        }
      }, (reader, length, opts = {}) => {
        const obj: any = {
          jobId: '',
          pieceId: 0,
          modelCid: '',
          inputsSha256: uint8ArrayAlloc(0),
          outputs: [],
          outputsSha256: uint8ArrayAlloc(0)
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
              obj.inputsSha256 = reader.bytes()
              break
            }
            case 5: {
              if (opts.limits?.outputs != null && obj.outputs.length === opts.limits.outputs) {
                throw new MaxLengthError('Decode error - repeated field "outputs" had too many elements')
              }

              obj.outputs.push(TensorInfo.codec().decode(reader, reader.uint32(), {
                limits: opts.limits?.outputs$
              }))
              break
            }
            case 6: {
              obj.outputsSha256 = reader.bytes()
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
          outputs: 0
        }

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
                field: `${prefix}.inputsSha256`,
                value: reader.bytes()
              }
              break
            }
            case 5: {
              if (opts.limits?.outputs != null && obj.outputs === opts.limits.outputs) {
                throw new MaxLengthError('Streaming decode error - repeated field "outputs" had too many elements')
              }

              for (const evt of TensorInfo.codec().stream(reader, reader.uint32(), `${prefix}.outputs[]`, {
                limits: opts.limits?.outputs$
              })) {
                yield {
                  ...evt,
                  index: obj.outputs
                }
              }

              obj.outputs++

              break
            }
            case 6: {
              yield {
                field: `${prefix}.outputsSha256`,
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

  export interface AnswerCommitmentJobIdFieldEvent {
    field: '$.jobId'
    value: string
  }

  export interface AnswerCommitmentPieceIdFieldEvent {
    field: '$.pieceId'
    value: number
  }

  export interface AnswerCommitmentModelCidFieldEvent {
    field: '$.modelCid'
    value: string
  }

  export interface AnswerCommitmentInputsSha256FieldEvent {
    field: '$.inputsSha256'
    value: Uint8Array<ArrayBuffer>
  }

  export interface AnswerCommitmentOutputsNameFieldEvent {
    field: '$.outputs[].name'
    value: string
    index: number
  }

  export interface AnswerCommitmentOutputsDtypeFieldEvent {
    field: '$.outputs[].dtype'
    value: string
    index: number
  }

  export interface AnswerCommitmentOutputsDimsFieldEvent {
    field: '$.outputs[].dims[]'
    index: number
    value: bigint
  }

  export interface AnswerCommitmentOutputsByteLengthFieldEvent {
    field: '$.outputs[].byteLength'
    value: bigint
    index: number
  }

  export interface AnswerCommitmentOutputsSha256FieldEvent {
    field: '$.outputsSha256'
    value: Uint8Array<ArrayBuffer>
  }

  export function encode (obj: Partial<AnswerCommitment>): Uint8Array<ArrayBuffer> {
    return encodeMessage(obj, AnswerCommitment.codec())
  }

  export function decode (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<AnswerCommitment>): AnswerCommitment {
    return decodeMessage(buf, AnswerCommitment.codec(), opts)
  }

  export function stream (buf: Uint8Array | Uint8ArrayList, opts?: DecodeOptions<AnswerCommitment>): Generator<AnswerCommitmentJobIdFieldEvent | AnswerCommitmentPieceIdFieldEvent | AnswerCommitmentModelCidFieldEvent | AnswerCommitmentInputsSha256FieldEvent | AnswerCommitmentOutputsNameFieldEvent | AnswerCommitmentOutputsDtypeFieldEvent | AnswerCommitmentOutputsDimsFieldEvent | AnswerCommitmentOutputsByteLengthFieldEvent | AnswerCommitmentOutputsSha256FieldEvent> {
    return streamMessage(buf, AnswerCommitment.codec(), opts)
  }
}
