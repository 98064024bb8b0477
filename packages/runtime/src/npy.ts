import { byteLength, DTYPES, ITEM_SIZE } from './tensor.js'
import type { Dtype, Tensor } from './tensor.js'
import { TensorFileError } from './errors.js'

/**
 * NumPy's .npy format (versions 1.0, 2.0 and 3.0): the magic string, a version, a header length, a
 * Python dict literal {'descr', 'fortran_order', 'shape'} padded so the data starts 64-byte aligned,
 * then the raw elements. https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 */
const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59] // \x93NUMPY

/** numpy's descr for each dtype: '<' little-endian, '|' not applicable (one byte). */
const DESCR: Record<Dtype, string> = {
  float32: '<f4', float16: '<f2', float64: '<f8', int8: '|i1', uint8: '|u1', int16: '<i2', uint16: '<u2',
  int32: '<i4', uint32: '<u4', int64: '<i8', uint64: '<u8', bool: '|b1'
}

const DTYPE_OF_DESCR = new Map<string, Dtype>()
for (const dtype of DTYPES) {
  const descr = DESCR[dtype]
  DTYPE_OF_DESCR.set(descr, dtype)
  // numpy writes '<' or '=' for one-byte types too, on some versions
  if (descr.startsWith('|')) {
    DTYPE_OF_DESCR.set('<' + descr.slice(1), dtype)
    DTYPE_OF_DESCR.set('=' + descr.slice(1), dtype)
  }
}

/** Header dicts longer than this are refused: numpy's own are under 200 bytes. */
const MAX_HEADER_BYTES = 65536

function fail (name: string, why: string): never {
  throw new TensorFileError(`${name}: ${why}`)
}

/**
 * Reads a .npy file's bytes into a Tensor, validating everything: magic, version, header, dtype,
 * C order, and that shape x item size equals the data's length exactly. The tensor's data is a view
 * into `bytes` (no copy). `name` is used in errors (a file path or an input name).
 */
export function parseNpy (bytes: Uint8Array, name = '.npy'): Tensor {
  if (bytes.length < 10 || !MAGIC.every((b, i) => bytes[i] === b)) fail(name, 'not a .npy file (no \\x93NUMPY magic)')
  const major = bytes[6]
  if (major !== 1 && major !== 2 && major !== 3) fail(name, `unsupported .npy version ${major}.${bytes[7]}`)
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const headerStart = major === 1 ? 10 : 12
  if (bytes.length < headerStart) fail(name, 'truncated header')
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true)
  if (headerLength > MAX_HEADER_BYTES) fail(name, `header of ${headerLength} bytes is implausibly long`)
  const dataStart = headerStart + headerLength
  if (bytes.length < dataStart) fail(name, 'truncated header')
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(headerStart, dataStart))

  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1]
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1]
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1]
  if (descr == null || fortran == null || shapeText == null) fail(name, `malformed header ${JSON.stringify(header.trim())}`)
  if (fortran === 'True') fail(name, 'Fortran-order arrays are not supported: save with np.ascontiguousarray(a)')
  const dtype = DTYPE_OF_DESCR.get(descr)
  if (dtype == null) {
    const hint = descr.startsWith('>') ? ' (big-endian: save with a.astype(a.dtype.newbyteorder("<")))' : ''
    fail(name, `unsupported dtype '${descr}'${hint}; supported: ${DTYPES.join(', ')}`)
  }
  const dims = shapeText.split(',').map(s => s.trim()).filter(s => s !== '').map(s => {
    if (!/^\d+$/.test(s)) fail(name, `malformed shape (${shapeText})`)
    return Number(s)
  })
  let expected: number
  try {
    expected = byteLength(dtype, dims)
  } catch (err: any) {
    fail(name, err.message)
  }
  const actual = bytes.length - dataStart
  if (actual !== expected) {
    fail(name, `shape [${dims.join(', ')}] of ${dtype} needs ${expected} bytes of data, the file has ${actual}${actual < expected ? ' (truncated?)' : ''}`)
  }
  return { dtype, dims, data: bytes.subarray(dataStart) }
}

/** Encodes a tensor as a version 1.0 .npy file (2.0 if the header would not fit), as numpy.save does. */
export function formatNpy (tensor: Tensor): Uint8Array {
  const expected = byteLength(tensor.dtype, tensor.dims)
  if (tensor.data.byteLength !== expected) {
    throw new TensorFileError(`tensor of shape [${tensor.dims.join(', ')}] ${tensor.dtype} must have ${expected} bytes, has ${tensor.data.byteLength}`)
  }
  const shape = tensor.dims.length === 1 ? `(${tensor.dims[0]},)` : `(${tensor.dims.join(', ')})`
  const dict = `{'descr': '${DESCR[tensor.dtype]}', 'fortran_order': False, 'shape': ${shape}, }`
  let major = 1
  let prefix = 10
  let total = Math.ceil((prefix + dict.length + 1) / 64) * 64
  if (total - prefix > 0xffff) {
    major = 2
    prefix = 12
    total = Math.ceil((prefix + dict.length + 1) / 64) * 64
  }
  const header = dict + ' '.repeat(total - prefix - dict.length - 1) + '\n'
  const out = new Uint8Array(total + expected)
  out.set(MAGIC, 0)
  out[6] = major
  out[7] = 0
  const view = new DataView(out.buffer)
  if (major === 1) view.setUint16(8, header.length, true)
  else view.setUint32(8, header.length, true)
  out.set(new TextEncoder().encode(header), prefix)
  out.set(tensor.data, total)
  return out
}

export { ITEM_SIZE }
