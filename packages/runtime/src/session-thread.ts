// A worker thread of ThreadedSessions (threaded.ts): one SessionCache, driven by messages from the
// node's main thread. ONNX Runtime's Node binding runs a session synchronously on the thread that calls
// it, so runs happen here, not on the node's event loop.
import { parentPort, workerData } from 'node:worker_threads'
import { SessionCache } from './session.js'
import type { SessionCacheInit } from './session.js'
import type { Tensor } from './tensor.js'

export type ToThread =
  | { type: 'run', id: number, cid: string, inputs: Record<string, Tensor> }
  | { type: 'model', id: number, bytes?: Uint8Array, error?: string }
  | { type: 'close' }

export type FromThread =
  | { type: 'load', id: number, cid: string }
  | { type: 'result', id: number, outputs: Record<string, Tensor>, provider: string, computeMs: number }
  | { type: 'error', id: number, name: string, message: string }
  | { type: 'closed' }

const port = parentPort
if (port == null) throw new Error('session-thread.js runs as a worker thread of ThreadedSessions')
const cache = new SessionCache(workerData as SessionCacheInit)
const models = new Map<number, { resolve: (bytes: Uint8Array) => void, reject: (err: Error) => void }>()
const active = new Set<Promise<unknown>>()
const send = (message: FromThread, transfer: ArrayBuffer[] = []): void => { port.postMessage(message, transfer) }

port.on('message', (message: ToThread) => {
  if (message.type === 'model') {
    const waiting = models.get(message.id)
    models.delete(message.id)
    if (message.bytes != null) waiting?.resolve(message.bytes)
    else waiting?.reject(new Error(message.error ?? 'the model could not be loaded'))
  } else if (message.type === 'run') {
    const { id, cid, inputs } = message
    const load = async (): Promise<Uint8Array> => await new Promise((resolve, reject) => {
      models.set(id, { resolve, reject })
      send({ type: 'load', id, cid })
    })
    const running = cache.run(cid, load, inputs)
    active.add(running)
    void running.catch(() => {}).finally(() => active.delete(running))
    running.then(result => {
      // ONNX Runtime's output memory is its own (and may not be detachable): copy each output into a
      // buffer of ours and move that to the main thread
      const outputs: Record<string, Tensor> = {}
      for (const [name, t] of Object.entries(result.outputs)) outputs[name] = { dtype: t.dtype, dims: t.dims, data: new Uint8Array(t.data) }
      send({ type: 'result', id, outputs, provider: result.provider, computeMs: result.computeMs }, Object.values(outputs).map(t => t.data.buffer as ArrayBuffer))
    }, (err: any) => {
      send({ type: 'error', id, name: String(err?.name ?? 'Error'), message: String(err?.message ?? err) })
    })
  } else if (message.type === 'close') {
    // Terminating a thread that ONNX Runtime is running in (or still holds sessions in) aborts the
    // whole process. So the runs already here finish (their answers go out before 'closed'), the
    // sessions are released, and only on 'closed' does the main thread end this one.
    void Promise.allSettled([...active]).then(async () => { await cache.close() }).finally(() => {
      send({ type: 'closed' })
    })
  }
})
