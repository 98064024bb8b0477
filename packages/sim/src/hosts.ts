import { join } from 'node:path'
import { resolveConfig, ShoalNode } from '@shoal/node'
import type { MeshTuning } from '@shoal/node'
import { SessionCache, slowed } from '@shoal/runtime'
import type { PieceRuntime } from '@shoal/runtime'
import { cheating } from './cheat.js'
import { BASE_GFLOPS, GPU_GFLOPS_FACTOR, SIM_TUNING } from './constants.js'
import { DelayRuntime } from './models.js'
import type { ModelProfile } from './models.js'
import type { PlannedNode } from './plan.js'

/** A running simulated node, wherever it runs (this process, or its own). */
export interface SimHost {
  readonly name: string
  readonly peerId: string
  readonly addrs: string[]
  /** With `--threads`, the worker thread (1..N) it runs on. */
  readonly thread?: number
  /** Peers this node has a live capacity ad from. */
  knownPeers: () => Promise<number>
  /** What it earned and gave by the end (docs/trust.md, "Credit"); null if it cannot tell (it is gone). */
  credit: () => Promise<NodeCredit | null>
  /** Gone as after a crash: no leaving ad, connections cut. */
  kill: () => Promise<void>
  /** A clean leave: leaving ad, then stop. */
  leave: () => Promise<void>
}

export interface HostContext {
  workDir: string
  compute: 'onnx' | 'delay'
  adIntervalMs: number
  /** By CID. */
  models: Map<string, ModelProfile>
  /** The fastest node's effective speed: with real compute, others are slowed relative to it. */
  maxSpeed: number
  /** Every node adds the models to its store when it starts (else workers fetch them through the swarm). */
  preload: boolean
  /** Workers order waiting submitters by contribution credit (false: in turn, to measure what credit changes). */
  credit: boolean
  /**
   * With real compute in one process: one session cache for every node. Nodes on one machine share its
   * cores anyway, and ten sessions of one model created at once on two cores took seconds each.
   */
  shared?: PieceRuntime
}

/** A node's contribution credit, as metrics.json shows it per node. */
export interface NodeCredit {
  /** Receipts it holds for its work, their work units, and the submitters that signed them. */
  earnedReceipts: number
  earnedWork: number
  submitters: number
  /** Work units of the receipts it signed for peers' work. */
  issuedWork: number
  /** Peers with credit at this node. */
  creditors: number
}

export function nodeCredit (node: ShoalNode): NodeCredit {
  const c = node.status().credit
  return { earnedReceipts: c.earned.receipts, earnedWork: c.earned.work, submitters: c.earned.submitters, issuedWork: c.issued.work, creditors: c.peers.length }
}

/** A node's speed with its GPU counted: what the scheduler is told, and what delays are divided by. */
export function effectiveSpeed (node: Pick<PlannedNode, 'speed' | 'gpu'>): number {
  return node.speed * (node.gpu ? GPU_GFLOPS_FACTOR : 1)
}

/**
 * What a simulated node says it can do: a fixed calibration (measuring 100 nodes side by side would only
 * measure each other) scaled by its speed; a GPU node advertises a GPU provider.
 */
export function simCalibration (node: Pick<PlannedNode, 'speed' | 'gpu'>): { providers: Array<{ name: string, gflops: number }>, failed: [], gpu: string | null, measuredAt: number } {
  const gflops = Math.round(BASE_GFLOPS * effectiveSpeed(node) * 100) / 100
  return node.gpu
    ? { providers: [{ name: 'webgpu', gflops }, { name: 'cpu', gflops: BASE_GFLOPS * node.speed }], failed: [], gpu: 'simulated GPU', measuredAt: 0 }
    : { providers: [{ name: 'cpu', gflops }], failed: [], gpu: null, measuredAt: 0 }
}

/**
 * The runtime that stands in for a node's compute: with real compute an ONNX Runtime session cache
 * slowed to the node's speed relative to the fastest (real compute cannot be made faster); with delay
 * compute the calibrated delay.
 */
export function simRuntime (node: Pick<PlannedNode, 'speed' | 'gpu' | 'cheat'>, ctx: HostContext): PieceRuntime {
  const runtime = honestRuntime(node, ctx)
  return node.cheat != null ? cheating(runtime, node.cheat) : runtime
}

function honestRuntime (node: Pick<PlannedNode, 'speed' | 'gpu'>, ctx: HostContext): PieceRuntime {
  const speed = effectiveSpeed(node)
  if (ctx.compute === 'delay') return new DelayRuntime(ctx.models, speed)
  const slowdown = ctx.maxSpeed / speed
  const shared = ctx.shared
  if (shared == null) return slowed(new SessionCache({ providers: ['cpu'], cpuThreads: 1 }), slowdown)
  // the shared cache is closed by the run, after every node
  return slowed({ run: async (cid, load, inputs, options) => await shared.run(cid, load, inputs, options), close: async () => {} }, slowdown)
}

/** A ShoalNode for a planned node, with the simulation's adapters; not started. */
export async function simNode (node: PlannedNode, bootstrap: string[], ctx: HostContext, tuning: MeshTuning = SIM_TUNING): Promise<ShoalNode> {
  const config = await resolveConfig({
    dataDir: join(ctx.workDir, node.name),
    env: {},
    // no memory limit: nodes sharing a process would each measure all of them (memory is not simulated)
    flags: { listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, mdns: false, adIntervalMs: ctx.adIntervalMs, cpuThreads: 1, maxConcurrency: node.serve === false ? 0 : node.concurrency, maxMemoryBytes: 0 }
  })
  return new ShoalNode({
    config,
    calibration: simCalibration(node),
    api: false,
    runtime: simRuntime(node, ctx),
    shaping: node.network,
    creditPriority: ctx.credit,
    tuning: node.nat ? { ...tuning, behindNat: true } : tuning
  })
}

/** The context as a node in another thread or process gets it: plain data, no models, no shared sessions. */
export function portableContext (ctx: HostContext): Omit<HostContext, 'models' | 'shared'> {
  return { workDir: ctx.workDir, compute: ctx.compute, adIntervalMs: ctx.adIntervalMs, maxSpeed: ctx.maxSpeed, preload: ctx.preload, credit: ctx.credit }
}

/** The models as a node in another thread or process needs them: cost and output shapes, bytes with `preload`. */
export function modelProfiles (ctx: Pick<HostContext, 'models' | 'preload'>): Array<ModelProfile & { cid: string }> {
  return [...ctx.models].map(([cid, m]) => ({ cid, msPerRow: m.msPerRow, outputRows: m.outputRows, ...(ctx.preload ? { bytes: m.bytes } : {}) }))
}

/** With `preload`, a started node takes every model of the scenario into its store. */
export async function preloadModels (node: ShoalNode, ctx: Pick<HostContext, 'preload' | 'models'>): Promise<void> {
  if (!ctx.preload) return
  for (const model of ctx.models.values()) if (model.bytes != null) await node.addModel(model.bytes)
}

/** A node in this process. */
export class InProcessHost implements SimHost {
  readonly name: string
  readonly node: ShoalNode

  private constructor (name: string, node: ShoalNode) {
    this.name = name
    this.node = node
  }

  static async start (planned: PlannedNode, bootstrap: string[], ctx: HostContext): Promise<InProcessHost> {
    const node = await simNode(planned, bootstrap, ctx)
    await node.start()
    await preloadModels(node, ctx)
    return new InProcessHost(planned.name, node)
  }

  get peerId (): string {
    return this.node.peerId
  }

  get addrs (): string[] {
    return this.node.addrs
  }

  async knownPeers (): Promise<number> {
    return this.node.libp2p.services.capacity.peers.size
  }

  async credit (): Promise<NodeCredit | null> {
    return nodeCredit(this.node)
  }

  async kill (): Promise<void> {
    await this.node.kill()
  }

  async leave (): Promise<void> {
    await this.node.stop()
  }
}
