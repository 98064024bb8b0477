import { describe, expect, it } from 'vitest'
import type { PieceRuntime, Tensor } from '@shoal/runtime'
import { cheating, delayOutputs, PERTURB_FACTOR } from '../src/index.js'

const profile = { outputRows: { y: { dtype: 'float32' as const, dims: [2] } } }
const rows = (values: number[]): Tensor => ({ dtype: 'float32', dims: [values.length, 1], data: new Uint8Array(Float32Array.from(values).buffer) })
const floats = (t: Tensor): number[] => [...new Float32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4)]

/** The delay compute's stand-in, counting its runs. */
function honest (): PieceRuntime & { runs: number } {
  const runtime = {
    runs: 0,
    run: async (_cid: string, _load: () => Promise<Uint8Array>, inputs: Record<string, Tensor>) => {
      runtime.runs++
      return { outputs: delayOutputs(profile, inputs, inputs.x.dims[0]), provider: 'delay', computeMs: 1 }
    },
    close: async () => {}
  }
  return runtime
}

const load = async (): Promise<Uint8Array> => new Uint8Array()

describe('the delay compute\'s outputs', () => {
  it('depend on each row\'s inputs, the same everywhere', () => {
    expect(floats(delayOutputs(profile, { x: rows([1, 5]) }, 2).y)).toEqual([1, 2, 5, 6])
    expect(floats(delayOutputs(profile, { x: rows([5]) }, 1).y)).toEqual([5, 6])
  })
})

describe('a cheating node\'s runtime', () => {
  it('zeros: a share of pieces, drawn from its seed, answered with zeros and not computed', async () => {
    const inner = honest()
    const runtime = cheating(inner, { rate: 0.5, mode: 'zeros', seed: 7 })
    const answers = []
    for (let i = 0; i < 40; i++) answers.push(floats((await runtime.run('m', load, { x: rows([i + 1]) })).outputs.y))
    const wrong = answers.filter(a => a.every(v => v === 0)).length
    expect(wrong).toBeGreaterThan(10)
    expect(wrong).toBeLessThan(30)
    // the same seed cheats on the same pieces
    const again = cheating(honest(), { rate: 0.5, mode: 'zeros', seed: 7 })
    for (let i = 0; i < 40; i++) expect(floats((await again.run('m', load, { x: rows([i + 1]) })).outputs.y)).toEqual(answers[i])
    // a zeros piece after the first of its shape costs no compute
    expect(inner.runs).toBeLessThan(40)
  })

  it('perturb: every float value times 1 + 1e-3', async () => {
    const runtime = cheating(honest(), { rate: 1, mode: 'perturb', seed: 1 })
    expect(floats((await runtime.run('m', load, { x: rows([100]) })).outputs.y)).toEqual([Math.fround(100 * PERTURB_FACTOR), Math.fround(101 * PERTURB_FACTOR)])
  })

  it('lazy: the answer of an earlier piece of the same shape, zeros when there is none', async () => {
    const inner = honest()
    const runtime = cheating(inner, { rate: 1, mode: 'lazy', seed: 1 })
    expect(floats((await runtime.run('m', load, { x: rows([3]) })).outputs.y)).toEqual([0, 0])
    const half = cheating(inner, { rate: 0, mode: 'lazy', seed: 1 })
    expect(floats((await half.run('m', load, { x: rows([3]) })).outputs.y)).toEqual([3, 4])
    // one that computed a piece replays it for the next of that shape
    const lazy = cheating(honest(), { rate: 0.5, mode: 'lazy', seed: 3 })
    const answers = []
    for (let i = 0; i < 20; i++) answers.push(floats((await lazy.run('m', load, { x: rows([i * 10]) })).outputs.y))
    const right = answers.filter((a, i) => a[0] === i * 10)
    const replayed = answers.filter((a, i) => a[0] !== i * 10 && answers.slice(0, i).some(b => b[0] === a[0]) && a[0] !== 0)
    expect(right.length).toBeGreaterThan(0)
    expect(replayed.length).toBeGreaterThan(0)
  })
})
