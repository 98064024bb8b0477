import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'

/** Content type of the Prometheus text exposition format that `GET /metrics` answers with. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

/** Gauges read when scraped: what the node is now. */
export interface NodeGauges {
  peers: () => number
  connections: () => number
  piecesRunning: () => number
  jobsRunning: () => number
  models: () => number
  storeBytes: () => number
  storeQuotaBytes: () => number
  /** Direct connections this node serves now, and has accepted since start. */
  directOpen: () => number
  directAccepted: () => number
}

/** What a node has done for others since it started (`shoal node status`). */
export interface Contribution {
  /** Pieces answered ok. */
  pieces: number
  rows: number
  computeSeconds: number
  modelBytesServed: number
}

/**
 * A node's Prometheus metrics (docs/operators.md lists them): what it computed for others, the jobs it
 * ran, the models it stored and served, and gauges of its state. One registry per node, so that nodes
 * sharing a process (simulations, tests) count apart. Shoal's own counters only: libp2p's metrics
 * component wraps every stream with a byte-counting listener, on the path of every piece.
 */
export class NodeMetrics {
  readonly registry = new Registry()
  readonly workerPieces = new Counter({ name: 'shoal_worker_pieces_total', help: 'Pieces this node was asked to run for other nodes, by outcome (ok, or the error code it answered)', labelNames: ['outcome'] as const, registers: [this.registry] })
  readonly workerRows = new Counter({ name: 'shoal_worker_rows_total', help: 'Batch rows this node computed for other nodes (pieces answered ok)', registers: [this.registry] })
  readonly workerComputeSeconds = new Counter({ name: 'shoal_worker_compute_seconds_total', help: 'ONNX Runtime time spent on pieces for other nodes, by execution provider', labelNames: ['provider'] as const, registers: [this.registry] })
  readonly workerPieceSeconds = new Histogram({ name: 'shoal_worker_piece_duration_seconds', help: 'Pieces answered ok: from the request to the last output byte written', buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [this.registry] })
  readonly workerTensorBytes = new Counter({ name: 'shoal_worker_tensor_bytes_total', help: 'Tensor bytes of pieces run for other nodes, by direction (in: inputs received, out: outputs sent) and channel (stream: libp2p, direct: the direct data channel)', labelNames: ['direction', 'channel'] as const, registers: [this.registry] })
  readonly jobs = new Counter({ name: 'shoal_jobs_total', help: 'Batch jobs submitted to this node that ended, by state (done or failed; a cancelled job failed)', labelNames: ['state'] as const, registers: [this.registry] })
  readonly jobPieces = new Counter({ name: 'shoal_job_pieces_total', help: 'Pieces of this node\'s jobs completed, by where they ran (remote or local)', labelNames: ['where'] as const, registers: [this.registry] })
  readonly jobRetries = new Counter({ name: 'shoal_job_retries_total', help: 'Pieces of this node\'s jobs put back in the queue after a failure or timeout', registers: [this.registry] })
  readonly jobDuplicates = new Counter({ name: 'shoal_job_duplicates_total', help: 'End-game copies started for this node\'s jobs', registers: [this.registry] })
  readonly jobChecks = new Counter({ name: 'shoal_job_checked_pieces_total', help: 'Peers\' answers to this node\'s jobs checked against its own run (--verify), by outcome', labelNames: ['outcome'] as const, registers: [this.registry] })
  readonly peersExcluded = new Counter({ name: 'shoal_peers_excluded_total', help: 'Peers excluded from this node\'s jobs for a wrong answer', registers: [this.registry] })
  readonly modelServedBytes = new Counter({ name: 'shoal_model_served_bytes_total', help: 'Model block bytes this node served to other nodes', registers: [this.registry] })
  readonly batchedRuns = new Counter({ name: 'shoal_batched_runs_total', help: 'ONNX Runtime calls that ran several small pieces from peers together (dynamic batching)', registers: [this.registry] })
  readonly batchedPieces = new Counter({ name: 'shoal_batched_pieces_total', help: 'Pieces from peers that ran in a batched call', registers: [this.registry] })
  readonly modelFetches = new Counter({ name: 'shoal_model_fetches_total', help: 'Model fetches through the swarm that ended, by outcome (done or failed)', labelNames: ['outcome'] as const, registers: [this.registry] })
  readonly modelFetchedBytes = new Counter({ name: 'shoal_model_fetched_bytes_total', help: 'Model bytes fetched from other nodes (blocks already held not counted)', registers: [this.registry] })
  private readonly contribution: Contribution = { pieces: 0, rows: 0, computeSeconds: 0, modelBytesServed: 0 }

  constructor (info: { version: string, peerId: () => string }, gauges: NodeGauges) {
    // the usual label values exist from the start (at 0), so that rate() and alerts see them before the first event
    this.workerPieces.inc({ outcome: 'ok' }, 0)
    for (const state of ['done', 'failed']) this.jobs.inc({ state }, 0)
    for (const where of ['remote', 'local']) this.jobPieces.inc({ where }, 0)
    for (const outcome of ['done', 'failed']) this.modelFetches.inc({ outcome }, 0)
    const registers = [this.registry]
    const gauge = (name: string, help: string, read: () => number): void => {
      // eslint-disable-next-line no-new
      new Gauge({ name, help, registers, collect () { this.set(read()) } })
    }
    // eslint-disable-next-line no-new
    new Gauge({ name: 'shoal_info', help: 'Always 1; the labels say which node and version this is', labelNames: ['version', 'peer_id'] as const, registers, collect () { this.reset(); this.set({ version: info.version, peer_id: info.peerId() }, 1) } })
    gauge('shoal_peers', 'Live peers in this node\'s peer table (unexpired capacity ads)', gauges.peers)
    gauge('shoal_connections', 'Open libp2p connections', gauges.connections)
    gauge('shoal_worker_pieces_running', 'Pieces this node is running for other nodes now', gauges.piecesRunning)
    gauge('shoal_jobs_running', 'Batch jobs of this node not yet ended', gauges.jobsRunning)
    gauge('shoal_models', 'Complete models in this node\'s store', gauges.models)
    gauge('shoal_model_store_bytes', 'Bytes of the models in this node\'s store', gauges.storeBytes)
    gauge('shoal_model_store_quota_bytes', 'This node\'s storage quota for models (--max-storage)', gauges.storeQuotaBytes)
    gauge('shoal_direct_connections', 'Direct data channel connections this node serves now (kept between pieces)', gauges.directOpen)
    // eslint-disable-next-line no-new
    new Counter({ name: 'shoal_direct_connections_accepted_total', help: 'Direct data channel connections this node accepted (each a TLS handshake)', registers, collect () { this.reset(); this.inc(gauges.directAccepted()) } })
  }

  /** A piece computed for another node and answered ok. */
  pieceComputed (piece: { rows: number, provider: string, computeMs: number, outputBytes: number, channel: 'stream' | 'direct', seconds: number }): void {
    this.workerRows.inc(piece.rows)
    this.workerComputeSeconds.inc({ provider: piece.provider }, piece.computeMs / 1000)
    this.workerTensorBytes.inc({ direction: 'out', channel: piece.channel }, piece.outputBytes)
    this.workerPieceSeconds.observe(piece.seconds)
    this.contribution.pieces++
    this.contribution.rows += piece.rows
    this.contribution.computeSeconds += piece.computeMs / 1000
  }

  /** A model block served to another node. */
  blockServed (bytes: number): void {
    this.modelServedBytes.inc(bytes)
    this.contribution.modelBytesServed += bytes
  }

  /** What this node has done for others since it started. */
  contributed (): Contribution {
    return { ...this.contribution }
  }

  /** Adds Node.js process metrics (CPU, memory, event loop lag, GC): for a node that has its process to itself. */
  collectProcessMetrics (): void {
    collectDefaultMetrics({ register: this.registry })
  }

  /** The metrics in Prometheus's text format. */
  async text (): Promise<string> {
    return await this.registry.metrics()
  }
}
