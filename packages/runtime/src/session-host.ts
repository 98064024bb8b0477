// The far side of ThreadedSessions and ProcessSessions: one SessionCache driven by messages from the
// node, in a worker thread (session-thread.ts) or a child process (session-process.ts). ONNX Runtime's
// Node binding runs a session synchronously on the thread that calls it, so runs happen here, not on
// the node's event loop.
import { SessionCache } from './session.js'
import type { SessionCacheInit } from './session.js'
import type { Tensor } from './tensor.js'

export type ToHost =
  | { type: 'run', id: number, cid: string, inputs: Record<string, Tensor> }
  | { type: 'model', id: number, bytes?: Uint8Array, error?: string }
  | { type: 'close' }

export type FromHost =
  | { type: 'load', id: number, cid: string }
  | { type: 'result', id: number, outputs: Record<string, Tensor>, provider: string, computeMs: number }
  | { type: 'error', id: number, name: string, message: string }
  | { type: 'closed' }

/** How the host talks to the node: messages in, messages out (with buffers to move where that is possible). */
export interface HostPort {
  onMessage: (listener: (message: ToHost) => void) => void
  send: (message: FromHost, transfer?: ArrayBuffer[]) => void
}

export function serveSessions (port: HostPort, init: SessionCacheInit): void {
  const cache = new SessionCache(init)
  const models = new Map<number, { resolve: (bytes: Uint8Array) => void, reject: (err: Error) => void }>()
  const active = new Set<Promise<unknown>>()

  port.onMessage((message: ToHost) => {
    if (message.type === 'model') {
      const waiting = models.get(message.id)
      models.delete(message.id)
      if (message.bytes != null) waiting?.resolve(message.bytes)
      else waiting?.reject(new Error(message.error ?? 'the model could not be loaded'))
    } else if (message.type === 'run') {
      const { id, cid, inputs } = message
      const load = async (): Promise<Uint8Array> => await new Promise((resolve, reject) => {
        models.set(id, { resolve, reject })
        port.send({ type: 'load', id, cid })
      })
      const running = cache.run(cid, load, inputs)
      active.add(running)
      void running.catch(() => {}).finally(() => active.delete(running))
      running.then(result => {
        // ONNX Runtime's output memory is its own (and may not be detachable): copy each output into a
        // buffer of ours and move that to the node
        const outputs: Record<string, Tensor> = {}
        for (const [name, t] of Object.entries(result.outputs)) outputs[name] = { dtype: t.dtype, dims: t.dims, data: new Uint8Array(t.data) }
        port.send({ type: 'result', id, outputs, provider: result.provider, computeMs: result.computeMs }, Object.values(outputs).map(t => t.data.buffer as ArrayBuffer))
      }, (err: any) => {
        port.send({ type: 'error', id, name: String(err?.name ?? 'Error'), message: String(err?.message ?? err) })
      })
    } else if (message.type === 'close') {
      // Terminating a thread that ONNX Runtime is running in (or still holds sessions in) aborts the
      // whole process. So the runs already here finish (their answers go out before 'closed'), the
      // sessions are released, and only on 'closed' does the node end this host.
      void Promise.allSettled([...active]).then(async () => { await cache.close() }).finally(() => {
        port.send({ type: 'closed' })
      })
    }
  })
}
