import type { Tensor } from './tensor.js'

/**
 * How far results may drift between execution providers or hardware (docs/architecture.md, "Batch
 * jobs"): float outputs agree when |a - b| <= atol + rtol x |b| element by element, as numpy.allclose
 * says, with rtol 1e-3 and atol 1e-5 by default. A GPU sums a MatMul's products in another order than
 * the CPU, so the last bits of float32 results differ; on one provider and build results are compared
 * bit for bit instead. Integer and bool outputs must be equal.
 */
export const DEFAULT_TOLERANCE = { rtol: 1e-3, atol: 1e-5 }

export interface Closeness {
  ok: boolean
  /** Largest |a - b| over all elements (0 for integer and bool tensors that are equal). */
  maxAbsDiff: number
  /** Why not, when not ok. */
  reason?: string
}

function values (t: Tensor): ArrayLike<number> | undefined {
  const { buffer, byteOffset, byteLength } = t.data
  if (t.dtype === 'float32' && byteOffset % 4 === 0) return new Float32Array(buffer, byteOffset, byteLength / 4)
  if (t.dtype === 'float32') return new Float32Array(t.data.slice().buffer)
  if (t.dtype === 'float64') return new Float64Array(t.data.slice().buffer)
  return undefined
}

/** Whether `a` (a result) is close enough to `b` (the reference); float16 is compared bit for bit. */
export function allClose (a: Tensor, b: Tensor, tolerance = DEFAULT_TOLERANCE): Closeness {
  if (a.dtype !== b.dtype) return { ok: false, maxAbsDiff: Infinity, reason: `dtype ${a.dtype} against ${b.dtype}` }
  if (a.dims.join() !== b.dims.join()) return { ok: false, maxAbsDiff: Infinity, reason: `shape [${a.dims.join(', ')}] against [${b.dims.join(', ')}]` }
  const x = values(a)
  const y = values(b)
  if (x == null || y == null) {
    const equal = Buffer.from(a.data).equals(Buffer.from(b.data))
    return equal ? { ok: true, maxAbsDiff: 0 } : { ok: false, maxAbsDiff: Infinity, reason: `${a.dtype} values differ (compared exactly)` }
  }
  let maxAbsDiff = 0
  let firstBad = -1
  for (let i = 0; i < x.length; i++) {
    const diff = Math.abs(x[i] - y[i])
    // NaN where the reference has NaN is agreement; anywhere else it is not
    if (Number.isNaN(diff)) {
      if (Number.isNaN(x[i]) && Number.isNaN(y[i])) continue
      if (firstBad < 0) firstBad = i
      maxAbsDiff = Infinity
      continue
    }
    if (diff > maxAbsDiff) maxAbsDiff = diff
    if (diff > tolerance.atol + tolerance.rtol * Math.abs(y[i]) && firstBad < 0) firstBad = i
  }
  if (firstBad < 0) return { ok: true, maxAbsDiff }
  return { ok: false, maxAbsDiff, reason: `element ${firstBad} is ${x[firstBad]} against ${y[firstBad]} (rtol ${tolerance.rtol}, atol ${tolerance.atol})` }
}
