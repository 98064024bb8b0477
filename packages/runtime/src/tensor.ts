/**
 * Tensors as Shoal moves them: a dtype, dims and the elements' little-endian bytes. This is the form
 * .npy files, the wire protocol and ONNX Runtime sessions convert from and to.
 */
export type Dtype = 'float32' | 'float16' | 'float64' | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64' | 'bool'

export interface Tensor {
  dtype: Dtype
  dims: number[]
  /** Row-major (C order), little-endian element bytes: exactly product(dims) x itemSize(dtype). */
  data: Uint8Array
}

export const ITEM_SIZE: Record<Dtype, number> = {
  float32: 4, float16: 2, float64: 8, int8: 1, uint8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, int64: 8, uint64: 8, bool: 1
}

export const DTYPES = Object.keys(ITEM_SIZE) as Dtype[]

export function isDtype (value: string): value is Dtype {
  return Object.hasOwn(ITEM_SIZE, value)
}

/** Number of elements; throws on a negative, fractional or unsafe dimension. */
export function elementCount (dims: readonly number[]): number {
  let count = 1
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw new RangeError(`invalid dimension ${d}`)
    count *= d
    if (!Number.isSafeInteger(count)) throw new RangeError(`shape [${dims.join(', ')}] has too many elements`)
  }
  return count
}

export function byteLength (dtype: Dtype, dims: readonly number[]): number {
  return elementCount(dims) * ITEM_SIZE[dtype]
}
