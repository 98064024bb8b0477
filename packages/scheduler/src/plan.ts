import { DEFAULT_TARGET_PIECE_MS, MIN_PIECES_PER_PEER } from './constants.js'

/** A contiguous run of rows of the batch (axis 0): rows [start, start + rows). */
export interface Piece {
  id: number
  start: number
  rows: number
}

export interface PieceSizeInput {
  totalRows: number
  /** Measured on the submitting node: ms to run one row with its own best provider. */
  localMsPerRow: number
  /** The submitting node's advertised throughput, the reference for `localMsPerRow`. */
  localGflops: number
  /** Advertised throughput of each peer that may take pieces (the local node included if it takes a share). */
  peerGflops: number[]
  targetMs?: number
  minRows?: number
  maxRows?: number
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/**
 * Rows per piece, so that a piece takes about `targetMs` on the median peer (scaling the local
 * measurement by advertised throughput), while every peer gets several pieces (so that speed
 * differences and departures are absorbed), within [minRows, maxRows].
 */
export function choosePieceRows (input: PieceSizeInput): number {
  const { totalRows } = input
  if (totalRows <= 0) return 0
  const gflops = input.peerGflops.filter(g => g > 0)
  const medianGflops = gflops.length > 0 ? median(gflops) : input.localGflops
  const msPerRowOnMedian = input.localGflops > 0 && medianGflops > 0
    ? input.localMsPerRow * input.localGflops / medianGflops
    : input.localMsPerRow
  let rows = msPerRowOnMedian > 0 ? Math.floor((input.targetMs ?? DEFAULT_TARGET_PIECE_MS) / msPerRowOnMedian) : totalRows
  const peers = Math.max(1, input.peerGflops.length)
  rows = Math.min(rows, Math.ceil(totalRows / (peers * MIN_PIECES_PER_PEER)))
  rows = Math.max(rows, input.minRows ?? 1, 1)
  rows = Math.min(rows, input.maxRows ?? totalRows, totalRows)
  return rows
}

/** Cuts `totalRows` into pieces of `rowsPerPiece` (the last may be shorter). */
export function planPieces (totalRows: number, rowsPerPiece: number): Piece[] {
  if (!Number.isSafeInteger(totalRows) || totalRows < 0) throw new RangeError(`invalid row count ${totalRows}`)
  if (!Number.isSafeInteger(rowsPerPiece) || rowsPerPiece < 1) throw new RangeError(`invalid piece size ${rowsPerPiece}`)
  const pieces: Piece[] = []
  for (let start = 0; start < totalRows; start += rowsPerPiece) {
    pieces.push({ id: pieces.length, start, rows: Math.min(rowsPerPiece, totalRows - start) })
  }
  return pieces
}
