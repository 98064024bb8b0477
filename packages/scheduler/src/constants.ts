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
/**
 * A peer that answered OVERLOADED (full of other submitters' pieces) is asked again after this long,
 * doubling per OVERLOADED in a row, at most the failure backoff: its slots free up as pieces end, in
 * a piece's time, not a failure's.
 */
export const OVERLOAD_BACKOFF_MS = 50
export const DEFAULT_MAX_BACKOFF_MS = 30_000

/** In end-game, at most this many copies of one piece run at once (the original included). */
export const DEFAULT_MAX_COPIES = 2

/** A peer's observed speed: the rows of its last this many results over the time it was busy for them. */
export const OBSERVED_RESULTS = 4

/** Self-sizing pieces: at any time, pieces out hold about 1/this of the rows left (factoring's classic 2). */
export const DEFAULT_FACTOR = 2
/**
 * Expected cost of dispatching one piece beyond its compute: a stream or direct-channel request, the
 * inputs and outputs framed and checked, the answer joined. Measured on loopback at 2-5 ms per small
 * piece (`pnpm bench requests`); a LAN or the internet adds its round trip, so more is assumed.
 */
export const DEFAULT_PIECE_OVERHEAD_MS = 10
/** ...which must stay under this fraction of a piece's compute: pieces of a measured peer are at least 20 times it. */
export const DEFAULT_MAX_OVERHEAD = 0.05
/** No piece is sized to take longer than this on its peer: a peer lost mid-piece costs at most this much work. */
export const DEFAULT_MAX_PIECE_MS = 10_000
/** A peer whose speed for the model is only a guess gets this fraction of its share as a first, probing piece. */
export const PROBE_DIVISOR = 4
/** A piece on a peer whose speed is a guess gets at least this long before it times out (its expected time may be far off). */
export const DEFAULT_PROBE_TIMEOUT_MS = 60_000

/** A request target's round trip before it was measured: a LAN's few ms, so that measured peers do not all look worse. */
export const DEFAULT_ROUND_TRIP_MS = 5
/** The least wait before a request is hedged: a p95 of a few ms would hedge nearly every request. */
export const DEFAULT_HEDGE_FLOOR_MS = 20
/** Latencies kept per request target: enough for a p95. */
export const DEFAULT_LATENCY_WINDOW = 32
/** A request target that failed is passed over for this long, doubling per consecutive failure, at most REQUEST_MAX_BACKOFF_MS. */
export const REQUEST_BACKOFF_MS = 1000
export const REQUEST_MAX_BACKOFF_MS = 30_000
