import { ITEM_SIZE } from './tensor.js'
import type { Tensor } from './tensor.js'

/**
 * How far results may drift between execution providers or hardware (docs/architecture.md, "Batch
 * jobs"): float outputs agree when |a - b| <= atol + rtol x |b| element by element, as numpy.allclose
 * says, with rtol 1e-3 and atol 1e-5 by default. A GPU sums a MatMul's products in another order than
 * the CPU, so the last bits of float32 results differ; on one provider and build results are compared
 * bit for bit instead. Integer and bool outputs must be equal.
 */
export const DEFAULT_TOLERANCE = { rtol: 1e-3, atol: 1e-5 }

/**
 * The tolerance result verification checks a peer's answer with (docs/trust.md): tighter than
 * DEFAULT_TOLERANCE, so that an answer scaled by 1 + 1e-3 is a disagreement. 1e-4 relative is tens of
 * float32 ulps; whether CPU and WebGPU results stay within it is what `scripts/device-run.sh`
 * measures (the GPU benchmark prints the largest difference).
 */
export const VERIFY_TOLERANCE = { rtol: 1e-4, atol: 1e-6 }

/**
 * The least tolerance float16 outputs are compared with: a float16 has 11 significant bits, so one ulp
 * is about 1e-3 relative (VERIFY_TOLERANCE's 1e-4 would make a one-ulp difference an accusation);
 * this allows 4 ulps.
 */
export const FLOAT16_TOLERANCE = { rtol: 4e-3, atol: 1e-4 }

/**
 * Values near zero are often sums of large terms that cancel, and providers that sum in another order
 * differ there by a share of the terms' size, not of the result's: the absolute tolerance grows by
 * this share of the output's largest magnitude. A perturbation of the output's large values by
 * 1e-3 is still far outside.
 */
export const TOLERANCE_SCALE = 1e-5

export interface Tolerance {
  rtol: number
  atol: number
}

export interface Closeness {
  ok: boolean
  /** Largest |a - b| over all elements (0 for integer and bool tensors that are equal). */
  maxAbsDiff: number
  /** Elements beyond the tolerance (for integer and bool tensors: that differ). */
  mismatched: number
  /** Why not, when not ok. */
  reason?: string
}

const FLOAT_DTYPES = new Set(['float32', 'float64', 'float16'])

function values (t: Tensor): ArrayLike<number> | undefined {
  const { buffer, byteOffset, byteLength } = t.data
  if (t.dtype === 'float32' && byteOffset % 4 === 0) return new Float32Array(buffer, byteOffset, byteLength / 4)
  if (t.dtype === 'float32') return new Float32Array(t.data.slice().buffer)
  if (t.dtype === 'float64') return new Float64Array(t.data.slice().buffer)
  if (t.dtype === 'float16') return Array.from(new Uint16Array(t.data.slice().buffer), half)
  return undefined
}

/** An IEEE 754 half-precision value from its bits. */
function half (bits: number): number {
  const sign = (bits & 0x8000) !== 0 ? -1 : 1
  const exponent = (bits >> 10) & 0x1f
  const fraction = bits & 0x3ff
  if (exponent === 0) return sign * fraction * 2 ** -24
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : NaN
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15)
}

/** Elements whose bytes differ (tensors of one dtype and shape). */
function differingElements (a: Tensor, b: Tensor): number {
  const size = ITEM_SIZE[a.dtype]
  let count = 0
  for (let i = 0; i < a.data.byteLength; i += size) {
    for (let k = 0; k < size; k++) {
      if (a.data[i + k] !== b.data[i + k]) {
        count++
        break
      }
    }
  }
  return count
}

/** Whether `a` (a result) is close enough to `b` (the reference). */
export function allClose (a: Tensor, b: Tensor, tolerance: Tolerance = DEFAULT_TOLERANCE): Closeness {
  if (a.dtype !== b.dtype) return { ok: false, maxAbsDiff: Infinity, mismatched: Infinity, reason: `dtype ${a.dtype} against ${b.dtype}` }
  if (a.dims.join() !== b.dims.join()) return { ok: false, maxAbsDiff: Infinity, mismatched: Infinity, reason: `shape [${a.dims.join(', ')}] against [${b.dims.join(', ')}]` }
  const x = values(a)
  const y = values(b)
  if (x == null || y == null) {
    const mismatched = differingElements(a, b)
    return mismatched === 0 ? { ok: true, maxAbsDiff: 0, mismatched } : { ok: false, maxAbsDiff: Infinity, mismatched, reason: `${a.dtype} values differ (compared exactly)` }
  }
  let maxAbsDiff = 0
  let firstBad = -1
  let mismatched = 0
  for (let i = 0; i < x.length; i++) {
    if (x[i] === y[i]) continue // equal infinities too, whose difference is NaN
    const diff = Math.abs(x[i] - y[i])
    // NaN where the reference has NaN is agreement; anywhere else it is not, nor an infinity against
    // anything but the same infinity (which rtol x |Infinity| would let through)
    if (!Number.isFinite(diff)) {
      if (Number.isNaN(x[i]) && Number.isNaN(y[i])) continue
      if (firstBad < 0) firstBad = i
      mismatched++
      maxAbsDiff = Infinity
      continue
    }
    if (diff > maxAbsDiff) maxAbsDiff = diff
    if (diff > tolerance.atol + tolerance.rtol * Math.abs(y[i])) {
      if (firstBad < 0) firstBad = i
      mismatched++
    }
  }
  if (firstBad < 0) return { ok: true, maxAbsDiff, mismatched }
  return { ok: false, maxAbsDiff, mismatched, reason: `element ${firstBad} is ${x[firstBad]} against ${y[firstBad]} (rtol ${tolerance.rtol}, atol ${tolerance.atol})` }
}

/** The largest finite magnitude among a float tensor's values (0 for other dtypes, and for no finite value). */
export function largestMagnitude (t: Tensor): number {
  const v = values(t)
  let largest = 0
  if (v != null) for (let i = 0; i < v.length; i++) if (Number.isFinite(v[i]) && Math.abs(v[i]) > largest) largest = Math.abs(v[i])
  return largest
}

/** The tolerance for one output: at least FLOAT16_TOLERANCE for float16, its absolute part grown by TOLERANCE_SCALE of the reference's largest finite magnitude. */
function toleranceFor (dtype: string, reference: Tensor, tolerance: Tolerance): Tolerance {
  const base = dtype === 'float16' ? { rtol: Math.max(tolerance.rtol, FLOAT16_TOLERANCE.rtol), atol: Math.max(tolerance.atol, FLOAT16_TOLERANCE.atol) } : tolerance
  return { rtol: base.rtol, atol: base.atol + TOLERANCE_SCALE * largestMagnitude(reference) }
}

/** What two answers to the same piece came from. */
export interface Comparison {
  /** Both came from the same execution provider and ONNX Runtime version: they must be equal bit for bit. */
  sameRuntime: boolean
  tolerance?: Tolerance
}

export type Agreement =
  | { agree: true, exact: boolean }
  | { agree: false, reason: string }

/**
 * Two answers to the same piece (result verification, docs/trust.md). Names, dtypes and shapes must be
 * equal; integer and bool outputs (class ids, argmax, masks) must be equal exactly, whatever ran them;
 * float outputs bit for bit when the same runtime ran both, else within the tolerance
 * (VERIFY_TOLERANCE by default, `allClose`'s rule). Two NaNs agree.
 */
export function compareOutputs (a: Record<string, Tensor>, b: Record<string, Tensor>, comparison: Comparison): Agreement {
  const names = Object.keys(a).sort()
  const others = Object.keys(b).sort()
  if (names.join('\0') !== others.join('\0')) return { agree: false, reason: `the outputs differ: [${names.join(', ')}] against [${others.join(', ')}]` }
  let exact = true
  for (const name of names) {
    const x = a[name]
    const y = b[name]
    if (x.dtype !== y.dtype) return { agree: false, reason: `output "${name}" is ${x.dtype} against ${y.dtype}` }
    if (x.dims.join() !== y.dims.join()) return { agree: false, reason: `output "${name}" has shape [${x.dims.join(', ')}] against [${y.dims.join(', ')}]` }
    const differing = differingElements(x, y)
    if (differing === 0) continue
    exact = false
    const elements = x.dims.reduce((n, d) => n * d, 1)
    const float = FLOAT_DTYPES.has(x.dtype)
    if (!float || comparison.sameRuntime) {
      return { agree: false, reason: `output "${name}" differs in ${differing} of ${elements} elements (${float ? 'the same runtime ran both: they must be equal bit for bit' : `${x.dtype} outputs must be equal`})` }
    }
    const close = allClose(x, y, toleranceFor(x.dtype, y, comparison.tolerance ?? VERIFY_TOLERANCE))
    if (!close.ok) {
      return { agree: false, reason: `output "${name}" differs beyond the tolerance in ${close.mismatched} of ${elements} elements (at most ${close.maxAbsDiff.toPrecision(3)} apart)` }
    }
  }
  return { agree: true, exact }
}
