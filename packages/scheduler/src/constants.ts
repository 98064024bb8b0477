/** Attempts of one piece before the job fails: enough to survive a few departures, few enough to stop a poisoned piece. */
export const DEFAULT_MAX_ATTEMPTS = 4

/**
 * Pieces in flight per peer: two keep a peer busy while the next piece's inputs travel (pipelining)
 * without queueing so much on one peer that its departure costs much.
 */
export const DEFAULT_WINDOW = 2

/** A piece's deadline is this many times its expected time: wide enough for noise and a busy peer. */
export const DEFAULT_TIMEOUT_FACTOR = 4

/** ...but never less than this: expected times of tiny pieces are dominated by transfer and jitter. */
export const DEFAULT_TIMEOUT_FLOOR_MS = 5000

/** A peer that failed waits this long before new pieces, doubling per consecutive failure. */
export const DEFAULT_BACKOFF_MS = 1000
export const DEFAULT_MAX_BACKOFF_MS = 30_000

/** In end-game, at most this many copies of one piece run at once (the original included). */
export const DEFAULT_MAX_COPIES = 2

/** A peer's observed speed: the rows of its last this many results over the time it was busy for them. */
export const OBSERVED_RESULTS = 4

/** Piece size: a piece should take about this long on the median peer... */
export const DEFAULT_TARGET_PIECE_MS = 500
/** ...with at least this many pieces per peer, so that work spreads and stragglers cost little. */
export const MIN_PIECES_PER_PEER = 4

/** A request target's round trip before it was measured: a LAN's few ms, so that measured peers do not all look worse. */
export const DEFAULT_ROUND_TRIP_MS = 5
/** The least wait before a request is hedged: a p95 of a few ms would hedge nearly every request. */
export const DEFAULT_HEDGE_FLOOR_MS = 20
/** Latencies kept per request target: enough for a p95. */
export const DEFAULT_LATENCY_WINDOW = 32
/** A request target that failed is passed over for this long, doubling per consecutive failure, at most REQUEST_MAX_BACKOFF_MS. */
export const REQUEST_BACKOFF_MS = 1000
export const REQUEST_MAX_BACKOFF_MS = 30_000
