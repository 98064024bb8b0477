import { describe, expect, it } from 'vitest'
import { outputFileNames } from '../src/commands/run.js'

describe('shoal run: output file names', () => {
  it('never a path, never two outputs in one file, whatever the model names them', () => {
    const names = outputFileNames(['a/b', 'a_b', 'A_B', '../../etc/passwd', '', 'x'.repeat(500), 'ok.out'])
    expect([...names.values()]).toEqual(['a_b.npy', 'a_b-2.npy', 'A_B-3.npy', '__.._etc_passwd.npy', '_.npy', `${'x'.repeat(200)}.npy`, 'ok.out.npy'])
    expect(new Set([...names.values()].map(n => n.toLowerCase())).size).toBe(names.size)
  })
})
