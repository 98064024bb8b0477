import { concatRows, largestMagnitude, sliceRows } from '@shoal/runtime'
import type { Tensor } from '@shoal/runtime'

/** One row whose answer this node knows: its inputs and outputs (each of one row), and who computed it. */
export interface CanaryRow {
  inputs: Record<string, Tensor>
  outputs: Record<string, Tensor>
  /** The peers whose answer it is (this node for its own runs): it is never sent back to them. */
  sources: string[]
  /** Its inputs' names, dtypes and dimensions after the batch axis: it joins only pieces of the same. */
  shape: string
  /**
   * The largest finite magnitude of its piece's float outputs: an answer to the row is compared as the
   * whole piece's would be (the tolerance near zero grows with the output's size, @shoal/runtime).
   */
  scale: number
}

/** The names, dtypes and dimensions after the batch axis of a piece's inputs. */
export function shapeOf (inputs: Record<string, Tensor>): string {
  return Object.entries(inputs).map(([name, t]) => `${name}:${t.dtype}[${t.dims.slice(1).join(',')}]`).sort().join(';')
}

/** At most this many rows kept per model, for at most this many models. */
const ROWS_PER_MODEL = 32
const MODELS = 16
/** A row bigger than this (inputs and outputs) is not kept: canaries must stay cheap to send. */
const MAX_ROW_BYTES = 1 << 20

function bytesOf (tensors: Record<string, Tensor>): number {
  return Object.values(tensors).reduce((n, t) => n + t.data.byteLength, 0)
}

/** Copies one row out of a piece's tensors (the piece's buffers may be reused or handed over). */
function rowOf (tensors: Record<string, Tensor>, row: number): Record<string, Tensor> {
  const out: Record<string, Tensor> = {}
  for (const [name, t] of Object.entries(tensors)) {
    const r = sliceRows(t, row, 1)
    out[name] = { dtype: r.dtype, dims: r.dims, data: r.data.slice() }
  }
  return out
}

/**
 * Rows whose answers this node knows, per model: taken from answers it trusts (its own runs, and
 * peers' answers its checks confirmed), to be mixed into later pieces as canaries (`JobOptions.canaries`).
 * Bounded: the newest ROWS_PER_MODEL rows of the MODELS models used last.
 */
export class CanaryPool {
  private readonly models = new Map<string, CanaryRow[]>()

  /** Keeps row `row` of a piece whose outputs this node trusts. */
  add (modelCid: string, inputs: Record<string, Tensor>, outputs: Record<string, Tensor>, sources: string[], row = 0): void {
    if (Object.keys(inputs).length === 0 || Object.values(inputs)[0].dims[0] <= row || Object.values(outputs).some(t => t.dims.length === 0 || t.dims[0] <= row)) return
    const entry: CanaryRow = { inputs: rowOf(inputs, row), outputs: rowOf(outputs, row), sources, shape: shapeOf(inputs), scale: Math.max(0, ...Object.values(outputs).map(largestMagnitude)) }
    if (bytesOf(entry.inputs) + bytesOf(entry.outputs) > MAX_ROW_BYTES) return
    const rows = this.models.get(modelCid) ?? []
    this.models.delete(modelCid)
    this.models.set(modelCid, rows)
    rows.push(entry)
    if (rows.length > ROWS_PER_MODEL) rows.shift()
    if (this.models.size > MODELS) this.models.delete(this.models.keys().next().value as string)
  }

  /** Up to `count` distinct rows of this model, of inputs shaped as `shape`, not computed by `peer`, drawn with `random`. */
  draw (modelCid: string, count: number, peer: string, random: () => number, shape: string): CanaryRow[] {
    const pool = (this.models.get(modelCid) ?? []).filter(r => !r.sources.includes(peer) && r.shape === shape)
    const chosen: CanaryRow[] = []
    while (chosen.length < count && pool.length > 0) chosen.push(pool.splice(Math.floor(random() * pool.length), 1)[0])
    return chosen
  }

  size (modelCid: string): number {
    return this.models.get(modelCid)?.length ?? 0
  }
}

/** Where a piece's canary rows sit among the rows sent: sorted positions, and the rows. */
export interface CanaryPlan {
  positions: number[]
  rows: CanaryRow[]
}

/** Random positions for the canaries among `rows + canaries.length` rows (sorted), drawn with `random`. */
export function placeCanaries (rows: number, canaries: CanaryRow[], random: () => number): CanaryPlan {
  const slots = Array.from({ length: rows + canaries.length }, (_, i) => i)
  const positions: number[] = []
  for (let i = 0; i < canaries.length; i++) positions.push(slots.splice(Math.floor(random() * slots.length), 1)[0])
  const order = positions.map((p, i) => [p, i] as const).sort((a, b) => a[0] - b[0])
  return { positions: order.map(([p]) => p), rows: order.map(([, i]) => canaries[i]) }
}

/** The piece's inputs with the canary rows at their positions. */
export function withCanaries (inputs: Record<string, Tensor>, plan: CanaryPlan): Record<string, Tensor> {
  const out: Record<string, Tensor> = {}
  for (const [name, t] of Object.entries(inputs)) {
    const parts: Tensor[] = []
    let real = 0
    let at = 0
    for (const [i, position] of plan.positions.entries()) {
      if (position > at) parts.push(sliceRows(t, real, position - at))
      real += position - at
      parts.push(plan.rows[i].inputs[name])
      at = position + 1
    }
    if (real < t.dims[0]) parts.push(sliceRows(t, real, t.dims[0] - real))
    out[name] = concatRows(parts)
  }
  return out
}

/**
 * An answer to a piece sent with canaries, split: the canary rows' outputs (in plan order) and the
 * piece's own rows' outputs. Undefined when an output does not have the rows sent (the caller's shape
 * checks then refuse the answer as it came).
 */
export function splitCanaries (outputs: Record<string, Tensor>, plan: CanaryPlan, rows: number): { canaries: Array<Record<string, Tensor>>, outputs: Record<string, Tensor> } | undefined {
  const total = rows + plan.positions.length
  if (Object.values(outputs).some(t => t.dims.length === 0 || t.dims[0] !== total)) return undefined
  const canaries: Array<Record<string, Tensor>> = plan.positions.map(() => ({}))
  const real: Record<string, Tensor> = {}
  for (const [name, t] of Object.entries(outputs)) {
    const parts: Tensor[] = []
    let at = 0
    for (const [i, position] of plan.positions.entries()) {
      if (position > at) parts.push(sliceRows(t, at, position - at))
      canaries[i][name] = sliceRows(t, position, 1)
      at = position + 1
    }
    if (at < total) parts.push(sliceRows(t, at, total - at))
    real[name] = parts.length > 0 ? concatRows(parts) : { dtype: t.dtype, dims: [0, ...t.dims.slice(1)], data: new Uint8Array(0) }
  }
  return { canaries, outputs: real }
}
