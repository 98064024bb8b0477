import type { MeshTuning } from '@shoal/node'

/** Seed of a scenario that names none: runs are reproducible even when nobody asked. */
export const DEFAULT_SEED = 1

/** How long a scenario runs at most when it says nothing; jobs still running then are reported unfinished. */
export const DEFAULT_DURATION_MS = 60_000

/**
 * Capacity-ad interval inside a simulation when the scenario names none: this many ms per node, within
 * [MIN, MAX]. Every ad is signature-checked by every node, so n nodes in one process cost n^2 checks
 * per interval: short intervals make a small mesh notice a killed node's ad expire (3 intervals) within
 * seconds, long ones keep a large mesh within two cores (docs/benchmarks.md).
 */
export const AD_INTERVAL_PER_NODE_MS = 200
export const MIN_AUTO_AD_INTERVAL_MS = 1000
export const MAX_AUTO_AD_INTERVAL_MS = 20_000

/**
 * libp2p settings of simulated nodes: a hundred nodes share two cores, so replies are late because the
 * event loop is busy, not because a peer died (docs/simulation.md, "Large meshes"). Fewer connections
 * each (a volunteer's node aims for 24; with 24 every node of a 50-node mesh ended connected to nearly
 * every other); no connection monitor (under load its pings time out and it closes healthy connections,
 * whose reconnection costs more CPU: killed nodes are still noticed at once, their sockets close);
 * handshakes that may take 30 s instead of 10 before they are given up; at most 16 inbound
 * connections (else the oldest nodes end up connected to every newcomer); and a gossip mesh of degree
 * 4 without flood publishing (each ad reached a node about 7 times with gossipsub's defaults, and
 * those copies were most of the gossip work). The client, every node's bootstrap and every job's
 * submitter, takes every connection.
 */
export const SIM_TUNING: MeshTuning = { targetConnections: 8, connectionMonitor: false, handshakeTimeoutMs: 30_000, maxInboundConnections: 16, gossipDegree: 4, floodPublish: false }
export const CLIENT_TUNING: MeshTuning = { ...SIM_TUNING, maxInboundConnections: undefined }

/** Pieces a simulated node runs at once, as a volunteer's default. */
export const DEFAULT_CONCURRENCY = 2

/** A random failure rate is per node per this period unless the scenario says otherwise. */
export const DEFAULT_RANDOM_CHURN_PER_MS = 1000

/** The generated model when a scenario names none: a small MLP, about 1 ms a row on one core. */
export const DEFAULT_GENERATED_MODEL = { width: 256, layers: 4 }

/** What the scheduler is told a simulated CPU node can do at speed 1 (a modest laptop core). */
export const BASE_GFLOPS = 50

/** A simulated GPU node advertises this many times a CPU node's rate at the same speed factor. */
export const GPU_GFLOPS_FACTOR = 10

/** How long the initial mesh may take to converge (every node seeing every other's ad). */
export const CONVERGENCE_TIMEOUT_MS = 60_000

/** How often convergence and liveness are sampled. */
export const SAMPLE_INTERVAL_MS = 50

/** Rows run to calibrate the delay compute mode (the median of these runs' per-row cost is used). */
export const CALIBRATION_RUNS = 5

/** Width of a bucket of the throughput plot, as a fraction of the run. */
export const THROUGHPUT_BUCKETS = 60

/** A node process (Node start, libp2p, first ad) is ready well within this on a loaded 2-core machine. */
export const PROCESS_START_TIMEOUT_MS = 60_000

/** A node process answers a question or leaves within this, or is counted as gone (and killed). */
export const PROCESS_REPLY_TIMEOUT_MS = 5_000
