import { execFileSync } from 'node:child_process'
import { resolveConfig, ShoalNode } from '@shoal/node'
import { describe, expect, it } from 'vitest'
import { FIXED_CALIBRATION, startNode, stopAll, tempDir } from './helpers.js'

/** This process's children now (the sandbox's model processes among them). */
function children (): string[] {
  try {
    return execFileSync('ps', ['-o', 'pid=,comm=', '--ppid', String(process.pid)], { encoding: 'utf8' })
      .split('\n').map(l => l.trim().split(/\s+/)).filter(([pid, comm]) => pid !== '' && comm !== 'ps').map(([pid]) => pid)
  } catch {
    return [] // ps exits 1 when there is none
  }
}

describe('a node\'s life', () => {
  it('a node that fails to start (its port is taken) leaves nothing running: no sandbox process, no listener', async () => {
    const first = await startNode()
    try {
      const before = children()
      const port = first.addrs[0].split('/')[4]
      const config = await resolveConfig({ dataDir: await tempDir(), env: {}, flags: { listen: [`/ip4/127.0.0.1/tcp/${port}`], mdns: false, cpuThreads: 1 } })
      const node = new ShoalNode({ config, calibration: FIXED_CALIBRATION, api: false })
      await expect(node.start()).rejects.toThrow(/address already in use/)
      // the failed node's sandbox child is gone (the first node's stays)
      const deadline = Date.now() + 5000
      while (children().length > before.length && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 50))
      expect(children()).toEqual(before)
      // and it can be stopped all the same
      await node.stop()
    } finally {
      await stopAll([first])
    }
  })

  it('a node that stops ends its model fetches at once, saying why', async () => {
    const config = await resolveConfig({ dataDir: await tempDir(), env: {}, flags: { listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, cpuThreads: 1 } })
    const node = new ShoalNode({ config, calibration: FIXED_CALIBRATION, api: false, noProviderTimeoutMs: 120_000 })
    await node.start()
    // a model nobody has: the fetch would look for providers for two minutes
    const fetching = node.fetchModel('bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy').then(() => 'fetched', err => String(err.message))
    await new Promise(resolve => setTimeout(resolve, 200))
    const started = Date.now()
    await node.stop()
    expect(await fetching).toMatch(/the node is stopping/)
    expect(Date.now() - started).toBeLessThan(10_000)
  })

  it('a node that stops ends its sandbox processes', async () => {
    const before = children()
    const node = await startNode()
    expect(children().length).toBeGreaterThan(before.length)
    await node.stop()
    expect(children()).toEqual(before)
  })
})
