import os from 'node:os'
import { join } from 'node:path'

/** Where a node keeps its identity, config, calibration cache and API token unless told otherwise. */
export const DEFAULT_DATA_DIR = join(os.homedir(), '.shoal')

/**
 * Listen on every interface, on a random TCP port and a random WebSockets port: a volunteer's machine
 * rarely has a port to spare that we could pick for it, and peers learn the real ports from ads and identify.
 */
export const DEFAULT_LISTEN = ['/ip4/0.0.0.0/tcp/0', '/ip4/0.0.0.0/tcp/0/ws']

/** Ads every 5 s: a peer that vanishes is noticed within 15 s while the topic carries one small ad per node per 5 s. */
export const DEFAULT_AD_INTERVAL_MS = 5000

/**
 * A peer table entry expires after this many missed refreshes. Three tolerates one lost ad and a slow
 * heartbeat without keeping a dead peer for long.
 */
export const AD_EXPIRY_INTERVALS = 3

/** Ads older than this (by the publisher's clock) are ignored: they describe a node that may have changed since. */
export const MAX_AD_AGE_MS = 60_000

/** Ads timestamped further ahead than this are ignored: the publisher's clock is wrong, and so may be its ad. */
export const MAX_AD_CLOCK_SKEW_MS = 30_000

/** Most peers a table holds; beyond it new peers are ignored until entries expire, bounding memory. */
export const MAX_PEER_TABLE_ENTRIES = 10_000

/** How long a table remembers the last sequence number of a peer that left, so that its old ads cannot revive it. */
export const TOMBSTONE_TTL_MS = 10 * 60_000

/**
 * The mesh keeper dials peers it discovers until the node has this many connections. A gossipsub mesh
 * wants 6-12 peers per topic; 24 gives gossip and the DHT room without exhausting a home router.
 */
export const TARGET_CONNECTIONS = 24

/** How often the mesh keeper redials bootstrap peers and known peers while below target. */
export const MESH_KEEPER_INTERVAL_MS = 5000

/** An early ad (on change) waits at least this long, so that changes arriving together share one ad. */
export const EARLY_AD_MIN_DELAY_MS = 20

/** About how many nodes answer a newcomer with an early ad (capacity-service.ts, answerNewcomer). */
export const NEWCOMER_ANSWERS = 8
/** Random extra delay of early ads: nodes that all saw the same newcomer should not all answer in the same millisecond. */
export const EARLY_AD_JITTER_MS = 100

/** The "leaving" ad may take this long to go out at shutdown before the node stops anyway. */
export const LEAVE_TIMEOUT_MS = 1000
/** After the leaving ad is queued, time for it to be written before the connections close (within LEAVE_TIMEOUT_MS). */
export const LEAVE_FLUSH_MS = 150

/** mDNS service name: Shoal nodes on a LAN find each other without answering other libp2p apps. */
export const MDNS_SERVICE_TAG = '_shoal._udp.local'

/** The DHT protocol: Shoal's own, so that the mesh is its own network and not the public IPFS DHT. */
export const DHT_PROTOCOL = '/shoal/kad/1.0.0'

/** Addresses only this machine can use; connections from them skip libp2p's per-host inbound rate limits. */
export const LOOPBACK_ALLOW = ['/ip4/127.0.0.0/ipcidr/8', '/ip6/::1/ipcidr/128']

/** The node's HTTP API answers on this host only: a volunteer's node is not a public web server. */
export const API_HOST = '127.0.0.1'

/** Requests to the API may not be larger than this (JSON bodies of later endpoints). */
export const MAX_API_BODY_BYTES = 1024 * 1024

/**
 * The software version in capacity ads and `node status`. The minor version moves with every change on
 * the wire (docs/protocol.md, "Changes"): 0.5.0 opens direct channels in reverse and relays; 0.4.0 signs
 * a commitment to every answer; 0.3.0 serves and
 * fetches blocks over /shoal/block/1.0.0;
 * 0.2.0 writes `TensorInfo.dims` packed, which 0.1.0 cannot read.
 */
export const SHOAL_VERSION = '0.5.0'

/** A request's header must arrive within 10 s of the stream opening: a silent stream is dropped. */
export const HEADER_TIMEOUT_MS = 10_000

/**
 * A provider must deliver a block (1 MiB at most) within 30 s of being asked: even a 1 Mbit/s uplink
 * with a few blocks in flight meets that. Once a fetch has seen a few blocks arrive, its patience is 8
 * times the median of recent ones, at least MIN_BLOCK_TIMEOUT_MS: a lost message then costs seconds, not 30.
 */
export const BLOCK_TIMEOUT_MS = 30_000
export const MIN_BLOCK_TIMEOUT_MS = 2000

/**
 * Blocks a node sends at once over /shoal/block/1.0.0, to all peers together: 32 MiB of blocks in
 * flight at most; a request beyond is answered BUSY (the fetcher asks another provider, or later).
 */
export const BLOCK_SERVE_CONCURRENCY = 32

/**
 * Blocks sent at once to one peer: one fetch's worth (8 in flight per provider). A peer that asks for
 * blocks and does not read them holds at most these, not every slot (BUSY beyond: a second fetch from
 * the same peer asks again shortly).
 */
export const BLOCK_SERVE_PER_PEER = 8

/** A served block's whole answer (reading it from disk, then sending it) must be done within this long of the request. */
export const BLOCK_ANSWER_TIMEOUT_MS = 30_000

/** Block streams per connection and direction: four fetches of 8 blocks in flight between the same two peers. */
export const BLOCK_STREAMS_PER_CONNECTION = 32

/** A block stream with no request for this long is closed by the server (a fetcher's idle streams close sooner, after a quarter). */
export const BLOCK_STREAM_IDLE_MS = 20_000

/** A provider that misses this many blocks in one fetch is dropped from it (fewer: others are asked for those blocks). */
export const TIMEOUTS_BEFORE_DROP = 3

/** Providers one fetch asks at most (each gets 8 lanes): a flood of DHT provider records must not give it thousands. */
export const MAX_PROVIDERS_PER_FETCH = 32

/** Blocks asked of one provider at once: enough to keep a fast link busy, few enough that a slow one does not hold the tail. */
export const BLOCKS_IN_FLIGHT_PER_PROVIDER = 8

/**
 * Blocks one fetch has in flight across all its providers: 16 MiB on the way keeps several links busy,
 * while eight fetchers with eight providers each do not bury every node in hundreds of megabytes of
 * messages at once (measured: with no cap, wants were lost to bitswap's 10 s message timeouts).
 */
export const BLOCKS_IN_FLIGHT_PER_FETCH = 16

/** While a fetch runs, providers are looked up again this often (ads and DHT), so that new holders join in. */
export const FETCH_DISCOVERY_INTERVAL_MS = 2000

/** A peer that lacked some blocks (it is still fetching them) is asked for them again after this long. */
export const REFUSAL_RETRY_MS = 1000

/** One DHT provider lookup may take this long. */
export const FIND_PROVIDERS_TIMEOUT_MS = 10_000

/** A fetch with no provider to ask fails after this long, saying whom it asked. */
export const NO_PROVIDER_TIMEOUT_MS = 30_000

/** Disk a node gives models unless configured otherwise: 20 GiB, a few large models. */
export const DEFAULT_MAX_STORAGE_BYTES = 20 * 1024 ** 3

/** Inbound infer/model streams at once per connection: a few pieces in flight plus their model fetches. */
export const MAX_INBOUND_INFER_STREAMS = 32

/** Largest model a node accepts unless configured otherwise: 1 GiB. */
export const DEFAULT_MAX_MODEL_BYTES = 1024 ** 3

/**
 * Finished jobs whose outputs a node keeps in memory for the API (GET /v1/jobs/:id/outputs/:name);
 * older ones are forgotten. The CLI fetches outputs as soon as a job ends, so a few suffice.
 */
export const KEPT_FINISHED_JOBS = 16

/**
 * For scheduling, a peer that lacks a job's model is expected to fetch it at this rate (bytes per ms:
 * 20 MB/s, a home uplink shared by a few fetchers) after this setup time (finding providers).
 */
export const ASSUMED_FETCH_BYTES_PER_MS = 20_000
export const MODEL_FETCH_SETUP_MS = 1000

/** A node puts its model names in the DHT again this often (kad-dht records expire after 48 h). */
export const NAME_REPUBLISH_MS = 12 * 60 * 60_000

/** A DHT put or get of a model name may take this long. */
export const NAME_TIMEOUT_MS = 10_000

/** Finished model fetches whose progress the API still shows (GET /v1/fetches). */
export const KEPT_FINISHED_FETCHES = 64

/**
 * A worker still fetching a piece's model answers OVERLOADED this long (at most a tenth of the
 * deadline) before the piece's deadline, so that its answer reaches the submitter before the
 * submitter gives up on it and counts a failed attempt.
 */
export const FETCH_ANSWER_MARGIN_MS = 1000

/**
 * A peer refused a worker's slot counts as waiting for one this long after its last refusal: longer
 * than a submitter's longest backoff (30 s: it tries a busy worker again after 1 s, then 2, 4, ... s),
 * so a peer that still wants a slot asks again within it.
 */
export const SLOT_WAIT_MS = 40_000

/**
 * A slot freed while peers wait is kept for them at most this long: a submitter backing off comes
 * back within a few seconds at first; a peer that only pretends to wait must not keep slots idle.
 */
export const SLOT_KEEP_MS = 5_000

/**
 * A piece that finds every slot taken waits at the worker this long for one (its header read, its
 * data not yet) before it is answered OVERLOADED: a slot that frees goes at once to a waiting piece,
 * the submitter of most credit first (docs/trust.md, "Credit"), instead of idling until a refused
 * submitter's backoff ends. At most SLOT_QUEUE_PER_SLOT pieces per slot wait (at least 8), and a peer
 * no more pieces than the worker has slots.
 */
export const SLOT_QUEUE_MS = 1000
export const SLOT_QUEUE_PER_SLOT = 4

/**
 * A slot its holder just released is kept this long for it when it has more credit than every piece
 * waiting (its next piece is usually a round trip away); then the best waiting piece gets it.
 */
export const PRIORITY_HOLD_MS = 50

/** An unused direct-channel ticket expires after this long. */
export const DIRECT_TICKET_TTL_MS = 10_000

/** Tickets one peer may hold unused at once, and all peers together. */
export const DIRECT_TICKETS_PER_PEER = 16
export const DIRECT_TICKETS_TOTAL = 256

/** Direct connections a node serves at once (beyond them the TLS listener refuses). */
export const DIRECT_MAX_CONNECTIONS = 128

/** The TCP connection and TLS handshake of a direct channel must complete within this. */
export const DIRECT_CONNECT_TIMEOUT_MS = 3000

/** After a direct channel to a peer fails to open, that peer's pieces use the libp2p stream for this long. */
export const DIRECT_RETRY_AFTER_MS = 10 * 60_000

/** Bytes a direct connection's reader buffers before it stops reading the socket (one frame always fits). */
export const DIRECT_READ_BUFFER_BYTES = 8 * 1024 * 1024

/**
 * A reused direct connection (the offer's `reuse`): the worker closes it after this long without a new
 * exchange; the client keeps at most DIRECT_IDLE_PER_PEER idle ones per peer (a window of pieces), each
 * for DIRECT_CLIENT_IDLE_MS, well within the worker's wait so that it is not closed under a new piece.
 */
export const DIRECT_SERVER_IDLE_MS = 30_000
export const DIRECT_CLIENT_IDLE_MS = 5000
export const DIRECT_IDLE_PER_PEER = 2

/**
 * Failed attempts a job lists (GET /v1/jobs/:id, `shoal run --json`); the rest are only counted. Enough
 * to show every peer's reasons in a job that goes wrong, bounded for a job of a million pieces.
 */
export const MAX_LISTED_FAILURES = 100

/**
 * Versions of Shoal (capacity ad `version`) that cannot take this version's pieces: 0.1.0 reads
 * `TensorInfo.dims` only unpacked and answers a packed request BAD_INPUT, which would fail the whole
 * job. Such peers get no pieces (docs/protocol.md, "Changes").
 */
export const INCOMPATIBLE_VERSIONS: ReadonlySet<string> = new Set(['0.1.0'])

/**
 * A job's first run on the submitter (one row: inputs the model refuses are caught before any peer
 * sees them) gets this long: creating a session of a large model takes seconds, and one that takes a
 * minute is a model to refuse.
 */
export const PROBE_TIMEOUT_MS = 60_000

/**
 * Self-sizing pieces carry at most this many bytes of inputs and outputs together: well under a
 * worker's default request limit (256 MiB), and what one piece holds in the submitter's memory.
 */
export const MAX_SIZED_PIECE_BYTES = 32 * 1024 * 1024

/** Models whose cost per row a node remembers from its jobs (the least recently measured forgotten first). */
export const MAX_MODEL_COSTS = 256

/**
 * The longest a piece from a peer holds a slot by default (--max-piece-time), whatever `deadline_ms`
 * it asks for: a submitter's deadline is 4x the piece's expected time, so this admits pieces of up to
 * 2.5 minutes of expected work, far more than the 0.5 s pieces are sized for, while two streams that
 * send a header and nothing more can no longer pin a worker's slots for weeks.
 */
export const DEFAULT_MAX_PIECE_MS = 10 * 60_000

/**
 * After admission a piece's inputs must keep arriving: every data frame within INPUT_IDLE_MS of the
 * last, and all of them within INPUT_IDLE_MS + bytes / MIN_INPUT_BYTES_PER_S (256 KiB/s: a slow home
 * uplink sends 1 MB/s). A client that stops sending is dropped instead of holding a slot.
 */
export const INPUT_IDLE_MS = 10_000
export const MIN_INPUT_BYTES_PER_S = 256 * 1024

/**
 * Peers one job gives pieces to, at most: the scheduler weighs every candidate at each decision, and
 * a job gains little from more than a few dozen peers (pieces are sized for ~0.5 s each, at least 4
 * per peer), while a table of thousands made each decision slow.
 */
export const MAX_JOB_PEERS = 64
/** Peers remembered as having completed a piece for this node (they may take pieces without a live connection). */
export const MAX_PROVEN_PEERS = 10_000

/**
 * Model fetches that pieces may start at once: per peer (a submitter's job needs one model; two
 * leaves room for a second job) and in all. A piece naming a model past these is answered OVERLOADED.
 */
export const MAX_PIECE_FETCHES_PER_PEER = 2
export const MAX_PIECE_FETCHES = 8

/**
 * An ad keeps its peer in a table at most AD_EXPIRY_INTERVALS x this after it arrived (3 minutes),
 * whatever interval it announces (the wire allows 10 minutes): an ad costs nothing to forge, and one
 * that announced 10 minutes kept a peer that said nothing more listed for 30. This node's own
 * `--ad-interval` is at most this, so that its peers never drop it between two ads.
 */
export const MAX_COUNTED_AD_INTERVAL_MS = 60_000

/**
 * Blocks of a fetch cut short are kept this long after they were written, so that a fetch tried again
 * soon resumes from them, then deleted; the store looks for such blocks at start and every
 * STRAY_BLOCK_SWEEP_MS. Until deleted they count against --max-storage.
 */
export const STRAY_BLOCK_TTL_MS = 60 * 60_000
export const STRAY_BLOCK_SWEEP_MS = 10 * 60_000

/**
 * Peers new to the table that one relaying peer may introduce per window (relay-quota.ts). A newcomer
 * to a mesh of a few thousand nodes learns them all through its ~6 gossip mesh peers, a few hundred
 * each: 1000 per 10 minutes leaves room for that, and stops one connection from minting thousands.
 */
export const MAX_NEW_PEERS_PER_RELAY = 1000
export const RELAY_QUOTA_WINDOW_MS = 10 * 60_000

/**
 * Micro-batches per stage a pipeline job aims for (when the batch has the rows): with S stages and M
 * micro-batches the pipeline takes about (M + S - 1) micro-batch times, so 4 per stage keeps the time
 * filling and draining it under a fifth of the job, and gives each stage's peers several to share.
 */
export const MICRO_BATCHES_PER_STAGE = 4

/**
 * How long a pipeline stage may have work waiting with no peer at all to serve it (none that takes
 * work, and this node does not hold the stage) before the job fails naming the stage: 10 s, a few ad
 * intervals, for a peer that is starting or fetching to show up.
 */
export const STAGE_WAIT_MS = 10_000

/** The most pipeline manifests a node keeps (`<data dir>/pipelines`); each is at most 64 KiB. */
export const MAX_PIPELINES = 256

/**
 * How long fetching a pipeline manifest may take in all: 30 s, as a model fetch waits for a provider
 * (a manifest is one block of at most 64 KiB: what takes time is finding who has it).
 */
export const MANIFEST_FETCH_TIMEOUT_MS = 30_000

/** The most targets one request tries (its first, a hedge, and retries after failures) before it fails. */
export const REQUEST_MAX_TARGETS = 4

/** A request's whole deadline unless the caller sets one: a minute, as a piece's probe gets. */
export const REQUEST_TIMEOUT_MS = 60_000

/** Models whose request routers (latencies per target) a node keeps; the least recently used are forgotten. */
export const MAX_REQUEST_ROUTERS = 64

/**
 * What a request target that never answered a model is expected to spend opening a session of it:
 * 100 ms plus the model at 50 MB/s, an estimate (a session costs a fixed setup and time that grows
 * with the model). Routing then prefers a target already measured, and a cold target's first answer
 * is not hedged as if it were late.
 */
export const SESSION_START_MS = 100
export const ASSUMED_SESSION_BYTES_PER_MS = 50_000

/** The most requests in flight to one peer: its inbound infer streams per connection are 32 (docs/protocol.md 9); a few stay for pieces. */
export const REQUEST_STREAMS_PER_PEER = 24

/** A request a target answered OVERLOADED is asked again after this, doubling each time, at most OVERLOADED_RETRY_MAX_MS (within the request's deadline). */
export const OVERLOADED_RETRY_MS = 5
export const OVERLOADED_RETRY_MAX_MS = 500

/**
 * Dynamic batching on a worker (`--batch-window`): a small piece waits 2 ms for others of its model
 * and shape, long enough for requests sent at once to meet, short against a request's round trip.
 */
export const DEFAULT_BATCH_WINDOW_MS = 2
export const MAX_BATCH_WINDOW_MS = 1000
/** Pieces of more rows run alone (a batch job's pieces are already large enough); a batched run takes at most BATCH_MAX_ROWS. */
export const BATCH_MAX_PIECE_ROWS = 16
export const BATCH_MAX_ROWS = 64

/** Receipts this node keeps for its work (docs/trust.md, "Credit"), the oldest dropped first. */
export const MAX_EARNED_RECEIPTS = 4096

/** A peer is shown this node's receipts at most once in this long (when this node first sends it a piece after it). */
export const RECEIPT_PRESENT_INTERVAL_MS = 10 * 60 * 1000

/** A peer's next receipt batch is read no sooner than this after its last (checking one costs up to 256 signature checks). */
export const RECEIPT_MIN_INTERVAL_MS = 250

/** Receipt batches to one peer are at least this far apart (twice what the receiver allows: clocks and delays differ). */
export const RECEIPT_SEND_SPACING_MS = 2 * RECEIPT_MIN_INTERVAL_MS

/** Receipts waiting to be sent to one peer, and peers with receipts waiting (the oldest dropped first). */
export const MAX_QUEUED_RECEIPTS_PER_PEER = 1024
export const MAX_RECEIPT_OUTBOX_PEERS = 1024

/** Requests a peer answered are receipted together: one receipt per peer and model for each such window. */
export const REQUEST_RECEIPT_WINDOW_MS = 1000

/** The longest a receipt exchange may take, either way. */
export const RECEIPT_TIMEOUT_MS = 10_000

/** credit.json and receipts.json are written at most this often. */
export const CREDIT_SAVE_DELAY_MS = 1_000

/** What the node did for others is sampled this often for the dashboard's history, the newest MAX_HISTORY_SAMPLES kept (24 hours). */
export const HISTORY_SAMPLE_MS = 30_000
export const MAX_HISTORY_SAMPLES = 2880

/** The share of contended slots kept for peers with no credit here (docs/trust.md, "Credit"). */
export const NEWCOMER_SHARE = 0.15
