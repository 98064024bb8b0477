/** The gossipsub topic capacity ads travel on. The trailing 1 is the ad format's version. */
export const CAPACITY_TOPIC = 'shoal/capacity/1'

/**
 * Largest encoded ad accepted, checked before decoding. A full ad (16 addresses, 8 providers, 64 model
 * CIDs) encodes to about 5 KiB; 8 KiB leaves room without letting a peer make every node store much.
 */
export const MAX_CAPACITY_AD_BYTES = 8192

/** Repeated-field limits, enforced while decoding so that a hostile ad cannot make us allocate. */
export const MAX_AD_ADDRS = 16
export const MAX_AD_PROVIDERS = 8
export const MAX_AD_MODELS = 64
/** Warm models an ad lists at most: a node keeps few sessions open (4 by default). */
export const MAX_AD_WARM_MODELS = 16
/** Models an ad may list as refused. */
export const MAX_AD_REFUSED_MODELS = 16

/** Longest free-text field (CPU model, GPU name) kept; longer ones are refused, not truncated. */
export const MAX_AD_TEXT_LENGTH = 256

/** Refresh intervals a publisher may announce: faster floods the topic, slower makes expiry too lazy. */
export const MIN_AD_INTERVAL_MS = 100
export const MAX_AD_INTERVAL_MS = 10 * 60_000

/** Plausibility bounds, so that one absurd ad cannot skew a scheduler's proportions. */
export const MAX_CPU_CORES = 4096
export const MAX_PROVIDER_GFLOPS = 10_000_000

/** Protocol id of Shoal's request/response protocol for running a piece. */
export const INFER_PROTOCOL = '/shoal/infer/1.0.0'

/**
 * Tensor bytes travel in frames of at most 1 MiB: big enough that framing costs nothing
 * measurable, small enough that no frame has to be buffered whole before being checked.
 */
export const DATA_FRAME_BYTES = 1024 * 1024

/** The header frames (InferRequest, InferResponse) are at most 64 KiB. */
export const MAX_HEADER_FRAME_BYTES = 64 * 1024

/** Every frame on the infer protocol is at most this long (a data frame plus nothing). */
export const MAX_FRAME_BYTES = DATA_FRAME_BYTES

/** Default limit on a request's total tensor bytes (configurable per node): 256 MiB. */
export const DEFAULT_MAX_REQUEST_BYTES = 256 * 1024 * 1024

export const MAX_TENSORS_PER_MESSAGE = 64
export const MAX_TENSOR_DIMS = 8
export const MAX_TENSOR_NAME_LENGTH = 256
/** Job ids and CIDs are short strings; anything longer is not one. */
export const MAX_ID_LENGTH = 128

/**
 * Protocol id of the direct data channel's offer (docs/protocol.md 6.1): it moves a protocol's bytes
 * from the libp2p connection onto a direct TLS 1.3 connection with a one-time pre-shared key.
 */
export const DIRECT_PROTOCOL = '/shoal/direct/1.0.0'
export const DIRECT_TICKET_BYTES = 16
export const DIRECT_KEY_BYTES = 32
/** Largest DirectRequest or DirectOffer frame accepted. */
export const MAX_DIRECT_MESSAGE_BYTES = 1024
/** TLS 1.3 cipher suites a direct connection may use, in order of preference (AES-GCM where the CPU has AES instructions). */
export const DIRECT_CIPHER_SUITES = 'TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_256_GCM_SHA384'

/**
 * Protocol id of block fetching (docs/protocol.md 7.3): one block of a model per request, requests one
 * after another on a stream.
 */
export const BLOCK_PROTOCOL = '/shoal/block/1.0.0'
/** Largest BlockRequest or BlockResponse frame accepted: a CID is under 100 bytes. */
export const MAX_BLOCK_MESSAGE_BYTES = 256
/** Largest block of a model: the 1 MiB leaf of the model profile (dag-pb nodes are smaller). */
export const MAX_BLOCK_BYTES = DATA_FRAME_BYTES

/**
 * Protocol id of receipts (docs/protocol.md 6.4): a submitter's signed receipts for work a worker did,
 * and a node's proof to others of the work it did.
 */
export const RECEIPT_PROTOCOL = '/shoal/receipt/1.0.0'
/** Largest ReceiptBatch frame accepted (and ReceiptAck, far smaller). */
export const MAX_RECEIPT_BATCH_BYTES = 64 * 1024
/** Most receipts in each list of a ReceiptBatch. */
export const MAX_RECEIPTS_PER_BATCH = 128
/** Largest encoded Receipt accepted: its fields need under 400 bytes. */
export const MAX_RECEIPT_BYTES = 512
/** A receipt may be dated at most this far ahead of the receiver's clock. */
export const MAX_RECEIPT_CLOCK_SKEW_MS = 10 * 60 * 1000
/** Most work units one receipt may state per row: 10^9 MFLOP (a petaFLOP) a row is beyond any model Shoal runs. */
export const MAX_RECEIPT_WORK_PER_ROW = 1_000_000_000
