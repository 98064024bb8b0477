// A child process of ProcessSessions (process-sessions.ts): a session host (session-host.ts) on the
// process's IPC channel. It runs in an empty working directory of its own, under a memory limit, and
// the node kills it when a run outlives its deadline: a model is a stranger's code.
import { createRequire } from 'node:module'
import { serveSessions } from './session-host.js'
import type { SessionCacheInit } from './session.js'

const send = process.send?.bind(process)
if (send == null) throw new Error('session-process.js runs as a child process of ProcessSessions')
// without its node there is nothing to serve
process.on('disconnect', () => { process.exit(0) })
serveSessions({
  onMessage: listener => { process.on('message', listener as (message: unknown) => void) },
  send: (message) => { send(message) }
}, JSON.parse(process.env.SHOAL_SESSION_INIT ?? '{}') as SessionCacheInit)
// a child is started ahead of its first piece: load ONNX Runtime now, not when the piece is waiting
createRequire(import.meta.url)('onnxruntime-node')
