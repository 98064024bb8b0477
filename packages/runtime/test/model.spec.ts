import onnxProto from 'onnx-proto'
import * as dagPb from '@ipld/dag-pb'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
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
    expect(await modelCid(new Uint8Array(bytes))).toBe(cid)
    const changed = new Uint8Array(bytes) // (a copy: Buffer's slice() would share memory)
    changed[changed.length - 1] ^= 1
    expect(await modelCid(changed)).not.toBe(cid)
    // one block: the CID is CIDv1 raw over the sha2-256 of the bytes themselves
    expect(cid).toBe(CID.create(1, raw.code, await sha256.digest(bytes)).toString())
  })

  it('cuts a file over 1 MiB into 1 MiB raw blocks under a dag-pb root', async () => {
    const bytes = new Uint8Array(2.5 * 1024 * 1024).map((_, i) => (i * 7) % 251)
    const blocks = new Map<string, Uint8Array>()
    const cid = await modelCid(bytes, async (c, block) => { blocks.set(c.toString(), block) })
    expect(cid).toMatch(/^bafybei/)
    const root = dagPb.decode(blocks.get(cid)!)
    expect(root.Links.map(l => l.Tsize)).toEqual([1048576, 1048576, 524288])
    let offset = 0
    for (const link of root.Links) {
      const size = link.Tsize!
      expect(link.Hash.toString()).toBe(CID.create(1, raw.code, await sha256.digest(bytes.subarray(offset, offset + size))).toString())
      offset += size
    }
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
