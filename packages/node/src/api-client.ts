import { readFile } from 'node:fs/promises'
import { dataDirFiles } from './data-dir.js'
import { ApiError, NoRunningNodeError } from './errors.js'
import type { ApiInfo, NodeStatus, PeerView } from './shoal-node.js'
import type { JobView } from './api-routes.js'
import type { JobOptions } from './job.js'
import type { ModelEntry } from './model-store.js'
import type { FetchProgress } from './model-swarm.js'
import type { Manifest, Resolved } from './names.js'

/**
 * Talks to the node running on a data dir, through the API address and token the node wrote there.
 * Used by the CLI; TypeScript users can use it too.
 */
export class ApiClient {
  private constructor (readonly info: ApiInfo, private readonly dataDir: string) {}

  /** Finds the node running on `dataDir`; throws `NoRunningNodeError` if there is none. */
  static async connect (dataDir: string): Promise<ApiClient> {
    const file = dataDirFiles(dataDir).api
    let info: ApiInfo
    try {
      info = JSON.parse(await readFile(file, 'utf8'))
    } catch (err: any) {
      if (err.code === 'ENOENT' || err.code === 'ENOTDIR') throw new NoRunningNodeError(`no node is running on data dir ${dataDir} (start one with: shoal node start --data-dir ${dataDir})`)
      throw new NoRunningNodeError(`cannot read ${file}: ${err.code ?? err.message}`)
    }
    return new ApiClient(info, dataDir)
  }

  async get<T> (path: string): Promise<T> {
    return await this.request<T>('GET', path)
  }

  async request<T> (method: string, path: string, body?: Uint8Array | string, timeoutMs = 60_000): Promise<T> {
    let res: Response
    try {
      res = await fetch(this.info.url + path, {
        method,
        body: body as any,
        headers: {
          authorization: `Bearer ${this.info.token}`,
          ...(typeof body === 'string' ? { 'content-type': 'application/json' } : body != null ? { 'content-type': 'application/octet-stream' } : {})
        },
        signal: AbortSignal.timeout(timeoutMs)
      })
    } catch (err: any) {
      // api.json outlived its node (killed without a chance to clean up)
      throw new NoRunningNodeError(`no node answers at ${this.info.url} for data dir ${this.dataDir} (${err.cause?.code ?? err.message}); start one with: shoal node start --data-dir ${this.dataDir}`)
    }
    if (res.headers.get('content-type') === 'application/octet-stream' && res.ok) {
      return new Uint8Array(await res.arrayBuffer()) as T
    }
    const json = await res.json() as any
    if (!res.ok) throw new ApiError(res.status, json?.error?.message ?? `HTTP ${res.status}`)
    return json as T
  }

  /** Adds a model; with `name` (name@version) also publishes a signed name for it. */
  async addModel (bytes: Uint8Array, options: { name?: string, pin?: boolean } = {}): Promise<ModelEntry & { manifest?: Manifest }> {
    const query = new URLSearchParams()
    if (options.name != null) query.set('name', options.name)
    if (options.pin === true) query.set('pin', 'true')
    const q = query.size > 0 ? `?${query.toString()}` : ''
    return await this.request('POST', `/v1/models${q}`, bytes, 10 * 60_000)
  }

  async models (): Promise<ModelEntry[]> {
    return await this.get('/v1/models')
  }

  async removeModel (cid: string): Promise<{ removed: string }> {
    return await this.request('DELETE', `/v1/models/${encodeURIComponent(cid)}`)
  }

  async pinModel (cid: string, pinned: boolean): Promise<ModelEntry> {
    return await this.request(pinned ? 'POST' : 'DELETE', `/v1/models/${encodeURIComponent(cid)}/pin`)
  }

  /** A CID, name@version or PEERID/name@version to a CID (names only from trusted publishers, or those in `trust`). */
  async resolve (model: string, trust: string[] = []): Promise<{ cid: string, name: Resolved | null }> {
    return await this.request('POST', '/v1/resolve', JSON.stringify({ model, trust }))
  }

  /** Starts fetching a model from the swarm (or finds it held); follow it with `fetchProgress`. */
  async startFetch (model: string, trust: string[] = [], from?: string[]): Promise<FetchProgress> {
    return await this.request('POST', '/v1/fetches', JSON.stringify({ model, trust, from }))
  }

  async fetchProgress (cid: string): Promise<FetchProgress> {
    return await this.get(`/v1/fetches/${encodeURIComponent(cid)}`)
  }

  async submitJob (body: { model: string, inputs: Record<string, { path: string } | { npy: string }>, options?: JobOptions, trust?: string[] }): Promise<{ jobId: string }> {
    return await this.request('POST', '/v1/jobs', JSON.stringify(body))
  }

  async job (id: string): Promise<JobView> {
    return await this.get(`/v1/jobs/${encodeURIComponent(id)}`)
  }

  async cancelJob (id: string): Promise<JobView> {
    return await this.request('DELETE', `/v1/jobs/${encodeURIComponent(id)}`)
  }

  /** An output of a finished job, as .npy bytes. */
  async output (id: string, name: string): Promise<Uint8Array> {
    return await this.get(`/v1/jobs/${encodeURIComponent(id)}/outputs/${encodeURIComponent(name)}`)
  }

  async id (): Promise<{ peerId: string, addrs: string[], version: string }> {
    return await this.get('/v1/id')
  }

  async status (): Promise<NodeStatus> {
    return await this.get('/v1/status')
  }

  async peers (): Promise<PeerView[]> {
    return await this.get('/v1/peers')
  }
}
