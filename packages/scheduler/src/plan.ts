import { DEFAULT_FACTOR, DEFAULT_MAX_OVERHEAD, DEFAULT_MAX_PIECE_MS, DEFAULT_PIECE_OVERHEAD_MS, PROBE_DIVISOR } from './constants.js'

/** A contiguous run of rows of the batch (axis 0): rows [start, start + rows). */
export interface Piece {
  id: number
  start: number
  rows: number
}

/**
 * Self-sizing pieces (guided self-scheduling by factoring): a job's rows are cut into pieces as peers
 * take work, each piece sized for the peer about to run it.
 */
export interface PieceSizing {
  /** Rows of the whole batch. */
  totalRows: number
  /** No piece has fewer rows (unless fewer are left); default 1. */
  minRows?: number
  /** No piece has more rows (the model's fixed batch, a memory bound); default the whole batch. */
  maxRows?: number
  /** Expected cost of dispatching one piece (round trip, stream, framing): pieces compute at least 1/maxOverhead of it. */
  overheadMs?: number
  /** Dispatch overhead allowed, as a fraction of a piece's compute (default 0.05). */
  maxOverhead?: number
  /** No piece is expected to take longer than this on its peer: a loss costs at most this much work. */
  maxPieceMs?: number
  /** Factoring's divisor: at any time, pieces out take about 1/factor of the rows left (default 2). */
  factor?: number
}

export interface SizeInput {
  /** Rows not yet cut into pieces. */
  remainingRows: number
  /** The peer about to take the piece: its expected ms per row, and whether that was measured (observed, or the model's cost is known) rather than guessed. */
  peer: { msPerRow: number, known: boolean }
  /** Every peer that may take pieces (the one above included): expected ms per row and pieces it holds at once. */
  mesh: Array<{ msPerRow: number, window: number }>
}

/**
 * Rows of the next piece for one peer. Factoring: the peer's share, by speed, of the rows left divided
 * by `factor` times the mesh's pieces in flight, so that pieces are large while much is left and
 * shrink towards the end, where they balance the peers' finishing times. Bounded below so that dispatch
 * overhead stays under `maxOverhead` of a piece's compute, and above by `maxPieceMs` on this peer. A
 * peer whose speed is a guess (never measured, cost unknown) gets a probe: a quarter of its share,
 * whose answer measures it.
 */
export function sizePiece (sizing: PieceSizing, input: SizeInput): number {
  const left = input.remainingRows
  if (left <= 0) return 0
  const factor = sizing.factor ?? DEFAULT_FACTOR
  const capacity = input.mesh.reduce((sum, p) => sum + p.window / Math.max(p.msPerRow, 1e-6), 0)
  const speed = 1 / Math.max(input.peer.msPerRow, 1e-6)
  let rows = Math.ceil(left * speed / (factor * Math.max(capacity, speed)))
  let lo = sizing.minRows ?? 1
  let hi = left
  /** The hard bound: the caller's (a fixed batch, memory). */
  const most = Math.min(sizing.maxRows ?? sizing.totalRows, left)
  if (input.peer.known) {
    const overheadMs = sizing.overheadMs ?? DEFAULT_PIECE_OVERHEAD_MS
    lo = Math.max(lo, Math.ceil(overheadMs / (sizing.maxOverhead ?? DEFAULT_MAX_OVERHEAD) / input.peer.msPerRow))
    hi = Math.max(1, Math.floor((sizing.maxPieceMs ?? DEFAULT_MAX_PIECE_MS) / input.peer.msPerRow))
  } else {
    rows = Math.ceil(rows / PROBE_DIVISOR)
  }
  rows = Math.min(Math.max(lo, Math.min(rows, hi)), most)
  // a remainder too small to be worth a piece of its own joins this one, when it fits
  if (left - rows < lo && left <= most) rows = left
  return Math.max(1, Math.min(rows, left))
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
