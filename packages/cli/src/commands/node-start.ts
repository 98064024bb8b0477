import { envName, NODE_OPTIONS, resolveConfig, ShoalNode } from '@shoal/node'
import type { OptionSpec, PeerEvent } from '@shoal/node'
import { DATA_DIR_FLAG, parse } from '../args.js'
import type { Command, CommandSpec, FlagSpec } from '../args.js'
import { formatBytes } from '../format.js'
import type { Io } from '../io.js'
import { SUMMARIES } from './summaries.js'

const NEGATABLE = new Set(['mdns', 'gpu', 'lan'])

function flagOf (option: OptionSpec): FlagSpec {
  return {
    name: option.flag,
    type: option.kind === 'boolean' ? 'boolean' : 'string',
    multiple: option.multiple,
    placeholder: option.placeholder,
    help: option.help,
    defaultText: option.defaultText,
    negatable: NEGATABLE.has(option.flag),
    env: envName(option)
  }
}

export const nodeStartSpec: CommandSpec = {
  name: 'node start',
  summary: SUMMARIES['node start'],
  usage: 'shoal node start [options]',
  flags: [DATA_DIR_FLAG, ...NODE_OPTIONS.map(flagOf)],
  details: `Once the node listens, the first line on stdout is
  ready <peerId> <multiaddr> [<multiaddr>...]
where each multiaddr ends in /p2p/<peerId> and can be given to another node as --bootstrap.
Logs go to stderr. SIGINT or SIGTERM stops the node cleanly: its peers are told it is leaving.

Settings come from, lowest precedence first: defaults, <data dir>/config.json (keys: ${NODE_OPTIONS.filter(o => o.flagOnly !== true).map(o => o.key).join(', ')}),
flags, then SHOAL_* environment variables. Lists in environment variables are comma-separated.

Examples:
  shoal node start
  shoal node start --data-dir /tmp/a --listen /ip4/127.0.0.1/tcp/4001 --no-mdns
  shoal node start --data-dir /tmp/b --bootstrap /ip4/127.0.0.1/tcp/4001/p2p/12D3KooW...`
}

function describe (event: PeerEvent): string {
  if (event.type === 'leave') return `peer ${event.peerId} ${event.reason === 'left' ? 'left' : 'expired (no ad in time)'}`
  const c = event.entry.capacity
  return `peer ${event.peerId} joined: ${c.cpu.cores} cores, ${c.providers.map(p => `${p.name} ${p.gflops} GFLOP/s`).join(', ') || 'no providers'}`
}

export async function nodeStart (argv: string[], io: Io): Promise<number> {
  const { values } = parse(nodeStartSpec, argv)
  const flags: Record<string, unknown> = {}
  for (const option of NODE_OPTIONS) flags[option.key] = values[option.flag]
  const config = await resolveConfig({ dataDir: values['data-dir'] as string | undefined, flags, env: io.env })

  // test-only hook: every inference on this node takes N times as long (tests of stragglers, simulations)
  const slowdown = io.env.SHOAL_TEST_SLOWDOWN == null ? 1 : Number(io.env.SHOAL_TEST_SLOWDOWN)
  const node = new ShoalNode({ config, slowdown: Number.isFinite(slowdown) && slowdown >= 1 ? slowdown : 1 })
  await node.start()
  io.stdout(`ready ${node.peerId} ${node.addrs.join(' ')}\n`)
  const status = node.status()
  io.log(`node ${node.peerId} on ${config.dataDir}`)
  io.log(`API at ${status.apiUrl}; providers: ${status.capacity.providers.map(p => `${p.name} ${p.gflops} GFLOP/s`).join(', ') || 'none'}${status.calibration.cached ? ' (cached calibration)' : ''}`)
  for (const failed of status.calibration.failed) io.log(`provider ${failed.name} does not work here: ${failed.error}`)
  for (const warning of node.startWarnings) io.log(`warning: ${warning}`)
  if (config.maxMemoryBytes > 0 && status.memory.rssBytes >= config.maxMemoryBytes) {
    io.log(`warning: this node already uses ${formatBytes(status.memory.rssBytes)} of memory, over its --max-memory of ${formatBytes(config.maxMemoryBytes)}: it will take no pieces until that changes`)
  }
  node.onPeerEvent(event => { if (event.type !== 'update') io.log(describe(event)) })

  return await new Promise<number>(resolve => {
    let stopping = false
    const shutdown = (signal: string): void => {
      if (stopping) {
        io.log(`${signal} again: exiting without a clean shutdown`)
        resolve(1)
        return
      }
      stopping = true
      io.log(`${signal}: leaving the mesh`)
      node.stop().then(() => resolve(0), err => {
        io.log(`shutdown failed: ${err.message}`)
        resolve(1)
      })
    }
    io.onSignal('SIGINT', () => shutdown('SIGINT'))
    io.onSignal('SIGTERM', () => shutdown('SIGTERM'))
  })
}

/** This file's commands, by name (main.ts loads the file when one of them runs). */
export const commands: Record<string, Command> = {
  'node start': { spec: nodeStartSpec, run: nodeStart }
}
