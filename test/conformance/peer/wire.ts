/**
 * Shoal's wire messages through an independent protobuf implementation: protobufjs, reading the
 * `.proto` files at run time. Nothing here comes from `@shoal/*`: this is what an outside developer
 * has, the `.proto` files and docs/protocol.md.
 */
import protobuf from 'protobufjs'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const PROTO_DIR = fileURLToPath(new URL('../../../packages/protocol/src/pb/', import.meta.url))

/** Every message type on Shoal's own protocols, by the file that declares it. */
export const PROTO_FILES = {
  capacity: ['CapacityAd', 'Hardware', 'Provider', 'Limits'],
  infer: ['TensorInfo', 'InferRequest', 'InferResponse', 'AnswerCommitment'],
  direct: ['DirectRequest', 'DirectOffer'],
  block: ['BlockRequest', 'BlockResponse']
} as const

/** A repeated field of a scalar numeric type, up to its `;` (what proto3 packs by default). */
const REPEATED_SCALAR = /(repeated\s+(?:u?int(?:32|64)|s(?:int|fixed)(?:32|64)|fixed(?:32|64)|float|double|bool)\s+\w+\s*=\s*\d+)\s*;/g

export type MessageName = typeof PROTO_FILES[keyof typeof PROTO_FILES][number]

export interface Wire {
  type: (name: MessageName) => protobuf.Type
  encode: (name: MessageName, value: Record<string, unknown>) => Uint8Array
  decode: (name: MessageName, bytes: Uint8Array) => Record<string, any>
}

/**
 * Loads the `.proto` files. `packed: false` declares every repeated scalar field `[packed = false]`, as an
 * implementation that writes the unpacked form would: a proto3 parser must read both.
 */
export function loadWire (options: { packed?: boolean } = {}): Wire {
  const root = new protobuf.Root()
  for (const file of Object.keys(PROTO_FILES)) {
    let text = readFileSync(`${PROTO_DIR}${file}.proto`, 'utf8')
    if (options.packed === false) text = text.replace(REPEATED_SCALAR, '$1 [packed = false];')
    protobuf.parse(text, root, { keepCase: false })
  }
  root.resolveAll()
  const type = (name: MessageName): protobuf.Type => root.lookupType(name)
  return {
    type,
    encode: (name, value) => {
      const t = type(name)
      const message = t.fromObject(value)
      const problem = t.verify(message)
      if (problem != null) throw new Error(`${name}: ${problem}`)
      return t.encode(message).finish()
    },
    // plain objects: 64-bit integers as decimal strings, enums by name, bytes as Uint8Array, defaults filled in
    decode: (name, bytes) => type(name).toObject(type(name).decode(bytes), { longs: String, enums: String, bytes: Uint8Array, defaults: true, arrays: true })
  }
}
