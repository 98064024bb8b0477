import { chmod, mkdir, mkdtemp, stat, writeFile } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { prepareDataDir } from '../src/data-dir.js'

describe('data dir', () => {
  it.runIf(process.platform !== 'win32')('makes an existing data dir and identity key its owner\'s alone, and says so', async () => {
    const dir = join(await mkdtemp(join(os.tmpdir(), 'shoal-datadir-')), 'node')
    await mkdir(dir, { mode: 0o755 })
    await chmod(dir, 0o755)
    await writeFile(join(dir, 'identity.key'), 'key', { mode: 0o644 })
    await chmod(join(dir, 'identity.key'), 0o644)
    const notes = await prepareDataDir(dir)
    expect(notes).toEqual([
      `${dir} was readable by other users (mode 755): made 700`,
      `${join(dir, 'identity.key')} was readable by other users (mode 644): made 600`
    ])
    expect((await stat(dir)).mode & 0o777).toBe(0o700)
    expect((await stat(join(dir, 'identity.key'))).mode & 0o777).toBe(0o600)
    // nothing to say the second time
    expect(await prepareDataDir(dir)).toEqual([])
  })
})
