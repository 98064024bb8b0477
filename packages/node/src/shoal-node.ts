import { readFile, rm } from 'node:fs/promises'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import { encodePipelineManifest, INFER_PROTOCOL, isPipelineCid, MAX_AD_MODELS, MAX_AD_REFUSED_MODELS, MAX_AD_WARM_MODELS } from '@shoal/protocol'
import type { Capacity } from '@shoal/protocol'
import { BatchingRuntime, calibrate, inspectModel, inspectModelInChild, ProcessSessions, SessionCache, slowed, splitModel, ThreadedSessions } from '@shoal/runtime'
import type { SplitOptions, SplitResult } from '@shoal/runtime'
import { checkFraction, RequestRouter, TrustRecords } from '@shoal/scheduler'
import { raceSignal } from 'race-signal'
import { toString as uint8ArrayToString } from 'uint8arrays/to-string'
import type { Calibration, ModelInfo, PieceRuntime, Tensor } from '@shoal/runtime'
import { apiRoutes, ApiServer } from './api/index.js'
import { DASHBOARD_HEADERS, DASHBOARD_PAGES } from './api/dashboard.js'
import { INCOMPATIBLE_VERSIONS, KEPT_FINISHED_JOBS, MAX_JOB_PEERS, MAX_PIPELINES, MAX_PROVEN_PEERS, NAME_REPUBLISH_MS, NAME_TIMEOUT_MS, SHOAL_VERSION, ASSUMED_FETCH_BYTES_PER_MS, MODEL_FETCH_SETUP_MS, MAX_REQUEST_ROUTERS, REQUEST_STREAMS_PER_PEER, SESSION_START_MS, BATCH_MAX_PIECE_ROWS, BATCH_MAX_ROWS, ASSUMED_SESSION_BYTES_PER_MS, HISTORY_SAMPLE_MS, MAX_HISTORY_SAMPLES } from './constants.js'
import { createShoalLibp2p, detectHardware } from './mesh/index.js'
import { swarmKeyFingerprint } from './mesh/swarm-key.js'
import type { MeshTuning, ShoalLibp2p, PeerEvent } from './mesh/index.js'
import { dataDirFiles, loadOrCreateIdentity, prepareDataDir, writePrivateFile } from './data-dir.js'
import { ListenError } from './errors.js'
import { parseModelCid, ModelStore, parseNameRef, pipelineManifestOf, PipelineStore } from './models/index.js'
import type { PipelineEntry } from './models/index.js'
import type { ModelSwarm, NameService } from './models/index.js'
import { DirectPool, runRemotePiece, signerFor } from './pieces/index.js'
import type { Channel, LinkShape, SignedCommitment } from './pieces/index.js'
import { CanaryPool, Job, JobError, ModelCosts, PipelineJob, RequestSlots, runRequest } from './jobs/index.js'
import type { JobOptions, RequestOptions, RequestResult, SubmitterDeps, WrongAnswer } from './jobs/index.js'
import type { ModelEntry, FetchOptions, FetchSummary, Manifest, Resolved } from './models/index.js'
import type { NodeConfig } from './config.js'
import { Lifecycle } from './lifecycle.js'
import { CreditKeeper } from './credit/index.js'
import type { CreditView } from './credit/index.js'
import { NodeMetrics } from './metrics.js'
import { parseModelPattern, servesModel } from './preferences.js'
import type { ModelPattern } from './preferences.js'
import { ServingGate } from './serving-gate.js'
import type { ServingView } from './serving-gate.js'
import type { Contribution } from './metrics.js'

/**
 * An answer proven wrong, with its worker's signed commitment: the commitment (an encoded
 * AnswerCommitment) and the signature, base64, as the worker sent them (docs/protocol.md 6.3).
 */
export interface Evidence {
  peerId: string
  jobId: string
  pieceId: number
  modelCid: string
  /** When this node recorded it (ms since the epoch). */
  recordedAt: number
  commitment: string
  signature: string
}

/** The newest this many pieces of evidence are kept, at most MAX_EVIDENCE_PER_PEER of one peer. */
const MAX_EVIDENCE = 1000
const MAX_EVIDENCE_PER_PEER = 8

function isEvidence (v: any): v is Evidence {
  return v != null && typeof v === 'object' && ['peerId', 'jobId', 'modelCid', 'commitment', 'signature'].every(k => typeof v[k] === 'string') && Number.isSafeInteger(v.pieceId) && Number.isSafeInteger(v.recordedAt)
}

/** One peer as the API and `shoal peers --json` show it. */
export interface PeerView extends Capacity {
  lastSeenMs: number
  /** What this node's jobs have seen of its answers (docs/trust.md). */
  standing: Standing
  /**
   * How this node is connected to it now: `outbound` (this node dialled it), `inbound` (it dialled
   * this node: the only way to reach a peer behind a router), `relayed` (only through a relay), `none`.
   */
  connection: 'outbound' | 'inbound' | 'relayed' | 'none'
}

/** A peer's standing with this node: its record of verified answers, and any exclusion. */
export interface Standing {
  /** Consecutive answers verified correct. */
  verified: number
  /** Answers proven wrong, ever. */
  offences: number
  /** Excluded from this node's jobs until then (ms since the epoch); null when not excluded. */
  excludedUntil: number | null
  /** The share of its answers `--verify spot` checks now (1: every answer). */
  checkShare: number
}

export interface NodeStatus {
  peerId: string
  version: string
  startedAt: number
  uptimeMs: number
  addrs: string[]
  dataDir: string
  apiUrl: string
  connections: number
  peers: number
  /** Distinct peers with an open connection. */
  connectedPeers: number
  /** Peers in the Kademlia routing table. */
  dhtPeers: number
  capacity: Capacity
  calibration: { cached: boolean, measuredAt: number, failed: Calibration['failed'] }
  refusedAds: Record<string, number>
  /** The direct data channel's listener (docs/protocol.md 6.1): null when off (--no-direct). */
  direct: { host: string, port: number } | null
  /** The private mesh this node is in (--swarm-key): its key's fingerprint; null in the public mesh. */
  privateMesh: string | null
  /**
   * How peers can reach this node: `lan` (LAN mode: at its private addresses), `public` (at an
   * address of its own), `relayed` (only through a relay), `outbound-only` (no address to tell: it is
   * reached over the connections it opens).
   */
  reachability: 'lan' | 'public' | 'relayed' | 'outbound-only'
  /** This process's memory, as Node reports it. */
  memory: { rssBytes: number, heapUsedBytes: number }
  /** What this node has done for others since it started. */
  contributed: Contribution
  /** Contribution credit: receipts this node holds for its work, what it signed for peers', peers' credit here (docs/trust.md, "Credit"). */
  credit: CreditView
  /** Peers' pieces running here now (of `capacity.limits.maxConcurrency`). */
  running: number
  /** Its models: how many, the bytes they take, and the storage quota (--max-storage). */
  storage: { models: number, usedBytes: number, maxBytes: number }
  /** Whether it takes new pieces now, and its volunteer's preferences that decide it (docs/operators.md, "What you give"). */
  serving: ServingView & { serveModels: string[], refuseModels: string[], cpuShare: number }
}

/** Where a running node's API is, as written to `<dataDir>/api.json`. */
export interface ApiInfo {
  url: string
  token: string
  pid: number
  peerId: string
}

/** What the node had done for others at a moment (the dashboard's history, `GET /v1/history`). */
export interface HistorySample {
  /** ms since the epoch. */
  at: number
  pieces: number
  rows: number
  computeSeconds: number
  /** Work units of the receipts it holds, and of those it signed for peers. */
  earnedWork: number
  issuedWork: number
}

export interface ShoalNodeInit {
  config: NodeConfig
  /**
   * Use this calibration instead of measuring (simulations and tests that start many nodes in one
   * process, where measuring each would only measure the others).
   */
  calibration?: Omit<Calibration, 'fingerprint'>
  /** Tests shorten the mesh keeper's redial period. */
  meshKeeperIntervalMs?: number
  /** Start the HTTP API (default true). In-process meshes can do without. */
  api?: boolean
  /** Simulation hook: settings for many nodes sharing one machine's cores. */
  tuning?: MeshTuning
  /** Test and simulation hook: every inference on this node takes this many times as long. */
  slowdown?: number
  /** Tests shorten how long a model fetch waits for a provider to appear. */
  noProviderTimeoutMs?: number
  /** Test hook: the memory in use that `--max-memory` is checked against (default: the process's resident set). */
  memoryInUse?: () => number
  /** Test hook: how long a piece's inputs may pause (default INPUT_IDLE_MS). */
  inputIdleMs?: number
  /** Test hook: false makes this node refuse to reuse direct connections, as a node from before it could. */
  directReuse?: boolean
  /**
   * Simulation hook: runs pieces instead of ONNX Runtime sessions (`shoal sim`'s calibrated delay).
   * The node closes it when it stops.
   */
  runtime?: PieceRuntime
  /** Simulation hook: piece traffic to and from this node goes as over this link (latency, bandwidth). */
  shaping?: LinkShape
  /** Test hook: signs this node's commitments to its answers instead of its key (a worker whose signatures do not verify). */
  signCommitment?: (payload: Uint8Array) => Promise<Uint8Array>
  /** Test hook: signs this node's receipts instead of its key. */
  signReceipt?: (payload: Uint8Array) => Promise<Uint8Array>
  /** Test hook: the machine's state and the time of day as the volunteer's preferences see them. */
  machine?: { busy?: () => boolean | null, onAc?: () => Promise<boolean | null>, minuteOfDay?: () => number }
  /** Test hook: how often the preferences are checked (default SERVING_CHECK_MS). */
  servingCheckMs?: number
  /**
   * Simulation hook: false serves the submitters waiting for this node's slots in turn, whatever
   * their credit (receipts are still signed and kept): what credit changes is measured against it.
   */
  creditPriority?: boolean
}

/**
 * A Shoal node: its libp2p host (capacity ads, inference service), its calibration, model store and
 * ONNX Runtime sessions, the jobs submitted to it, and its local HTTP API. `start()` is ready when the
 * node listens, has published its first ad and the API answers.
 */
export class ShoalNode {
  readonly config: NodeConfig
  private readonly init: ShoalNodeInit
  private libp2pNode?: ShoalLibp2p
  private api?: ApiServer
  private calibrationResult?: Calibration & { cached: boolean }
  private startedAt = 0
  readonly models: ModelStore
  private sessions?: PieceRuntime
  /** The parts start() started, to stop in reverse. */
  private lifecycle?: Lifecycle
  private readonly jobs = new Map<string, Job | PipelineJob>()
  /** Requests in flight to each peer: its advertised concurrency (it refuses more as OVERLOADED), at most the streams it takes per connection. */
  private readonly requestSlots = new RequestSlots(peerId => {
    const ad = this.libp2pNode?.services.capacity.peers.list().find(e => e.capacity.peerId === peerId)
    return Math.min(REQUEST_STREAMS_PER_PEER, ad?.capacity.limits.maxConcurrency ?? 1)
  })

  /** Per model, where its requests went and how long they took (`infer`). */
  private readonly routers = new Map<string, RequestRouter>()
  /** Pipeline manifests this node holds (`<data dir>/pipelines`). */
  readonly pipelines: PipelineStore
  /** What start() found and mended or could not (a data dir open to other users), for the operator. */
  readonly startWarnings: string[] = []
  /** Rows whose answers this node knows, per model, for its jobs' canaries (`JobOptions.canaries`). */
  private readonly canaries = new CanaryPool()
  /** What this node's jobs measured each model's rows to cost: the next job's pieces are sized from it. */
  private readonly costs = new ModelCosts()
  private jobLog?: SubmitterDeps['log']
  /** Signed commitments of answers proven wrong, newest last (at most MAX_EVIDENCE; `<data dir>/evidence.json`). */
  private evidenceRecords: Evidence[] = []
  /** The save of trust.json and evidence.json under way, and whether another is wanted after it. */
  private saving: Promise<void> = Promise.resolve()
  private saveAgain = false
  /** Peers that completed a piece for this node (newest last; at most MAX_PROVEN_PEERS). */
  private readonly proven = new BoundedSet<string>(MAX_PROVEN_PEERS)
  /** Direct connections for pieces to peers, kept between pieces (docs/protocol.md 6.1). */
  private readonly direct = new DirectPool({
    connections: peer => this.libp2p.getConnections(peer),
    // a peer that tells no address of its own (outside LAN mode: it sits behind a router) cannot be
    // dialled (a router that drops the attempt costs the piece a connect timeout): it connects back
    // to this node's listener when this node can be reached, else pieces use libp2p streams
    mode: peer => directWorthTrying(this.config.lan, this.libp2pNode?.services.capacity.peers.get(peer.toString())?.capacity.addrs) ? 'dial' : this.reachability() === 'public' ? 'reverse' : 'none',
    reverse: peer => this.libp2pNode?.services.direct.expectReverse(peer, INFER_PROTOCOL, true),
    running: () => this.libp2pNode?.status === 'started',
    log: (format, ...args) => { this.libp2pNode?.logger.forComponent('shoal:direct')(format, ...args) }
  })
  /** Prometheus metrics (`GET /metrics`; docs/operators.md). */
  readonly metrics: NodeMetrics
  /** Peers' records of verified and wrong answers, shared by this node's jobs (`<data dir>/trust.json`). */
  readonly trust = new TrustRecords(Date.now)
  /** Contribution credit: receipts given and earned, peers' credit (`<data dir>/credit.json`, `receipts.json`). */
  private creditKeeper?: CreditKeeper
  private servingGate?: ServingGate
  private readonly samples: HistorySample[] = []
  private historyTimer?: ReturnType<typeof setInterval>
  /** The volunteer's model preferences, parsed. */
  private readonly modelPrefs: { serve: ModelPattern[], refuse: ModelPattern[] }
  /** Names this node resolved, by the CID they name (bounded): what --serve-model and --refuse-model names match. */
  private readonly knownNames = new Map<string, Manifest[]>()

  constructor (init: ShoalNodeInit) {
    this.init = init
    this.config = init.config
    const isPeerId = (text: string): boolean => { try { peerIdFromString(text); return true } catch { return false } }
    this.modelPrefs = {
      serve: init.config.serveModels.map(t => parseModelPattern(t, isPeerId)),
      refuse: init.config.refuseModels.map(t => parseModelPattern(t, isPeerId))
    }
    this.pipelines = new PipelineStore(init.config.dataDir, MAX_PIPELINES)
    this.models = new ModelStore({
      dataDir: init.config.dataDir,
      maxModelBytes: init.config.maxModelBytes,
      maxStorageBytes: init.config.maxStorageBytes,
      onChange: () => this.libp2pNode?.services.capacity.changed(),
      onRemoved: cid => { void this.libp2pNode?.services.swarm.unannounce(cid) },
      // a model is decoded in a child process of its own, as it runs in one: a stranger's protobuf
      // that takes the heap or never ends takes only that process (docs/operators.md, "Security")
      inspect: sandboxed()
        ? async (bytes, options) => await inspectModelInChild(bytes, { ...options, memoryLimitBytes: init.config.maxMemoryBytes })
        : inspectModel
    })
    this.metrics = new NodeMetrics({ version: SHOAL_VERSION, peerId: () => this.libp2pNode?.peerId.toString() ?? '' }, {
      peers: () => this.libp2pNode?.services.capacity.peers.size ?? 0,
      connections: () => this.libp2pNode?.getConnections().length ?? 0,
      piecesRunning: () => this.libp2pNode?.services.inference.running ?? 0,
      jobsRunning: () => [...this.jobs.values()].filter(j => j.result == null && j.error == null).length,
      models: () => this.models.list().length,
      storeBytes: () => this.models.usedBytes(),
      storeQuotaBytes: () => this.config.maxStorageBytes,
      directOpen: () => this.libp2pNode?.services.direct.connectionsOpen ?? 0,
      directAccepted: () => this.libp2pNode?.services.direct.connectionsAccepted ?? 0
    })
  }

  /** Moves models between this node and its peers (the libp2p service `swarm`). */
  get swarm (): ModelSwarm {
    return this.libp2p.services.swarm
  }

  /** Signed model names, name@version (the libp2p service `names`). */
  get names (): NameService {
    return this.libp2p.services.names
  }

  get libp2p (): ShoalLibp2p {
    if (this.libp2pNode == null) throw new Error('node is not started')
    return this.libp2pNode
  }

  get peerId (): string {
    return this.libp2p.peerId.toString()
  }

  /** Multiaddrs others can dial, each ending in /p2p/<peerId>. */
  get addrs (): string[] {
    return this.libp2p.getMultiaddrs().map(ma => ma.toString())
  }

  /**
   * Starts the node: the data dir, identity and calibration first, then its parts in order (the model
   * store, the sandbox, libp2p with Shoal's services, swarm and names among them, the API). A part
   * that fails to start stops those already started: a node that failed to start leaves nothing running.
   */
  async start (): Promise<void> {
    const { config } = this
    this.startWarnings.push(...await prepareDataDir(config.dataDir))
    // calibration runs in child processes while the identity loads and the store opens
    const calibration = this.init.calibration != null
      ? Promise.resolve({ ...this.init.calibration, fingerprint: 'given', cached: true })
      : calibrate({ cpuThreads: config.cpuThreads, noGpu: !config.gpu, cacheFile: dataDirFiles(config.dataDir).calibration, recalibrate: config.recalibrate })
    calibration.catch(() => {}) // awaited by the sandbox's start; a failed store start must not leave it unhandled
    const privateKey = await loadOrCreateIdentity(config.dataDir)
    const credit = this.creditKeeper = new CreditKeeper({ dataDir: config.dataDir, privateKey, peerId: peerIdFromPrivateKey(privateKey), ...(this.init.signReceipt != null ? { signReceipt: this.init.signReceipt } : {}) })
    this.lifecycle = new Lifecycle()
      .add('model store', async () => {
        await this.models.start()
        await this.pipelines.start()
        await this.loadTrust()
        this.startWarnings.push(...await credit.load())
      }, async () => { this.models.stop() })
      // the volunteer's pause, hours, idleness and power: whether the node takes pieces (before its first ad)
      .add('preferences', async () => {
        this.servingGate = new ServingGate({
          pausedFile: dataDirFiles(config.dataDir).paused,
          hours: config.hours,
          whenIdle: config.whenIdle,
          onlyOnAc: config.onlyOnAc,
          childPids: () => this.sessions?.childPids?.() ?? [],
          busyCores: () => (this.libp2pNode?.services.inference.running ?? 0) * config.cpuThreads,
          onChange: () => this.libp2pNode?.services.capacity.changed(),
          log: (format, ...args) => { this.libp2pNode?.logger.forComponent('shoal:serving')(format, ...args) },
          ...(this.init.machine != null ? { machine: this.init.machine } : {}),
          ...(this.init.servingCheckMs != null ? { checkMs: this.init.servingCheckMs } : {})
        })
        await this.servingGate.start()
      }, async () => { this.servingGate?.stop() })
      .add('sandbox', async () => { await this.startSandbox(calibration) }, async () => {
        await this.sessions?.close()
        this.sessions = undefined
      })
      // (the stopped libp2p stays: its peer id and addresses still name the node)
      .add('libp2p', async () => { await this.startLibp2p(privateKey) }, async () => { await this.libp2pNode?.stop() })
      // receipts on their way go out before libp2p stops; credit.json and receipts.json are saved
      .add('credit', async () => { await credit.start(this.libp2p) }, async () => { await credit.stop() })
      .add('history', async () => {
        this.sample()
        this.historyTimer = setInterval(() => { this.sample() }, HISTORY_SAMPLE_MS)
        this.historyTimer.unref?.()
      }, async () => { clearInterval(this.historyTimer) })
      .add('API', async () => { await this.startApi() }, async () => { await this.stopApi() })
    await this.lifecycle.start()
  }

  /**
   * Sessions in a child process: a model is a stranger's code, and a process can be killed (an endless
   * Loop), kept from the data dir and limited in memory (docs/operators.md, "Security"). ONNX Runtime
   * runs synchronously, so on this thread a piece would also stop the node's ads, transfers and
   * answers for its whole compute. SHOAL_SANDBOX=0 runs sessions in a worker thread instead,
   * SHOAL_INFERENCE_THREAD=0 on this one (to compare, or should a provider need it).
   */
  private async startSandbox (calibration: Promise<Calibration & { cached: boolean }>): Promise<void> {
    this.calibrationResult = await calibration
    const sessionInit = { providers: this.calibrationResult.providers.map(p => p.name), cpuThreads: this.config.cpuThreads }
    const runtime = this.init.runtime ?? slowed(
      process.env.SHOAL_INFERENCE_THREAD === '0'
        ? new SessionCache(sessionInit)
        : sandboxed() ? this.sandbox(sessionInit) : new ThreadedSessions(sessionInit),
      this.init.slowdown ?? 1)
    // small pieces (requests) from peers arriving together run as one call (docs/architecture.md, "Requests")
    this.sessions = new BatchingRuntime(runtime, {
      windowMs: this.config.batchWindowMs,
      maxPieceRows: BATCH_MAX_PIECE_ROWS,
      maxRows: BATCH_MAX_ROWS,
      batchable: cid => {
        const info = this.models.info(cid)
        const free = (io: ModelInfo['inputs']): boolean => io.length > 0 && io.every(t => t.dims.length > 0 && (typeof t.dims[0] !== 'number' || t.dims[0] <= 0))
        return info != null && free(info.inputs) && free(info.outputs)
      },
      onBatch: pieces => { this.metrics.batchedRuns.inc(); this.metrics.batchedPieces.inc(pieces) }
    })
  }

  /** libp2p with Shoal's services: capacity ads, the mesh keeper, the worker side of pieces, the direct channel, the model swarm, names. */
  private async startLibp2p (privateKey: Parameters<typeof createShoalLibp2p>[0]['privateKey']): Promise<void> {
    const { config } = this
    const libp2p = await createShoalLibp2p({
      privateKey,
      config,
      // a peer proven wrong is not connected with while it is excluded (docs/trust.md)
      refuse: peerId => this.trust.excluded(peerId),
      meshKeeperIntervalMs: this.init.meshKeeperIntervalMs,
      tuning: this.init.tuning,
      directReuse: this.init.directReuse,
      capacity: { local: () => this.localCapacity() },
      inference: {
        maxConcurrency: config.maxConcurrency,
        maxRequestBytes: config.maxRequestBytes,
        maxPieceMs: config.maxPieceSeconds * 1000,
        maxMemoryBytes: config.maxMemoryBytes,
        memoryInUse: this.init.memoryInUse,
        inputIdleMs: this.init.inputIdleMs,
        store: this.models,
        sessions: this.sessions!,
        onLoadChange: () => this.libp2pNode?.services.capacity.changed(),
        shaping: this.init.shaping,
        metrics: this.metrics,
        // every answer carries a commitment signed with the node's key (docs/protocol.md 6.3)
        sign: this.init.signCommitment ?? signerFor(privateKey),
        // contended slots go to the submitters that did most for this node (docs/trust.md, "Credit")
        ...(this.init.creditPriority === false ? {} : { priority: (peer: string) => this.creditKeeper?.priority(peer) ?? 0 }),
        // the volunteer's preferences (docs/operators.md, "What you give")
        notServing: () => this.servingGate == null || this.servingGate.accepting ? undefined : this.servingGate.view().reasons.join('; '),
        servesModel: cid => this.servesModel(cid)
      },
      swarm: {
        store: this.models,
        noProviderTimeoutMs: this.init.noProviderTimeoutMs,
        metrics: this.metrics,
        // benchmarks compare the two exchanges (pnpm bench models)
        fetchOver: process.env.SHOAL_FETCH_OVER === 'bitswap' ? 'bitswap' : 'shoal',
        manifests: { bytes: cid => this.pipelines.bytes(cid), cids: () => this.pipelines.list().map(p => p.cid) }
      },
      names: { dataDir: config.dataDir, trusted: config.trustedPublishers, republishMs: NAME_REPUBLISH_MS, timeoutMs: NAME_TIMEOUT_MS }
    })
    this.libp2pNode = libp2p
    try {
      await libp2p.start()
    } catch (err: any) {
      throw listenError(err, config.listen)
    }
    this.startedAt = Date.now()
  }

  /** The local HTTP API (unless `init.api` is false), and the files that tell the CLI where it is. */
  private async startApi (): Promise<void> {
    if (this.init.api === false) return
    const files = dataDirFiles(this.config.dataDir)
    this.api = new ApiServer({ port: this.config.apiPort, routes: apiRoutes(this), pages: DASHBOARD_PAGES, pageHeaders: DASHBOARD_HEADERS })
    await this.api.start()
    const info: ApiInfo = { url: this.api.url, token: this.api.token, pid: process.pid, peerId: this.peerId }
    await writePrivateFile(files.api, JSON.stringify(info, null, 2) + '\n')
    // the token alone, for a Prometheus scrape config's credentials_file
    await writePrivateFile(files.apiToken, this.api.token + '\n')
    // a node with an API is a node process of its own (not one of many nodes in a simulation)
    this.metrics.collectProcessMetrics()
  }

  private async stopApi (): Promise<void> {
    if (this.api == null) return
    const files = dataDirFiles(this.config.dataDir)
    await Promise.all([rm(files.api, { force: true }), rm(files.apiToken, { force: true })])
    await this.api.stop()
    this.api = undefined
  }

  /** Clean shutdown: jobs cancelled, then the parts stop, last started first (a leaving ad goes out as libp2p stops). */
  async stop (): Promise<void> {
    for (const job of this.jobs.values()) job.cancel()
    this.direct.closeIdle()
    await this.lifecycle?.stop()
    // a save of peers' records under way is finished: the data dir is whole when stop() returns
    await this.saving
  }

  /**
   * Stops the node as a crash would, for simulations in one process: no leaving ad, every connection
   * aborted (pieces in flight are lost), then libp2p stops. Peers learn it is gone from the broken
   * connections and from its ad expiring, as with a machine that lost power.
   */
  async kill (): Promise<void> {
    const libp2p = this.libp2pNode
    if (libp2p == null) return
    libp2p.services.capacity.silence()
    for (const connection of libp2p.getConnections()) connection.abort(new Error('node killed'))
    libp2p.services.direct.abortAll()
    this.direct.closeIdle()
    await this.stop()
  }

  /**
   * Checks a model and adds it to this node's store, so to its capacity ad and the DHT's provider
   * records. With `name` (`name@version`), also publishes a manifest signed by this node.
   */
  async addModel (bytes: Uint8Array, options: { name?: string, pin?: boolean } = {}): Promise<ModelEntry & { manifest?: Manifest }> {
    // a bad name is refused before anything is stored
    if (options.name != null) parseNameRef(options.name)
    const entry = await this.models.add(bytes, options)
    this.libp2pNode?.services.swarm.announce(entry.cid)
    if (options.name == null) return entry
    return { ...entry, manifest: await this.names.publish(options.name, entry.cid) }
  }

  /**
   * Keeps a pipeline manifest (docs/protocol.md 9) and, with `name`, publishes a signed name for it.
   * Its stages need not be here: peers fetch them from whoever holds them.
   */
  async addPipeline (bytes: Uint8Array, options: { name?: string } = {}): Promise<PipelineEntry & { name?: Manifest }> {
    if (options.name != null) parseNameRef(options.name)
    const entry = await this.pipelines.add(bytes)
    this.libp2pNode?.services.swarm.announce(entry.cid)
    if (options.name == null) return entry
    return { ...entry, name: await this.names.publish(options.name, entry.cid) }
  }

  /**
   * Cuts a model into `stages` stages (@shoal/runtime's splitModel, run in this process with ONNX
   * Runtime: for a model one trusts, such as one's own), adds every stage to the store (pinned with
   * `pin`) and keeps the pipeline's manifest, named with `name`. The whole model is not stored: it may
   * be over this node's --max-model-size.
   */
  async splitModel (bytes: Uint8Array, options: SplitOptions & { name?: string, pin?: boolean }): Promise<{ pipeline: PipelineEntry & { name?: Manifest }, split: SplitResult }> {
    if (options.name != null) parseNameRef(options.name)
    const split = await splitModel(bytes, options)
    const stages = []
    for (const stage of split.stages) stages.push(await this.addModel(stage.bytes, { pin: options.pin }))
    const manifest = pipelineManifestOf(split, stages.map(s => s.cid))
    return { pipeline: await this.addPipeline(encodePipelineManifest(manifest), { name: options.name }), split }
  }

  /** Gets a model into this node's store from the peers that hold it (a no-op if it is here). */
  async fetchModel (cid: string, options: FetchOptions = {}): Promise<FetchSummary> {
    return await this.swarm.fetch(cid, options)
  }

  /** Removes a model from the store (the node then stops announcing it). */
  async removeModel (cid: string): Promise<void> {
    await this.models.remove(cid)
  }

  /** A model reference as a user writes it (a CID, `name@version` or `PEERID/name@version`) to a CID. */
  async resolveModel (ref: string, alsoTrust: string[] = []): Promise<{ cid: string, name: Resolved | null }> {
    // no @: it can only be a CID, and the error says why it is not one
    if (!ref.includes('@')) return { cid: isPipelineCid(ref) ? ref : parseModelCid(ref).toString(), name: null }
    const name = await this.names.resolve(ref, alsoTrust)
    this.knowName(name)
    return { cid: name.cid, name }
  }

  /**
   * Starts a batch job on a model in this node's store. The returned job runs at once; `job.run()`'s
   * promise (also `job.done`) gives its outputs.
   */
  submitJob (modelCid: string, inputs: Record<string, Tensor>, options: JobOptions = {}): Job | PipelineJob {
    if (isPipelineCid(modelCid)) return this.submitPipelineJob(modelCid, inputs, options)
    const model = this.models.info(modelCid)
    if (model == null) throw new JobError(`model ${modelCid} is not in this node's store: add it first (shoal model add, or POST /v1/models)`)
    const job = new Job({
      ...this.submitterDeps(),
      model,
      peers: () => this.jobCandidates(modelCid),
      canaries: this.canaries
    }, inputs, this.withLocalDefault(options))
    job.validate()
    this.track(job, [this.models.use(modelCid)])
    return job
  }

  /** What every job gets of this node: its peers' changes, how pieces run here and on peers, its records. */
  private submitterDeps (): SubmitterDeps {
    const libp2p = this.libp2p
    return {
      localPeerId: this.peerId,
      localGflops: Math.max(0, ...(this.calibrationResult?.providers ?? []).map(p => p.gflops)),
      localSlots: this.config.maxConcurrency,
      localBusy: () => this.libp2pNode?.services.inference.running ?? 0,
      // a job's peers are those with an ad and a connection (or a proven record): either may change.
      // Every peer's ads come again and again, so a change of time (an exclusion that ended) is seen too
      onPeersChanged: listener => {
        const off = libp2p.services.capacity.peers.onEvent(() => { listener() })
        const onConnection = (): void => { listener() }
        libp2p.addEventListener('peer:connect', onConnection)
        libp2p.addEventListener('peer:disconnect', onConnection)
        return () => {
          off()
          libp2p.removeEventListener('peer:connect', onConnection)
          libp2p.removeEventListener('peer:disconnect', onConnection)
        }
      },
      runRemote: async (peerId, request, signal) => {
        // a worker weighs this node's pieces by what it did for others: it is shown the receipts, now and then
        this.creditKeeper?.presentTo(peerId)
        return await runRemotePiece(
          async (peer, protocol, options) => await libp2p.dialProtocol(peer, protocol, options),
          peerIdFromString(peerId), request, signal,
          async (peer, signal, fresh) => await this.directChannelTo(peer, signal, fresh)
        )
      },
      // an aborted local run goes on in its sandbox process, its result dropped (this node chose the model: it is not killed)
      // its own runs are not refused for what peers' pieces of the model did (a peer's too-short deadline)
      runLocal: async (cid, tensors, signal) => await raceSignal(this.sessions!.run(cid, async () => await this.models.bytes(cid), tensors, { own: true }), signal),
      maxResponseBytes: this.config.maxRequestBytes * 4,
      trust: this.trust,
      costs: this.costs,
      onWrongAnswer: wrong => { this.wrongAnswer(wrong) },
      onCredited: job => { void this.creditKeeper?.credited(job).catch(err => { this.jobLog?.('receipts of job %s: %s', job.jobId, err.message) }) },
      // made once: a logger costs a tenth of a millisecond to make, and a request gets these deps
      log: this.jobLog ??= libp2p.logger.forComponent('shoal:job')
    }
  }

  /**
   * Keeps a submitted job for the API and runs it; when it ends: counted, its models released, its
   * verification saved and the peers it caught disconnected.
   */
  private track (job: Job | PipelineJob, releases: Array<() => void>): void {
    // a peer that completed a piece for us may take pieces without a live connection (3.6)
    job.onPieceAttempt(attempt => { if (attempt.outcome === 'done' && attempt.peerId !== this.peerId) this.proven.add(attempt.peerId) })
    this.jobs.set(job.id, job)
    // the outcome is kept on the job (result or error) for the API; old ones are forgotten
    job.run().catch(() => {}).finally(() => {
      this.countJob(job)
      for (const release of releases) release()
      this.forgetOldJobs()
      // a peer caught by this job stays excluded across restarts, and is disconnected meanwhile
      // records earned in the job carry over to the next start (the cost of checks falls as they grow)
      const { excluded, checkedPieces } = job.progress().verification
      if (checkedPieces > 0) this.saveVerification()
      for (const peer of excluded) void this.libp2pNode?.hangUp(peerIdFromString(peer)).catch(() => {})
    })
  }

  /** An answer proven wrong: its evidence kept, and the verification saved at once (a crash later in the job must not lose it). */
  private wrongAnswer (wrong: WrongAnswer): void {
    if (wrong.commitment != null) this.keepEvidence(wrong, wrong.commitment)
    this.saveVerification()
  }

  /**
   * Gets a pipeline's manifest from the peers that have it (a no-op if it is here): its publisher, or
   * any node that ran it. Its stages are not fetched: the workers that serve them do that.
   */
  async fetchPipeline (cid: string, options: { hints?: string[] } = {}): Promise<PipelineEntry> {
    const held = this.pipelines.get(cid)
    if (held != null) return held
    const bytes = await this.swarm.fetchManifest(cid, options)
    return await this.addPipeline(bytes)
  }

  /**
   * Answers one inference request (a small batch, whole) through the peer expected to answer first, or
   * here when that is faster: no planning, no probe (jobs/request.ts). The model must be in this node's
   * store (the API fetches it first): its declared inputs check the request's.
   */
  async infer (modelCid: string, inputs: Record<string, Tensor>, options: RequestOptions = {}): Promise<RequestResult> {
    const model = this.models.info(modelCid)
    if (model == null) throw new JobError(`model ${modelCid} is not in this node's store: add it first (shoal model add), or fetch it (shoal model get)`)
    const release = this.models.use(modelCid)
    try {
      const deps = this.submitterDeps()
      return await runRequest({
        localPeerId: this.peerId,
        localCanRun: this.config.maxConcurrency > 0,
        model,
        candidates: () => this.jobCandidates(modelCid).filter(c => c.slots > 0),
        router: this.routerFor(model),
        runRemote: deps.runRemote,
        runLocal: deps.runLocal,
        maxResponseBytes: deps.maxResponseBytes,
        admit: async (peerId, signal) => await this.requestSlots.acquire(peerId, signal),
        trust: this.trust,
        onWrongAnswer: deps.onWrongAnswer,
        // a row's work units: the model's measured cost, or what this answer took at the peer's advertised speed
        onKept: kept => {
          // one peer's ad, not the candidate list again: this runs for every request answered
          const gflops = Math.max(0, ...(this.libp2p.services.capacity.peers.get(kept.peerId)?.capacity.providers ?? []).map(p => p.gflops))
          const unitsPerRow = this.costs.msPerRow(modelCid, 1) ?? Math.max(1e-3, kept.ms / kept.rows * gflops)
          this.creditKeeper?.requestAnswered({ peerId: kept.peerId, modelCid, rows: kept.rows, unitsPerRow, checked: kept.checked })
        }
      }, inputs, options)
    } finally {
      release()
    }
  }

  /** The request router of a model (latencies per target), kept for the MAX_REQUEST_ROUTERS most recently used models. */
  private routerFor (model: ModelInfo): RequestRouter {
    let router = this.routers.get(model.cid)
    if (router != null) this.routers.delete(model.cid)
    router ??= new RequestRouter({
      // no probe: a row is assumed to cost 1 ms on this node, until answers say what it costs
      refMsPerRow: 1,
      refGflops: Math.max(0, ...(this.calibrationResult?.providers ?? []).map(p => p.gflops)),
      modelFetchMs: MODEL_FETCH_SETUP_MS + model.bytes / ASSUMED_FETCH_BYTES_PER_MS,
      coldStartMs: SESSION_START_MS + model.bytes / ASSUMED_SESSION_BYTES_PER_MS
    })
    this.routers.set(model.cid, router)
    for (const cid of [...this.routers.keys()].slice(0, Math.max(0, this.routers.size - MAX_REQUEST_ROUTERS))) this.routers.delete(cid)
    return router
  }

  /** A job's `local` unless it says: this node takes a share, unless it runs with --peers-only. */
  private withLocalDefault (options: JobOptions): JobOptions {
    return options.local != null ? options : { ...options, local: this.config.peersOnly ? 'fallback' : 'share' }
  }

  /** Starts a batch job through a pipeline this node holds (its stages may be anywhere in the mesh). */
  submitPipelineJob (cid: string, inputs: Record<string, Tensor>, options: JobOptions = {}): PipelineJob {
    const entry = this.pipelines.get(cid)
    if (entry == null) throw new JobError(`pipeline ${cid} is not on this node: fetch its manifest first (fetchPipeline; shoal run and POST /v1/jobs do), or add it (shoal model split, POST /v1/pipelines)`)
    const job = new PipelineJob({
      ...this.submitterDeps(),
      cid,
      manifest: entry.manifest,
      peers: stageCid => this.jobCandidates(stageCid),
      holds: stageCid => this.models.has(stageCid),
      // under spot this node runs every stage to check answers: a stage it lacks is fetched, and kept while the job runs
      fetchStage: async stageCid => {
        await this.fetchModel(stageCid)
        releases.push(this.models.use(stageCid))
      }
    }, inputs, this.withLocalDefault(options))
    job.validate()
    const releases = entry.manifest.stages.filter(s => this.models.has(s.cid)).map(s => this.models.use(s.cid))
    this.track(job, releases)
    return job
  }

  /** A direct data channel for a piece to `peer` (docs/protocol.md 6.1), or undefined: see `DirectPool.channelTo`. */
  async directChannelTo (peer: PeerId, signal: AbortSignal, fresh = false): Promise<(Channel & { reused?: boolean }) | undefined> {
    return await this.direct.channelTo(peer, signal, fresh)
  }

  /** The sandbox's child process, started now so that the first piece does not wait for it. */
  private sandbox (init: { providers: string[], cpuThreads: number }): ProcessSessions {
    const sandbox = new ProcessSessions({ ...init, memoryLimitBytes: this.config.maxMemoryBytes })
    sandbox.prestart()
    return sandbox
  }

  /**
   * The peers a job may give pieces to: an ad that can take work (a provider, slots, a compatible
   * version) from a peer that holds a live connection with this node or has completed a piece for it
   * (an ad costs nothing to forge: thousands relayed over one connection claiming 10^7 GFLOP/s once
   * stalled every job), at most MAX_JOB_PEERS of them, holders of the model first, then the fastest.
   */
  private jobCandidates (modelCid: string): Array<{ peerId: string, gflops: number, slots: number, hasModel: boolean, queueLength: number, warm: boolean }> {
    const libp2p = this.libp2p
    const connected = new Set(libp2p.getConnections().map(c => c.remotePeer.toString()))
    return libp2p.services.capacity.peers.list()
      .filter(e => e.capacity.providers.length > 0 && e.capacity.limits.maxConcurrency > 0 && !INCOMPATIBLE_VERSIONS.has(e.capacity.version))
      // its volunteer's choice of models
      .filter(e => !(e.capacity.refusedModels?.includes(modelCid) ?? false) && !(e.capacity.listedOnly === true && !e.capacity.models.includes(modelCid)))
      .filter(e => connected.has(e.capacity.peerId) || this.proven.has(e.capacity.peerId))
      // a peer proven wrong gets no pieces until its exclusion ends
      .filter(e => !this.trust.excluded(e.capacity.peerId))
      .map(e => ({
        peerId: e.capacity.peerId,
        gflops: Math.max(...e.capacity.providers.map(p => p.gflops)),
        // a paused peer stays one of a job's peers (its pieces running finish) but gets no new ones
        slots: e.capacity.paused === true ? 0 : e.capacity.limits.maxConcurrency,
        hasModel: e.capacity.models.includes(modelCid),
        queueLength: e.capacity.queueLength,
        warm: e.capacity.warmModels?.includes(modelCid) === true
      }))
      .sort((a, b) => Number(b.hasModel) - Number(a.hasModel) || b.gflops - a.gflops)
      .slice(0, MAX_JOB_PEERS)
  }

  private async loadTrust (): Promise<void> {
    const file = dataDirFiles(this.config.dataDir).trust
    try {
      this.trust.load(JSON.parse(await readFile(file, 'utf8')))
    } catch (err: any) {
      // none yet, or unreadable: records are earned again (exclusions are lost, not invented)
      if (err.code !== 'ENOENT') this.startWarnings.push(`cannot read ${file} (${String(err.message)}); peers' records start afresh`)
    }
    const evidence = dataDirFiles(this.config.dataDir).evidence
    try {
      const list: unknown = JSON.parse(await readFile(evidence, 'utf8'))
      if (Array.isArray(list)) this.evidenceRecords = list.filter(isEvidence).slice(-MAX_EVIDENCE)
    } catch (err: any) {
      if (err.code !== 'ENOENT') this.startWarnings.push(`cannot read ${evidence} (${String(err.message)}); earlier evidence is set aside`)
    }
  }

  /** The signed commitments of answers this node's jobs proved wrong, oldest first (docs/trust.md). */
  evidence (): Evidence[] {
    return [...this.evidenceRecords]
  }

  private keepEvidence (wrong: WrongAnswer, signed: SignedCommitment): void {
    // a few per peer are proof enough; one peer's many wrong answers must not push out everyone else's
    if (this.evidenceRecords.filter(e => e.peerId === wrong.peerId).length >= MAX_EVIDENCE_PER_PEER) return
    // what was left unchecked when the answer came (hashes, signature): a commitment that fails is no evidence
    const problem = signed.check?.()
    if (problem != null) {
      this.libp2p.logger.forComponent('shoal:job')(`no evidence kept of ${wrong.peerId}'s wrong answer to piece ${wrong.pieceId} of job ${wrong.jobId}: ${problem}`)
      return
    }
    this.evidenceRecords.push({
      peerId: wrong.peerId,
      jobId: wrong.jobId,
      pieceId: wrong.pieceId,
      modelCid: wrong.modelCid,
      recordedAt: Date.now(),
      commitment: uint8ArrayToString(signed.commitment, 'base64'),
      signature: uint8ArrayToString(signed.signature, 'base64')
    })
    if (this.evidenceRecords.length > MAX_EVIDENCE) this.evidenceRecords.splice(0, this.evidenceRecords.length - MAX_EVIDENCE)
  }

  /**
   * Saves trust.json and evidence.json, one save after another: a save asked for while one runs waits
   * for it and writes what is current then (several catches at once make one more save, not many).
   */
  private saveVerification (): void {
    if (this.saveAgain) return
    this.saveAgain = true
    this.saving = this.saving.then(async () => {
      this.saveAgain = false
      const files = dataDirFiles(this.config.dataDir)
      await writePrivateFile(files.trust, JSON.stringify(this.trust) + '\n').catch(() => {})
      await writePrivateFile(files.evidence, JSON.stringify(this.evidenceRecords, null, 1) + '\n').catch(() => {})
    })
  }


  /** Adds an ended job to the metrics. */
  private countJob (job: Job | PipelineJob): void {
    const p = job.progress()
    const local = p.perPeer[this.peerId] ?? 0
    this.metrics.jobs.inc({ state: job.result != null ? 'done' : 'failed' })
    this.metrics.jobPieces.inc({ where: 'remote' }, p.done - local)
    this.metrics.jobPieces.inc({ where: 'local' }, local)
    this.metrics.jobRetries.inc(p.retries)
    // a failed job may have disputed pieces it never decided
    this.metrics.jobChecks.inc({ outcome: 'agreed' }, Math.max(0, p.verification.checkedPieces - p.verification.mismatches))
    this.metrics.jobChecks.inc({ outcome: 'wrong' }, p.verification.mismatches)
    this.metrics.peersExcluded.inc(p.verification.excluded.length)
    this.metrics.jobDuplicates.inc(p.duplicates)
  }

  /** Keeps the newest finished jobs (their outputs are in memory) and forgets the rest. */
  private forgetOldJobs (): void {
    const finished = [...this.jobs.values()].filter(j => j.result != null || j.error != null)
    for (const job of finished.slice(0, Math.max(0, finished.length - KEPT_FINISHED_JOBS))) this.jobs.delete(job.id)
  }

  job (id: string): Job | PipelineJob | undefined {
    return this.jobs.get(id)
  }

  listJobs (): Array<Job | PipelineJob> {
    return [...this.jobs.values()]
  }

  /** Join/update/leave events of the peer table. */
  onPeerEvent (listener: (event: PeerEvent) => void): () => void {
    return this.libp2p.services.capacity.peers.onEvent(listener)
  }

  peers (): PeerView[] {
    return this.libp2p.services.capacity.peers.list()
      .map(entry => ({ ...entry.capacity, lastSeenMs: entry.lastSeenMs, standing: this.standing(entry.capacity.peerId), connection: this.connectionTo(entry.capacity.peerId) }))
      .sort((a, b) => a.peerId.localeCompare(b.peerId))
  }

  private reachability (): NodeStatus['reachability'] {
    if (this.config.lan) return 'lan'
    const addrs = this.addrs
    if (addrs.some(a => !a.includes('/p2p-circuit'))) return 'public'
    return addrs.length > 0 ? 'relayed' : 'outbound-only'
  }

  private connectionTo (peerId: string): PeerView['connection'] {
    const connections = this.libp2p.getConnections(peerIdFromString(peerId)).filter(c => c.status === 'open')
    const direct = connections.filter(c => c.limits == null && !c.remoteAddr.toString().includes('/p2p-circuit'))
    if (direct.some(c => c.direction === 'outbound')) return 'outbound'
    if (direct.length > 0) return 'inbound'
    return connections.length > 0 ? 'relayed' : 'none'
  }

  /** A peer's standing with this node's jobs. */
  standing (peerId: string): Standing {
    const t = this.trust.get(peerId)
    return { verified: t.record, offences: t.offences, excludedUntil: this.trust.excluded(peerId) ? t.excludedUntil : null, checkShare: checkFraction(t.record) }
  }

  status (): NodeStatus {
    const libp2p = this.libp2p
    const calibration = this.calibrationResult
    return {
      peerId: this.peerId,
      version: SHOAL_VERSION,
      startedAt: this.startedAt,
      uptimeMs: Date.now() - this.startedAt,
      addrs: this.addrs,
      dataDir: this.config.dataDir,
      apiUrl: this.api?.url ?? '',
      connections: libp2p.getConnections().length,
      peers: libp2p.services.capacity.peers.size,
      connectedPeers: libp2p.getPeers().length,
      dhtPeers: dhtRoutingTableSize(libp2p),
      capacity: libp2p.services.capacity.current(),
      calibration: { cached: calibration?.cached ?? false, measuredAt: calibration?.measuredAt ?? 0, failed: calibration?.failed ?? [] },
      refusedAds: { ...libp2p.services.capacity.refused },
      direct: libp2p.services.direct.listening,
      privateMesh: this.config.swarmKeyBytes != null ? swarmKeyFingerprint(this.config.swarmKeyBytes) : null,
      reachability: this.reachability(),
      memory: { rssBytes: process.memoryUsage.rss(), heapUsedBytes: process.memoryUsage().heapUsed },
      contributed: this.metrics.contributed(),
      credit: this.creditKeeper!.view(),
      running: this.libp2pNode?.services.inference.running ?? 0,
      storage: this.storage(),
      serving: { ...this.servingGate!.view(), serveModels: this.config.serveModels, refuseModels: this.config.refuseModels, cpuShare: this.config.cpuShare }
    }
  }

  private storage (): NodeStatus['storage'] {
    const models = this.models.list()
    return { models: models.length, usedBytes: models.reduce((n, m) => n + m.bytes, 0), maxBytes: this.config.maxStorageBytes }
  }

  /** Whether the volunteer lets this node serve pieces of the model (--serve-model, --refuse-model). */
  private servesModel (cid: string): boolean {
    const { serve, refuse } = this.modelPrefs
    if (serve.length === 0 && refuse.length === 0) return true
    const names = [...(this.knownNames.get(cid) ?? []), ...this.names.list().filter(m => m.cid === cid)]
    return servesModel(serve, refuse, { cid, names })
  }

  private knowName (name: Manifest): void {
    const list = (this.knownNames.get(name.cid) ?? []).filter(m => m.publisher !== name.publisher || m.name !== name.name || m.version !== name.version)
    this.knownNames.delete(name.cid)
    this.knownNames.set(name.cid, [...list, name].slice(-8))
    if (this.knownNames.size > 1024) this.knownNames.delete(this.knownNames.keys().next().value as string)
  }

  /** What the node has done for others so far. */
  private snapshot (): HistorySample {
    const c = this.metrics.contributed()
    const credit = this.creditKeeper?.view()
    return { at: Date.now(), pieces: c.pieces, rows: c.rows, computeSeconds: c.computeSeconds, earnedWork: credit?.earned.work ?? 0, issuedWork: credit?.issued.work ?? 0 }
  }

  private sample (): void {
    this.samples.push(this.snapshot())
    if (this.samples.length > MAX_HISTORY_SAMPLES) this.samples.shift()
  }

  /** What the node did for others over time, oldest first, one sample every HISTORY_SAMPLE_MS (and one now). */
  history (): { intervalMs: number, samples: HistorySample[] } {
    return { intervalMs: HISTORY_SAMPLE_MS, samples: [...this.samples, this.snapshot()] }
  }

  /** Takes no new pieces from now on, also after a restart (`shoal node pause`); pieces running finish. */
  async pause (): Promise<ServingView> {
    return await this.servingGate!.pause()
  }

  /** Takes pieces again, as its preferences allow (`shoal node resume`). */
  async resume (): Promise<ServingView> {
    return await this.servingGate!.resume()
  }

  private localCapacity (): ReturnType<Parameters<typeof createShoalLibp2p>[0]['capacity']['local']> {
    const { config } = this
    const calibration = this.calibrationResult
    const held = this.models.list().map(m => m.cid)
    const served = held.filter(cid => this.servesModel(cid))
    const models = served.slice(0, MAX_AD_MODELS)
    // the refusals it can name: CIDs given, and models it holds that its preferences refuse (never one it serves)
    const refused = [...new Set([...this.modelPrefs.refuse.flatMap(p => p.kind === 'cid' ? [p.cid] : []), ...held.filter(cid => !served.includes(cid))])]
    return {
      hardware: detectHardware(),
      gpu: calibration?.gpu ?? null,
      providers: calibration?.providers ?? [],
      limits: {
        maxConcurrency: config.maxConcurrency,
        maxMemoryBytes: config.maxMemoryBytes,
        cpuThreads: config.cpuThreads,
        noGpu: !config.gpu
      },
      freeSlots: this.libp2pNode?.services.inference.freeSlots ?? config.maxConcurrency,
      queueLength: this.libp2pNode?.services.inference.queueLength ?? 0,
      models,
      // the models whose sessions the runtime keeps (it ran them last), of those held and advertised
      warmModels: (this.sessions instanceof BatchingRuntime ? this.sessions.recentModels() : []).filter(cid => models.includes(cid)).slice(0, MAX_AD_WARM_MODELS),
      paused: this.servingGate?.accepting === false,
      listedOnly: this.modelPrefs.serve.length > 0,
      refusedModels: refused.slice(0, MAX_AD_REFUSED_MODELS)
    }
  }


}

/**
 * Whether to ask a peer for a direct data channel: in LAN mode always; otherwise only when its ad
 * (if this node has one) tells an address of its own, not relayed (one behind a router tells none).
 */
export function directWorthTrying (lan: boolean, adAddrs: string[] | undefined): boolean {
  return lan || adAddrs == null || adAddrs.some(a => !a.includes('/p2p-circuit'))
}

/** A set that forgets its oldest member past `max`. */
class BoundedSet<T> {
  private readonly items = new Set<T>()
  constructor (private readonly max: number) {}
  has (item: T): boolean { return this.items.has(item) }
  add (item: T): void {
    this.items.delete(item)
    this.items.add(item)
    if (this.items.size > this.max) this.items.delete(this.items.values().next().value as T)
  }
}

function listenError (err: any, listen: string[]): Error {
  if (err instanceof ListenError) return err
  const text = String(err?.message ?? err)
  if (err?.code === 'EADDRINUSE' || /EADDRINUSE|address already in use/i.test(text)) {
    return new ListenError(`cannot listen on ${listen.join(', ')}: address already in use (pick another port, or /tcp/0 for any free one)`)
  }
  if (/EADDRNOTAVAIL|not available|ENOTFOUND/i.test(text)) {
    return new ListenError(`cannot listen on ${listen.join(', ')}: no such address on this machine`)
  }
  return err instanceof Error ? err : new Error(text)
}

/** kad-dht does not type its routing table, but every version since 10 has one with a size. */
function dhtRoutingTableSize (libp2p: ShoalLibp2p): number {
  return (libp2p.services.dht as unknown as { routingTable?: { size: number } }).routingTable?.size ?? 0
}

/** Models run and are inspected in child processes unless SHOAL_SANDBOX=0 or SHOAL_INFERENCE_THREAD=0 says otherwise. */
function sandboxed (): boolean {
  return process.env.SHOAL_SANDBOX !== '0' && process.env.SHOAL_INFERENCE_THREAD !== '0'
}

