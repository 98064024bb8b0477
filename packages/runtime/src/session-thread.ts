// A worker thread of ThreadedSessions (threaded.ts): a session host (session-host.ts) on a message port.
import { parentPort, workerData } from 'node:worker_threads'
import { serveSessions } from './session-host.js'
import type { SessionCacheInit } from './session.js'

const port = parentPort
if (port == null) throw new Error('session-thread.js runs as a worker thread of ThreadedSessions')
serveSessions({
  onMessage: listener => { port.on('message', listener) },
  send: (message, transfer = []) => { port.postMessage(message, transfer) }
}, workerData as SessionCacheInit)
