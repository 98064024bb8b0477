import { readFile } from 'node:fs/promises'
import { ApiClient } from '@shoal/node/client'
import type { FetchProgress, FetchSummary, ModelEntry } from '@shoal/node/client'
import { DATA_DIR_FLAG, JSON_FLAG, parse } from '../args.js'
import type { Command, CommandSpec, FlagSpec } from '../args.js'
import { UsageError } from '../errors.js'
import { formatBytes, formatDuration, formatTable } from '../format.js'
import type { Io } from '../io.js'
import { dataDirOf } from './peers.js'
import { SUMMARIES } from './summaries.js'

export const TRUST_FLAG: FlagSpec = {
  name: 'trust', type: 'string', multiple: true, placeholder: 'PEERID', help: 'for this command, also accept model names signed by this peer (the node\'s own --trust list always applies)'
}

export const modelAddSpec: CommandSpec = {
  name: 'model add',
  summary: SUMMARIES['model add'],
  usage: 'shoal model add FILE [--name NAME@VERSION] [--pin] [--data-dir DIR] [--json]',
  positionals: true,
  flags: [
    { name: 'name', type: 'string', placeholder: 'NAME@VERSION', help: 'also publish a name for it, signed by this node (e.g. my-model@1), so that others can `shoal run my-model@1 --trust <this peer id>`' },
    { name: 'pin', type: 'boolean', help: 'pin it: never evicted to make room for other models' },
    DATA_DIR_FLAG,
    JSON_FLAG
  ],
  details: `The model is refused if it is over the node's --max-model-size, not ONNX, stores tensors in external
data files, or uses operators from custom domains. Once added, the node announces it (capacity ad and
DHT provider record) and serves its blocks to peers that fetch it.
With --json: {cid, bytes, name, pinned, inputs, outputs, opsets, manifest?}.`
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
  const client = await ApiClient.connect(dataDirOf(values, io))
  const entry = await client.addModel(bytes, { name: values.name as string | undefined, pin: values.pin === true })
  if (values.json === true) {
    io.stdout(JSON.stringify(entry, null, 2) + '\n')
  } else {
    io.stdout(`${entry.cid}\n`)
    if (entry.manifest != null) io.log(`published ${entry.manifest.name}@${entry.manifest.version} as ${entry.manifest.publisher}/${entry.manifest.name}@${entry.manifest.version}`)
  }
  return 0
}

export const modelLsSpec: CommandSpec = {
  name: 'model ls',
  summary: SUMMARIES['model ls'],
  usage: 'shoal model ls [--data-dir DIR] [--json]',
  flags: [DATA_DIR_FLAG, JSON_FLAG],
  details: 'Most recently used first. With --json: an array of {cid, bytes, name, pinned, inUse, addedAt, lastUsedAt, inputs, outputs, opsets}.'
}

export async function modelLs (argv: string[], io: Io): Promise<number> {
  const { values } = parse(modelLsSpec, argv)
  const models = await (await ApiClient.connect(dataDirOf(values, io))).models()
  if (values.json === true) {
    io.stdout(JSON.stringify(models, null, 2) + '\n')
    return 0
  }
  if (models.length === 0) {
    io.stdout('no models in this node\'s store (add one with: shoal model add FILE, or fetch one: shoal model get CID)\n')
    return 0
  }
  const shape = (io: ModelEntry['inputs']): string => io.map(i => `${i.name} ${i.dtype ?? '?'}[${i.dims.join(',')}]`).join(' ')
  const flags = (m: ModelEntry): string => [m.pinned ? 'pinned' : '', m.inUse > 0 ? 'in use' : ''].filter(f => f !== '').join(',') || '-'
  io.stdout(formatTable(['CID', 'NAME', 'SIZE', 'FLAGS', 'INPUTS', 'OUTPUTS'], models.map(m => [m.cid, m.name ?? '-', formatBytes(m.bytes), flags(m), shape(m.inputs), shape(m.outputs)])))
  return 0
}

async function cidArg (positionals: string[]): Promise<string> {
  if (positionals.length !== 1) throw new UsageError('give exactly one model CID')
  // loaded here: multiformats is a cost `shoal model ls` should not pay
  const { isModelCid } = await import('@shoal/node/model-cid')
  if (!isModelCid(positionals[0])) throw new UsageError(`${positionals[0]} is not a model CID (see: shoal model ls)`)
  return positionals[0]
}

export const modelRmSpec: CommandSpec = {
  name: 'model rm',
  summary: SUMMARIES['model rm'],
  usage: 'shoal model rm CID [--data-dir DIR]',
  positionals: true,
  flags: [DATA_DIR_FLAG],
  details: 'Its blocks are deleted (those no other model shares) and the node stops announcing it. A model in use by a job or piece is refused.'
}

export async function modelRm (argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(modelRmSpec, argv)
  const cid = await cidArg(positionals)
  await (await ApiClient.connect(dataDirOf(values, io))).removeModel(cid)
  io.log(`removed ${cid}`)
  return 0
}

function pinSpec (pin: boolean): CommandSpec {
  return {
    name: pin ? 'model pin' : 'model unpin',
    summary: SUMMARIES[pin ? 'model pin' : 'model unpin'],
    usage: `shoal model ${pin ? 'pin' : 'unpin'} CID [--data-dir DIR]`,
    positionals: true,
    flags: [DATA_DIR_FLAG],
    details: 'Past --max-storage, the node evicts the least recently used models that are neither pinned nor in use.'
  }
}
export const modelPinSpec = pinSpec(true)
export const modelUnpinSpec = pinSpec(false)

export async function modelPin (argv: string[], io: Io): Promise<number> {
  return await setPin(modelPinSpec, argv, io, true)
}

export async function modelUnpin (argv: string[], io: Io): Promise<number> {
  return await setPin(modelUnpinSpec, argv, io, false)
}

async function setPin (spec: CommandSpec, argv: string[], io: Io, pin: boolean): Promise<number> {
  const { values, positionals } = parse(spec, argv)
  const cid = await cidArg(positionals)
  await (await ApiClient.connect(dataDirOf(values, io))).pinModel(cid, pin)
  io.log(`${pin ? 'pinned' : 'unpinned'} ${cid}`)
  return 0
}

export const modelGetSpec: CommandSpec = {
  name: 'model get',
  summary: SUMMARIES['model get'],
  usage: 'shoal model get CID|NAME@VERSION [--from PEERID] [--trust PEERID] [--data-dir DIR] [--json]',
  positionals: true,
  flags: [
    { name: 'from', type: 'string', multiple: true, placeholder: 'PEERID', help: 'ask only this peer (repeatable): no capacity ads, no DHT lookups' },
    TRUST_FLAG,
    DATA_DIR_FLAG,
    JSON_FLAG
  ],
  details: `Providers are found through capacity ads and DHT provider records; blocks come from several at
once, each checked against its CID. A fetch cut short resumes from the blocks already here. On a
terminal, progress is shown on stderr.
With --json: {cid, bytes, wallMs, blocks, heldBlocks, providers: [{peerId, bytes}], duplicateBytes, dropped: [{peerId, reason}]}.

A name (NAME@VERSION, or PEERID/NAME@VERSION) resolves only through publishers this node trusts: itself,
its --trust list, and --trust given here.`
}

export async function modelGet (argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(modelGetSpec, argv)
  if (positionals.length !== 1) throw new UsageError('give exactly one model: a CID or NAME@VERSION')
  const client = await ApiClient.connect(dataDirOf(values, io))
  const summary = await fetchWithProgress(client, positionals[0], (values.trust as string[] | undefined) ?? [], io, values.json !== true, values.from as string[] | undefined)
  if (values.json === true) {
    io.stdout(JSON.stringify(summary, null, 2) + '\n')
    return 0
  }
  const from = summary.providers.map(p => `  ${p.peerId}  ${formatBytes(p.bytes)}`)
  io.stdout([
    summary.wallMs === 0 && summary.providers.length === 0
      ? `${summary.cid} is already here (${formatBytes(summary.bytes)})`
      : `fetched ${summary.cid} (${formatBytes(summary.bytes)}) in ${formatDuration(summary.wallMs)} from ${summary.providers.length} peers${summary.heldBlocks > 0 ? `, ${summary.heldBlocks} blocks already here` : ''}`,
    ...from,
    ...summary.dropped.map(d => `  dropped ${d.peerId}: ${d.reason}`)
  ].join('\n') + '\n')
  return 0
}

function bar (p: FetchProgress, width = 28): string {
  const filled = p.bytes === 0 ? 0 : Math.round(width * p.bytesDone / p.bytes)
  const elapsed = Date.now() - p.startedAt
  const rate = elapsed > 0 ? p.bytesDone / elapsed * 1000 : 0
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${formatBytes(p.bytesDone)}/${p.bytes === 0 ? '?' : formatBytes(p.bytes)}, ${p.blocksDone}/${p.blocks} blocks, ${p.providers.length} peers, ${formatBytes(rate)}/s`
}

/** Starts (or joins) a fetch on the node and follows it to the end, with a progress line on a terminal. */
export async function fetchWithProgress (client: ApiClient, model: string, trust: string[], io: Io, showProgress: boolean, from?: string[]): Promise<FetchSummary> {
  let progress = await client.startFetch(model, trust, from)
  const live = io.isTTY && showProgress
  while (progress.state === 'fetching') {
    if (live) io.progress(bar(progress))
    await new Promise(resolve => setTimeout(resolve, 200))
    progress = await client.fetchProgress(progress.cid)
  }
  if (live) io.progress('')
  if (progress.state === 'failed' || progress.summary == null) throw new Error(`fetching ${progress.cid} failed: ${progress.error ?? 'unknown error'}`)
  return progress.summary
}

/** This file's commands, by name (main.ts loads the file when one of them runs). */
export const commands: Record<string, Command> = {
  'model add': { spec: modelAddSpec, run: modelAdd },
  'model ls': { spec: modelLsSpec, run: modelLs },
  'model get': { spec: modelGetSpec, run: modelGet },
  'model rm': { spec: modelRmSpec, run: modelRm },
  'model pin': { spec: modelPinSpec, run: modelPin },
  'model unpin': { spec: modelUnpinSpec, run: modelUnpin }
}
