import { ApiClient } from '@shoal/node/client'
import type { ServingView } from '@shoal/node/client'
import { DATA_DIR_FLAG, JSON_FLAG, parse } from '../args.js'
import type { Command, CommandSpec } from '../args.js'
import type { Io } from '../io.js'
import { dataDirOf } from './peers.js'
import { SUMMARIES } from './summaries.js'

export const nodePauseSpec: CommandSpec = {
  name: 'node pause',
  summary: SUMMARIES['node pause'],
  usage: 'shoal node pause [--data-dir DIR] [--json]',
  flags: [DATA_DIR_FLAG, JSON_FLAG],
  details: 'The running node takes no new pieces from peers: its ad shows no free slots, and it refuses new pieces as busy, so submitters send them elsewhere. The pieces it runs finish. The pause lasts, also across a restart, until shoal node resume. Your own jobs still run here. With --json, prints what POST /v1/node/pause answers (docs/api.md).'
}

export const nodeResumeSpec: CommandSpec = {
  name: 'node resume',
  summary: SUMMARIES['node resume'],
  usage: 'shoal node resume [--data-dir DIR] [--json]',
  flags: [DATA_DIR_FLAG, JSON_FLAG],
  details: 'The node takes pieces again, as far as its preferences allow (--hours, --when-idle, --only-on-ac): it says so if one of them still keeps it from serving. With --json, prints what POST /v1/node/resume answers (docs/api.md).'
}

/** "taking pieces", or why not. */
export function servingLine (s: Pick<ServingView, 'accepting' | 'reasons'>): string {
  return s.accepting ? 'taking pieces from peers' : `taking no new pieces: ${s.reasons.join('; ')}`
}

async function change (spec: CommandSpec, argv: string[], io: Io, how: 'pause' | 'resume'): Promise<number> {
  const { values } = parse(spec, argv)
  const client = await ApiClient.connect(dataDirOf(values, io))
  const view = how === 'pause' ? await client.pause() : await client.resume()
  if (values.json === true) io.stdout(JSON.stringify(view, null, 2) + '\n')
  else io.stdout(`${how === 'pause' ? 'paused' : 'resumed'}: ${servingLine(view)}${how === 'pause' ? ' (pieces running finish)' : ''}\n`)
  return 0
}

/** This file's commands, by name (main.ts loads the file when one of them runs). */
export const commands: Record<string, Command> = {
  'node pause': { spec: nodePauseSpec, run: async (argv, io) => await change(nodePauseSpec, argv, io, 'pause') },
  'node resume': { spec: nodeResumeSpec, run: async (argv, io) => await change(nodeResumeSpec, argv, io, 'resume') }
}
