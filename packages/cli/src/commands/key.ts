import { open } from 'node:fs/promises'
import { resolve } from 'node:path'
import { generateSwarmKey, parseSwarmKey, swarmKeyFingerprint } from '@shoal/node/client'
import { JSON_FLAG, parse } from '../args.js'
import type { Command, CommandSpec } from '../args.js'
import { UsageError } from '../errors.js'
import type { Io } from '../io.js'
import { SUMMARIES } from './summaries.js'

export const keyGenerateSpec: CommandSpec = {
  name: 'key generate',
  summary: SUMMARIES['key generate'],
  usage: 'shoal key generate [--out FILE] [--force] [--json]',
  flags: [
    { name: 'out', type: 'string', placeholder: 'FILE', help: 'write the key to this file, readable by its owner only (default: print it)' },
    { name: 'force', type: 'boolean', help: 'replace FILE if it exists (the nodes holding the old key can no longer reach nodes given the new one)' },
    JSON_FLAG
  ],
  details: `A private mesh is the nodes started with the same key (shoal node start --swarm-key FILE): every
connection is encrypted with it first, so a node without the key cannot connect to them, nor they to
it, and on a LAN they find only each other. Give the file to every node of the mesh over a channel you
trust; anyone who has it can join. The fingerprint (also in shoal node status) names the key without
revealing it. With --json: {"file": path or null, "fingerprint": ..., "key": the file's text when printed}.

Example:
  shoal key generate --out lab.key
  shoal node start --swarm-key lab.key --bootstrap /ip4/10.0.0.5/tcp/4001/p2p/12D3KooW...`
}

export async function keyGenerate (argv: string[], io: Io): Promise<number> {
  const { values } = parse(keyGenerateSpec, argv)
  const text = generateSwarmKey()
  const fingerprint = swarmKeyFingerprint(parseSwarmKey(text))
  const out = values.out as string | undefined
  if (out == null) {
    io.stdout(values.json === true ? JSON.stringify({ file: null, fingerprint, key: text }, null, 2) + '\n' : text)
    return 0
  }
  const file = resolve(out)
  let handle
  try {
    // never readable by others, and never over an existing key unless asked
    handle = await open(file, values.force === true ? 'w' : 'wx', 0o600)
  } catch (err: any) {
    if (err.code === 'EEXIST') throw new UsageError(`${file} exists: a node may be using that key (--force replaces it)`)
    throw new UsageError(`cannot write ${file} (${err.code ?? err.message})`)
  }
  try {
    await handle.chmod(0o600)
    await handle.writeFile(text)
  } finally {
    await handle.close()
  }
  io.stdout(values.json === true ? JSON.stringify({ file, fingerprint }, null, 2) + '\n' : `wrote a swarm key to ${file} (fingerprint ${fingerprint}); start each node of the mesh with --swarm-key ${file}\n`)
  return 0
}

/** This file's commands, by name (main.ts loads the file when one of them runs). */
export const commands: Record<string, Command> = {
  'key generate': { spec: keyGenerateSpec, run: keyGenerate }
}
