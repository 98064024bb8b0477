import { readFile } from 'node:fs/promises'
import { isAbsolute } from 'node:path'
import { formatNpy, parseNpy, TensorFileError } from '@shoal/runtime'
import type { Tensor } from '@shoal/runtime'
import { HttpError, JsonBody, RawBody, readBody, readJson } from './api-server.js'
import type { Route } from './api-server.js'
import { MAX_API_BODY_BYTES, SHOAL_VERSION } from './constants.js'
import type { Job, JobOptions } from './job.js'
import type { ShoalNode } from './shoal-node.js'

/** What GET /v1/jobs/:id answers. */
export interface JobView {
  jobId: string
  state: 'planning' | 'running' | 'done' | 'failed'
  model: string
  progress: ReturnType<Job['progress']>
  error: string | null
  outputs: Array<{ name: string, dtype: string, dims: number[] }>
}

function jobView (job: Job): JobView {
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
    let bytes: Uint8Array
    try {
      bytes = await readFile(spec.path)
    } catch (err: any) {
      throw new TensorFileError(`input "${name}": cannot read ${spec.path}: ${err.code ?? err.message}`)
    }
    if (bytes.byteLength > limit) throw new TensorFileError(`input "${name}": ${spec.path} is ${bytes.byteLength} bytes, over the limit of ${limit}`)
    return parseNpy(bytes, `input "${name}" (${spec.path})`)
  }
  if (typeof spec?.npy === 'string') return parseNpy(Buffer.from(spec.npy, 'base64'), `input "${name}"`)
  throw new HttpError(400, `input "${name}" must be {"path": "/abs/file.npy"} or {"npy": "<base64 of a .npy file>"}`)
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
  return options
}

/** The node's HTTP API (docs/api.md). */
export function apiRoutes (node: ShoalNode): Record<string, Route> {
  const findJob = (id: string): Job => {
    const job = node.job(id)
    if (job == null) throw new HttpError(404, `no job ${id} on this node`)
    return job
  }
  return {
    'GET /v1/id': () => ({ peerId: node.peerId, addrs: node.addrs, version: SHOAL_VERSION }),
    'GET /v1/status': () => node.status(),
    'GET /v1/peers': () => node.peers(),
    'GET /v1/models': () => node.models.list(),
    'POST /v1/models': async (req) => {
      const bytes = await readBody(req, node.config.maxModelBytes)
      return await node.addModel(bytes)
    },
    'POST /v1/jobs': async (req) => {
      const body = await readJson(req, MAX_API_BODY_BYTES + node.config.maxRequestBytes * 2)
      if (typeof body?.model !== 'string') throw new HttpError(400, 'body must have "model": the CID of a model added to this node')
      if (typeof body.inputs !== 'object' || body.inputs == null || Object.keys(body.inputs).length === 0) throw new HttpError(400, 'body must have "inputs": {name: {"path": ...} or {"npy": ...}}')
      const inputs: Record<string, Tensor> = {}
      for (const [name, spec] of Object.entries(body.inputs)) inputs[name] = await readInput(name, spec, node.config.maxRequestBytes * 64)
      const job = node.submitJob(body.model, inputs, parseOptions(body.options))
      return new JsonBody({ jobId: job.id }, 202)
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
