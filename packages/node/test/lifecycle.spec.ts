import { describe, expect, it } from 'vitest'
import { Lifecycle } from '../src/lifecycle.js'

function parts (log: string[], failStart?: string, failStop?: string): Lifecycle {
  const lifecycle = new Lifecycle()
  for (const name of ['store', 'sandbox', 'libp2p', 'api']) {
    lifecycle.add(name,
      async () => { if (name === failStart) throw new Error(`${name} cannot start`); log.push(`start ${name}`) },
      async () => { log.push(`stop ${name}`); if (name === failStop) throw new Error(`${name} cannot stop`) })
  }
  return lifecycle
}

describe('the node\'s lifecycle', () => {
  it('starts parts in order and stops them in reverse', async () => {
    const log: string[] = []
    const lifecycle = parts(log)
    await lifecycle.start()
    expect(lifecycle.running).toEqual(['store', 'sandbox', 'libp2p', 'api'])
    await lifecycle.stop()
    expect(log).toEqual(['start store', 'start sandbox', 'start libp2p', 'start api', 'stop api', 'stop libp2p', 'stop sandbox', 'stop store'])
    expect(lifecycle.running).toEqual([])
  })

  it('a part that fails to start is stopped (what it got half way), then those already started, in reverse; the error is the start\'s', async () => {
    const log: string[] = []
    const lifecycle = parts(log, 'libp2p')
    await expect(lifecycle.start()).rejects.toThrow('libp2p cannot start')
    expect(log).toEqual(['start store', 'start sandbox', 'stop libp2p', 'stop sandbox', 'stop store'])
    expect(lifecycle.running).toEqual([])
  })

  it('a part that fails to stop does not keep the others from stopping; its error comes after', async () => {
    const log: string[] = []
    const lifecycle = parts(log, undefined, 'libp2p')
    await lifecycle.start()
    await expect(lifecycle.stop()).rejects.toThrow('libp2p cannot stop')
    expect(log.slice(4)).toEqual(['stop api', 'stop libp2p', 'stop sandbox', 'stop store'])
    // stopped once: a second stop has nothing to do
    await lifecycle.stop()
    expect(log.length).toBe(8)
  })
})
