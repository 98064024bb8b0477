import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { ApiClient, pipelineManifestOf } from '@shoal/node/client'
import { encodePipelineManifest } from '@shoal/protocol'
import { parseNpy, splitModel } from '@shoal/runtime'
import type { Tensor } from '@shoal/runtime'
import { DATA_DIR_FLAG, JSON_FLAG, parse } from '../args.js'
import type { Command, CommandSpec } from '../args.js'
import { UsageError } from '../errors.js'
import { formatBytes, formatTable } from '../format.js'
import type { Io } from '../io.js'
import { dataDirOf } from './peers.js'
import { SUMMARIES } from './summaries.js'

export const modelSplitSpec: CommandSpec = {
  name: 'model split',
  summary: SUMMARIES['model split'],
  usage: 'shoal model split FILE --stages N [--name NAME@VERSION] [--sample NAME=FILE.npy ...] [--pin] [--data-dir DIR] [--json]',
  positionals: true,
  flags: [
    { name: 'stages', type: 'string', placeholder: 'N', help: 'how many consecutive stages to cut the model into (1-64)' },
    { name: 'name', type: 'string', placeholder: 'NAME@VERSION', help: 'also publish a name for the pipeline, signed by this node, so that others can `shoal run NAME@VERSION --trust <this peer id>`' },
    { name: 'sample', type: 'string', multiple: true, placeholder: 'NAME=FILE.npy', help: 'inputs to measure the tensors between stages with and to check the stages on (default: one row of synthetic data, each free dimension 32)' },
    { name: 'pin', type: 'boolean', help: 'pin the stages: never evicted to make room for other models' },
    DATA_DIR_FLAG,
    JSON_FLAG
  ],
  details: `Cuts an ONNX model into consecutive stages, each a valid ONNX model of its own, for a model too big
for one peer's --max-model-size: the running node stores the stages (not the whole model) and a pipeline
manifest that lists them, and \`shoal run <pipeline CID>\` runs batches through them across the mesh.
Stages are balanced by weight bytes (initializers and Constant nodes); each cut goes where the fewest,
smallest tensors cross, within a quarter of a stage of the even split. A node with subgraphs (If, Loop)
is never cut. A model whose weights are in external data files (ONNX's format past 2 GiB) is read with
them from beside FILE, and each stage holds its weights inside (at most 2 GiB each: ask for more stages
otherwise). The cut runs here, in this process, with ONNX Runtime: the model runs once on the sample to
measure the tensors between stages, and the stages run one after another on it to check that they give
the whole model's outputs (bit for bit, or the largest difference is printed).
With --json: {cid, name?, stages: [{cid, bytes, inputs, outputs}], cuts: [{position, live, bytesPerRow}], check: {identical, maxAbsDiff}}.`
}

async function readSample (specs: string[]): Promise<Record<string, Tensor> | undefined> {
  if (specs.length === 0) return undefined
  const sample: Record<string, Tensor> = {}
  for (const spec of specs) {
    const eq = spec.indexOf('=')
    if (eq <= 0 || eq === spec.length - 1) throw new UsageError(`--sample ${spec}: expected NAME=FILE.npy`)
    const path = resolve(spec.slice(eq + 1))
    try {
      sample[spec.slice(0, eq)] = parseNpy(await readFile(path))
    } catch (err: any) {
      throw new UsageError(`--sample ${spec.slice(0, eq)}: cannot read ${path} (${err.code ?? err.message})`)
    }
  }
  return sample
}

export async function modelSplit (argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(modelSplitSpec, argv)
  if (positionals.length !== 1) throw new UsageError('give exactly one model file')
  const stages = Number(values.stages)
  if (values.stages == null || !Number.isSafeInteger(stages) || stages < 1 || stages > 64) throw new UsageError('--stages must be a whole number from 1 to 64')
  let bytes: Uint8Array
  try {
    bytes = await readFile(positionals[0])
  } catch (err: any) {
    throw new UsageError(`cannot read ${positionals[0]} (${err.code ?? err.message})`)
  }
  const sample = await readSample((values.sample as string[] | undefined) ?? [])
  // the node is asked first: a split of a large model is not wasted on a node that is not running
  const client = await ApiClient.connect(dataDirOf(values, io))
  // the model's path: weights in external data files are read from beside it
  const split = await splitModel(bytes, { stages, sample, path: resolve(positionals[0]) })
  const stored = []
  for (const [i, stage] of split.stages.entries()) {
    if (values.json !== true) io.log(`adding stage ${i + 1} of ${split.stages.length} (${formatBytes(stage.bytes.byteLength)})`)
    stored.push(await client.addModel(stage.bytes, { pin: values.pin === true }))
  }
  const manifest = pipelineManifestOf(split, stored.map(s => s.cid))
  const pipeline = await client.addPipeline(encodePipelineManifest(manifest), { name: values.name as string | undefined })
  if (values.json === true) {
    io.stdout(JSON.stringify({
      cid: pipeline.cid,
      ...(pipeline.name != null ? { name: pipeline.name } : {}),
      stages: manifest.stages,
      cuts: split.cuts.map(c => ({ position: c.position, live: c.live, bytesPerRow: c.bytesPerRow })),
      check: split.check
    }, null, 2) + '\n')
    return 0
  }
  io.stdout(formatTable(['STAGE', 'CID', 'SIZE', 'INPUTS', 'OUTPUTS'], manifest.stages.map((s, i) => [String(i + 1), s.cid, formatBytes(s.bytes), s.inputs.map(t => t.name).join(' '), s.outputs.map(t => t.name).join(' ')])))
  io.stdout(`${pipeline.cid}\n`)
  io.log(split.check.identical
    ? 'checked: the stages give the whole model\'s outputs on the sample, bit for bit'
    : `checked: the stages' outputs differ from the whole model's on the sample by up to ${split.check.maxAbsDiff}`)
  if (pipeline.name != null) io.log(`published ${pipeline.name.name}@${pipeline.name.version} as ${pipeline.name.publisher}/${pipeline.name.name}@${pipeline.name.version}`)
  return 0
}

export const commands: Record<string, Command> = {
  'model split': { spec: modelSplitSpec, run: modelSplit }
}
