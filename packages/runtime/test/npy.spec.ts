import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { formatNpy, parseNpy } from '../src/npy.js'
import { DTYPES, ITEM_SIZE } from '../src/tensor.js'
import type { Tensor } from '../src/tensor.js'

const fixture = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(`./fixtures/${name}`, import.meta.url)))

function values (t: Tensor): unknown[] {
  const buffer = t.data.slice().buffer
  switch (t.dtype) {
    case 'float32': return Array.from(new Float32Array(buffer))
    case 'float64': return Array.from(new Float64Array(buffer))
    case 'int64': return Array.from(new BigInt64Array(buffer))
    case 'uint8': case 'bool': return Array.from(new Uint8Array(buffer))
    case 'float16': return Array.from(new Uint16Array(buffer))
    default: return Array.from(t.data)
  }
}

describe('.npy files written by numpy', () => {
  it('reads dtype, shape and values', () => {
    const f32 = parseNpy(fixture('f32_2x3.npy'))
    expect([f32.dtype, f32.dims, values(f32)]).toEqual(['float32', [2, 3], [0, 0.25, 0.5, 0.75, 1, 1.25]])
    const i64 = parseNpy(fixture('i64_2x2.npy'))
    expect([i64.dtype, i64.dims, values(i64)]).toEqual(['int64', [2, 2], [1n, -2n, 2n ** 40n, -(2n ** 50n)]])
    expect(values(parseNpy(fixture('u8_3.npy')))).toEqual([0, 128, 255])
    expect(parseNpy(fixture('bool_2.npy'))).toMatchObject({ dtype: 'bool', dims: [2] })
    expect(values(parseNpy(fixture('bool_2.npy')))).toEqual([1, 0])
    // float16 bit patterns: 0.5, -1, 65504, 1e-3 as numpy rounds it
    expect(values(parseNpy(fixture('f16_4.npy')))).toEqual([0x3800, 0xbc00, 0x7bff, 0x1419])
    expect(parseNpy(fixture('f64_scalar.npy'))).toMatchObject({ dtype: 'float64', dims: [] })
    expect(values(parseNpy(fixture('f64_scalar.npy')))).toEqual([3.25])
    expect(parseNpy(fixture('i8_0x5.npy'))).toMatchObject({ dtype: 'int8', dims: [0, 5] })
  })

  it('writes what it reads, byte for byte as numpy does', () => {
    for (const name of ['f32_2x3.npy', 'i64_2x2.npy', 'u8_3.npy', 'bool_2.npy', 'f16_4.npy', 'f64_scalar.npy', 'i8_0x5.npy']) {
      const bytes = fixture(name)
      expect(Buffer.from(formatNpy(parseNpy(bytes))).equals(Buffer.from(bytes)), name).toBe(true)
    }
  })

  it('round-trips every dtype', () => {
    for (const dtype of DTYPES) {
      const data = Uint8Array.from({ length: 6 * ITEM_SIZE[dtype] }, (_, i) => (i * 37) % 256)
      const back = parseNpy(formatNpy({ dtype, dims: [3, 2], data }))
      expect(back.dtype).toBe(dtype)
      expect(back.dims).toEqual([3, 2])
      expect(Array.from(back.data)).toEqual(Array.from(data))
    }
  })
})

describe('bad .npy files', () => {
  it('refuses each kind of damage with a message naming the file and the problem', () => {
    const good = fixture('f32_2x3.npy')
    const cases: Array<[Uint8Array, RegExp]> = [
      [good.subarray(0, good.length - 4), /needs 24 bytes of data, the file has 20 \(truncated\?\)/],
      [good.subarray(0, 40), /truncated header/],
      [new TextEncoder().encode('hello, world'), /not a \.npy file/],
      [fixture('f32_fortran.npy'), /Fortran-order/],
      [fixture('f32_bigendian.npy'), /unsupported dtype '>f4' \(big-endian/],
      [Uint8Array.from([...good.subarray(0, good.length), 0]), /needs 24 bytes of data, the file has 25/]
    ]
    for (const [bytes, message] of cases) {
      expect(() => parseNpy(bytes, 'x.npy')).toThrow(message)
      expect(() => parseNpy(bytes, 'x.npy')).toThrow(/^x\.npy: /)
    }
  })

  it('refuses a header whose dtype or shape it cannot read', () => {
    const text = (header: string): Uint8Array => {
      const h = header.padEnd(117, ' ') + '\n'
      return Uint8Array.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, h.length, 0, ...new TextEncoder().encode(h)])
    }
    expect(() => parseNpy(text("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }"))).toThrow(/unsupported dtype '<c8'/)
    expect(() => parseNpy(text("{'descr': '<f4', 'fortran_order': False, 'shape': (a,), }"))).toThrow(/malformed shape/)
    expect(() => parseNpy(text("{'descr': '<f4', 'shape': (1,), }"))).toThrow(/malformed header/)
  })

  it('will not write a tensor whose bytes do not match its shape', () => {
    expect(() => formatNpy({ dtype: 'float32', dims: [2, 2], data: new Uint8Array(12) })).toThrow(/must have 16 bytes, has 12/)
  })
})
