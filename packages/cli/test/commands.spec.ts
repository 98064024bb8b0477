import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { allCommands } from '../src/main.js'
import { SUMMARIES } from '../src/commands/summaries.js'

describe('the command table', () => {
  it('loads, for each name, the command of that name, whose summary the overview shows', async () => {
    const commands = await allCommands()
    expect(commands.map(c => c.spec.name)).toEqual(Object.keys(SUMMARIES))
    for (const c of commands) expect(c.spec.summary).toBe(SUMMARIES[c.spec.name])
  })

  it('read-only commands import the API client, never the node they talk to', () => {
    // `shoal peers` loading @shoal/node took 1.1 s and 142 MiB (libp2p, ONNX Runtime); the client alone
    // tens of ms (docs/benchmarks.md, "The CLI")
    for (const file of ['main.ts', 'commands/peers.ts', 'commands/node-status.ts', 'commands/id.ts', 'commands/model.ts', 'commands/run.ts', 'commands/summaries.ts']) {
      const text = readFileSync(new URL(`../src/${file}`, import.meta.url), 'utf8')
      const statics = [...text.matchAll(/^import (?!type)[^\n]* from '([^']+)'/gm)].map(m => m[1])
      for (const source of statics) expect(source, `${file} imports ${source}`).not.toBe('@shoal/node')
    }
  })
})
