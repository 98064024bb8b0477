import { readFile } from 'node:fs/promises'
import { dataDirFiles } from './data-dir.js'
import { ApiError, NoRunningNodeError } from './errors.js'
import type { ApiInfo, NodeStatus, PeerView } from './shoal-node.js'

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
    let res: Response
    try {
      res = await fetch(this.info.url + path, {
        headers: { authorization: `Bearer ${this.info.token}` },
        signal: AbortSignal.timeout(10_000)
      })
    } catch (err: any) {
      // api.json outlived its node (killed without a chance to clean up)
      throw new NoRunningNodeError(`no node answers at ${this.info.url} for data dir ${this.dataDir} (${err.cause?.code ?? err.message}); start one with: shoal node start --data-dir ${this.dataDir}`)
    }
    const body = await res.json() as any
    if (!res.ok) throw new ApiError(res.status, body?.error?.message ?? `HTTP ${res.status}`)
    return body as T
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
