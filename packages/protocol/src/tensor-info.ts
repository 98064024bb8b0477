import { InvalidMessageError } from './errors.js'
import { MAX_TENSOR_DIMS, MAX_TENSORS_PER_MESSAGE, MAX_TENSOR_NAME_LENGTH } from './constants.js'
import type { TensorInfo } from './pb/infer.js'

/** Element size in bytes of every dtype Shoal carries; the wire names are ONNX Runtime's. */
export const DTYPE_SIZES = {
  float32: 4, float16: 2, float64: 8, int8: 1, uint8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, int64: 8, uint64: 8, bool: 1
} as const

export type WireDtype = keyof typeof DTYPE_SIZES

/** A validated TensorInfo: plain numbers instead of bigints. */
export interface TensorHeader {
  name: string
  dtype: WireDtype
  dims: number[]
  byteLength: number
}

/**
 * Checks a message's tensor list before anything proportional to it is allocated: known dtypes, a
 * sane number of dims, byte lengths equal to shape x item size, unique names, and a total within
 * `maxTotalBytes`. Throws InvalidMessageError (reason 'bad-tensor' or 'too-large').
 */
export function validateTensorInfos (infos: TensorInfo[], maxTotalBytes: number, what: string): TensorHeader[] {
  if (infos.length > MAX_TENSORS_PER_MESSAGE) throw new InvalidMessageError('bad-tensor', `${what}: ${infos.length} tensors, at most ${MAX_TENSORS_PER_MESSAGE}`)
  const names = new Set<string>()
  let total = 0
  const headers = infos.map(info => {
    const where = `${what} tensor "${info.name.slice(0, 64)}"`
    if (info.name.length === 0 || info.name.length > MAX_TENSOR_NAME_LENGTH) throw new InvalidMessageError('bad-tensor', `${where}: name must be 1-${MAX_TENSOR_NAME_LENGTH} characters`)
    if (names.has(info.name)) throw new InvalidMessageError('bad-tensor', `${where}: named twice`)
    names.add(info.name)
    if (!Object.hasOwn(DTYPE_SIZES, info.dtype)) throw new InvalidMessageError('bad-tensor', `${where}: unknown dtype "${info.dtype.slice(0, 32)}"`)
    if (info.dims.length > MAX_TENSOR_DIMS) throw new InvalidMessageError('bad-tensor', `${where}: ${info.dims.length} dimensions, at most ${MAX_TENSOR_DIMS}`)
    let elements = 1n
    for (const d of info.dims) elements *= d
    const expected = elements * BigInt(DTYPE_SIZES[info.dtype as WireDtype])
    if (expected !== info.byteLength) throw new InvalidMessageError('bad-tensor', `${where}: shape [${info.dims.join(', ')}] of ${info.dtype} is ${expected} bytes, the message says ${info.byteLength}`)
    if (info.byteLength > BigInt(maxTotalBytes)) throw new InvalidMessageError('too-large', `${where}: ${info.byteLength} bytes is over the limit of ${maxTotalBytes}`)
    total += Number(info.byteLength)
    if (total > maxTotalBytes) throw new InvalidMessageError('too-large', `${what}: ${total}+ bytes of tensors is over the limit of ${maxTotalBytes}`)
    return { name: info.name, dtype: info.dtype as WireDtype, dims: info.dims.map(Number), byteLength: Number(info.byteLength) }
  })
  return headers
}

export function toTensorInfo (header: Omit<TensorHeader, 'byteLength'> & { byteLength: number }): TensorInfo {
  return { name: header.name, dtype: header.dtype, dims: header.dims.map(BigInt), byteLength: BigInt(header.byteLength) }
}
