import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ApiClient } from '@shoal/node/client'
import { DATA_DIR_FLAG, JSON_FLAG, parse } from '../args.js'
import type { Command, CommandSpec } from '../args.js'
import { UsageError } from '../errors.js'
import { formatDuration } from '../format.js'
import type { Io } from '../io.js'
import { TRUST_FLAG } from './model.js'
import { dataDirOf } from './peers.js'
import { inputArgs, modelInStore, outputDir, outputFileNames } from './run.js'
import { SUMMARIES } from './summaries.js'

export const inferSpec: CommandSpec = {
  name: 'infer',
  summary: SUMMARIES.infer,
  usage: 'shoal infer <model.onnx|CID|NAME@VERSION> --input NAME=FILE.npy [--input ...] --output DIR [--verify off|spot] [--no-hedge] [--json]',
  positionals: true,
  flags: [
    { name: 'input', type: 'string', multiple: true, placeholder: 'NAME=FILE', help: 'a model input and the .npy file holding it (a small batch, sent whole)' },
    { name: 'output', type: 'string', placeholder: 'DIR', help: 'directory for the outputs: one NAME.npy per model output' },
    { name: 'verify', type: 'string', placeholder: 'off|spot', help: 'spot (default): an answer from a peer whose record asks for it is checked against this node\'s own run before it is returned; off: none is' },
    { name: 'no-hedge', type: 'boolean', help: 'never send a second copy to another peer when the first is slow' },
    TRUST_FLAG,
    DATA_DIR_FLAG,
    JSON_FLAG
  ],
  details: `One request, answered now: the inputs go whole (no pieces, no planning, no probe run) to the
target expected to answer first, from what the node has measured of each peer for this model (or, before
that, their advertised speed, queue and whether they hold the model): a peer, or this node when that is
faster. If no answer comes within that target's recent p95, a second copy goes to the next best and
the first answer wins (--no-hedge: never). A target that fails costs a retry on another, never an error,
while one is left. The model must be in the node's store or fetched first (a file is added, a CID or
name fetched, as for shoal run).
With --json, stdout is {wallMs, peerId, hedged, provider, checked, failures: [{peerId, reason}], outputs: {name: path}}.

Example:
  shoal infer model.onnx --input x=one.npy --output out/`
}

export async function infer (argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(inferSpec, argv)
  if (positionals.length !== 1) throw new UsageError('give exactly one model: a .onnx file, a model CID or NAME@VERSION')
  if (values.output == null) throw new UsageError('--output DIR is required')
  const specs = (values.input as string[] | undefined) ?? []
  if (specs.length === 0) throw new UsageError('give at least one --input NAME=FILE.npy')
  const verify = values.verify as string | undefined
  if (verify != null && verify !== 'off' && verify !== 'spot') throw new UsageError(`--verify must be off or spot for a request, not ${verify}`)
  const files = await inputArgs(specs)
  const client = await ApiClient.connect(dataDirOf(values, io))
  const trust = (values.trust as string[] | undefined) ?? []
  const model = await modelInStore(client, positionals[0], trust, io, false)
  const outDir = await outputDir(values.output as string)
  const inputs: Record<string, { npy: string }> = {}
  for (const [name, { path }] of Object.entries(files)) inputs[name] = { npy: Buffer.from(await readFile(path)).toString('base64') }
  const answer = await client.infer({ model, inputs, trust, options: { ...(verify != null ? { verify: verify as 'off' | 'spot' } : {}), ...(values['no-hedge'] === true ? { hedge: false } : {}) } })
  const names = outputFileNames(Object.keys(answer.outputs))
  const written: Record<string, string> = {}
  for (const [name, t] of Object.entries(answer.outputs)) {
    const path = join(outDir, names.get(name)!)
    await writeFile(path, Buffer.from(t.npy, 'base64'))
    written[name] = path
  }
  if (values.json === true) {
    io.stdout(JSON.stringify({ wallMs: answer.wallMs, peerId: answer.peerId, hedged: answer.hedged, provider: answer.provider, checked: answer.checked, failures: answer.failures, outputs: written }, null, 2) + '\n')
    return 0
  }
  const notes = [answer.hedged ? 'hedged' : '', answer.checked ? 'checked here' : '', answer.failures.length > 0 ? `${answer.failures.length} failed first` : ''].filter(n => n !== '')
  io.stdout([
    `answered by ${answer.peerId} (${answer.provider}) in ${formatDuration(answer.wallMs)}${notes.length > 0 ? `; ${notes.join(', ')}` : ''}`,
    ...answer.failures.map(f => `  failed: ${f.peerId}: ${f.reason}`),
    'outputs:',
    ...Object.entries(answer.outputs).map(([name, t]) => `  ${written[name]}  ${t.dtype} [${t.dims.join(', ')}]`)
  ].join('\n') + '\n')
  return 0
}

export const commands: Record<string, Command> = {
  infer: { spec: inferSpec, run: infer }
}
