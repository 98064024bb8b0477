import { ApiClient } from '@shoal/node/client'
import { DATA_DIR_FLAG, JSON_FLAG, parse } from '../args.js'
import type { Command, CommandSpec } from '../args.js'
import type { Io } from '../io.js'
import { dataDirOf } from './peers.js'
import { SUMMARIES } from './summaries.js'

export const nodeDashboardSpec: CommandSpec = {
  name: 'node dashboard',
  summary: SUMMARIES['node dashboard'],
  usage: 'shoal node dashboard [--data-dir DIR] [--json]',
  flags: [DATA_DIR_FLAG, JSON_FLAG],
  details: 'Prints the address of the running node\'s dashboard: a page on its API port (127.0.0.1 only) showing the peers it sees, what it contributed and earned, what it runs now, the jobs submitted from it, its models and its preferences, updated every 2 s. The API token is in the address\'s fragment (after #), which a browser never sends anywhere: keep the address to yourself. The page works offline and on a phone screen (reach it through an SSH tunnel: ssh -L PORT:127.0.0.1:PORT). With --json: {"url"}.'
}

export async function nodeDashboard (argv: string[], io: Io): Promise<number> {
  const { values } = parse(nodeDashboardSpec, argv)
  const client = await ApiClient.connect(dataDirOf(values, io))
  // the node must be up: the address is only worth printing if something answers it
  await client.id()
  const url = `${client.info.url}/dashboard#token=${client.info.token}`
  io.stdout(values.json === true ? JSON.stringify({ url }, null, 2) + '\n' : url + '\n')
  return 0
}

/** This file's commands, by name (main.ts loads the file when one of them runs). */
export const commands: Record<string, Command> = {
  'node dashboard': { spec: nodeDashboardSpec, run: nodeDashboard }
}
