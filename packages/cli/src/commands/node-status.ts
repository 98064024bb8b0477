import { ApiClient } from '@shoal/node/client'
import type { Contribution, CreditView, NodeStatus } from '@shoal/node/client'
import { DATA_DIR_FLAG, JSON_FLAG, parse } from '../args.js'
import type { Command, CommandSpec } from '../args.js'
import { formatBytes, formatDuration } from '../format.js'
import type { Io } from '../io.js'
import { dataDirOf } from './peers.js'
import { servingLine } from './node-pause.js'
import { SUMMARIES } from './summaries.js'

export const nodeStatusSpec: CommandSpec = {
  name: 'node status',
  summary: SUMMARIES['node status'],
  usage: 'shoal node status [--data-dir DIR] [--json]',
  flags: [DATA_DIR_FLAG, JSON_FLAG],
  details: 'With --json, prints the object GET /v1/status returns (docs/api.md).'
}

function contribution (c: Contribution): string {
  const pieces = `${c.pieces} ${c.pieces === 1 ? 'piece' : 'pieces'} (${c.rows} rows, ${formatDuration(c.computeSeconds * 1000)} of compute)`
  return `${pieces} and ${formatBytes(c.modelBytesServed)} of models served to others since start`
}

/** The volunteer's preferences, where any is set. */
function preferences (s: NodeStatus['serving']): string[] {
  const set = [
    ...(s.serveModels.length > 0 ? [`only models ${s.serveModels.join(', ')}`] : []),
    ...(s.refuseModels.length > 0 ? [`never models ${s.refuseModels.join(', ')}`] : []),
    ...(s.hours.length > 0 ? [`hours ${s.hours.join(', ')}`] : []),
    ...(s.whenIdle ? [`when idle (the machine now ${s.machineBusy == null ? 'not yet measured' : s.machineBusy ? 'in use' : 'idle'})`] : []),
    ...(s.onlyOnAc ? [`only on AC power (now ${s.onAc == null ? 'not told by the OS: serving' : s.onAc ? 'on AC' : 'on battery'})`] : []),
    ...(s.cpuShare < 100 ? [`${s.cpuShare}% of the CPU cores`] : [])
  ]
  return set.length === 0 ? [] : [`preferences  ${set.join('; ')}`]
}

/** Work units, short: 1234567 -> 1.2M. */
function units (n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(1)}G`
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`
  if (n >= 1e4) return `${(n / 1e3).toFixed(1)}k`
  return String(Math.round(n))
}

/** What the node earned and gave (docs/trust.md, "Credit"): its receipts, what it signed, who has credit here. */
function credit (c: CreditView): string[] {
  const e = c.earned
  const earned = e.receipts === 0
    ? 'no receipts yet: submitters sign one for each piece of theirs this node runs'
    : `${e.receipts} ${e.receipts === 1 ? 'receipt' : 'receipts'} from ${e.submitters} ${e.submitters === 1 ? 'submitter' : 'submitters'} (${e.rows} rows, ${units(e.work)} work units)`
  const top = c.peers.slice(0, 3).map(p => `${p.peerId.slice(-8)} ${units(p.direct + p.transitive)}`).join(', ')
  return [
    `earned       ${earned}`,
    `credit       signed ${c.issued.receipts} ${c.issued.receipts === 1 ? 'receipt' : 'receipts'} (${units(c.issued.work)} units) for peers' work; ${c.peers.length === 0 ? 'no peer has credit here yet' : `${c.peers.length}${c.peers.length === 50 ? '+' : ''} ${c.peers.length === 1 ? 'peer has' : 'peers have'} credit here (most: ${top})`}; credit halves every ${c.halfLifeDays} days`
  ]
}

/** What each reachability means for the volunteer (docs/operators.md, "Ports and reachability"). */
const REACHABILITY: Record<string, string> = {
  lan: 'LAN mode: peers reach it at its loopback and private addresses',
  public: 'at its own addresses (above)',
  relayed: 'only through a relay: submitters behind routers send it pieces only through a relay without limits (--relay unlimited); others over the connections it opens',
  'outbound-only': 'no address peers can dial: it gets pieces only over the connections it opens, from submitters with public addresses; forward a port and --announce it, or reach a relay'
}

export async function nodeStatus (argv: string[], io: Io): Promise<number> {
  const { values } = parse(nodeStatusSpec, argv)
  const status = await (await ApiClient.connect(dataDirOf(values, io))).status()
  if (values.json === true) {
    io.stdout(JSON.stringify(status, null, 2) + '\n')
    return 0
  }
  const c = status.capacity
  const refused = Object.entries(status.refusedAds).map(([k, v]) => `${k} ${v}`).join(', ')
  io.stdout([
    `peer id      ${status.peerId}`,
    `version      ${status.version}, up ${formatDuration(status.uptimeMs)}`,
    `data dir     ${status.dataDir}`,
    `API          ${status.apiUrl}`,
    `addresses    ${status.addrs.join('\n             ')}`,
    `direct       ${status.direct == null ? 'off (big pieces come over libp2p streams)' : `TLS on ${status.direct.host} port ${status.direct.port} (forward it too behind NAT)`}`,
    `mesh         ${status.privateMesh == null ? 'public' : `private (swarm key ${status.privateMesh}): only nodes with the same key can connect`}`,
    `reachable    ${REACHABILITY[status.reachability]}`,
    `connections  ${status.connections} to ${status.connectedPeers} peers; ${status.dhtPeers} peers in the DHT routing table`,
    `peer table   ${status.peers} peers with live ads${refused === '' ? '' : `; ads refused: ${refused}`}`,
    `hardware     ${c.cpu.cores} x ${c.cpu.model}, ${formatBytes(c.memory.totalBytes)} memory, ${c.os} ${c.arch}${c.gpu != null ? `, GPU ${c.gpu}` : ''}`,
    `providers    ${c.providers.map(p => `${p.name} ${p.gflops} GFLOP/s`).join(', ') || 'none'}${status.calibration.cached ? ' (cached calibration)' : ''}`,
    ...status.calibration.failed.map(f => `             ${f.name} does not work here: ${f.error}`),
    `limits       ${c.limits.maxConcurrency} pieces at once, ${c.limits.cpuThreads} CPU threads, memory ${c.limits.maxMemoryBytes === 0 ? 'unlimited' : formatBytes(c.limits.maxMemoryBytes)}${c.limits.noGpu ? ', no GPU' : ''}`,
    `work         ${c.freeSlots} free slots, ${c.queueLength} queued`,
    `serving      ${servingLine(status.serving)}`,
    ...preferences(status.serving),
    `contributed  ${contribution(status.contributed)}`,
    ...credit(status.credit)
  ].join('\n') + '\n')
  return 0
}

/** This file's commands, by name (main.ts loads the file when one of them runs). */
export const commands: Record<string, Command> = {
  'node status': { spec: nodeStatusSpec, run: nodeStatus }
}
