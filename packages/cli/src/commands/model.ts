import { readFile } from 'node:fs/promises'
import { ApiClient } from '@shoal/node'
import { DATA_DIR_FLAG, JSON_FLAG, parse } from '../args.js'
import type { CommandSpec } from '../args.js'
import { UsageError } from '../errors.js'
import { formatBytes, formatTable } from '../format.js'
import type { Io } from '../io.js'
import type { ModelInfo } from '@shoal/runtime'
import { dataDirOf } from './peers.js'

export const modelAddSpec: CommandSpec = {
  name: 'model add',
  summary: 'check an ONNX model and add it to the running node\'s store; prints its CID',
  usage: 'shoal model add FILE [--data-dir DIR] [--json]',
  positionals: true,
  flags: [DATA_DIR_FLAG, JSON_FLAG],
  details: `The model is refused if it is over the node's --max-model-size, not ONNX, stores tensors in external
data files, or uses operators from custom domains. With --json: {cid, bytes, inputs, outputs, opsets}.`
}

export async function modelAdd (argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(modelAddSpec, argv)
  if (positionals.length !== 1) throw new UsageError('give exactly one model file')
  let bytes: Uint8Array
  try {
    bytes = await readFile(positionals[0])
  } catch (err: any) {
    throw new UsageError(`cannot read ${positionals[0]} (${err.code ?? err.message})`)
  }
  const info = await (await ApiClient.connect(dataDirOf(values, io))).addModel(bytes)
  io.stdout(values.json === true ? JSON.stringify(info, null, 2) + '\n' : `${info.cid}\n`)
  return 0
}

export const modelLsSpec: CommandSpec = {
  name: 'model ls',
  summary: 'list the models in the running node\'s store',
  usage: 'shoal model ls [--data-dir DIR] [--json]',
  flags: [DATA_DIR_FLAG, JSON_FLAG],
  details: 'With --json: an array of {cid, bytes, inputs, outputs, opsets}.'
}

export async function modelLs (argv: string[], io: Io): Promise<number> {
  const { values } = parse(modelLsSpec, argv)
  const models = await (await ApiClient.connect(dataDirOf(values, io))).get<ModelInfo[]>('/v1/models')
  if (values.json === true) {
    io.stdout(JSON.stringify(models, null, 2) + '\n')
    return 0
  }
  if (models.length === 0) {
    io.stdout('no models in this node\'s store (add one with: shoal model add FILE)\n')
    return 0
  }
  const shape = (io: ModelInfo['inputs']): string => io.map(i => `${i.name} ${i.dtype ?? '?'}[${i.dims.join(',')}]`).join(' ')
  io.stdout(formatTable(['CID', 'SIZE', 'INPUTS', 'OUTPUTS'], models.map(m => [m.cid, formatBytes(m.bytes), shape(m.inputs), shape(m.outputs)])))
  return 0
}
