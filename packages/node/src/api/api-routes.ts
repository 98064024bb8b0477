import { open } from 'node:fs/promises'
import { isAbsolute } from 'node:path'
import { peerIdFromString } from '@libp2p/peer-id'
import { formatNpy, parseNpy, TensorFileError } from '@shoal/runtime'
import type { Tensor } from '@shoal/runtime'
import { VERIFY_POLICIES } from '@shoal/scheduler'
import { isPipelineCid, MAX_MANIFEST_BYTES } from '@shoal/protocol'
import { HttpError, JsonBody, RawBody, readBody, readJson } from './api-server.js'
import type { Route } from './api-server.js'
import { MAX_API_BODY_BYTES, SHOAL_VERSION } from '../constants.js'
import { METRICS_CONTENT_TYPE } from '../metrics.js'
import { MAX_CANARIES } from '../jobs/index.js'
import type { Job, JobOptions, PipelineJob, PipelineProgress, RequestOptions } from '../jobs/index.js'
import { tensorFromJson, tensorToJson } from './json-tensors.js'
import type { ModelEntry, FetchProgress } from '../models/index.js'
import { parseNameRef } from '../models/index.js'
import type { ShoalNode } from '../shoal-node.js'

/** What GET /v1/jobs/:id answers. */
export interface JobView {
  jobId: string
  state: 'planning' | 'running' | 'done' | 'failed'
  model: string
  /** A pipeline job's progress also has `pipeline` (its stages, micro-batches and replays). */
  progress: ReturnType<Job['progress']> & { pipeline?: PipelineProgress['pipeline'] }
  error: string | null
  outputs: Array<{ name: string, dtype: string, dims: number[] }>
}

function jobView (job: Job | PipelineJob): JobView {
  const progress = job.progress()
  return {
    jobId: job.id,
    state: progress.state,
    model: job.modelCid,
    progress,
    error: job.error?.message ?? null,
    outputs: Object.entries(job.result?.outputs ?? {}).map(([name, t]) => ({ name, dtype: t.dtype, dims: t.dims }))
  }
}

/** An input of POST /v1/jobs: a .npy file on this machine (absolute path), or .npy bytes in base64. */
async function readInput (name: string, spec: any, limit: number): Promise<Tensor> {
  if (typeof spec?.path === 'string') {
    if (!isAbsolute(spec.path)) throw new HttpError(400, `input "${name}": path must be absolute, got ${spec.path}`)
    // a regular file of at most `limit` bytes, checked before reading: /dev/zero or a FIFO would never end
    let bytes: Uint8Array
    let file: Awaited<ReturnType<typeof open>> | undefined
    try {
      file = await open(spec.path, 'r')
      const stat = await file.stat()
      if (!stat.isFile()) throw new TensorFileError(`input "${name}": ${spec.path} is not a regular file`)
      if (stat.size > limit) throw new TensorFileError(`input "${name}": ${spec.path} is ${stat.size} bytes, over the limit of ${limit}`)
      bytes = new Uint8Array(stat.size)
      for (let at = 0; at < stat.size;) {
        const { bytesRead } = await file.read(bytes, at, stat.size - at, at)
        if (bytesRead === 0) throw new TensorFileError(`input "${name}": ${spec.path} got shorter while it was read`)
        at += bytesRead
      }
    } catch (err: any) {
      if (err instanceof TensorFileError) throw err
      throw new TensorFileError(`input "${name}": cannot read ${spec.path}: ${err.code ?? err.message}`)
    } finally {
      await file?.close()
    }
    return parseNpy(bytes, `input "${name}" (${spec.path})`)
  }
  if (typeof spec?.npy === 'string') return parseNpy(Buffer.from(spec.npy, 'base64'), `input "${name}"`)
  throw new HttpError(400, `input "${name}" must be {"path": "/abs/file.npy"} or {"npy": "<base64 of a .npy file>"}`)
}

/** Extra publishers to trust for this request's names: body.trust, an array of peer ids. */
function trustOf (body: any): string[] {
  return body.trust == null ? [] : peerIdsOf(body.trust, 'trust')
}

function peerIdsOf (value: unknown, field: string): string[] {
  if (!Array.isArray(value) || !value.every((t: unknown) => typeof t === 'string')) throw new HttpError(400, `"${field}" must be an array of peer ids`)
  for (const t of value) {
    try {
      peerIdFromString(t)
    } catch {
      throw new HttpError(400, `"${field}": ${String(t)} is not a peer id`)
    }
  }
  return value
}

function parseRequestOptions (raw: any): RequestOptions {
  const options: RequestOptions = {}
  if (raw == null) return options
  if (raw.verify != null) {
    if (raw.verify !== 'off' && raw.verify !== 'spot') throw new HttpError(400, 'options.verify must be "off" or "spot" for a request')
    options.verify = raw.verify
  }
  if (raw.hedge != null) {
    if (typeof raw.hedge !== 'boolean') throw new HttpError(400, 'options.hedge must be true or false')
    options.hedge = raw.hedge
  }
  if (raw.timeoutMs != null) {
    if (!Number.isSafeInteger(raw.timeoutMs) || raw.timeoutMs < 1 || raw.timeoutMs > 600_000) throw new HttpError(400, 'options.timeoutMs must be a whole number of ms from 1 to 600000')
    options.timeoutMs = raw.timeoutMs
  }
  return options
}

function parseOptions (raw: any): JobOptions {
  const options: JobOptions = {}
  if (raw == null) return options
  if (raw.local != null) {
    if (raw.local !== 'share' && raw.local !== 'fallback') throw new HttpError(400, 'options.local must be "share" or "fallback"')
    options.local = raw.local
  }
  if (raw.rowsPerPiece != null) {
    if (!Number.isSafeInteger(raw.rowsPerPiece) || raw.rowsPerPiece < 1) throw new HttpError(400, 'options.rowsPerPiece must be a positive integer')
    options.rowsPerPiece = raw.rowsPerPiece
  }
  if (raw.maxPieceMs != null) {
    if (!Number.isSafeInteger(raw.maxPieceMs) || raw.maxPieceMs < 1 || raw.maxPieceMs > 3_600_000) throw new HttpError(400, 'options.maxPieceMs must be a whole number of ms from 1 to 3600000')
    options.maxPieceMs = raw.maxPieceMs
  }
  if (raw.verify != null) {
    if (!VERIFY_POLICIES.includes(raw.verify)) throw new HttpError(400, 'options.verify must be "off", "spot" or "full"')
    options.verify = raw.verify
  }
  if (raw.canaries != null) {
    if (!Number.isSafeInteger(raw.canaries) || raw.canaries < 0 || raw.canaries > MAX_CANARIES) throw new HttpError(400, `options.canaries must be a whole number from 0 to ${MAX_CANARIES}`)
    options.canaries = raw.canaries
  }
  if (raw.tolerance != null) {
    const t = raw.tolerance
    const ok = (n: unknown): boolean => typeof n === 'number' && Number.isFinite(n) && n >= 0
    if (typeof t !== 'object' || !ok(t.rtol) || !ok(t.atol) || Object.keys(t).some(k => k !== 'rtol' && k !== 'atol')) throw new HttpError(400, 'options.tolerance must be {"rtol": number, "atol": number}, both finite and at least 0')
    options.tolerance = { rtol: t.rtol, atol: t.atol }
  }
  return options
}

/** The node's HTTP API (docs/api.md). */
export function apiRoutes (node: ShoalNode): Record<string, Route> {
  const findJob = (id: string): Job | PipelineJob => {
    const job = node.job(id)
    if (job == null) throw new HttpError(404, `no job ${id} on this node`)
    return job
  }
  const findModel = (cid: string): ModelEntry => {
    const model = node.models.info(cid)
    if (model == null) throw new HttpError(404, `model ${cid} is not in this node's store`)
    return model
  }
  /** A fetch of a model already held: done at once, nothing moved. */
  const fetchDone = (cid: string): FetchProgress => {
    const bytes = node.models.info(cid)?.bytes ?? 0
    return { cid, state: 'done', bytes, bytesDone: bytes, blocks: 0, blocksDone: 0, heldBlocks: 0, providers: [], candidates: 0, startedAt: 0, error: null, summary: { cid, bytes, wallMs: 0, blocks: 0, heldBlocks: 0, providers: [], duplicateBytes: 0, dropped: [] } }
  }
  return {
    'GET /metrics': async () => new RawBody(Buffer.from(await node.metrics.text()), METRICS_CONTENT_TYPE),
    'GET /v1/id': () => ({ peerId: node.peerId, addrs: node.addrs, version: SHOAL_VERSION }),
    'GET /v1/status': () => node.status(),
    'GET /v1/history': () => node.history(),
    'POST /v1/node/pause': async () => await node.pause(),
    'POST /v1/node/resume': async () => await node.resume(),
    'GET /v1/peers': () => node.peers(),
    'GET /v1/models': () => node.models.list(),
    'POST /v1/models': async (req, url) => {
      const name = url.searchParams.get('name') ?? undefined
      const pin = url.searchParams.get('pin') === 'true'
      if (name != null) parseNameRef(name)
      const bytes = await readBody(req, node.config.maxModelBytes)
      return await node.addModel(bytes, { name, pin: pin ? true : undefined })
    },
    'GET /v1/models/:cid': (_req, _url, params) => findModel(params.cid),
    'POST /v1/pipelines': async (req, url) => {
      const name = url.searchParams.get('name') ?? undefined
      if (name != null) parseNameRef(name)
      const bytes = await readBody(req, MAX_MANIFEST_BYTES)
      try {
        return await node.addPipeline(bytes, { name })
      } catch (err: any) {
        if (err.name === 'PipelineError') throw new HttpError(400, err.message)
        throw err
      }
    },
    'GET /v1/pipelines': () => node.pipelines.list(),
    'GET /v1/pipelines/:cid': (_req, _url, params) => {
      const entry = node.pipelines.get(params.cid)
      if (entry == null) throw new HttpError(404, `pipeline ${params.cid} is not on this node`)
      return entry
    },
    'DELETE /v1/models/:cid': async (_req, _url, params) => {
      findModel(params.cid)
      await node.removeModel(params.cid)
      return { removed: params.cid }
    },
    'POST /v1/models/:cid/pin': async (_req, _url, params) => await node.models.pin(findModel(params.cid).cid, true),
    'DELETE /v1/models/:cid/pin': async (_req, _url, params) => await node.models.pin(findModel(params.cid).cid, false),
    'POST /v1/fetches': async (req) => {
      const body = await readJson(req, MAX_API_BODY_BYTES)
      if (typeof body?.model !== 'string') throw new HttpError(400, 'body must have "model": a CID, name@version or PEERID/name@version')
      const { cid } = await node.resolveModel(body.model, trustOf(body))
      const only = body.from == null ? undefined : peerIdsOf(body.from, 'from')
      // the fetch goes on after the answer; its progress and outcome are at GET /v1/fetches/:cid
      node.fetchModel(cid, { only }).catch(() => {})
      return new JsonBody(node.swarm.progress(cid) ?? fetchDone(cid), 202)
    },
    'GET /v1/fetches': () => node.swarm.listFetches(),
    'GET /v1/fetches/:cid': (_req, _url, params) => {
      const progress = node.swarm.progress(params.cid) ?? (node.models.has(params.cid) ? fetchDone(params.cid) : undefined)
      if (progress == null) throw new HttpError(404, `no fetch of ${params.cid} on this node`)
      return progress
    },
    'POST /v1/resolve': async (req) => {
      const body = await readJson(req, MAX_API_BODY_BYTES)
      if (typeof body?.model !== 'string') throw new HttpError(400, 'body must have "model": a CID, name@version or PEERID/name@version')
      return await node.resolveModel(body.model, trustOf(body))
    },
    'GET /v1/names': () => node.names.list(),
    'POST /v1/jobs': async (req) => {
      const body = await readJson(req, MAX_API_BODY_BYTES + node.config.maxRequestBytes * 2)
      if (typeof body?.model !== 'string') throw new HttpError(400, 'body must have "model": a model CID, name@version or PEERID/name@version')
      if (typeof body.inputs !== 'object' || body.inputs == null || Object.keys(body.inputs).length === 0) throw new HttpError(400, 'body must have "inputs": {name: {"path": ...} or {"npy": ...}}')
      const inputs: Record<string, Tensor> = {}
      for (const [name, spec] of Object.entries(body.inputs)) inputs[name] = await readInput(name, spec, node.config.maxRequestBytes * 64)
      const { cid } = await node.resolveModel(body.model, trustOf(body))
      // a model this node lacks comes from the swarm first (a pipeline's stages come to its workers)
      if (isPipelineCid(cid)) await node.fetchPipeline(cid)
      else if (!node.models.has(cid)) await node.fetchModel(cid)
      const job = node.submitJob(cid, inputs, parseOptions(body.options))
      return new JsonBody({ jobId: job.id }, 202)
    },
    'POST /v1/infer': async (req) => {
      const body = await readJson(req, MAX_API_BODY_BYTES + node.config.maxRequestBytes * 2)
      if (typeof body?.model !== 'string') throw new HttpError(400, 'body must have "model": a model CID, name@version or PEERID/name@version')
      if (typeof body.inputs !== 'object' || body.inputs == null || Object.keys(body.inputs).length === 0) throw new HttpError(400, 'body must have "inputs": {name: {"npy": ...} or {"dtype", "dims", "values"}}')
      const format = body.outputs ?? 'json'
      if (format !== 'json' && format !== 'npy') throw new HttpError(400, 'outputs must be "json" (values) or "npy" (base64 of .npy files)')
      const inputs: Record<string, Tensor> = {}
      for (const [name, spec] of Object.entries<any>(body.inputs)) inputs[name] = spec?.values != null ? tensorFromJson(name, spec) : await readInput(name, spec, node.config.maxRequestBytes)
      const { cid } = await node.resolveModel(body.model, trustOf(body))
      if (isPipelineCid(cid)) throw new HttpError(400, `${body.model} is a pipeline: run it as a job (POST /v1/jobs); requests go to one peer whole`)
      if (!node.models.has(cid)) await node.fetchModel(cid)
      const result = await node.infer(cid, inputs, parseRequestOptions(body.options))
      const outputs = Object.fromEntries(Object.entries(result.outputs).map(([name, t]) => [name, format === 'json' ? tensorToJson(t) : { dtype: t.dtype, dims: t.dims, npy: Buffer.from(formatNpy(t)).toString('base64') }]))
      return { wallMs: Math.round(result.wallMs * 10) / 10, peerId: result.peerId, hedged: result.hedged, provider: result.provider, checked: result.checked, failures: result.failures, outputs }
    },
    'GET /v1/jobs': () => node.listJobs().map(jobView),
    'GET /v1/jobs/:id': (_req, _url, params) => jobView(findJob(params.id)),
    'DELETE /v1/jobs/:id': (_req, _url, params) => {
      const job = findJob(params.id)
      job.cancel()
      return jobView(job)
    },
    'GET /v1/jobs/:id/outputs/:name': (_req, _url, params) => {
      const job = findJob(params.id)
      if (job.result == null) throw new HttpError(409, `job ${job.id} has no outputs: it is ${job.progress().state}`)
      const tensor = job.result.outputs[params.name]
      if (tensor == null) throw new HttpError(404, `job ${job.id} has no output "${params.name}" (outputs: ${Object.keys(job.result.outputs).join(', ')})`)
      return new RawBody(formatNpy(tensor))
    }
  }
}
