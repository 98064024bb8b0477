import { concatRows, ITEM_SIZE } from '@shoal/runtime'
import type { Dtype, Tensor } from '@shoal/runtime'
import type { TensorHeader } from '@shoal/protocol'

/** What every row of one output is: its dtype and its dimensions after the batch axis. */
export interface RowLayout {
  dtype: Dtype
  dims: number[]
}

/** The part of a piece that places it in the job's outputs. */
export interface PlacedPiece {
  id: number
  start: number
  rows: number
}

/**
 * A job's outputs, allocated once at their full size, into which answers are read where they will
 * end up: no buffer per answer, no join of them at the end (for 200 MB of outputs in 8-row pieces,
 * that was 48 allocations of 4 MB and a 200 MB copy).
 *
 * Each piece's region is written by one answer at most, the first to claim it with a header this
 * node expects (the model's outputs, each of the layout its own run showed): an end-game copy or a
 * retry reads into a buffer of its own, and is copied in by `join` if it is the answer kept. So the
 * region of an answer kept, and checked later by the verifier, is never written by another. A
 * claimant writes until its exchange settles or is aborted (`PieceRequest.into`): the job aborts
 * every exchange before it joins.
 */
export class OutputRegions {
  private regions?: Record<string, Tensor>
  private readonly claimed = new Set<number>()
  private readonly rowBytes: Map<string, number>

  constructor (private readonly layout: Map<string, RowLayout>, private readonly totalRows: number) {
    this.rowBytes = new Map([...layout].map(([name, l]) => [name, l.dims.reduce((n, d) => n * d, ITEM_SIZE[l.dtype])]))
  }

  /**
   * The buffers an answer to `piece` with these headers is to be read into, in the headers' order,
   * if it is the first to claim the piece and has exactly the outputs expected; else undefined.
   */
  claim (piece: PlacedPiece, headers: TensorHeader[]): Uint8Array[] | undefined {
    if (this.claimed.has(piece.id) || headers.length !== this.layout.size) return undefined
    for (const h of headers) {
      const l = this.layout.get(h.name)
      if (l == null || h.dtype !== l.dtype || h.dims.length !== l.dims.length + 1 || h.dims[0] !== piece.rows || l.dims.some((d, i) => h.dims[i + 1] !== d)) return undefined
    }
    this.claimed.add(piece.id)
    const regions = this.allocate()
    return headers.map(h => {
      const bytes = this.rowBytes.get(h.name)!
      return regions[h.name].data.subarray(piece.start * bytes, (piece.start + piece.rows) * bytes)
    })
  }

  /**
   * The job's outputs from the answers kept (`results`, each piece's): an answer read in place is
   * there already, any other is copied into its region. An answer that does not fit the layout (a
   * local run whose shape differs) leaves that output to a plain join of the answers. Every exchange
   * that may have claimed a region must have settled or been aborted.
   */
  join (pieces: PlacedPiece[], results: Map<number, Record<string, Tensor>>, names: string[]): Record<string, Tensor> {
    const outputs: Record<string, Tensor> = {}
    for (const name of names) outputs[name] = this.joinOne(name, pieces, results)
    return outputs
  }

  private joinOne (name: string, pieces: PlacedPiece[], results: Map<number, Record<string, Tensor>>): Tensor {
    const parts = pieces.map(p => results.get(p.id)![name])
    const region = this.regions?.[name]
    const layout = this.layout.get(name)
    if (region == null || layout == null) return concatRows(parts)
    const bytes = this.rowBytes.get(name)!
    const fits = pieces.every((p, i) => parts[i].dtype === layout.dtype && parts[i].dims[0] === p.rows &&
      parts[i].dims.length === layout.dims.length + 1 && layout.dims.every((d, j) => parts[i].dims[j + 1] === d))
    const covered = pieces.reduce((n, p) => n + p.rows, 0) === this.totalRows
    if (!fits || !covered) return concatRows(parts)
    for (const [i, p] of pieces.entries()) {
      const offset = region.data.byteOffset + p.start * bytes
      const data = parts[i].data
      if (data.buffer === region.data.buffer && data.byteOffset === offset) continue
      region.data.set(data, p.start * bytes)
    }
    return region
  }

  private allocate (): Record<string, Tensor> {
    if (this.regions != null) return this.regions
    const regions: Record<string, Tensor> = {}
    for (const [name, l] of this.layout) {
      regions[name] = { dtype: l.dtype, dims: [this.totalRows, ...l.dims], data: new Uint8Array(this.totalRows * this.rowBytes.get(name)!) }
    }
    this.regions = regions
    return regions
  }
}
