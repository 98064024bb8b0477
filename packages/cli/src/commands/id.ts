import { ApiClient, NoRunningNodeError } from '@shoal/node/client'
import { DATA_DIR_FLAG, JSON_FLAG, parse } from '../args.js'
import type { Command, CommandSpec } from '../args.js'
import type { Io } from '../io.js'
import { dataDirOf } from './peers.js'
import { SUMMARIES } from './summaries.js'

export const idSpec: CommandSpec = {
  name: 'id',
  summary: SUMMARIES['id'],
  usage: 'shoal id [--data-dir DIR] [--json]',
  flags: [DATA_DIR_FLAG, JSON_FLAG],
  details: `The peer id comes from the identity in the data dir; a node creates it on its first start.
With --json: {"peerId": ..., "addrs": [...], "running": true|false}.`
}

export async function id (argv: string[], io: Io): Promise<number> {
  const { values } = parse(idSpec, argv)
  const dataDir = dataDirOf(values, io)
  let result: { peerId: string, addrs: string[], running: boolean }
  try {
    const client = await ApiClient.connect(dataDir)
    const info = await client.id()
    result = { peerId: info.peerId, addrs: info.addrs, running: true }
  } catch (err) {
    if (!(err instanceof NoRunningNodeError)) throw err
    // only when no node runs: the key's code is not loaded for the common case
    const [{ readIdentity }, { peerIdFromPrivateKey }] = await Promise.all([import('@shoal/node/data-dir'), import('@libp2p/peer-id')])
    const key = await readIdentity(dataDir)
    if (key == null) throw new NoRunningNodeError(`no identity in data dir ${dataDir}: a node creates one on its first start (shoal node start --data-dir ${dataDir})`)
    result = { peerId: peerIdFromPrivateKey(key).toString(), addrs: [], running: false }
  }
  io.stdout(values.json === true ? JSON.stringify(result, null, 2) + '\n' : [result.peerId, ...result.addrs].join('\n') + '\n')
  return 0
}

/** This file's commands, by name (main.ts loads the file when one of them runs). */
export const commands: Record<string, Command> = {
  'id': { spec: idSpec, run: id }
}
