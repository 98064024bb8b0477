import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { buildCalibrationModel } from '@shoal/runtime/calibration-model'
import { byteLength, inspectModel, modelCid, SessionCache, splitModel, syntheticBatch } from '@shoal/runtime'
import { encodePipelineManifest, pipelineManifestCid } from '@shoal/protocol'
import { pipelineManifestOf } from '@shoal/node/client'
import type { Dtype, ModelInfo, PieceRun, PieceRunOptions, PieceRuntime, Tensor } from '@shoal/runtime'
import { CALIBRATION_RUNS } from './constants.js'
import { SimError } from './errors.js'
import { packageDir } from './packages.js'
import type { ModelSpec } from './scenario.js'

/** What a simulated node needs of a model: its cost and output shapes (delay compute), its bytes (preloading). */
export interface ModelProfile {
  /** Median cost of a row with ONNX Runtime on one core of this machine: the delay mode's unit. */
  msPerRow: number
  /** Dims and dtype of one row of each output, from a real run. */
  outputRows: Record<string, { dtype: Dtype, dims: number[] }>
  bytes?: Uint8Array
}

/** A scenario's model, loaded, with what its inputs look like and what a row costs on this machine. */
export interface SimModel extends ModelProfile {
  key: string
  label: string
  bytes: Uint8Array
  info: ModelInfo
  /** Dims of one row of each input (float32), the batch axis left out. */
  rowShapes: Record<string, number[]>
  /** When jobs run the model as a pipeline: its stages and manifest. */
  pipeline?: SimPipeline
}

/** A scenario model cut into stages (`shoal model split`): what the client adds, and each stage's profile. */
export interface SimPipeline {
  cid: string
  manifest: Uint8Array
  stages: Array<ModelProfile & { cid: string, bytes: Uint8Array, inputs: string[] }>
}

export function modelKey (spec: ModelSpec, pipeline?: { stages: number }): string {
  const base = spec.kind === 'generated' ? `generated:${spec.width}x${spec.layers}${spec.msPerRow != null ? `@${spec.msPerRow}ms` : ''}` : `package:${spec.name}/${spec.file}`
  return pipeline != null ? `${base}|${pipeline.stages} stages` : base
}

async function modelBytes (spec: ModelSpec): Promise<Uint8Array> {
  if (spec.kind === 'generated') return buildCalibrationModel({ batch: 0, width: spec.width, layers: spec.layers })
  const dir = packageDir(spec.name)
  if (dir == null) throw new SimError(`model package "${spec.name}" is not installed here (add it to the workspace, or use a generated model)`)
  try {
    return new Uint8Array(await readFile(join(dir, spec.file)))
  } catch (err: any) {
    throw new SimError(`cannot read ${spec.file} in ${spec.name}: ${err.code ?? err.message}`)
  }
}

/** The inputs of `rows` rows for a model, from a seed: the same seed gives the same bytes. */
export function modelInputs (model: SimModel, rows: number, seed: number): Record<string, Tensor> {
  const inputs: Record<string, Tensor> = {}
  let i = 0
  for (const [name, shape] of Object.entries(model.rowShapes)) inputs[name] = syntheticBatch([rows, ...shape], (seed + i++) >>> 0)
  return inputs
}

/**
 * Loads a model, works out its row shapes (fixed dims from the model, the rest from the scenario's
 * `rowShape`) and measures a row's cost by running it here, `CALIBRATION_RUNS` times after a warm-up.
 */
export async function loadModel (spec: ModelSpec): Promise<SimModel> {
  const bytes = await modelBytes(spec)
  const label = spec.kind === 'generated' ? `generated MLP ${spec.width} wide, ${spec.layers} layers` : `${spec.file} (${spec.name})`
  const info = await inspectModel(bytes, { maxBytes: Number.MAX_SAFE_INTEGER }).catch((err: Error) => { throw new SimError(`${label}: ${err.message}`) })
  const rowShapes: Record<string, number[]> = {}
  for (const input of info.inputs) {
    if (input.dtype !== 'float32') throw new SimError(`${label}: input "${input.name}" is ${input.dtype ?? 'not a tensor'}; simulations generate float32 inputs only`)
    if (typeof input.dims[0] === 'number') throw new SimError(`${label}: input "${input.name}" fixes the batch axis at ${input.dims[0]}; a simulated job needs a free batch axis`)
    const rest = input.dims.slice(1)
    const given = spec.kind === 'package' ? spec.rowShape : undefined
    if (given != null) {
      if (given.length !== rest.length) throw new SimError(`${label}: rowShape has ${given.length} dims, input "${input.name}" has ${rest.length} after the batch axis [${rest.join(', ')}]`)
      rowShapes[input.name] = given
    } else if (rest.every(d => typeof d === 'number')) {
      rowShapes[input.name] = rest as number[]
    } else {
      throw new SimError(`${label}: input "${input.name}" has free dims [${rest.join(', ')}] after the batch axis; give them as rowShape in the scenario`)
    }
  }
  const model: SimModel = { key: modelKey(spec), label, bytes, info, rowShapes, outputRows: {}, msPerRow: 0 }
  const sessions = new SessionCache({ providers: ['cpu'], cpuThreads: 1 })
  try {
    const rows = 4
    const inputs = modelInputs(model, rows, 1)
    const times: number[] = []
    let outputs: Record<string, Tensor> = {}
    for (let i = 0; i <= CALIBRATION_RUNS; i++) {
      const result = await sessions.run(info.cid, async () => bytes, inputs)
      if (i > 0) times.push(result.computeMs)
      outputs = result.outputs
    }
    times.sort((a, b) => a - b)
    model.msPerRow = spec.kind === 'generated' && spec.msPerRow != null ? spec.msPerRow : Math.max(times[Math.floor(times.length / 2)] / rows, 0.001)
    for (const [name, t] of Object.entries(outputs)) {
      if (t.dims[0] !== rows) throw new SimError(`${label}: output "${name}" does not keep the batch axis, so its jobs cannot be split`)
      model.outputRows[name] = { dtype: t.dtype, dims: t.dims.slice(1) }
    }
  } catch (err: any) {
    if (err instanceof SimError) throw err
    throw new SimError(`${label} does not run here: ${err.message}`)
  } finally {
    await sessions.close()
  }
  return model
}

/**
 * The delay compute mode: a piece takes the measured cost of its rows divided by the node's speed, and
 * answers outputs of the right shapes that stand in for the model's: each float output row is the sum
 * of its input row's values plus the element's index (other dtypes are zeros), so that an answer
 * depends on its rows as a model's does and a wrong one can be told from a right one (result
 * verification, cheating nodes), bit for bit the same on every node. Everything around it (streams,
 * scheduling, retries, model fetches) is the production code; only ONNX Runtime is left out, so nodes
 * do not compete for this machine's cores.
 */
export function delayOutputs (model: Pick<ModelProfile, 'outputRows'>, inputs: Record<string, Tensor>, rows: number): Record<string, Tensor> {
  // each row's sum over every input (simulations' inputs are float32)
  const sums = new Float64Array(rows)
  for (const t of Object.values(inputs)) {
    if (t.dtype !== 'float32') continue
    const values = new Float32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4)
    const perRow = rows === 0 ? 0 : values.length / rows
    for (let r = 0; r < rows; r++) for (let k = 0; k < perRow; k++) sums[r] += values[r * perRow + k]
  }
  const outputs: Record<string, Tensor> = {}
  for (const [name, row] of Object.entries(model.outputRows)) {
    const dims = [rows, ...row.dims]
    const data = new Uint8Array(byteLength(row.dtype, dims))
    const perRow = row.dims.reduce((n, d) => n * d, 1)
    const view = row.dtype === 'float32' ? new Float32Array(data.buffer) : row.dtype === 'float64' ? new Float64Array(data.buffer) : undefined
    if (view != null) for (let r = 0; r < rows; r++) for (let k = 0; k < perRow; k++) view[r * perRow + k] = sums[r] + k
    outputs[name] = { dtype: row.dtype, dims, data }
  }
  return outputs
}

export class DelayRuntime implements PieceRuntime {
  private readonly models: Map<string, ModelProfile>
  private readonly speed: number
  private closed = false

  constructor (models: Map<string, ModelProfile>, speed: number) {
    this.models = models
    this.speed = speed
  }

  async run (cid: string, _load: () => Promise<Uint8Array>, inputs: Record<string, Tensor>, options: PieceRunOptions = {}): Promise<PieceRun> {
    if (this.closed) throw new Error('runtime closed')
    options.onStart?.()
    const model = this.models.get(cid)
    if (model == null) throw new Error(`model ${cid} is not one of the scenario's`)
    const rows = Object.values(inputs)[0]?.dims[0] ?? 0
    const ms = model.msPerRow * rows / this.speed
    await new Promise(resolve => setTimeout(resolve, ms))
    return { outputs: delayOutputs(model, inputs, rows), provider: 'delay', computeMs: ms }
  }

  async close (): Promise<void> {
    this.closed = true
  }
}

/**
 * Cuts a loaded model into `stages` stages and profiles each on this machine as `loadModel` profiles a
 * model (a row's cost from runs of 4 rows, each output's row shape), on the inputs the stages before it
 * give. With a set cost per row (delay compute), each stage costs its share of it by weight.
 */
export async function loadPipeline (model: SimModel, stages: number, setMsPerRow?: number): Promise<SimPipeline> {
  const split = await splitModel(model.bytes, { stages, sample: modelInputs(model, 1, 1) }).catch((err: Error) => { throw new SimError(`${model.label} cannot be cut into ${stages} stages: ${err.message}`) })
  const cids = await Promise.all(split.stages.map(async stage => await modelCid(stage.bytes)))
  const manifest = encodePipelineManifest(pipelineManifestOf(split, cids))
  const sessions = new SessionCache({ providers: ['cpu'], cpuThreads: 1 })
  const profiled: SimPipeline['stages'] = []
  try {
    const rows = 4
    let held: Record<string, Tensor> = modelInputs(model, rows, 1)
    const weights = split.stages.reduce((n, st) => n + st.weightBytes, 0)
    for (const [i, stage] of split.stages.entries()) {
      const inputs = Object.fromEntries(stage.inputs.map(t => [t.name, held[t.name]]))
      const times: number[] = []
      let outputs: Record<string, Tensor> = {}
      for (let r = 0; r <= CALIBRATION_RUNS; r++) {
        const result = await sessions.run(cids[i], async () => stage.bytes, inputs)
        if (r > 0) times.push(result.computeMs)
        outputs = result.outputs
      }
      times.sort((a, b) => a - b)
      const outputRows: ModelProfile['outputRows'] = {}
      for (const [name, t] of Object.entries(outputs)) {
        if (t.dims[0] !== rows) throw new SimError(`${model.label}: stage ${i + 1}'s output "${name}" does not keep the batch axis, which simulated stages need`)
        outputRows[name] = { dtype: t.dtype, dims: t.dims.slice(1) }
      }
      const measured = Math.max(times[Math.floor(times.length / 2)] / rows, 0.001)
      const share = weights > 0 ? stage.weightBytes / weights : 1 / split.stages.length
      const set = setMsPerRow != null ? setMsPerRow * share : undefined
      profiled.push({ cid: cids[i], bytes: stage.bytes, inputs: stage.inputs.map(t => t.name), msPerRow: set ?? measured, outputRows })
      held = { ...held, ...outputs }
    }
  } catch (err: any) {
    if (err instanceof SimError) throw err
    throw new SimError(`${model.label}'s stages do not run here: ${err.message}`)
  } finally {
    await sessions.close()
  }
  return { cid: await pipelineManifestCid(manifest), manifest, stages: profiled }
}

/** The delay compute's stand-in answer of a pipeline: each stage's stand-in of the tensors it reads, in order. */
export function delayPipelineOutputs (pipeline: SimPipeline, outputNames: string[], inputs: Record<string, Tensor>, rows: number): Record<string, Tensor> {
  let held: Record<string, Tensor> = { ...inputs }
  for (const stage of pipeline.stages) {
    held = { ...held, ...delayOutputs(stage, Object.fromEntries(stage.inputs.map(name => [name, held[name]])), rows) }
  }
  return Object.fromEntries(outputNames.map(name => [name, held[name]]))
}
