/**
 * Result verification, the policy (pure: plain data, time and randomness passed in). Which pieces a
 * submitter runs a second time, how two answers are compared, who wins when answers disagree, and
 * what a peer proven wrong costs itself. The job that applies it is @shoal/node's.
 *
 * The model is BOINC's adaptive replication: a peer earns a record of consecutive verified results;
 * until the record is established every piece it returns is checked, after that a falling fraction,
 * never less than a floor; one wrong answer resets the record and excludes the peer for a time that
 * doubles with each offence.
 */

/** `off`: no piece checked. `spot`: adaptive re-runs. `full`: every piece on two different peers. */
export type VerifyPolicy = 'off' | 'spot' | 'full'

export const VERIFY_POLICIES: readonly VerifyPolicy[] = ['off', 'spot', 'full']

export interface SpotOptions {
  /** Consecutive verified results before a peer's pieces are checked less than always. */
  establishedAfter: number
  /** The least fraction of an established peer's pieces that is checked. */
  floor: number
}

/**
 * 10 verified results before any piece goes unchecked; then `10 / record` of the pieces, down to 5%
 * at a record of 200. A cheater corrupting a fraction f of its n pieces is caught with probability
 * 1 - (1 - r)^(f n), r the fraction checked: at the 5% floor, one corrupting 10% of 100 pieces is
 * caught in 40% of jobs, and surely before long, as each catch resets its record to "check everything".
 */
export const DEFAULT_SPOT: SpotOptions = { establishedAfter: 10, floor: 0.05 }

/** The fraction of a peer's pieces `spot` checks, given its record of consecutive verified results. */
export function checkFraction (record: number, options: SpotOptions = DEFAULT_SPOT): number {
  if (record < options.establishedAfter) return 1
  return Math.max(options.floor, options.establishedAfter / record)
}

/** Whether a piece this peer returned is to be checked. `random` in [0, 1). */
export function needsCheck (policy: VerifyPolicy, record: number, random: () => number, options: SpotOptions = DEFAULT_SPOT): boolean {
  if (policy === 'off') return false
  if (policy === 'full') return true
  const fraction = checkFraction(record, options)
  return fraction >= 1 || random() < fraction
}

/** A tensor as answers carry it: elements in row-major order, little-endian. */
export interface OutputTensor {
  dtype: string
  dims: number[]
  data: Uint8Array
}

/**
 * How far two float outputs may differ and still agree, element by element:
 * |a - b| <= atol + rtol * |b|.
 */
export interface Tolerance {
  rtol: number
  atol: number
}

/**
 * Across execution providers (CPU against WebGPU, say) float results differ in their last bits:
 * reductions run in another order, fused kernels round once instead of twice. 1e-4 relative is
 * tens of float32 ulps, which such differences stay within; an answer scaled by 1 + 1e-3 is not.
 */
export const DEFAULT_TOLERANCE: Tolerance = { rtol: 1e-4, atol: 1e-6 }

/** What was compared: the same provider and ONNX Runtime version compare bit for bit. */
export interface Comparison {
  /** Both answers came from the same execution provider and ONNX Runtime version. */
  sameRuntime: boolean
  tolerance?: Tolerance
}

export type Agreement =
  | { agree: true, exact: boolean }
  | { agree: false, reason: string }

const FLOAT_DTYPES = new Set(['float32', 'float64', 'float16'])

/**
 * Two answers to the same piece. Names, dtypes and shapes must be equal; integer and bool outputs
 * (class ids, argmax, masks) must be equal exactly, whatever ran them; float outputs bit for bit
 * when the same runtime ran both, else within the tolerance. Two NaNs agree.
 */
export function compareOutputs (a: Record<string, OutputTensor>, b: Record<string, OutputTensor>, comparison: Comparison): Agreement {
  const names = Object.keys(a).sort()
  const others = Object.keys(b).sort()
  if (names.join('\0') !== others.join('\0')) return { agree: false, reason: `the outputs differ: [${names.join(', ')}] against [${others.join(', ')}]` }
  let exact = true
  for (const name of names) {
    const x = a[name]
    const y = b[name]
    if (x.dtype !== y.dtype) return { agree: false, reason: `output "${name}" is ${x.dtype} against ${y.dtype}` }
    if (x.dims.join() !== y.dims.join()) return { agree: false, reason: `output "${name}" has shape [${x.dims.join(', ')}] against [${y.dims.join(', ')}]` }
    if (bytesEqual(x.data, y.data)) continue
    exact = false
    if (!FLOAT_DTYPES.has(x.dtype) || comparison.sameRuntime) {
      return { agree: false, reason: `output "${name}" differs in ${differingElements(x, y)} of ${elements(x)} elements (${FLOAT_DTYPES.has(x.dtype) ? 'the same runtime ran both: they must be equal bit for bit' : `${x.dtype} outputs must be equal`})` }
    }
    const far = beyondTolerance(x, y, comparison.tolerance ?? DEFAULT_TOLERANCE)
    if (far.count > 0) {
      return { agree: false, reason: `output "${name}" differs beyond the tolerance in ${far.count} of ${elements(x)} elements (at most ${far.maxDiff.toPrecision(3)} apart)` }
    }
  }
  return { agree: true, exact }
}

/**
 * Of three answers to one piece, the two that agree and the one outvoted; null when no two agree
 * (the piece then goes to further peers, or fails). `agree(i, j)` compares answers i and j.
 */
export function majority (agree: (i: number, j: number) => boolean): { agreeing: [number, number], outvoted: number } | null {
  const pairs: Array<[number, number, number]> = [[0, 1, 2], [0, 2, 1], [1, 2, 0]]
  for (const [i, j, odd] of pairs) {
    if (agree(i, j)) return { agreeing: [i, j], outvoted: odd }
  }
  return null
}

function bytesEqual (a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

function elements (t: OutputTensor): number {
  return t.dims.reduce((n, d) => n * d, 1)
}

const ITEM_BYTES: Record<string, number> = { float64: 8, int64: 8, uint64: 8, float32: 4, int32: 4, uint32: 4, float16: 2, int16: 2, uint16: 2, int8: 1, uint8: 1, bool: 1 }

function differingElements (a: OutputTensor, b: OutputTensor): number {
  const size = ITEM_BYTES[a.dtype] ?? 1
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

/** Elements whose values are further apart than the tolerance allows, and the largest difference. */
function beyondTolerance (a: OutputTensor, b: OutputTensor, tolerance: Tolerance): { count: number, maxDiff: number } {
  const x = floats(a)
  const y = floats(b)
  let count = 0
  let maxDiff = 0
  for (let i = 0; i < x.length; i++) {
    const p = x[i]
    const q = y[i]
    if (Number.isNaN(p) && Number.isNaN(q)) continue
    if (p === q) continue // equal infinities too
    const diff = Math.abs(p - q)
    if (!(diff <= tolerance.atol + tolerance.rtol * Math.abs(q))) {
      count++
      maxDiff = Math.max(maxDiff, Number.isNaN(diff) ? Infinity : diff)
    }
  }
  return { count, maxDiff }
}

function floats (t: OutputTensor): ArrayLike<number> {
  const view = new DataView(t.data.buffer, t.data.byteOffset, t.data.byteLength)
  const n = t.data.byteLength / (ITEM_BYTES[t.dtype] ?? 4)
  const out = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    out[i] = t.dtype === 'float64' ? view.getFloat64(i * 8, true) : t.dtype === 'float32' ? view.getFloat32(i * 4, true) : half(view.getUint16(i * 2, true))
  }
  return out
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

export interface TrustOptions {
  /** A first offence excludes a peer this long; each further offence doubles it. */
  exclusionMs: number
  /** The longest exclusion. */
  maxExclusionMs: number
}

/** An hour for a first wrong answer, doubling to at most 30 days. */
export const DEFAULT_TRUST: TrustOptions = { exclusionMs: 60 * 60_000, maxExclusionMs: 30 * 24 * 60 * 60_000 }

/** What a submitter knows of one peer's answers. */
export interface PeerTrust {
  /** Consecutive answers verified correct (reset by a wrong one). */
  record: number
  /** Answers proven wrong, ever. */
  offences: number
  /** Excluded from this node's jobs until then (ms since the epoch; 0: not excluded). */
  excludedUntil: number
}

/**
 * Each peer's record with this node: kept by the submitter, persisted in its data dir (`toJSON`,
 * `fromJSON`), bounded in size (the peers with the least to remember are forgotten first).
 */
export class TrustRecords {
  private readonly peers = new Map<string, PeerTrust>()
  private readonly now: () => number
  private readonly options: TrustOptions
  private readonly maxPeers: number

  constructor (now: () => number, options: TrustOptions = DEFAULT_TRUST, maxPeers = 10_000) {
    this.now = now
    this.options = options
    this.maxPeers = maxPeers
  }

  get (peer: string): PeerTrust {
    return this.peers.get(peer) ?? { record: 0, offences: 0, excludedUntil: 0 }
  }

  /** An answer of this peer's was verified correct. */
  verified (peer: string): void {
    const t = this.get(peer)
    this.set(peer, { ...t, record: t.record + 1 })
  }

  /** An answer of this peer's was proven wrong: its record starts again, and it is excluded; returns until when. */
  caught (peer: string): number {
    const t = this.get(peer)
    const ms = Math.min(this.options.maxExclusionMs, this.options.exclusionMs * 2 ** t.offences)
    const until = this.now() + ms
    this.set(peer, { record: 0, offences: t.offences + 1, excludedUntil: until })
    return until
  }

  excluded (peer: string): boolean {
    return this.get(peer).excludedUntil > this.now()
  }

  toJSON (): Record<string, PeerTrust> {
    return Object.fromEntries(this.peers)
  }

  /** Takes records written by `toJSON`; entries that are not records are skipped. */
  load (json: unknown): void {
    if (json == null || typeof json !== 'object') return
    for (const [peer, value] of Object.entries(json as Record<string, unknown>)) {
      const v = value as Partial<PeerTrust> | null
      if (v == null || ![v.record, v.offences, v.excludedUntil].every(n => Number.isSafeInteger(n) && (n as number) >= 0)) continue
      this.set(peer, { record: v.record!, offences: v.offences!, excludedUntil: v.excludedUntil! })
    }
  }

  private set (peer: string, trust: PeerTrust): void {
    this.peers.delete(peer)
    this.peers.set(peer, trust)
    if (this.peers.size <= this.maxPeers) return
    // forget a peer with no offence first (its record is earned again), the least recently seen
    const now = this.now()
    const victim = [...this.peers].find(([, t]) => t.offences === 0) ?? [...this.peers].find(([, t]) => t.excludedUntil <= now) ?? [...this.peers][0]
    this.peers.delete(victim[0])
  }
}
