import { describe, expect, it } from 'vitest'
import type { TensorHeader } from '@shoal/protocol'
import type { Tensor } from '@shoal/runtime'
import { OutputRegions } from '../src/jobs/output-regions.js'

const layout = new Map([['y', { dtype: 'float32' as const, dims: [2] }], ['z', { dtype: 'uint8' as const, dims: [] }]])
const header = (name: string, dtype: TensorHeader['dtype'], dims: number[]): TensorHeader => ({ name, dtype, dims, byteLength: dims.reduce((n, d) => n * d, dtype === 'float32' ? 4 : 1) })
const headers = (rows: number): TensorHeader[] => [header('z', 'uint8', [rows]), header('y', 'float32', [rows, 2])]
/** What an honest answer to rows [start, start + rows) is: y = [i, -i], z = i. */
function answer (start: number, rows: number): Record<string, Tensor> {
  const y = Float32Array.from({ length: rows * 2 }, (_, k) => (k % 2 === 0 ? 1 : -1) * (start + Math.floor(k / 2)))
  return { y: { dtype: 'float32', dims: [rows, 2], data: new Uint8Array(y.buffer) }, z: { dtype: 'uint8', dims: [rows], data: Uint8Array.from({ length: rows }, (_, k) => start + k) } }
}
const expected = answer(0, 10)

describe('OutputRegions: answers read where they end up in the job\'s outputs', () => {
  it('the first answer with the expected header claims its piece\'s region, in the header\'s order; no second claim, no other layout', () => {
    const regions = new OutputRegions(layout, 10)
    const piece = { id: 1, start: 4, rows: 3 }
    expect(regions.claim(piece, [header('y', 'float32', [3, 3]), header('z', 'uint8', [3])])).toBeUndefined()
    expect(regions.claim(piece, [header('y', 'float32', [2, 2]), header('z', 'uint8', [2])])).toBeUndefined()
    expect(regions.claim(piece, [header('y', 'float64', [3, 2]), header('z', 'uint8', [3])])).toBeUndefined()
    expect(regions.claim(piece, [header('y', 'float32', [3, 2])])).toBeUndefined()
    expect(regions.claim(piece, [header('y', 'float32', [3, 2]), header('w', 'uint8', [3])])).toBeUndefined()
    const views = regions.claim(piece, headers(3))!
    expect(views.map(v => v.byteLength)).toEqual([3, 24])
    expect(regions.claim(piece, headers(3))).toBeUndefined()
    // z's region starts at row 4 of a uint8 output; y's at row 4 of 8 bytes a row, in one buffer of the whole job
    expect(views[0].byteOffset).toBe(4)
    expect(views[1].byteOffset).toBe(32)
    expect(views[1].buffer.byteLength).toBe(80)
  })

  it('joins in place what was read in place, and copies in any other answer kept over what a failed claimant left', () => {
    const regions = new OutputRegions(layout, 10)
    const pieces = [{ id: 0, start: 0, rows: 4 }, { id: 1, start: 4, rows: 3 }, { id: 2, start: 7, rows: 3 }]
    const results = new Map<number, Record<string, Tensor>>()
    // piece 0: read in place
    const views0 = regions.claim(pieces[0], headers(4))!
    const a0 = answer(0, 4)
    views0[0].set(a0.z.data)
    views0[1].set(a0.y.data)
    results.set(0, { z: { ...a0.z, data: views0[0] }, y: { ...a0.y, data: views0[1] } })
    // piece 1: its claimant failed half-way, leaving garbage in its region; a retry's own buffers won
    const views1 = regions.claim(pieces[1], headers(3))!
    views1[1].fill(0xff)
    results.set(1, answer(4, 3))
    // piece 2: never claimed (a local run)
    results.set(2, answer(7, 3))
    const outputs = regions.join(pieces, results, ['y', 'z'])
    expect(Buffer.from(outputs.y.data).equals(Buffer.from(expected.y.data))).toBe(true)
    expect(Buffer.from(outputs.z.data).equals(Buffer.from(expected.z.data))).toBe(true)
    expect(outputs.y.dims).toEqual([10, 2])
    // the in-place piece was not copied: the outputs are the buffer its answer was read into
    expect(outputs.y.data.buffer).toBe(views0[1].buffer)
  })

  it('an answer kept that does not fit the layout leaves that output to a plain join, which refuses it as before', () => {
    const regions = new OutputRegions(layout, 4)
    const pieces = [{ id: 0, start: 0, rows: 2 }, { id: 1, start: 2, rows: 2 }]
    const views = regions.claim(pieces[0], headers(2))!
    const a = answer(0, 2)
    views[0].set(a.z.data)
    views[1].set(a.y.data)
    const odd: Tensor = { dtype: 'float32', dims: [2, 3], data: new Uint8Array(24) }
    const results = new Map<number, Record<string, Tensor>>([[0, { z: { ...a.z, data: views[0] }, y: { ...a.y, data: views[1] } }], [1, { ...answer(2, 2), y: odd }]])
    expect(() => regions.join(pieces, results, ['y'])).toThrow(/cannot join/)
    const z = regions.join(pieces, results, ['z']).z
    expect([...z.data]).toEqual([0, 1, 2, 3])
  })

  it('with no answer read in place (a job run here), the answers are joined as before', () => {
    const regions = new OutputRegions(layout, 4)
    const results = new Map<number, Record<string, Tensor>>([[0, answer(0, 4)]])
    const out = regions.join([{ id: 0, start: 0, rows: 4 }], results, ['y'])
    expect(Buffer.from(out.y.data).equals(Buffer.from(answer(0, 4).y.data))).toBe(true)
  })
})
