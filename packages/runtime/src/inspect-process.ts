// A child process of inspectModelInChild (inspect-sandboxed.ts): decodes and checks one model with
// inspectModel, answers, and exits. Decoding a stranger's protobuf is where a bomb goes off: here it
// takes only this process with it.
import { inspectModel } from './model.js'
import type { ModelInfo } from './model.js'

export type ToInspector = { bytes: Uint8Array, maxBytes: number, cid?: string }
export type FromInspector =
  | { type: 'info', info: ModelInfo }
  | { type: 'error', name: string, reason?: string, message: string }

const send = process.send?.bind(process)
if (send == null) throw new Error('inspect-process.js runs as a child process of inspectModelInChild')
process.on('disconnect', () => { process.exit(0) })
process.once('message', (message: ToInspector) => {
  inspectModel(message.bytes, { maxBytes: message.maxBytes, cid: message.cid }).then(info => {
    send({ type: 'info', info } satisfies FromInspector, () => process.exit(0))
  }, (err: any) => {
    send({ type: 'error', name: String(err?.name ?? 'Error'), reason: err?.reason, message: String(err?.message ?? err) } satisfies FromInspector, () => process.exit(0))
  })
})
