import { describe, expect, it } from 'vitest'
// the built module: its worker thread is dist/src/session-thread.js (`pnpm test` builds first)
import { ThreadedSessions } from '../dist/src/threaded.js'
import { SessionCache } from '../src/session.js'
import { buildCalibrationModel } from '../src/calibration-model.js'
import type { Tensor } from '../src/tensor.js'

const model = buildCalibrationModel({ batch: 256, width: 1024, layers: 8 })
const x: Tensor = { dtype: 'float32', dims: [256, 1024], data: new Uint8Array(Float32Array.from({ length: 256 * 1024 }, (_, i) => Math.sin(i)).buffer) }

describe('ThreadedSessions: ONNX Runtime off the node\'s event loop', () => {
  it('gives the bytes a session on the main thread gives, asking for the model once', async () => {
    const threaded = new ThreadedSessions({ providers: ['cpu'], cpuThreads: 1 })
    const local = new SessionCache({ providers: ['cpu'], cpuThreads: 1 })
    let loads = 0
    try {
      const reference = await local.run('m', async () => model, { input: x })
      for (let i = 0; i < 2; i++) {
        const run = await threaded.run('m', async () => { loads++; return model }, { input: x })
        expect(run.provider).toBe('cpu')
        expect(Buffer.from(run.outputs.output.data).equals(Buffer.from(reference.outputs.output.data))).toBe(true)
      }
      expect(loads).toBe(1)
    } finally {
      await threaded.close()
      await local.close()
    }
  })

  it('moves inputs the caller gave up (owned) to the thread instead of copying them; copies the rest', async () => {
    const threaded = new ThreadedSessions({ providers: ['cpu'], cpuThreads: 1 })
    const local = new SessionCache({ providers: ['cpu'], cpuThreads: 1 })
    try {
      const reference = await local.run('m', async () => model, { input: x })
      const same = (run: { outputs: Record<string, Tensor> }): boolean => Buffer.from(run.outputs.output.data).equals(Buffer.from(reference.outputs.output.data))
      // owned and filling its own buffer: moved (the caller's buffer is detached)
      const mine: Tensor = { ...x, data: new Uint8Array(x.data) }
      expect(same(await threaded.run('m', async () => model, { input: mine }, { owned: true }))).toBe(true)
      expect(mine.data.byteLength).toBe(0)
      // not owned: copied, the caller's intact
      const kept: Tensor = { ...x, data: new Uint8Array(x.data) }
      expect(same(await threaded.run('m', async () => model, { input: kept }))).toBe(true)
      expect(kept.data.byteLength).toBe(x.data.byteLength)
      // owned but a view into a bigger buffer: copied, the rest of that buffer untouched
      const batch = new Uint8Array(x.data.byteLength * 2)
      batch.set(x.data, x.data.byteLength)
      const view: Tensor = { ...x, data: batch.subarray(x.data.byteLength) }
      expect(same(await threaded.run('m', async () => model, { input: view }, { owned: true }))).toBe(true)
      expect(batch.byteLength).toBe(x.data.byteLength * 2)
    } finally {
      await threaded.close()
      await local.close()
    }
  })

  it('the event loop keeps turning while a piece computes (on the main thread it would not)', async () => {
    const threaded = new ThreadedSessions({ providers: ['cpu'], cpuThreads: 1 })
    // ones as floats: bytes of 1 are denormal floats, which x86 multiplies about a hundred times slower
    const big: Tensor = { dtype: 'float32', dims: [1024, 1024], data: new Uint8Array(new Float32Array(1024 * 1024).fill(1).buffer) }
    const heavy = buildCalibrationModel({ batch: 1024, width: 1024, layers: 8 }) // 17 GFLOP: well over 50 ms on one core
    try {
      await threaded.run('heavy', async () => heavy, { input: big }) // the session exists: what follows is compute alone
      let ticks = 0
      const beat = setInterval(() => { ticks++ }, 2)
      const started = performance.now()
      await threaded.run('heavy', async () => heavy, { input: big })
      const ms = performance.now() - started
      clearInterval(beat)
      // a run holding this thread would let the interval fire at most once before it and once after
      expect(ms).toBeGreaterThan(20)
      expect(ticks).toBeGreaterThanOrEqual(5)
    } finally {
      await threaded.close()
    }
  })

  it('says when a run starts: a second run waits for the only thread, and starts once the first is done', async () => {
    const threaded = new ThreadedSessions({ providers: ['cpu'], cpuThreads: 1, threads: 1 })
    const started: number[] = []
    try {
      const runs = [0, 1].map(async i => await threaded.run('m', async () => model, { input: x }, { onStart: () => { started.push(i) } }))
      // the first run is creating its session in the thread: the second waits
      await new Promise(resolve => setImmediate(resolve))
      expect(started).toEqual([0])
      await Promise.all(runs)
      expect(started).toEqual([0, 1])
    } finally {
      await threaded.close()
    }
  })

  it('a model that cannot be loaded or parsed is an error for that run; the thread serves the next', async () => {
    const threaded = new ThreadedSessions({ providers: ['cpu'], cpuThreads: 1 })
    try {
      await expect(threaded.run('gone', async () => { throw new Error('no such model here') }, { input: x })).rejects.toThrow(/no such model here/)
      await expect(threaded.run('junk', async () => new TextEncoder().encode('not onnx'), { input: x })).rejects.toThrow(/protobuf parsing failed/)
      const run = await threaded.run('m', async () => model, { input: x })
      expect(run.outputs.output.dims).toEqual([256, 1024])
      // a run waiting for the (busy) thread when the sessions close is refused, not left hanging
      const running = threaded.run('m', async () => model, { input: x })
      await new Promise(resolve => setImmediate(resolve)) // the run has been handed to the thread (microtasks done)
      const queued = threaded.run('m', async () => model, { input: x }).catch((err: Error) => err)
      await threaded.close()
      expect(String(await queued)).toMatch(/closed/)
      // and the run the thread had finishes before the thread ends
      expect((await running).outputs.output.dims).toEqual([256, 1024])
      await expect(threaded.run('m', async () => model, { input: x })).rejects.toThrow(/closed/)
    } finally {
      await threaded.close()
    }
  })
})
