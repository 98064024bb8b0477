import { execFileSync, spawnSync } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { tempDir } from './helpers.js'

const REPO = fileURLToPath(new URL('../../../', import.meta.url))
// systemd-analyze checks a unit file without a running systemd; machines without systemd cannot
const hasSystemd = spawnSync('systemd-analyze', ['--version']).status === 0

describe('the systemd unit in docs/shoal-node.service', () => {
  it.runIf(hasSystemd)('is a valid unit, and systemd rates its sandbox well (exposure 2 or less of 10)', async () => {
    const dir = await tempDir('shoal-unit-')
    // the documented paths, pointed at this checkout so that the executables exist
    const unit = (await readFile(join(REPO, 'docs/shoal-node.service'), 'utf8'))
      .replaceAll('/opt/shoal/node_modules/.bin/node', process.execPath)
      .replaceAll('/opt/shoal/', REPO)
    const file = join(dir, 'shoal-node.service')
    await writeFile(file, unit)
    const verify = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' })
    expect(verify.stderr.trim()).toBe('')
    expect(verify.status).toBe(0)
    const security = execFileSync('systemd-analyze', ['security', '--offline=yes', file], { encoding: 'utf8' })
    const exposure = Number(/Overall exposure level for shoal-node\.service: ([\d.]+)/.exec(security)?.[1])
    expect(exposure).toBeLessThanOrEqual(2)
  })
})
