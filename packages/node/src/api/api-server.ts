import { randomBytes, timingSafeEqual } from 'node:crypto'
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { API_HOST } from '../constants.js'
import { ListenError } from '../errors.js'

/**
 * A route's handler returns the JSON body (or a `RawBody` for binary answers); throwing `HttpError`
 * sends that status. `params` holds the `:name` segments of the route's path.
 */
export type Route = (req: IncomingMessage, url: URL, params: Record<string, string>) => Promise<unknown> | unknown

/** A binary answer (an .npy file). */
export class RawBody {
  constructor (readonly bytes: Uint8Array, readonly contentType = 'application/octet-stream', readonly status = 200) {}
}

/** A JSON answer with a status other than 200 (202 Accepted for a job, say). */
export class JsonBody {
  constructor (readonly body: unknown, readonly status: number) {}
}

/** Reads a request body of at most `limit` bytes (413 beyond, before buffering more). */
export async function readBody (req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > limit) throw new HttpError(413, `request body of ${declared} bytes is over the limit of ${limit}`)
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).byteLength
    if (size > limit) throw new HttpError(413, `request body is over the limit of ${limit} bytes`)
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
}

/** Reads a JSON request body (at most `limit` bytes). */
export async function readJson (req: IncomingMessage, limit: number): Promise<any> {
  const body = await readBody(req, limit)
  try {
    return JSON.parse(body.toString('utf8'))
  } catch (err: any) {
    throw new HttpError(400, `request body is not JSON (${err.message})`)
  }
}

function match (pattern: string, path: string): Record<string, string> | undefined {
  const want = pattern.split('/')
  const got = path.split('/')
  if (want.length !== got.length) return undefined
  const params: Record<string, string> = {}
  for (let i = 0; i < want.length; i++) {
    if (want[i].startsWith(':')) {
      try {
        params[want[i].slice(1)] = decodeURIComponent(got[i])
      } catch {
        throw new HttpError(400, `bad %-encoding in the path: ${got[i].slice(0, 200)}`)
      }
    }
    else if (want[i] !== got[i]) return undefined
  }
  return params
}

/** The status each kind of error is answered with (with its message); anything else is a 500. */
const ERROR_STATUS: Record<string, number> = {
  JobError: 400,
  TensorFileError: 400,
  ModelRejectedError: 400,
  InvalidMessageError: 400,
  NameError: 400,
  ModelDagError: 400,
  ModelNotFoundError: 404,
  ModelInUseError: 409,
  // Insufficient Storage: the quota is full of pinned or in-use models
  StorageFullError: 507,
  // Bad Gateway: the peers that should have provided the model did not
  ModelFetchError: 502
}

export class HttpError extends Error {
  override name = 'HttpError'
  constructor (readonly status: number, message: string) {
    super(message)
  }
}

export interface ApiServerInit {
  port: number
  /** 'GET /v1/peers' -> handler */
  routes: Record<string, Route>
  /** Static pages served to GET without the token (they hold no data: the dashboard), by path, with their headers. */
  pages?: Record<string, { body: Uint8Array, type: string }>
  pageHeaders?: Record<string, string>
}

/**
 * The node's local HTTP JSON API. It listens on 127.0.0.1 only and answers only requests that carry the
 * token (`Authorization: Bearer <token>`) that the node writes into its data dir, so that other users of
 * the machine and web pages in a browser cannot drive the node.
 */
export class ApiServer {
  readonly token = randomBytes(32).toString('hex')
  private readonly server: Server
  private readonly init: ApiServerInit

  constructor (init: ApiServerInit) {
    this.init = init
    this.server = createServer((req, res) => { void this.handle(req, res) })
  }

  async start (): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (err: NodeJS.ErrnoException) => {
        reject(new ListenError(err.code === 'EADDRINUSE'
          ? `API port ${this.init.port} on ${API_HOST} is already in use (choose another with --api-port, or 0 for any free port)`
          : `cannot serve the API on ${API_HOST}:${this.init.port}: ${err.message}`))
      })
      this.server.listen(this.init.port, API_HOST, () => resolve())
    })
  }

  get url (): string {
    const { port } = this.server.address() as AddressInfo
    return `http://${API_HOST}:${port}`
  }

  async stop (): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>(resolve => this.server.close(() => resolve()))
  }

  private authorised (req: IncomingMessage): boolean {
    const given = Buffer.from(/^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '')
    const expected = Buffer.from(this.token)
    return given.length === expected.length && timingSafeEqual(given, expected)
  }

  private async handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const send = (status: number, body: unknown): void => {
      if (body instanceof RawBody) {
        res.writeHead(body.status, { 'content-type': body.contentType, 'content-length': body.bytes.byteLength })
        res.end(body.bytes)
        return
      }
      if (body instanceof JsonBody) {
        send(body.status, body.body)
        return
      }
      const text = JSON.stringify(body) + '\n'
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
      res.end(text)
    }
    const page = req.method === 'GET' ? this.init.pages?.[new URL(req.url ?? '/', 'http://localhost').pathname] : undefined
    if (page != null) {
      res.writeHead(200, { ...this.init.pageHeaders, 'content-type': page.type, 'content-length': page.body.byteLength })
      res.end(page.body)
      return
    }
    try {
      if (!this.authorised(req)) throw new HttpError(401, 'missing or wrong API token: send "Authorization: Bearer <token>" with the token from <data dir>/api.json')
      const url = new URL(req.url ?? '/', 'http://localhost')
      let found: { route: Route, params: Record<string, string> } | undefined
      for (const [key, route] of Object.entries(this.init.routes)) {
        const [method, pattern] = key.split(' ')
        const params = method === (req.method ?? 'GET') ? match(pattern, url.pathname) : undefined
        if (params != null) {
          found = { route, params }
          break
        }
      }
      if (found == null) {
        const known = Object.keys(this.init.routes).join(', ')
        throw new HttpError(404, `no such endpoint: ${req.method ?? ''} ${url.pathname} (endpoints: ${known})`)
      }
      send(200, await found.route(req, url, found.params))
    } catch (err: any) {
      const status = err instanceof HttpError ? err.status : ERROR_STATUS[err?.name] ?? 500
      send(status, { error: { status, message: err.message } })
    }
  }
}
