// `pnpm nat-lab [--json] [--relay unlimited|limited] [--upnp]`: a NAT lab on one machine (root needed). Builds network namespaces joined
// by veth pairs: a "public" segment (a bridge) with a bootstrap node that is also a relay, and a public
// submitter; three home networks behind routers that masquerade with nftables (the second with random
// source ports, as a symmetric NAT does): a worker in each of the first two, a submitter in the third.
// Starts real `shoal node start` processes in them, runs a job from each submitter, and reports what
// happened: whether the job was done, whether its outputs equal a local run, the pieces each worker
// did, the path each worker was reached by, and how long each took to become reachable. Everything it
// creates is removed at the end, also after a failure or an interrupt.
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { formatNpy, parseNpy, SessionCache, syntheticBatch } from '@shoal/runtime'
import { buildCalibrationModel } from '@shoal/runtime/calibration-model'
import { runToEnd, SHOAL_BIN, startNodeProcess, tempDir, waitFor as waitUntil } from './lib.mjs'

const PUBLIC_NET = '11.0.0' // inside the namespaces only: no route leads out of them
const json = process.argv.includes('--json')
const say = (line) => { if (!json) process.stdout.write(line + '\n') }

export class LabError extends Error {}

function sh (cmd, args, input) {
  try {
    return execFileSync(cmd, args, { input, stdio: ['pipe', 'pipe', 'pipe'], encoding: 'utf8' })
  } catch (err) {
    throw new LabError(`${cmd} ${args.join(' ')} failed: ${String(err.stderr ?? err.message).trim()}`)
  }
}

/** What the lab needs of this machine, or why it cannot run. */
export function labPrerequisites ({ upnp = false } = {}) {
  if (process.getuid?.() !== 0) return 'the NAT lab needs root (network namespaces and nftables): run it as root'
  const packages = { ip: 'iproute2', nft: 'nftables', miniupnpd: 'miniupnpd-nftables' }
  for (const tool of upnp ? ['ip', 'nft', 'miniupnpd'] : ['ip', 'nft']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' })
    } catch {
      return `the NAT lab needs ${tool} (apt-get install ${packages[tool]})`
    }
  }
  return null
}

/** The namespaces and links of the lab; `remove()` undoes all of it. */
export class Topology {
  constructor () {
    // names of their own: two labs (or a lab left over) never collide; interface names stay under 15 characters
    this.prefix = `sl${randomBytes(2).toString('hex')}`
    this.namespaces = []
    /** veth pairs made in this namespace: one left here by a failure between its creation and its move is deleted too */
    this.links = []
  }

  ns (name) { return `${this.prefix}-${name}` }

  addNamespace (name) {
    sh('ip', ['netns', 'add', this.ns(name)])
    this.namespaces.push(this.ns(name))
    sh('ip', ['-n', this.ns(name), 'link', 'set', 'lo', 'up'])
  }

  /** A host on the public segment: a veth pair, one end on the bridge, the other `wan` in the host. */
  publicHost (name, address) {
    const [a, b] = [`${this.prefix}${name}a`, `${this.prefix}${name}b`]
    sh('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b])
    this.links.push(a)
    sh('ip', ['link', 'set', a, 'netns', this.ns('pub')])
    sh('ip', ['link', 'set', b, 'netns', this.ns(name)])
    sh('ip', ['-n', this.ns('pub'), 'link', 'set', a, 'master', 'br0', 'up'])
    sh('ip', ['-n', this.ns(name), 'link', 'set', b, 'name', 'wan'])
    sh('ip', ['-n', this.ns(name), 'addr', 'add', `${address}/24`, 'dev', 'wan'])
    sh('ip', ['-n', this.ns(name), 'link', 'set', 'wan', 'up'])
  }

  /**
   * A home network: `host` behind `router`, which masquerades (with random ports: `symmetric`); with
   * `upnp` its ruleset has the chains miniupnpd fills with the port mappings hosts ask for.
   */
  home (router, host, prefix, symmetric, upnp = false) {
    const [a, b] = [`${this.prefix}${host}x`, `${this.prefix}${host}y`]
    sh('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b])
    this.links.push(a)
    sh('ip', ['link', 'set', a, 'netns', this.ns(router)])
    sh('ip', ['link', 'set', b, 'netns', this.ns(host)])
    sh('ip', ['-n', this.ns(router), 'link', 'set', a, 'name', 'lan'])
    sh('ip', ['-n', this.ns(router), 'addr', 'add', `${prefix}.1/24`, 'dev', 'lan'])
    sh('ip', ['-n', this.ns(router), 'link', 'set', 'lan', 'up'])
    sh('ip', ['-n', this.ns(host), 'link', 'set', b, 'name', 'eth0'])
    sh('ip', ['-n', this.ns(host), 'addr', 'add', `${prefix}.2/24`, 'dev', 'eth0'])
    sh('ip', ['-n', this.ns(host), 'link', 'set', 'eth0', 'up'])
    sh('ip', ['-n', this.ns(host), 'route', 'add', 'default', 'via', `${prefix}.1`])
    sh('ip', ['netns', 'exec', this.ns(router), 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'])
    // outbound only: replies to what the home opened come back, nothing else gets in (and, with
    // UPnP, what a mapping a host asked for lets in)
    if (upnp) {
      sh('ip', ['netns', 'exec', this.ns(router), 'nft', '-f', '-'], `table inet nat {
  chain prerouting {
    type nat hook prerouting priority -100; policy accept;
    jump prerouting_miniupnpd
  }
  chain postrouting {
    type nat hook postrouting priority 100; policy accept;
    jump postrouting_miniupnpd
    oifname "wan" masquerade
  }
  chain prerouting_miniupnpd {
  }
  chain postrouting_miniupnpd {
  }
}
table inet filter {
  chain forwarding {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    jump miniupnpd
    iifname "lan" oifname "wan" accept
  }
  chain miniupnpd {
  }
}
`)
      return
    }
    sh('ip', ['netns', 'exec', this.ns(router), 'nft', '-f', '-'], `table ip nat {
  chain post {
    type nat hook postrouting priority 100;
    oifname "wan" masquerade${symmetric ? ' random' : ''}
  }
}
table ip filter {
  chain forwarding {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "lan" oifname "wan" accept
  }
}
`)
  }

  build ({ upnp = false } = {}) {
    for (const name of ['pub', 'boot', 'sub', 'pw', 'r1', 'h1', 'r2', 'h2', 'r3', 'h3']) this.addNamespace(name)
    sh('ip', ['-n', this.ns('pub'), 'link', 'add', 'br0', 'type', 'bridge'])
    sh('ip', ['-n', this.ns('pub'), 'link', 'set', 'br0', 'up'])
    this.publicHost('boot', `${PUBLIC_NET}.2`)
    this.publicHost('sub', `${PUBLIC_NET}.3`)
    this.publicHost('r1', `${PUBLIC_NET}.11`)
    this.publicHost('r2', `${PUBLIC_NET}.12`)
    this.publicHost('r3', `${PUBLIC_NET}.13`)
    // a worker with a public address, for comparison (started only when asked for)
    this.publicHost('pw', `${PUBLIC_NET}.4`)
    this.home('r1', 'h1', '192.168.1', false, upnp)
    this.home('r2', 'h2', '192.168.2', true)
    this.home('r3', 'h3', '192.168.3', false)
  }

  /** Deletes every namespace it made (their links go with them), and any of its links left outside them. */
  remove () {
    for (const ns of this.namespaces.splice(0).reverse()) {
      try { execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' }) } catch {}
    }
    for (const link of this.links.splice(0)) {
      try { execFileSync('ip', ['link', 'del', link], { stdio: 'ignore' }) } catch {}
    }
  }
}

/** A `shoal node start` process in a namespace; `ready` resolves once it prints its ready line. */
function startNode (topology, name, dataDir, args) {
  const startedAt = performance.now()
  const node = startNodeProcess(['--data-dir', dataDir, ...args], { timeoutMs: 60_000, prefix: ['ip', 'netns', 'exec', topology.ns(name)] })
  // a node the lab never waits for (an earlier one failed) must not end the process with an unhandled rejection
  node.ready.catch(() => {})
  return { ...node, name, startedAt }
}

/** The CLI, run in a namespace against the node of `dataDir`. */
async function cli (topology, name, args) {
  return await runToEnd('ip', ['netns', 'exec', topology.ns(name), process.execPath, SHOAL_BIN, ...args])
}

async function waitFor (condition, what, timeoutMs = 60_000) {
  await waitUntil(condition, what, timeoutMs, 250).catch(err => { throw new LabError(`${err.message} (${timeoutMs} ms)`) })
}

/**
 * The path a submitter reaches a worker (behind a router) by, from how it is connected to it: a
 * public submitter directly over the connection the worker opened (a connection it dialled itself
 * could only have been punched through); a submitter behind a router too, over a relay, or directly
 * only once a hole was punched.
 */
function pathOf (connection, submitterBehindNat, workerBehindNat) {
  if (connection === 'relayed') return 'relayed'
  if (connection === 'none') return 'unreachable'
  if (!workerBehindNat) return 'direct'
  if (submitterBehindNat || connection === 'outbound') return 'hole-punched'
  return 'direct'
}

/**
 * Builds the lab, runs a job from each submitter, and returns the report; removes everything it made.
 * `relay`: the bootstrap node's `--relay` (unlimited: pieces may cross it; limited: only introductions).
 * `workers`: which run (w1 behind the first router, w2 behind the random-port one, w0 on the public
 * segment). `job`: its size and model (benchmarks make it bigger), `verify` its `--verify`.
 */
export async function runLab ({ log = () => {}, relay = 'unlimited', workers: wanted = ['w1', 'w2'], job = { rows: 128, width: 32, layers: 2, rowsPerPiece: 4 }, verify = 'spot', preload = false, onlyWorkers = false, upnp = false } = {}) {
  const why = labPrerequisites({ upnp })
  if (why != null) throw new LabError(why)
  const topology = new Topology()
  const work = await tempDir('shoal-nat-lab-')
  const nodes = []
  const stopAll = async () => {
    await Promise.all(nodes.map(async n => {
      // ended already (by itself, or by a signal)
      if (n.proc.exitCode != null || n.proc.signalCode != null) return
      n.proc.kill('SIGTERM')
      const killer = setTimeout(() => n.proc.kill('SIGKILL'), 5000)
      await n.exited
      clearTimeout(killer)
    }))
  }
  const onSignal = () => { void stopAll().finally(async () => { topology.remove(); await rm(work, { recursive: true, force: true }); process.exit(130) }) }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    topology.build({ upnp })
    let upnpReport
    // UPnP: the first home's router runs miniupnpd (apt-get install miniupnpd-nftables), and its worker asks it for a mapping
    if (upnp) {
      const conf = join(work, 'miniupnpd.conf')
      await writeFile(conf, ['ext_ifname=wan', 'listening_ip=lan', 'port=5000', 'enable_natpmp=no', 'enable_upnp=yes', 'secure_mode=yes', 'system_uptime=yes',
        'uuid=3d3cec3a-8cf0-11e0-98ee-001a6bd2d07b', 'upnp_table_name=filter', 'upnp_nat_table_name=nat', 'upnp_forward_chain=miniupnpd',
        'upnp_nat_chain=prerouting_miniupnpd', 'upnp_nat_postrouting_chain=postrouting_miniupnpd',
        'allow 1024-65535 192.168.1.0/24 1024-65535', 'deny 0-65535 0.0.0.0/0 0-65535', ''].join('\n'))
      const daemon = spawn('ip', ['netns', 'exec', topology.ns('r1'), 'miniupnpd', '-f', conf, '-d', '-P', join(work, 'miniupnpd.pid')], { stdio: ['ignore', 'ignore', 'pipe'] })
      let daemonLog = ''
      daemon.stderr.on('data', d => { daemonLog += d })
      const exited = new Promise(resolve => daemon.once('exit', resolve))
      nodes.push({ name: 'miniupnpd', proc: daemon, exited, log: () => daemonLog })
    }
    log(`namespaces ${topology.namespaces.join(', ')}: a public segment ${PUBLIC_NET}.0/24, homes 192.168.1.0/24 (NAT), 192.168.2.0/24 (NAT, random ports) and 192.168.3.0/24 (NAT)`)
    const common = ['--listen', '/ip4/0.0.0.0/tcp/4001', '--no-mdns', '--no-gpu', '--cpu-threads', '1', '--ad-interval', '1000', '--max-memory', '0']
    const dir = async (name) => { const d = join(work, name); await mkdir(d, { recursive: true }); return d }
    // the public nodes announce their address, as a server with a known public address does (a
    // listen address on a public interface is otherwise told only once peers confirm it reachable);
    // the bootstrap node relays without limits, so that pieces can cross it between two homes
    // onlyWorkers (benchmarks): the bootstrap node and the submitters compute nothing, so a job's time is its workers'
    const computeNothing = onlyWorkers ? ['--max-concurrency', '0'] : []
    const boot = startNode(topology, 'boot', await dir('boot'), [...common, '--announce', `/ip4/${PUBLIC_NET}.2/tcp/4001`, '--relay', relay, ...computeNothing])
    nodes.push(boot)
    const bootReady = await boot.ready
    const bootstrap = ['--bootstrap', `/ip4/${PUBLIC_NET}.2/tcp/4001/p2p/${bootReady.peerId}`]
    const submitters = [
      { name: 'public', ns: 'sub', behindNat: false, args: ['--announce', `/ip4/${PUBLIC_NET}.3/tcp/4001`] },
      { name: 'home', ns: 'h3', behindNat: true, args: [] }
    ]
    for (const s of submitters) {
      // --peers-only: the lab is about the workers behind routers serving them
      s.node = startNode(topology, s.ns, await dir(`sub-${s.name}`), [...common, ...bootstrap, ...s.args, '--peers-only', ...computeNothing])
      s.dir = join(work, `sub-${s.name}`)
      nodes.push(s.node)
    }
    for (const s of submitters) s.peerId = (await s.node.ready).peerId
    log(`bootstrap and relay ${bootReady.peerId} at ${PUBLIC_NET}.2; submitters ${submitters.map(s => `${s.name} ${s.peerId}`).join(', ')}`)
    const workers = [
      { name: 'w0', ns: 'pw', args: ['--announce', `/ip4/${PUBLIC_NET}.4/tcp/4001`] },
      { name: 'w1', ns: 'h1', args: upnp ? ['--upnp'] : [] },
      { name: 'w2', ns: 'h2', args: [] }
    ].filter(w => wanted.includes(w.name))
    for (const w of workers) {
      w.node = startNode(topology, w.ns, await dir(w.name), [...common, ...bootstrap, ...w.args])
      nodes.push(w.node)
    }
    for (const w of workers) w.peerId = (await w.node.ready).peerId
    const model = buildCalibrationModel({ batch: 0, width: job.width, layers: job.layers })
    const x = syntheticBatch([job.rows, job.width], 7)
    await writeFile(join(work, 'model.onnx'), model)
    await writeFile(join(work, 'x.npy'), formatNpy(x))
    const sessions = new SessionCache({ providers: ['cpu'], cpuThreads: 1 })
    const reference = (await sessions.run('lab', async () => model, { input: x })).outputs.output
    await sessions.close()
    // benchmarks give the workers the model first: a job's time is then its path's, not a model fetch's
    if (preload) {
      for (const w of workers) {
        const r = await cli(topology, w.ns, ['model', 'add', join(work, 'model.onnx'), '--data-dir', join(work, w.name)])
        if (r.code !== 0) throw new LabError(`${w.name}: model add failed: ${r.stderr}`)
      }
    }
    // UPnP: the worker asks its router for a mapping a few seconds after it finds it (libp2p waits for
    // its addresses to settle); the lab waits until its ad tells the mapped address
    if (upnp) {
      const w1 = workers.find(w => w.name === 'w1')
      const hasMapping = async () => {
        const r = await cli(topology, 'sub', ['peers', '--json', '--data-dir', submitters[0].dir])
        const p = r.code === 0 ? JSON.parse(r.stdout).find(x => x.peerId === w1.peerId) : undefined
        return p != null && p.addrs.some(a => a.startsWith(`/ip4/${PUBLIC_NET}.11/tcp/`))
      }
      await waitFor(hasMapping, 'the worker behind the UPnP router to tell its mapped address', 40_000)
      // the mapping lets a connection in from the public segment, to the worker's port
      const probe = await runToEnd('ip', ['netns', 'exec', topology.ns('boot'), process.execPath, '-e',
        `require('node:net').connect(4001, '${PUBLIC_NET}.11').on('connect', () => process.exit(0)).on('error', () => process.exit(1)); setTimeout(() => process.exit(1), 3000)`])
      upnpReport = { mapped: `/ip4/${PUBLIC_NET}.11/tcp/4001`, reachableFromPublic: probe.code === 0 }
    }
    const results = {}
    for (const s of submitters) {
      const peers = async () => {
        const r = await cli(topology, s.ns, ['peers', '--json', '--data-dir', s.dir])
        return r.code === 0 ? JSON.parse(r.stdout) : []
      }
      const reachableMs = {}
      await waitFor(async () => {
        const list = await peers()
        for (const w of workers) {
          const p = list.find(x => x.peerId === w.peerId)
          if (p != null && p.connection !== 'none' && reachableMs[w.name] == null) reachableMs[w.name] = Math.round(performance.now() - w.node.startedAt)
        }
        return workers.every(w => reachableMs[w.name] != null)
      }, `the ${s.name} submitter to reach both workers`).catch(async err => {
        throw new LabError(`${err.message}; its peers: ${JSON.stringify((await peers()).map(p => ({ peerId: p.peerId, addrs: p.addrs, connection: p.connection })))}`)
      })
      const before = await peers()
      const started = performance.now()
      const run = await cli(topology, s.ns, ['run', join(work, 'model.onnx'), '--input', `input=${join(work, 'x.npy')}`, '--output', join(work, `out-${s.name}`), '--rows-per-piece', String(job.rowsPerPiece), '--verify', verify, '--json', '--data-dir', s.dir])
      const wallMs = Math.round(performance.now() - started)
      const summary = run.code === 0 ? JSON.parse(run.stdout) : null
      const got = summary != null ? parseNpy(await readFile(summary.outputs.output)) : null
      const after = await peers()
      // the path each worker was reached by during the job (a relayed connection may have been upgraded meanwhile)
      const connectionOf = (w) => after.find(x => x.peerId === w.peerId)?.connection ?? before.find(x => x.peerId === w.peerId)?.connection ?? 'none'
      results[s.name] = {
        jobDone: summary != null,
        correct: got != null && Buffer.from(got.data).equals(Buffer.from(reference.data)),
        wallMs,
        piecesByWorker: Object.fromEntries(workers.map(w => [w.name, summary?.peers?.[w.peerId] ?? 0])),
        submitterPieces: summary?.peers?.[s.peerId] ?? 0,
        pieces: summary?.pieces ?? 0,
        // pieces over direct data channels (to a worker behind a router: one it opened back to the submitter)
        directPieces: summary?.directPieces ?? 0,
        paths: Object.fromEntries(workers.map(w => [w.name, pathOf(connectionOf(w), s.behindNat, w.name !== 'w0')])),
        reachableMs,
        // outside LAN mode a node behind a router tells no private address: a relayed one, if any
        addrsSeen: Object.fromEntries(workers.map(w => [w.name, before.find(x => x.peerId === w.peerId)?.addrs ?? []])),
        ...(summary == null ? { error: (run.stderr || run.stdout).trim().slice(0, 2000) } : {})
      }
      log(`${s.name} submitter: job ${summary != null ? 'done' : 'FAILED'} in ${wallMs} ms; ${workers.map(w => `${w.name} ${results[s.name].piecesByWorker[w.name]} pieces, ${results[s.name].paths[w.name]}`).join('; ')}`)
    }
    // what each worker says of itself (shoal node status)
    const reachability = {}
    for (const w of workers) {
      const r = await cli(topology, w.ns, ['node', 'status', '--json', '--data-dir', join(work, w.name)])
      reachability[w.name] = r.code === 0 ? JSON.parse(r.stdout).reachability : 'unknown'
    }
    // the lab of the brief: workers and submitter each behind a router; the public submitter beside it
    return { ...results.home, reachability, publicSubmitter: results.public, ...(upnp ? { upnp: upnpReport } : {}) }
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    await stopAll()
    topology.remove()
    await rm(work, { recursive: true, force: true })
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    const i = process.argv.indexOf('--relay')
    const report = await runLab({ log: say, relay: i > 0 ? process.argv[i + 1] : 'unlimited', upnp: process.argv.includes('--upnp') })
    if (json) process.stdout.write(JSON.stringify(report, null, 2) + '\n')
    else {
      say(`job ${report.jobDone ? 'done' : 'FAILED'} in ${report.wallMs} ms; outputs ${report.correct ? 'equal a local run' : 'DIFFER from a local run'}`)
      for (const [name, n] of Object.entries(report.piecesByWorker)) say(`  ${name}: ${n} pieces, reached ${report.paths[name]}, reachable after ${report.reachableMs[name]} ms, addresses told: ${report.addrsSeen[name].join(' ') || 'none'}`)
      if (report.error != null) say(report.error)
    }
    process.exit(report.jobDone && report.correct ? 0 : 1)
  } catch (err) {
    process.stderr.write(`nat-lab: ${err.message}\n`)
    process.exit(err instanceof LabError ? 2 : 1)
  }
}
