/**
 * Tensors as Shoal moves them: a dtype, dims and the elements' little-endian bytes. This is the form
 * .npy files, the wire protocol and ONNX Runtime sessions convert from and to.
 */
import { DTYPE_SIZES } from '@shoal/protocol'
import type { WireDtype } from '@shoal/protocol'

/** The element types Shoal carries: ONNX Runtime's names, as the wire protocol spells them. */
export type Dtype = WireDtype

export interface Tensor {
  dtype: Dtype
  dims: number[]
  /** Row-major (C order), little-endian element bytes: exactly product(dims) x itemSize(dtype). */
  data: Uint8Array
}

export const ITEM_SIZE: Record<Dtype, number> = DTYPE_SIZES

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

/** Bytes of one row along axis 0. */
export function rowBytes (tensor: Pick<Tensor, 'dtype' | 'dims'>): number {
  return byteLength(tensor.dtype, tensor.dims.slice(1))
}

/** Rows [start, start + rows) along axis 0, as a view (no copy). */
export function sliceRows (tensor: Tensor, start: number, rows: number): Tensor {
  if (tensor.dims.length === 0) throw new RangeError('a scalar has no rows to split')
  const total = tensor.dims[0]
  if (start < 0 || rows < 0 || start + rows > total) throw new RangeError(`rows ${start}-${start + rows - 1} are outside 0-${total - 1}`)
  const size = rowBytes(tensor)
  return { dtype: tensor.dtype, dims: [rows, ...tensor.dims.slice(1)], data: tensor.data.subarray(start * size, (start + rows) * size) }
}

/** Joins tensors along axis 0; they must agree on dtype and on every other dimension. */
export function concatRows (parts: Tensor[]): Tensor {
  if (parts.length === 0) throw new RangeError('nothing to join')
  const [first] = parts
  const rest = first.dims.slice(1).join(',')
  for (const p of parts) {
    if (p.dtype !== first.dtype || p.dims.length === 0 || p.dims.slice(1).join(',') !== rest) {
      throw new RangeError(`cannot join [${p.dims.join(', ')}] ${p.dtype} to [${first.dims.join(', ')}] ${first.dtype} along axis 0`)
    }
  }
  const data = new Uint8Array(parts.reduce((n, p) => n + p.data.byteLength, 0))
  let offset = 0
  for (const p of parts) {
    data.set(p.data, offset)
    offset += p.data.byteLength
  }
  return { dtype: first.dtype, dims: [parts.reduce((n, p) => n + p.dims[0], 0), ...first.dims.slice(1)], data }
}

/**
 * A deterministic float32 batch in [0, 1) of the given shape (a linear congruential generator seeded
 * with `seed`): inputs for demos, benchmarks, simulations and tests that must be the same everywhere.
 */
export function syntheticBatch (dims: number[], seed = 12345): Tensor {
  const values = new Float32Array(elementCount(dims))
  let state = seed >>> 0
  for (let i = 0; i < values.length; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0
    values[i] = (state >>> 8) / 2 ** 24
  }
  return { dtype: 'float32', dims: [...dims], data: new Uint8Array(values.buffer) }
}
