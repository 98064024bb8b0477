import { spawnSync } from 'node:child_process'
import { copyFile, readFile } from 'node:fs/promises'
import { connect, createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, spawnNode, tempDir, TEST_AD_INTERVAL_MS, waitFor } from './helpers.js'
import type { NodeProcess } from './helpers.js'

const common = ['--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--ad-interval', String(TEST_AD_INTERVAL_MS), '--no-gpu']

describe('shoal CLI, three node processes', () => {
  const dirs: string[] = []
  const procs: NodeProcess[] = []

  beforeAll(async () => {
    for (let i = 0; i < 3; i++) dirs.push(await tempDir('shoal-cli-'))
    procs.push(await spawnNode(['--data-dir', dirs[0], ...common]))
    // the first node measured its providers; the others reuse that calibration (the same machine)
    for (const dir of dirs.slice(1)) await copyFile(join(dirs[0], 'calibration.json'), join(dir, 'calibration.json'))
    procs.push(...await Promise.all(dirs.slice(1).map(async dir => await spawnNode(['--data-dir', dir, ...common, '--bootstrap', procs[0].addrs[0]]))))
  })

  afterAll(async () => {
    for (const p of procs) p.proc.kill('SIGKILL')
  })

  it('prints a ready line whose addresses end in the peer id', () => {
    for (const p of procs) {
      expect(p.peerId).toMatch(/^12D3KooW/)
      expect(p.addrs.length).toBeGreaterThan(0)
      for (const addr of p.addrs) expect(addr).toMatch(new RegExp(`^/ip4/127\\.0\\.0\\.1/tcp/\\d+/p2p/${p.peerId}$`))
    }
  })

  it('`shoal peers --json` on one node lists the other two with their capacity', async () => {
    let peers: any[] = []
    await waitFor(async () => {
      const result = await runCli(['peers', '--json', '--data-dir', dirs[0]])
      expect(result.code).toBe(0)
      peers = JSON.parse(result.stdout)
      return peers.length === 2
    }, 'node 1 to list two peers')
    expect(peers.map(p => p.peerId).sort()).toEqual([procs[1].peerId, procs[2].peerId].sort())
    for (const peer of peers) {
      expect(peer.addrs.length).toBeGreaterThan(0)
      expect(peer.cpu.cores).toBeGreaterThan(0)
      expect(peer.memory.totalBytes).toBeGreaterThan(0)
      expect(peer.providers.map((p: any) => p.name)).toContain('cpu')
      expect(peer.providers.every((p: any) => p.gflops > 0)).toBe(true)
      expect(peer.freeSlots).toBe(2)
      expect(peer.lastSeenMs).toBeGreaterThanOrEqual(0)
      expect(peer.lastSeenMs).toBeLessThan(5000)
    }
  })

  it('`shoal peers` prints a table with one row per peer', async () => {
    const result = await runCli(['peers', '--data-dir', dirs[0]])
    expect(result.code).toBe(0)
    const lines = result.stdout.trim().split('\n')
    expect(lines[0]).toMatch(/^PEER\s+VERSION\s+ADDRESS\s+CORES\s+MEMORY\s+GPU\s+PROVIDERS.*\s+STANDING\s+LINK\s+LAST AD$/)
    expect(lines[1]).toMatch(/^12D3KooW\w+\s+0\.5\.0\s+\/ip4\/127\.0\.0\.1\/tcp\/.*\s+new\s+/)
    expect(lines).toHaveLength(3)
    expect(result.stdout).toContain(procs[1].peerId)
  })

  it('`shoal id` and `shoal node status` describe the running node', async () => {
    const id = JSON.parse((await runCli(['id', '--json', '--data-dir', dirs[1]])).stdout)
    expect(id).toEqual({ peerId: procs[1].peerId, addrs: procs[1].addrs, running: true })
    const status = JSON.parse((await runCli(['node', 'status', '--json', '--data-dir', dirs[1]])).stdout)
    expect(status.peerId).toBe(procs[1].peerId)
    expect(status.capacity.limits.noGpu).toBe(true)
    expect(status.calibration.cached).toBe(true)
    // the direct data channel's listener, on the host of the listen address, really listening
    expect(status.direct.host).toBe('127.0.0.1')
    await new Promise<void>((resolve, reject) => {
      const socket = connect(status.direct.port, '127.0.0.1', () => { socket.destroy(); resolve() })
      socket.on('error', reject)
    })
    const text = await runCli(['node', 'status', '--data-dir', dirs[1]])
    expect(text.stdout).toMatch(/peer table\s+2 peers/)
    expect(text.stdout).toContain(`direct       TLS on 127.0.0.1 port ${status.direct.port as number}`)
    expect(text.stdout).toContain('serving      taking pieces from peers')
  })

  it('`shoal node dashboard` prints the page\'s address with the token in its fragment; the page needs no token, the data it shows does', async () => {
    const printed = (await runCli(['node', 'dashboard', '--data-dir', dirs[1]])).stdout.trim()
    const info = JSON.parse(await readFile(join(dirs[1], 'api.json'), 'utf8'))
    expect(printed).toBe(`${info.url as string}/dashboard#token=${info.token as string}`)
    expect(JSON.parse((await runCli(['node', 'dashboard', '--json', '--data-dir', dirs[1]])).stdout)).toEqual({ url: printed })
    const page = await fetch(printed.slice(0, printed.indexOf('#')))
    expect(page.status).toBe(200)
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'none'; script-src 'self'/)
    expect(await page.text()).toContain('<script src="/dashboard.js" defer></script>')
    expect((await fetch(`${info.url as string}/v1/history`)).status).toBe(401)
    const history = await (await fetch(`${info.url as string}/v1/history`, { headers: { authorization: `Bearer ${info.token as string}` } })).json()
    expect(history.intervalMs).toBe(30_000)
    expect(history.samples.length).toBeGreaterThanOrEqual(1)
    expect(Object.keys(history.samples[0]).sort()).toEqual(['at', 'computeSeconds', 'earnedWork', 'issuedWork', 'pieces', 'rows'])
  })

  it('`shoal node pause` and `resume`: no new pieces, shown by status and in the ad the peers see, until resumed', async () => {
    const paused = await runCli(['node', 'pause', '--data-dir', dirs[1]])
    expect(paused.stdout).toBe('paused: taking no new pieces: paused (shoal node resume) (pieces running finish)\n')
    expect((await runCli(['node', 'status', '--data-dir', dirs[1]])).stdout).toContain('serving      taking no new pieces: paused (shoal node resume)')
    await waitFor(async () => JSON.parse((await runCli(['peers', '--json', '--data-dir', dirs[0]])).stdout).some((p: any) => p.peerId === procs[1].peerId && p.paused === true && p.freeSlots === 0), 'the paused ad')
    const resumed = JSON.parse((await runCli(['node', 'resume', '--json', '--data-dir', dirs[1]])).stdout)
    expect(resumed).toMatchObject({ accepting: true, reasons: [], paused: false })
    await waitFor(async () => JSON.parse((await runCli(['peers', '--json', '--data-dir', dirs[0]])).stdout).some((p: any) => p.peerId === procs[1].peerId && p.paused === false && p.freeSlots > 0), 'the ad after resuming')
  })

  it('a node stopped with SIGTERM says goodbye, exits 0, and leaves the others\' tables', async () => {
    const leaver = procs[2]
    leaver.proc.kill('SIGTERM')
    expect(await leaver.exited).toBe(0)
    await waitFor(async () => {
      const peers = JSON.parse((await runCli(['peers', '--json', '--data-dir', dirs[0]])).stdout)
      return peers.length === 1
    }, 'node 1 to drop the node that left', 5000)
    expect(leaver.stderr()).toContain('SIGTERM: leaving the mesh')
    // it removed its API file: the CLI now says no node runs there
    const after = await runCli(['peers', '--data-dir', dirs[2]])
    expect(after.code).toBe(2)
    expect(after.stderr).toMatch(/no node is running on data dir/)
  })

  it('a listen port already in use is a clear error with exit status 2', async () => {
    const busy = procs[0].addrs[0].replace(/\/p2p\/.*$/, '')
    const result = await runCli(['node', 'start', '--data-dir', await tempDir(), '--listen', busy, '--no-mdns', '--no-gpu'])
    expect(result.code).toBe(2)
    expect(result.stderr).toMatch(/address already in use/)
  })
})

describe('shoal CLI, bad input', () => {
  it('exits 2 with one clear line for each kind of bad input', async () => {
    const blocker = createServer()
    await new Promise<void>(resolve => blocker.listen(0, '127.0.0.1', resolve))
    const apiPort = (blocker.address() as AddressInfo).port
    const empty = await tempDir()
    const cases: Array<[string[], RegExp]> = [
      [['node', 'start', '--listen', '/ip4/1.2.3/tcp/0'], /--listen: "\/ip4\/1.2.3\/tcp\/0" is not a valid multiaddr/],
      [['node', 'start', '--frobnicate'], /unknown option '--frobnicate'/],
      [['node', 'start', '--data-dir', '/etc/passwd/shoal'], /cannot use data dir \/etc\/passwd\/shoal/],
      [['node', 'start', '--data-dir', empty, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--no-gpu', '--api-port', String(apiPort)], /API port \d+ on 127.0.0.1 is already in use/],
      [['peers', '--data-dir', empty], /no node is running on data dir/],
      [['node', 'status', '--data-dir', empty], /no node is running on data dir/],
      [['peer'], /unknown command "peer" \(did you mean: shoal peers\?\)/]
    ]
    try {
      for (const [args, message] of cases) {
        const result = await runCli(args)
        expect({ args, code: result.code }).toEqual({ args, code: 2 })
        expect(result.stderr).toMatch(message)
        expect(result.stderr.trim().split('\n')).toHaveLength(1)
      }
    } finally {
      blocker.close()
    }
  })

  it('documents every node option in `shoal node start --help`', async () => {
    const { NODE_OPTIONS } = await import('@shoal/node')
    const result = await runCli(['node', 'start', '--help'])
    expect(result.code).toBe(0)
    for (const option of NODE_OPTIONS) expect(result.stdout).toContain(option.flag)
    expect(result.stdout).toContain('--data-dir')
  })
})

describe('shoal on the PATH', () => {
  it('pnpm install-cli writes a shoal command that runs this clone\'s CLI from any directory', async () => {
    const dir = await tempDir('shoal-bin-')
    const root = fileURLToPath(new URL('../../..', import.meta.url))
    const install = spawnSync(process.execPath, [join(root, 'scripts', 'install-cli.mjs'), dir], { encoding: 'utf8', env: { ...process.env, PATH: '/usr/bin:/bin' } })
    expect(install.status).toBe(0)
    expect(install.stdout).toMatch(new RegExp(`installed ${join(dir, 'shoal')}\n${dir} is not on your PATH`))
    // run where no workspace is, with a PATH that finds only the shim and the system's tools
    const run = spawnSync('shoal', ['--version'], { cwd: os.tmpdir(), encoding: 'utf8', env: { PATH: `${dir}:/usr/bin:/bin` } })
    expect(run.stderr).toBe('')
    expect(run.stdout).toMatch(/^shoal \d+\.\d+\.\d+\n$/)
  })
})
