import onnxProto from 'onnx-proto'
import { describe, expect, it } from 'vitest'
import { buildCalibrationModel } from '../src/calibration-model.js'
import { inspectModel, modelCid } from '../src/model.js'

const { onnx } = onnxProto

function modelWith (mutate: (m: onnxProto.onnx.ModelProto) => void): Uint8Array {
  const model = onnx.ModelProto.decode(buildCalibrationModel({ batch: 2, width: 4, layers: 1 }))
  mutate(model)
  return onnx.ModelProto.encode(model).finish()
}

async function reasonOf (bytes: Uint8Array, maxBytes?: number): Promise<string> {
  try {
    await inspectModel(bytes, { maxBytes })
  } catch (err: any) {
    expect(err.name).toBe('ModelRejectedError')
    return `${err.reason as string}: ${err.message as string}`
  }
  throw new Error('expected the model to be refused')
}

describe('model CID', () => {
  it('is a CIDv1 of the bytes\' sha2-256, stable and sensitive to every byte', async () => {
    const bytes = buildCalibrationModel({ batch: 2, width: 4, layers: 1 })
    const cid = await modelCid(bytes)
    expect(cid).toMatch(/^bafkrei[a-z2-7]{52}$/)
    expect(await modelCid(bytes.slice())).toBe(cid)
    const changed = bytes.slice()
    changed[changed.length - 1] ^= 1
    expect(await modelCid(changed)).not.toBe(cid)
  })
})

describe('model guard', () => {
  it('describes a valid model\'s inputs and outputs', async () => {
    const info = await inspectModel(buildCalibrationModel({ batch: 2, width: 4, layers: 1 }))
    expect(info.inputs).toEqual([{ name: 'input', dtype: 'float32', dims: [2, 4] }])
    expect(info.outputs).toEqual([{ name: 'output', dtype: 'float32', dims: [2, 4] }])
    expect(info.opsets).toEqual([{ domain: '', version: 17 }])
  })

  it('refuses a model over the size limit, before parsing it', async () => {
    expect(await reasonOf(new Uint8Array(1001), 1000)).toMatch(/^too-large: model is 1001 bytes, over the limit of 1000/)
  })

  it('refuses bytes that are not an ONNX model', async () => {
    expect(await reasonOf(new TextEncoder().encode('this is a text file, not a model'))).toMatch(/^not-onnx/)
    expect(await reasonOf(onnx.ModelProto.encode({ irVersion: 8 }).finish())).toMatch(/^not-onnx: .*no graph/)
  })

  it('refuses tensors stored in external data files', async () => {
    const bytes = modelWith(m => {
      const w = m.graph!.initializer![0]
      w.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL
      w.externalData = [{ key: 'location', value: '/etc/passwd' }]
    })
    expect(await reasonOf(bytes)).toMatch(/^external-data: tensor "w0" in the main graph/)
  })

  it('refuses operators from custom domains, also inside subgraphs', async () => {
    const bytes = modelWith(m => { m.graph!.node![1].domain = 'com.example.evil' })
    expect(await reasonOf(bytes)).toMatch(/^custom-domain: operator Relu .* custom domain "com.example.evil"/)
    const nested = modelWith(m => {
      const inner = onnx.GraphProto.create({ name: 'then', node: [{ opType: 'Secret', domain: 'x.y', input: [], output: ['o'] }] })
      m.graph!.node!.push(onnx.NodeProto.create({ opType: 'If', input: ['c'], output: ['z'], attribute: [{ name: 'then_branch', type: onnx.AttributeProto.AttributeType.GRAPH, g: inner }] }))
    })
    expect(await reasonOf(nested)).toMatch(/^custom-domain: operator Secret .*subgraph of If/)
  })
})
