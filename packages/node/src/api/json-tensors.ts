import { byteLength, DTYPES, elementCount, isDtype, ITEM_SIZE } from '@shoal/runtime'
import type { Dtype, Tensor } from '@shoal/runtime'
import { HttpError } from './api-server.js'

/** Integer types whose values JSON numbers cannot all hold: written and read as decimal strings. */
const WIDE = new Set<Dtype>(['int64', 'uint64'])

/**
 * A tensor as JSON (`POST /v1/infer`): `{dtype, dims, values}`, values flat in row-major order; int64
 * and uint64 values as decimal strings (a JSON number loses digits past 2^53), bool as true/false,
 * float16 not taken (its values have no JSON form here: send it as .npy).
 */
export function tensorFromJson (name: string, spec: any): Tensor {
  const where = `input "${name}"`
  if (typeof spec?.dtype !== 'string' || !isDtype(spec.dtype)) throw new HttpError(400, `${where}: dtype must be one of ${DTYPES.join(', ')}`)
  const dtype: Dtype = spec.dtype
  if (dtype === 'float16') throw new HttpError(400, `${where}: float16 values have no JSON form; send the tensor as .npy ({"npy": ...})`)
  if (!Array.isArray(spec.dims) || spec.dims.length > 8 || !spec.dims.every((d: unknown) => Number.isSafeInteger(d) && (d as number) >= 0)) throw new HttpError(400, `${where}: dims must be at most 8 whole numbers`)
  const dims: number[] = spec.dims
  let count: number
  try {
    count = elementCount(dims)
  } catch (err: any) {
    throw new HttpError(400, `${where}: ${String(err.message)}`)
  }
  if (!Array.isArray(spec.values) || spec.values.length !== count) throw new HttpError(400, `${where}: values must be a flat array of ${count} elements (dims [${dims.join(', ')}])`)
  const data = new Uint8Array(byteLength(dtype, dims))
  const view = new DataView(data.buffer)
  const size = ITEM_SIZE[dtype]
  spec.values.forEach((v: unknown, i: number) => {
    const at = i * size
    const bad = (): never => { throw new HttpError(400, `${where}: value ${i} (${JSON.stringify(v)?.slice(0, 32)}) is not a ${dtype}`) }
    if (WIDE.has(dtype)) {
      if ((typeof v !== 'string' || !/^-?\d{1,20}$/.test(v)) && !(typeof v === 'number' && Number.isSafeInteger(v))) bad()
      const big = BigInt(v as string | number)
      try {
        if (dtype === 'int64') view.setBigInt64(at, BigInt.asIntN(64, big) === big ? big : bad(), true)
        else view.setBigUint64(at, big >= 0n && BigInt.asUintN(64, big) === big ? big : bad(), true)
      } catch (err) {
        if (err instanceof HttpError) throw err
        bad()
      }
      return
    }
    if (dtype === 'bool') {
      if (typeof v !== 'boolean') bad()
      view.setUint8(at, v === true ? 1 : 0)
      return
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) bad()
    const n = v as number
    const integer = (min: number, max: number): void => { if (!Number.isInteger(n) || n < min || n > max) bad() }
    switch (dtype) {
      case 'float32': view.setFloat32(at, n, true); break
      case 'float64': view.setFloat64(at, n, true); break
      case 'int8': integer(-128, 127); view.setInt8(at, n); break
      case 'uint8': integer(0, 255); view.setUint8(at, n); break
      case 'int16': integer(-32768, 32767); view.setInt16(at, n, true); break
      case 'uint16': integer(0, 65535); view.setUint16(at, n, true); break
      case 'int32': integer(-(2 ** 31), 2 ** 31 - 1); view.setInt32(at, n, true); break
      case 'uint32': integer(0, 2 ** 32 - 1); view.setUint32(at, n, true); break
    }
  })
  return { dtype, dims, data }
}

/** A tensor as JSON: the inverse of `tensorFromJson` (float16 values read as numbers). */
export function tensorToJson (t: Tensor): { dtype: Dtype, dims: number[], values: Array<number | string | boolean> } {
  const view = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength)
  const size = ITEM_SIZE[t.dtype]
  const values: Array<number | string | boolean> = []
  for (let at = 0; at < t.data.byteLength; at += size) {
    switch (t.dtype) {
      case 'float32': values.push(view.getFloat32(at, true)); break
      case 'float64': values.push(view.getFloat64(at, true)); break
      case 'float16': values.push(halfToNumber(view.getUint16(at, true))); break
      case 'int8': values.push(view.getInt8(at)); break
      case 'uint8': values.push(view.getUint8(at)); break
      case 'int16': values.push(view.getInt16(at, true)); break
      case 'uint16': values.push(view.getUint16(at, true)); break
      case 'int32': values.push(view.getInt32(at, true)); break
      case 'uint32': values.push(view.getUint32(at, true)); break
      case 'int64': values.push(view.getBigInt64(at, true).toString()); break
      case 'uint64': values.push(view.getBigUint64(at, true).toString()); break
      case 'bool': values.push(view.getUint8(at) !== 0); break
    }
  }
  return { dtype: t.dtype, dims: t.dims, values }
}

function halfToNumber (h: number): number {
  const sign = (h & 0x8000) !== 0 ? -1 : 1
  const exponent = (h >> 10) & 0x1f
  const fraction = h & 0x3ff
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024)
  if (exponent === 31) return fraction === 0 ? sign * Infinity : NaN
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024)
}
