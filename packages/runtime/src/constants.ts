/** Measuring each provider for 400 ms after warm-up gives a rate stable to a few percent on a quiet machine. */
export const PROBE_MEASURE_MS = 400

/**
 * A probe gets 60 s: WebGPU session creation alone took 1.3-1.6 s on an H100, and a cold
 * shader cache or a slow driver can take much longer; a provider that needs more is not worth using.
 */
export const PROBE_TIMEOUT_MS = 60_000

/**
 * Largest model accepted by default: 2 GiB is protobuf's own limit for one ONNX file, and a model
 * bigger than a volunteer's memory budget is refused by the node's own limits anyway.
 */
export const DEFAULT_MAX_MODEL_BYTES = 2 * 1024 ** 3 - 1

/**
 * What a model may hold, counted on its bytes before it is decoded (model-scan.ts): decoding builds an
 * object per node, attribute and tensor, and a file of millions of empty nodes is a few MB of bytes
 * but the whole heap once decoded. Real models are far below: PP-OCRv4's models have hundreds to a few
 * thousand nodes, transformer exports of billions of parameters tens of thousands.
 */
export const MAX_MODEL_NODES = 200_000
export const MAX_MODEL_ATTRIBUTES = 1_000_000
export const MAX_MODEL_TENSORS = 200_000
/** Graphs nested in graphs (If, Loop, Scan bodies): real models nest a few deep. */
export const MAX_MODEL_DEPTH = 32
/**
 * Fields of all the messages the scan reads (graphs, nodes, attributes, tensors, value infos and
 * their types): each is at least one value once decoded. PP-OCRv4's models have about 10 per node
 * (7 900 for 765 nodes); a graph at the node limit stays well under this.
 */
export const MAX_MODEL_FIELDS = 4_000_000
/** Messages nested in messages, of any kind (types in types, graphs in nodes in graphs). */
export const MAX_MODEL_NESTING = 200

/**
 * A child process of ProcessSessions gets at least this much address space: Node and ONNX Runtime
 * reserve about 1.5 GB of it before any model (under 1 GB they did not start), and it is reserved,
 * not used, memory. Beyond that a child gets its memory limit plus SANDBOX_ADDRESS_SPACE_MARGIN_BYTES.
 */
export const MIN_SANDBOX_ADDRESS_SPACE_BYTES = 2 * 1024 ** 3
export const SANDBOX_ADDRESS_SPACE_MARGIN_BYTES = 1024 ** 3

/**
 * Inspecting a model (decoding and checking it, in a child process of its own) may take this long:
 * a 1 GB model decodes in a few seconds; a decode past this is a model built to be slow.
 */
export const INSPECT_TIMEOUT_MS = 60_000

/**
 * The heap an inspecting process gets at least, whatever the memory limit: PP-OCRv4's models (5 and
 * 11 MB) decode into 1.5 MB of heap; a real model's weights stay bytes, its objects are few.
 */
export const MIN_INSPECT_HEAP_BYTES = 64 * 2 ** 20

/**
 * A model whose run was killed, crashed its process or used too much memory is refused this long
 * before it may be tried again: long enough that a hostile model costs a worker one attempt in
 * minutes, short enough that a model refused for a passing reason (a busy machine) comes back.
 */
export const SANDBOX_REFUSE_MS = 10 * 60_000

/**
 * The largest model `splitModel` takes: protobuf's own limit (2 GiB), which an ONNX file whose weights
 * are stored inside it cannot pass either. A model stored with external data files is refused, as by
 * every node.
 */
export const DEFAULT_MAX_SPLIT_BYTES = 2 * 1024 ** 3 - 1

/**
 * What a free dimension after the batch axis is in the sample `splitModel` measures with, when no
 * sample is given: 32, a sequence length or image side most models take (a convolutional network
 * that halves an image five times still has one pixel left).
 */
export const SPLIT_SAMPLE_DIM = 32

/**
 * Sessions a session cache keeps open (the least recently used one is released past it): 4, enough for
 * a job's model, a pipeline's stages on one worker or a few requested models, without holding the
 * memory of every model a worker ever ran.
 */
export const DEFAULT_MAX_SESSIONS = 4
