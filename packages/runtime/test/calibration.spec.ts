import { mkdtemp, readFile } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import onnxProto from 'onnx-proto'
import ort from 'onnxruntime-node'
import { describe, expect, it } from 'vitest'
// the built package: probes run dist/src/probe-child.js in a child process, which plain Node must load
import { calibrate, probeProvider } from '../dist/src/index.js'
import { buildCalibrationModel, calibrationFlops } from '../src/calibration-model.js'

const { onnx } = onnxProto

describe('calibration model', () => {
  it('computes relu(...relu(x W0) ... W_n) as ONNX Runtime runs it', async () => {
    const shape = { batch: 3, width: 4, layers: 2 }
    const bytes = buildCalibrationModel(shape)
    const weights = onnx.ModelProto.decode(bytes).graph!.initializer!.map(t => {
      const raw = t.rawData!
      return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength))
    })
    const x = Float32Array.from({ length: 12 }, (_, i) => (i % 5) - 2)
    // reference in plain JS
    let h = Array.from(x)
    for (const w of weights) {
      const next = new Array(shape.batch * shape.width).fill(0)
      for (let r = 0; r < shape.batch; r++) {
        for (let c = 0; c < shape.width; c++) {
          let sum = 0
          for (let k = 0; k < shape.width; k++) sum += h[r * shape.width + k] * w[k * shape.width + c]
          next[r * shape.width + c] = Math.max(0, sum)
        }
      }
      h = next
    }
    const session = await ort.InferenceSession.create(bytes)
    const out = await session.run({ input: new ort.Tensor('float32', x, [3, 4]) })
    expect(Array.from(out.output.data as Float32Array).map(v => v.toFixed(4))).toEqual(h.map(v => Math.fround(v).toFixed(4)))
    expect(h.some(v => v > 0)).toBe(true)
    expect(calibrationFlops(shape)).toBe(2 * 3 * 4 * 4 * 2)
  })
})

describe('calibrate', () => {
  it('measures cpu, caches the result, and measures again when the fingerprint changes', async () => {
    const cacheFile = join(await mkdtemp(join(os.tmpdir(), 'shoal-cal-')), 'calibration.json')
    const first = await calibrate({ cpuThreads: 1, noGpu: true, cacheFile, measureMs: 50 })
    expect(first.cached).toBe(false)
    expect(first.providers.map(p => p.name)).toEqual(['cpu'])
    expect(first.providers[0].gflops).toBeGreaterThan(0)
    expect(first.gpu).toBeNull()
    expect(JSON.parse(await readFile(cacheFile, 'utf8')).fingerprint).toBe(first.fingerprint)

    const second = await calibrate({ cpuThreads: 1, noGpu: true, cacheFile, measureMs: 50 })
    expect(second).toEqual({ ...first, cached: true })

    const otherThreads = await calibrate({ cpuThreads: 2, noGpu: true, cacheFile, measureMs: 50 })
    expect(otherThreads.cached).toBe(false)
    const forced = await calibrate({ cpuThreads: 2, noGpu: true, cacheFile, measureMs: 50, recalibrate: true })
    expect(forced.cached).toBe(false)
  })

  it('reports a provider that cannot run as failed, with ONNX Runtime\'s reason', async () => {
    const result = await probeProvider('no-such-provider', { cpuThreads: 1, measureMs: 10 })
    expect(result.ok).toBe(false)
    expect(result.ok === false && result.error).toMatch(/no-such-provider|not supported|unsupported|backend/i)
  })

  it('skips GPU providers when the volunteer says --no-gpu', async () => {
    const result = await calibrate({ cpuThreads: 1, noGpu: true, candidates: ['cpu', 'webgpu'], measureMs: 20 })
    expect([...result.providers, ...result.failed].map(p => p.name)).toEqual(['cpu'])
  })
})
