import { mkdtemp, writeFile } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { NODE_OPTIONS, envName, parseBytes, resolveConfig, withinCpuShare } from '../src/config.js'

async function dataDirWith (config?: unknown): Promise<string> {
  const dir = await mkdtemp(join(os.tmpdir(), 'shoal-config-'))
  if (config !== undefined) await writeFile(join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config))
  return dir
}

describe('node config', () => {
  it('takes defaults, then config.json, then flags, then SHOAL_* variables', async () => {
    const dataDir = await dataDirWith({ maxConcurrency: 3, cpuThreads: 3, apiPort: 7000 })
    const config = await resolveConfig({
      dataDir,
      flags: { cpuThreads: '5', apiPort: '7100' },
      env: { SHOAL_API_PORT: '7200' }
    })
    expect(config.maxConcurrency).toBe(3) // file
    expect(config.cpuThreads).toBe(5) // flag over file
    expect(config.apiPort).toBe(7200) // env over flag
    expect(config.mdns).toBe(true) // default
  })

  it('reads lists and booleans from the environment', async () => {
    const config = await resolveConfig({
      dataDir: await dataDirWith(),
      env: { SHOAL_LISTEN: '/ip4/127.0.0.1/tcp/0, /ip4/127.0.0.1/tcp/0/ws', SHOAL_MDNS: 'false', SHOAL_MAX_MEMORY: '2GiB' }
    })
    expect(config.listen).toEqual(['/ip4/127.0.0.1/tcp/0', '/ip4/127.0.0.1/tcp/0/ws'])
    expect(config.mdns).toBe(false)
    expect(config.maxMemoryBytes).toBe(2 * 2 ** 30)
  })

  it('reads the storage quota and trusted publishers, and names a bad peer id', async () => {
    const key = '12D3KooWHQVuhmNqdmXdYwpLYtDC8AvEfbXAhm3EMxxNTk6GrFMp'
    const config = await resolveConfig({ dataDir: await dataDirWith({ maxStorageBytes: '5GiB' }), env: { SHOAL_TRUST: key } })
    expect(config.maxStorageBytes).toBe(5 * 1024 ** 3)
    expect(config.trustedPublishers).toEqual([key])
    expect((await resolveConfig({ dataDir: await dataDirWith(), env: {} })).maxStorageBytes).toBe(20 * 1024 ** 3)
    await expect(resolveConfig({ dataDir: await dataDirWith(), flags: { trustedPublishers: ['someone'] }, env: {} })).rejects.toThrow(/--trust: "someone" is not a peer id/)
  })

  it('reads the longest time a piece may take, in seconds, and refuses none or more than a day', async () => {
    const dataDir = await dataDirWith()
    expect((await resolveConfig({ dataDir, env: {} })).maxPieceSeconds).toBe(600)
    expect((await resolveConfig({ dataDir, flags: { maxPieceSeconds: '30' }, env: {} })).maxPieceSeconds).toBe(30)
    await expect(resolveConfig({ dataDir, env: { SHOAL_MAX_PIECE_TIME: '0' } })).rejects.toThrow(/SHOAL_MAX_PIECE_TIME: expected an integer from 1 to 86400/)
    await expect(resolveConfig({ dataDir, env: { SHOAL_MAX_PIECE_TIME: '86401' } })).rejects.toThrow(/expected an integer from 1 to 86400/)
  })

  it('reads a volunteer\'s preferences: models, hours, idleness, power, a CPU share; names what is wrong', async () => {
    const dataDir = await dataDirWith({ hours: ['22:00-07:00'], refuseModels: ['bigmodel'] })
    const config = await resolveConfig({ dataDir, flags: { serveModels: ['publisher:12D3KooWLTLBgx3PB4HcuTwQ3kbbVhN7vDwd9XXMiUFD5JVJ9s3c', 'resnet@1.0'], whenIdle: true, cpuShare: '50%' }, env: { SHOAL_HOURS: '9-12,13:00-17:30', SHOAL_ONLY_ON_AC: 'yes' } })
    expect(config).toMatchObject({ hours: ['9-12', '13:00-17:30'], refuseModels: ['bigmodel'], serveModels: ['publisher:12D3KooWLTLBgx3PB4HcuTwQ3kbbVhN7vDwd9XXMiUFD5JVJ9s3c', 'resnet@1.0'], whenIdle: true, onlyOnAc: true, cpuShare: 50 })
    await expect(resolveConfig({ dataDir, flags: { hours: ['9am-5pm'] }, env: {} })).rejects.toThrow(/--hours: "9am-5pm" is not a range of hours/)
    await expect(resolveConfig({ dataDir, flags: { refuseModels: ['two words'] }, env: {} })).rejects.toThrow(/--refuse-model: "two words" is not a model pattern/)
    await expect(resolveConfig({ dataDir, flags: { cpuShare: '0' }, env: {} })).rejects.toThrow(/--cpu-share: expected a percentage from 1 to 100/)
  })

  it('a CPU share lowers pieces at once and threads per piece to fit, at least one of each', () => {
    expect(withinCpuShare({ maxConcurrency: 2, cpuThreads: 8, cpuShare: 50 }, 8)).toEqual({ maxConcurrency: 2, cpuThreads: 2 })
    expect(withinCpuShare({ maxConcurrency: 4, cpuThreads: 8, cpuShare: 25 }, 8)).toEqual({ maxConcurrency: 2, cpuThreads: 1 })
    expect(withinCpuShare({ maxConcurrency: 2, cpuThreads: 2, cpuShare: 10 }, 4)).toEqual({ maxConcurrency: 1, cpuThreads: 1 })
    expect(withinCpuShare({ maxConcurrency: 0, cpuThreads: 4, cpuShare: 50 }, 4)).toEqual({ maxConcurrency: 0, cpuThreads: 2 })
  })

  it('turns lan on by itself only when every listen address is loopback', async () => {
    const dataDir = await dataDirWith()
    expect((await resolveConfig({ dataDir, flags: { listen: ['/ip4/127.0.0.1/tcp/0'] }, env: {} })).lan).toBe(true)
    expect((await resolveConfig({ dataDir, flags: { listen: ['/ip4/0.0.0.0/tcp/0'] }, env: {} })).lan).toBe(false)
    expect((await resolveConfig({ dataDir, flags: { listen: ['/ip4/127.0.0.1/tcp/0'], lan: false }, env: {} })).lan).toBe(false)
  })

  it('names the source of a bad value', async () => {
    const dataDir = await dataDirWith({ maxConcurrency: -1 })
    await expect(resolveConfig({ dataDir, env: {} })).rejects.toThrow(/config.json: "maxConcurrency": expected an integer/)
    const clean = await dataDirWith()
    await expect(resolveConfig({ dataDir: clean, flags: { listen: ['/ip4/1.2.3/tcp/0'] }, env: {} })).rejects.toThrow(/--listen: "\/ip4\/1.2.3\/tcp\/0" is not a valid multiaddr/)
    await expect(resolveConfig({ dataDir: clean, env: { SHOAL_AD_INTERVAL: '5' } })).rejects.toThrow(/SHOAL_AD_INTERVAL: expected an integer from 100/)
    await expect(resolveConfig({ dataDir: clean, flags: { bootstrap: ['/ip4/127.0.0.1/tcp/1'] }, env: {} })).rejects.toThrow(/\/p2p\/<peerId>/)
  })

  it('refuses a config file that is not JSON or has unknown keys', async () => {
    await expect(resolveConfig({ dataDir: await dataDirWith('{ nope'), env: {} })).rejects.toMatchObject({ name: 'ConfigError' })
    await expect(resolveConfig({ dataDir: await dataDirWith({ listenn: [] }), env: {} })).rejects.toThrow(/unknown setting "listenn"/)
  })

  it('reports a data dir that cannot be one', async () => {
    await expect(resolveConfig({ dataDir: '/etc/passwd/shoal', env: {} })).rejects.toMatchObject({ name: 'DataDirError' })
  })

  it('parses sizes', () => {
    expect(parseBytes('4GiB')).toBe(4 * 2 ** 30)
    expect(parseBytes('512MB')).toBe(512e6)
    expect(parseBytes('1000')).toBe(1000)
    expect(() => parseBytes('4 apples')).toThrow(/not a size/)
  })

  it('gives every option an environment variable', () => {
    expect(NODE_OPTIONS.map(envName)).toContain('SHOAL_MAX_CONCURRENCY')
    expect(new Set(NODE_OPTIONS.map(envName)).size).toBe(NODE_OPTIONS.length)
  })
})

describe('addresses told to others outside LAN mode', () => {
  it('keep public and relayed addresses, drop loopback, private and link-local ones', async () => {
    const { usableAddresses } = await import('../src/mesh/create-libp2p.js')
    const { multiaddr } = await import('@multiformats/multiaddr')
    const kept = usableAddresses(['/ip4/127.0.0.1/tcp/1', '/ip4/10.1.2.3/tcp/1', '/ip4/192.168.1.5/tcp/1', '/ip4/169.254.0.9/tcp/1', '/ip6/::1/tcp/1', '/ip6/fe80::1/tcp/1', '/ip4/8.8.8.8/tcp/4001', '/ip4/8.8.4.4/tcp/4001/p2p/12D3KooWSCLyH9NRbkGHNTy1MT5RPiL6oRMhByvLZS2x53fk7SSK/p2p-circuit'].map(a => multiaddr(a)))
    expect(kept.map(a => a.toString())).toEqual(['/ip4/8.8.8.8/tcp/4001', '/ip4/8.8.4.4/tcp/4001/p2p/12D3KooWSCLyH9NRbkGHNTy1MT5RPiL6oRMhByvLZS2x53fk7SSK/p2p-circuit'])
  })
})

describe('when to ask a peer for a direct data channel', () => {
  it('always in LAN mode; otherwise only if its ad tells an address of its own (not only a relayed one), or there is no ad yet', async () => {
    const { directWorthTrying } = await import('../src/shoal-node.js')
    expect(directWorthTrying(true, [])).toBe(true)
    expect(directWorthTrying(false, undefined)).toBe(true)
    expect(directWorthTrying(false, ['/ip4/8.8.8.8/tcp/4001'])).toBe(true)
    expect(directWorthTrying(false, [])).toBe(false)
    expect(directWorthTrying(false, ['/ip4/8.8.4.4/tcp/4001/p2p/12D3KooWSCLyH9NRbkGHNTy1MT5RPiL6oRMhByvLZS2x53fk7SSK/p2p-circuit'])).toBe(false)
  })
})
