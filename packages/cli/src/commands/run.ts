import { mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { ApiClient } from '@shoal/node/client'
import { isModelCid } from '@shoal/node/model-cid'
import type { JobOptions, JobView } from '@shoal/node/client'
import { looksLikeNameRef } from '@shoal/node/names'
import { isPipelineCid } from '@shoal/protocol'
import { DATA_DIR_FLAG, JSON_FLAG, parse } from '../args.js'
import type { Command, CommandSpec } from '../args.js'
import { UsageError } from '../errors.js'
import { formatDuration } from '../format.js'
import type { Io } from '../io.js'
import { fetchWithProgress, TRUST_FLAG } from './model.js'
import { dataDirOf } from './peers.js'
import { SUMMARIES } from './summaries.js'

export const runSpec: CommandSpec = {
  name: 'run',
  summary: SUMMARIES['run'],
  usage: 'shoal run <model.onnx|CID|NAME@VERSION> --input NAME=FILE.npy [--input ...] --output DIR [options]',
  positionals: true,
  flags: [
    { name: 'input', type: 'string', multiple: true, placeholder: 'NAME=FILE', help: 'a model input and the .npy file holding its whole batch' },
    { name: 'output', type: 'string', placeholder: 'DIR', help: 'directory for the outputs: one NAME.npy per model output' },
    { name: 'share', type: 'boolean', help: 'this node takes a share of the pieces, whenever it would finish one first (the default, unless the node runs with --peers-only)' },
    { name: 'peers-only', type: 'boolean', help: 'this node computes none of this job\'s pieces while a peer can: a submitter that must stay light (a laptop on battery)' },
    { name: 'rows-per-piece', type: 'string', placeholder: 'N', help: 'rows per piece, all alike (default: pieces size themselves as the job runs)' },
    { name: 'verify', type: 'string', placeholder: 'off|spot|full', help: 'check peers\' answers: spot re-runs here every answer of a peer without an established record and a falling share of the others; full runs every piece on two different peers whose answers must agree; off accepts every well-formed answer (default: spot)' },
    { name: 'canaries', type: 'string', placeholder: 'N', help: 'mix N rows whose answers this node already knows into each remote piece (0-8, default 0): a wrong answer to one proves the peer wrong without a second run' },
    { name: 'tolerance', type: 'string', placeholder: 'RTOL[,ATOL]', help: 'how far two answers\' floating-point outputs may differ and agree: |a - b| <= ATOL + RTOL * |b| (default: 1e-4,1e-6); integer outputs must be equal' },
    TRUST_FLAG,
    DATA_DIR_FLAG,
    JSON_FLAG
  ],
  details: `Runs the job through the node running on the data dir. A model given as a file is first added
to that node's store; one given as a CID or a name (NAME@VERSION, resolved through trusted publishers:
the node itself, its --trust list and --trust here) is fetched from the swarm if the node lacks it.
Workers that lack the model fetch it from the swarm too. Every input is split along axis 0 (the batch axis): all inputs must have the same
number of rows. The outputs are exactly what ONNX Runtime returns for the whole batch on one machine.
Without --rows-per-piece, pieces size themselves as the job runs: large while much is left, smaller
towards the end so that peers finish together, each sized for its peer's measured speed (the first
pieces on a peer whose speed for the model is not known yet are short probes); no piece's dispatch
costs more than 5% of its compute, none is sized to take over 10 s, none carries over 32 MiB.

On a terminal, progress is shown on stderr. At the end a summary is printed; with --json, stdout is one
JSON object: {jobId, wallMs, pieces, rowsPerPiece, pieceRows: {min, max}, sized, retries, duplicates, directPieces, peers: {peerId: pieces},
executionProviders: {provider: pieces}, failures: [{peerId, piece, reason}], failedAttempts,
verification: {policy, checkedPieces, extraRows, mismatches, excluded: [peerId], canaryRows}, outputs: {name: path}}.
Peers' answers are checked by default (--verify spot, docs/trust.md): a peer caught answering wrong
is excluded from this node's jobs for a while, and its wrong answers are replaced.
failures lists failed attempts (the first 100; failedAttempts counts them all): a worker's error answer,
an answer refused by this node (BAD_ANSWER: an output missing, of the wrong type or shape), a timeout or a
disconnect. The human summary groups them by peer and reason. A failed job prints them too.
Exit status 0 only when every output is written.

Example:
  shoal run model.onnx --input x=batch.npy --output out/`
}

/**
 * A file name for each output: its name with characters other than `A-Za-z0-9._-` as `_`, at most 200
 * of them, `.npy`; names that come out the same (`a/b` and `a_b`, or any case-insensitive match) get
 * `-2`, `-3`, ... so that no output overwrites another. Output names come from the model: never a path.
 */
export function outputFileNames (outputs: string[]): Map<string, string> {
  const taken = new Set<string>()
  const names = new Map<string, string>()
  for (const output of outputs) {
    const base = output.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_').slice(0, 200) || '_'
    let name = `${base}.npy`
    for (let n = 2; taken.has(name.toLowerCase()); n++) name = `${base}-${n}.npy`
    taken.add(name.toLowerCase())
    names.set(output, name)
  }
  return names
}

function bar (view: JobView, width = 28): string {
  const p = view.progress
  // rows, not pieces: self-sizing pieces are cut as the job runs, so their count grows
  const filled = p.totalRows === 0 ? 0 : Math.round(width * p.doneRows / p.totalRows)
  const eta = p.etaMs == null || p.doneRows === p.totalRows ? '' : ` eta ${formatDuration(p.etaMs)}`
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${p.doneRows}/${p.totalRows} rows, ${p.done} pieces done, ${Object.keys(p.perPeer).length} peers, ${p.inFlight} running, ${p.retries} retries${eta}`
}

/** Failed attempts grouped by peer and reason: `  3 failed attempts on 12D3Koo...: BAD_ANSWER: ...`. */
function failureLines (view: JobView): string[] {
  const p = view.progress
  if (p.failedAttempts === 0) return []
  const groups = new Map<string, number>()
  for (const f of p.failures) {
    const key = `${f.peerId}\u0000${f.reason}`
    groups.set(key, (groups.get(key) ?? 0) + 1)
  }
  const unlisted = p.failedAttempts - p.failures.length
  return [
    `  ${p.failedAttempts} failed attempt${p.failedAttempts === 1 ? '' : 's'}${unlisted > 0 ? ` (${unlisted} not listed)` : ''}:`,
    ...[...groups].map(([key, n]) => {
      const [peer, reason] = key.split('\u0000')
      return `    ${n} x on ${peer}: ${reason}`
    })
  ]
}

export async function run (argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(runSpec, argv)
  const args = await checkRunArgs(values, positionals)
  const client = await ApiClient.connect(dataDirOf(values, io))
  const model = await modelInStore(client, args.model, (values.trust as string[] | undefined) ?? [], io, values.json !== true)
  const outDir = await outputDir(args.output)
  const started = performance.now()
  const { jobId } = await client.submitJob({ model, inputs: args.inputs, options: { local: values.share === true ? 'share' : values['peers-only'] === true ? 'fallback' : undefined, rowsPerPiece: args.rowsPerPiece, verify: args.verify, tolerance: args.tolerance, canaries: args.canaries } })
  const { view, cancelled } = await followJob(client, jobId, io, io.isTTY && values.json !== true)
  if (view.state === 'failed') {
    io.log(`job ${jobId} failed: ${view.error ?? 'unknown error'}${cancelled ? ' (interrupted)' : ''}`)
    for (const line of failureLines(view)) io.log(line)
    return 1
  }
  const written = await writeOutputs(client, jobId, view, outDir)
  const wallMs = Math.round(performance.now() - started)
  io.stdout(values.json === true ? JSON.stringify(jsonReport(jobId, wallMs, view, written), null, 2) + '\n' : textReport(wallMs, view, written))
  return 0
}

/** What the command line asks for, checked before the node is asked anything. */
async function checkRunArgs (values: Record<string, unknown>, positionals: string[]): Promise<{ model: string, output: string, inputs: Record<string, { path: string }>, rowsPerPiece?: number, verify?: JobOptions['verify'], tolerance?: JobOptions['tolerance'], canaries?: number }> {
  if (positionals.length !== 1) throw new UsageError('give exactly one model: a .onnx file, a model CID or NAME@VERSION')
  const output = values.output as string | undefined
  if (output == null) throw new UsageError('--output DIR is required')
  const inputSpecs = (values.input as string[] | undefined) ?? []
  if (inputSpecs.length === 0) throw new UsageError('give at least one --input NAME=FILE.npy')
  if (values.share === true && values['peers-only'] === true) throw new UsageError('--share and --peers-only contradict each other: give one')
  let rowsPerPiece: number | undefined
  if (values['rows-per-piece'] != null) {
    rowsPerPiece = Number(values['rows-per-piece'])
    if (!Number.isSafeInteger(rowsPerPiece) || rowsPerPiece < 1) throw new UsageError('--rows-per-piece must be a positive integer')
  }
  const verify = values.verify as string | undefined
  if (verify != null && verify !== 'off' && verify !== 'spot' && verify !== 'full') throw new UsageError(`--verify must be off, spot or full, not ${verify}`)
  const tolerance = values.tolerance == null ? undefined : toleranceOf(values.tolerance as string)
  let canaries: number | undefined
  if (values.canaries != null) {
    canaries = Number(values.canaries)
    if (!Number.isSafeInteger(canaries) || canaries < 0 || canaries > 8) throw new UsageError('--canaries must be a whole number from 0 to 8')
  }
  return { model: positionals[0], output, inputs: await inputArgs(inputSpecs), rowsPerPiece, verify: verify as JobOptions['verify'], tolerance, canaries }
}

/** `--input NAME=FILE.npy` flags: each file's absolute path, once checked that it is a file. */
export async function inputArgs (specs: string[]): Promise<Record<string, { path: string }>> {
  const inputs: Record<string, { path: string }> = {}
  for (const spec of specs) {
    const eq = spec.indexOf('=')
    if (eq <= 0 || eq === spec.length - 1) throw new UsageError(`--input ${spec}: expected NAME=FILE.npy`)
    const name = spec.slice(0, eq)
    const path = resolve(spec.slice(eq + 1))
    if (inputs[name] != null) throw new UsageError(`--input ${name} is given twice`)
    try {
      if (!(await stat(path)).isFile()) throw new Error('not a file')
    } catch (err: any) {
      throw new UsageError(`--input ${name}: cannot read ${path} (${err.code ?? err.message})`)
    }
    inputs[name] = { path }
  }
  return inputs
}

/** `--tolerance RTOL[,ATOL]`: two numbers, finite and at least 0; ATOL 1e-6 unless given. */
function toleranceOf (text: string): { rtol: number, atol: number } {
  const parts = text.split(',')
  const numbers = parts.map(p => p.trim() === '' ? NaN : Number(p))
  if (parts.length > 2 || numbers.some(n => !Number.isFinite(n) || n < 0)) throw new UsageError(`--tolerance must be RTOL or RTOL,ATOL (numbers of at least 0, as 1e-3,1e-5), not ${text}`)
  return { rtol: numbers[0], atol: numbers[1] ?? 1e-6 }
}

/** The model's CID once it is in the node's store: a file is added, a CID or name fetched (with its own progress line). */
export async function modelInStore (client: ApiClient, modelArg: string, trust: string[], io: Io, progress: boolean): Promise<string> {
  if (await stat(modelArg).then(s => s.isFile(), () => false)) return (await client.addModel(await readFile(modelArg))).cid
  // a pipeline runs from its manifest on the node; its stages come to the workers that serve them
  if (isPipelineCid(modelArg)) return modelArg
  if (looksLikeNameRef(modelArg)) {
    const { cid } = await client.resolve(modelArg, trust)
    if (isPipelineCid(cid)) return cid
  }
  if (isModelCid(modelArg) || looksLikeNameRef(modelArg)) return (await fetchWithProgress(client, modelArg, trust, io, progress)).cid
  throw new UsageError(`${modelArg} is neither a model file, a model or pipeline CID nor NAME@VERSION`)
}

export async function outputDir (output: string): Promise<string> {
  const outDir = resolve(output)
  try {
    await mkdir(outDir, { recursive: true })
  } catch (err: any) {
    throw new UsageError(`cannot create output directory ${outDir} (${err.code ?? err.message})`)
  }
  return outDir
}

/** Polls the job until it ends, drawing its progress bar when `live`; Ctrl-C cancels it. */
async function followJob (client: ApiClient, jobId: string, io: Io, live: boolean): Promise<{ view: JobView, cancelled: boolean }> {
  let view = await client.job(jobId)
  let cancelled = false
  io.onSignal('SIGINT', () => { cancelled = true; void client.cancelJob(jobId).catch(() => {}) })
  while (view.state === 'planning' || view.state === 'running') {
    if (live) io.progress(bar(view))
    await new Promise(resolve => setTimeout(resolve, 200))
    view = await client.job(jobId)
  }
  if (live) io.progress('')
  return { view, cancelled }
}

/** Writes each output as .npy in `outDir`; returns the file of each. */
async function writeOutputs (client: ApiClient, jobId: string, view: JobView, outDir: string): Promise<Record<string, string>> {
  const written: Record<string, string> = {}
  const files = outputFileNames(view.outputs.map(o => o.name))
  for (const out of view.outputs) {
    const file = join(outDir, files.get(out.name)!)
    await writeFile(file, await client.output(jobId, out.name))
    written[out.name] = file
  }
  return written
}

function jsonReport (jobId: string, wallMs: number, view: JobView, written: Record<string, string>): Record<string, unknown> {
  const p = view.progress
  return { jobId, wallMs, pieces: p.total, rowsPerPiece: p.rowsPerPiece, pieceRows: { min: p.minPieceRows, max: p.maxPieceRows }, sized: p.sized, retries: p.retries, duplicates: p.duplicates, directPieces: p.directPieces, peers: p.perPeer, executionProviders: p.perProvider, failures: p.failures, failedAttempts: p.failedAttempts, verification: p.verification, outputs: written }
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`

function textReport (wallMs: number, view: JobView, written: Record<string, string>): string {
  const p = view.progress
  const lines = [
    `done: ${plural(p.total, 'piece')} of ${p.minPieceRows === p.maxPieceRows ? p.maxPieceRows : `${p.minPieceRows}-${p.maxPieceRows}`} rows${p.sized ? ' (sized as it ran)' : ''} on ${plural(Object.keys(p.perPeer).length, 'peer')} in ${formatDuration(wallMs)} (${p.retries} retries, ${p.duplicates} duplicates${p.directPieces > 0 ? `, ${p.directPieces} over direct connections` : ''})`,
    ...Object.entries(p.perPeer).sort((a, b) => b[1] - a[1]).map(([peer, n]) => `  ${peer}  ${n} piece${n === 1 ? '' : 's'}`),
    ...(p.pipeline == null
      ? []
      : [`  pipeline: ${p.pipeline.stages.length} stages, ${p.pipeline.microBatches} micro-batches of ${p.pipeline.rowsPerMicroBatch} rows; ` +
          (p.pipeline.stages.some(s => s.replays > 0) ? `replayed: ${p.pipeline.stages.filter(s => s.replays > 0).map(s => `stage ${s.stage} ${s.replays}`).join(', ')}` : 'nothing replayed')]),
    `  execution providers: ${Object.entries(p.perProvider).map(([name, n]) => `${name} ${n}`).join(', ')}`,
    ...(p.verification.policy === 'off'
      ? []
      : [`  verification (${p.verification.policy}): ${p.verification.checkedPieces} pieces checked ${p.verification.policy === 'full' ? 'by a second peer' : 'here'} (${p.verification.extraRows} extra rows), ${p.verification.mismatches} ${p.verification.policy === 'full' ? 'disputed' : 'wrong'}${p.verification.canaryRows > 0 ? `, ${p.verification.canaryRows} canary rows` : ''}${p.verification.excluded.length > 0 ? `; excluded: ${p.verification.excluded.join(', ')}` : ''}`]),
    ...failureLines(view),
    'outputs:',
    ...view.outputs.map(o => `  ${written[o.name]}  ${o.dtype} [${o.dims.join(', ')}]`)
  ]
  return lines.join('\n') + '\n'
}

/** This file's commands, by name (main.ts loads the file when one of them runs). */
export const commands: Record<string, Command> = {
  'run': { spec: runSpec, run: run }
}
