import { randomBytes, timingSafeEqual } from 'node:crypto'
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { API_HOST } from './constants.js'
import { ListenError } from './errors.js'

/** A route's handler returns the JSON body; throwing `HttpError` sends that status. */
export type Route = (req: IncomingMessage, url: URL) => Promise<unknown> | unknown

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
      const text = JSON.stringify(body) + '\n'
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
      res.end(text)
    }
    try {
      if (!this.authorised(req)) throw new HttpError(401, 'missing or wrong API token: send "Authorization: Bearer <token>" with the token from <data dir>/api.json')
      const url = new URL(req.url ?? '/', 'http://localhost')
      const route = this.init.routes[`${req.method ?? 'GET'} ${url.pathname}`]
      if (route == null) {
        const known = Object.keys(this.init.routes).join(', ')
        throw new HttpError(404, `no such endpoint: ${req.method ?? ''} ${url.pathname} (endpoints: ${known})`)
      }
      send(200, await route(req, url))
    } catch (err: any) {
      const status = err instanceof HttpError ? err.status : 500
      send(status, { error: { status, message: err.message } })
    }
  }
}
