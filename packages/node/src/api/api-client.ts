import { readFile } from 'node:fs/promises'
import { dataDirFiles } from '../data-dir-layout.js'
import { ApiError, NoRunningNodeError } from '../errors.js'
import type { ApiInfo, NodeStatus, PeerView } from '../shoal-node.js'
import type { ServingView } from '../serving-gate.js'
import type { JobView } from './api-routes.js'
import type { JobOptions } from '../jobs/index.js'
import type { PipelineEntry } from '../models/pipelines.js'
import type { RequestOptions } from '../jobs/request.js'
import type { ModelEntry, FetchProgress, Manifest, Resolved } from '../models/index.js'

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
    let raw: Buffer
    try {
      raw = await send(this.info.url + path, method, {
        authorization: `Bearer ${this.info.token}`,
        ...(typeof body === 'string' ? { 'content-type': 'application/json' } : body != null ? { 'content-type': 'application/octet-stream' } : {})
      }, body, timeoutMs)
    } catch (err: any) {
      // api.json outlived its node (killed without a chance to clean up)
      throw new NoRunningNodeError(`no node answers at ${this.info.url} for data dir ${this.dataDir} (${err.code ?? err.message}); start one with: shoal node start --data-dir ${this.dataDir}`)
    }
    let res: { status: number, type: string | undefined, body: Buffer }
    try {
      res = parseResponse(raw)
    } catch (err: any) {
      throw new ApiError(502, `the node at ${this.info.url} gave a broken answer: ${err.message as string}`)
    }
    const ok = res.status >= 200 && res.status < 300
    if (res.type === 'application/octet-stream' && ok) return new Uint8Array(res.body.buffer, res.body.byteOffset, res.body.byteLength) as T
    let json: any
    try {
      json = JSON.parse(res.body.toString('utf8'))
    } catch {
      throw new ApiError(res.status, `the node answered HTTP ${res.status} with a body that is not JSON`)
    }
    if (!ok) throw new ApiError(res.status, json?.error?.message ?? `HTTP ${res.status}`)
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

  /** Adds a pipeline manifest (its exact bytes); with `name` also publishes a signed name for it. */
  async addPipeline (bytes: Uint8Array, options: { name?: string } = {}): Promise<PipelineEntry & { name?: Manifest }> {
    const q = options.name != null ? `?${new URLSearchParams({ name: options.name }).toString()}` : ''
    return await this.request('POST', `/v1/pipelines${q}`, bytes)
  }

  async pipelines (): Promise<PipelineEntry[]> {
    return await this.get('/v1/pipelines')
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

  /** One inference request (`POST /v1/infer`), inputs as .npy bytes; outputs come back as .npy bytes. */
  async infer (body: { model: string, inputs: Record<string, { npy: string }>, options?: RequestOptions, trust?: string[] }): Promise<InferView> {
    return await this.request('POST', '/v1/infer', JSON.stringify({ ...body, outputs: 'npy' }), 10 * 60_000)
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

  /** The node takes no new pieces (and after a restart) until `resume`; pieces running finish. */
  async pause (): Promise<ServingView> {
    return await this.request('POST', '/v1/node/pause', '{}')
  }

  async resume (): Promise<ServingView> {
    return await this.request('POST', '/v1/node/resume', '{}')
  }

  async peers (): Promise<PeerView[]> {
    return await this.get('/v1/peers')
  }
}

/**
 * One HTTP/1.1 request to the node's local API over a plain socket, one request per connection
 * (`connection: close`). Not node:http nor fetch: loading either costs a CLI process about 15 MiB of
 * memory (their HTTP parser), a quarter of what `shoal peers` needs in all (docs/decisions.md). The
 * API is this node's own, on loopback, and answers with a content length; a chunked body is decoded
 * too.
 */
async function send (url: string, method: string, headers: Record<string, string>, body: Uint8Array | string | undefined, timeoutMs: number): Promise<Buffer> {
  const { connect } = await import('node:net')
  const target = new URL(url)
  const payload = body == null ? Buffer.alloc(0) : typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body.buffer, body.byteOffset, body.byteLength)
  const head = [
    `${method} ${target.pathname}${target.search} HTTP/1.1`,
    `host: ${target.host}`,
    'connection: close',
    `content-length: ${payload.byteLength}`,
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`)
  ].join('\r\n') + '\r\n\r\n'
  return await new Promise<Buffer>((resolve, reject) => {
    const socket = connect({ host: target.hostname, port: Number(target.port) })
    const chunks: Buffer[] = []
    const timer = setTimeout(() => { socket.destroy(Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' })) }, timeoutMs)
    // no half-close after the body: Node's HTTP server ends a connection whose client has ended its
    // side before the answer is ready; `connection: close` has the server end it once it answered
    socket.on('connect', () => { socket.write(head); socket.write(payload) })
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('end', () => { clearTimeout(timer); resolve(Buffer.concat(chunks)) })
    socket.on('error', err => {
      clearTimeout(timer)
      // the node may answer (413, 401) before it has read a large body, and close: the rest of our
      // writes then meet a reset, but its answer has arrived
      const got = Buffer.concat(chunks)
      if (got.includes('\r\n\r\n')) resolve(got)
      else reject(err)
    })
  })
}

/** An HTTP/1.1 response read to the end of its connection: status, content type and body. */
export function parseResponse (raw: Buffer): { status: number, type: string | undefined, body: Buffer } {
  const end = raw.indexOf('\r\n\r\n')
  if (end < 0) throw Object.assign(new Error('the answer ended before its headers did'), { code: 'EPROTO' })
  const [statusLine, ...lines] = raw.subarray(0, end).toString('latin1').split('\r\n')
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1])
  if (!Number.isInteger(status)) throw Object.assign(new Error(`not an HTTP answer: "${statusLine.slice(0, 80)}"`), { code: 'EPROTO' })
  const fields = new Map(lines.map(line => { const i = line.indexOf(':'); return [line.slice(0, i).trim().toLowerCase(), line.slice(i + 1).trim()] }))
  let rest = raw.subarray(end + 4)
  if (/\bchunked\b/i.test(fields.get('transfer-encoding') ?? '')) {
    const parts: Buffer[] = []
    for (;;) {
      const lineEnd = rest.indexOf('\r\n')
      const size = lineEnd < 0 ? NaN : parseInt(rest.subarray(0, lineEnd).toString('latin1'), 16)
      if (!Number.isInteger(size) || size < 0) throw Object.assign(new Error('a chunked answer ended inside a chunk'), { code: 'EPROTO' })
      if (size === 0) break
      parts.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size))
      rest = rest.subarray(lineEnd + 2 + size + 2)
    }
    rest = Buffer.concat(parts)
  } else if (fields.has('content-length')) {
    const length = Number(fields.get('content-length'))
    if (!(length <= rest.byteLength)) throw Object.assign(new Error(`the answer ended after ${rest.byteLength} of its ${String(fields.get('content-length'))} bytes`), { code: 'EPROTO' })
    rest = rest.subarray(0, length)
  }
  return { status, type: fields.get('content-type'), body: rest }
}

/** What `POST /v1/infer` answers with `outputs: "npy"`. */
export interface InferView {
  wallMs: number
  peerId: string
  hedged: boolean
  provider: string
  checked: boolean
  failures: Array<{ peerId: string, reason: string }>
  outputs: Record<string, { dtype: string, dims: number[], npy: string }>
}
