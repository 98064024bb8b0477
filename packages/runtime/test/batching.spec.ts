import { describe, expect, it } from 'vitest'
import { BatchingRuntime } from '../src/batching.js'
import type { PieceRun, PieceRunOptions, PieceRuntime } from '../src/session.js'
import type { Tensor } from '../src/tensor.js'

const rowsOf = (values: number[][]): Tensor => ({ dtype: 'float32', dims: [values.length, values[0].length], data: new Uint8Array(Float32Array.from(values.flat()).buffer) })
const valuesOf = (t: Tensor): number[] => Array.from(new Float32Array(t.data.slice().buffer))

/** y = 2x, row by row, each call taking a few ms; counts its calls and the rows of each. */
function doubling (fail?: (rows: number) => boolean): PieceRuntime & { calls: number[] } {
  const calls: number[] = []
  return {
    calls,
    run: async (_cid, _load, inputs, options: PieceRunOptions = {}): Promise<PieceRun> => {
      options.onStart?.()
      const x = inputs.x
      calls.push(x.dims[0])
      await new Promise(resolve => setTimeout(resolve, 5))
      if (fail?.(x.dims[0]) === true) throw new Error('the joined run failed')
      return { outputs: { y: { ...x, data: new Uint8Array(Float32Array.from(valuesOf(x), v => v * 2).buffer) } }, provider: 'cpu', computeMs: 1 }
    },
    close: async () => {}
  }
}

const init = { windowMs: 5, maxPieceRows: 16, maxRows: 64, batchable: () => true }
const load = async (): Promise<Uint8Array> => new Uint8Array()

describe('dynamic batching', () => {
  it('a piece that finds the runtime idle runs at once; those arriving while it is busy run as one call when it is free, each getting its own rows back', async () => {
    const inner = doubling()
    const batches: number[] = []
    const runtime = new BatchingRuntime(inner, { ...init, windowMs: 1000, onBatch: n => batches.push(n) })
    const started: number[] = []
    const t = performance.now()
    const [, a, b, c] = await Promise.all([
      runtime.run('m', load, { x: rowsOf([[0, 0]]) }),
      runtime.run('m', load, { x: rowsOf([[1, 2]]) }, { onStart: () => started.push(1) }),
      runtime.run('m', load, { x: rowsOf([[3, 4], [5, 6]]) }, { onStart: () => started.push(2) }),
      runtime.run('m', load, { x: rowsOf([[7, 8]]) })
    ])
    // the first alone at once, the three others together as soon as it was done, not after the window
    expect(inner.calls).toEqual([1, 4])
    expect(performance.now() - t).toBeLessThan(900)
    expect(batches).toEqual([3])
    expect(started.sort()).toEqual([1, 2])
    expect(valuesOf(a.outputs.y)).toEqual([2, 4])
    expect(b.outputs.y.dims).toEqual([2, 2])
    expect(valuesOf(b.outputs.y)).toEqual([6, 8, 10, 12])
    expect(valuesOf(c.outputs.y)).toEqual([14, 16])
  })

  it('runs alone: the node\'s own runs, large pieces, models that fix their batch axis, another shape', async () => {
    const inner = doubling()
    const runtime = new BatchingRuntime(inner, { ...init, maxPieceRows: 2, batchable: cid => cid !== 'fixed' })
    const busy = runtime.run('other', load, { x: rowsOf([[9, 9]]) })
    await Promise.all([busy,
      runtime.run('m', load, { x: rowsOf([[1, 2]]) }, { own: true }),
      runtime.run('m', load, { x: rowsOf([[1, 2], [3, 4], [5, 6]]) }),
      runtime.run('fixed', load, { x: rowsOf([[1, 2]]) }),
      runtime.run('m', load, { x: rowsOf([[1, 2, 3]]) }),
      runtime.run('m', load, { x: rowsOf([[1, 2]]) })
    ])
    // six calls: none had a companion of its model and shape
    expect(inner.calls.sort()).toEqual([1, 1, 1, 1, 1, 3])
  })

  it('a joined run that fails runs each piece alone, so that none fails for another', async () => {
    const inner = doubling(rows => rows > 1)
    const runtime = new BatchingRuntime(inner, init)
    const results = await Promise.allSettled([runtime.run('m', load, { x: rowsOf([[0, 0]]) }), runtime.run('m', load, { x: rowsOf([[1, 1]]) }), runtime.run('m', load, { x: rowsOf([[2, 2]]) })])
    expect(results.map(r => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled'])
    expect(inner.calls).toEqual([1, 2, 1, 1])
  })

  it('a piece stopped while it waits is refused and the others still run; a full group runs at once', async () => {
    const inner = doubling()
    // a long call (of another model) keeps the runtime busy: the pieces below wait in a group
    const long = { ...inner, run: async (...args: Parameters<PieceRuntime['run']>) => { if (args[0] === 'long') await new Promise(resolve => setTimeout(resolve, 1500)); return await inner.run(...args) } }
    const runtime = new BatchingRuntime(long, { ...init, windowMs: 1000, maxRows: 3 })
    const busy = runtime.run('long', load, { x: rowsOf([[9, 9]]) })
    const stop = new AbortController()
    const stopped = runtime.run('m', load, { x: rowsOf([[1, 1]]) }, { signal: stop.signal })
    stop.abort(new Error('deadline'))
    const t = performance.now()
    // two rows more fill the group of 3: it runs now, not after the window nor the long call
    const [, second] = await Promise.allSettled([stopped, runtime.run('m', load, { x: rowsOf([[2, 2], [3, 3]]) })])
    expect(performance.now() - t).toBeLessThan(900)
    await expect(stopped).rejects.toThrow('deadline')
    expect(second.status).toBe('fulfilled')
    expect(inner.calls).toEqual([2])
    await busy
  })

})
