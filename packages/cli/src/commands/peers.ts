import { ApiClient, DEFAULT_DATA_DIR, INCOMPATIBLE_VERSIONS } from '@shoal/node/client'
import type { PeerView } from '@shoal/node/client'
import { DATA_DIR_FLAG, JSON_FLAG, parse } from '../args.js'
import type { Command, CommandSpec } from '../args.js'
import { formatBytes, formatDuration, formatTable } from '../format.js'
import type { Io } from '../io.js'
import { SUMMARIES } from './summaries.js'

export const peersSpec: CommandSpec = {
  name: 'peers',
  summary: SUMMARIES['peers'],
  usage: 'shoal peers [--data-dir DIR] [--json]',
  flags: [DATA_DIR_FLAG, JSON_FLAG],
  details: `Asks the node running on the data dir for its peer table: every peer whose capacity ad is live.
VERSION is the software version of its ad; a peer of a version whose wire this node cannot share
pieces with is marked "(no work: older wire)" and gets no pieces of this node's jobs.
With --json, prints an array of objects with peerId, version, addrs, cpu {model, cores}, memory {totalBytes,
freeBytes}, gpu, providers [{name, gflops}], limits, freeSlots, queueLength, models, lastSeenMs
(milliseconds since its last ad arrived), standing {verified, offences, excludedUntil, checkShare} and
connection (outbound, inbound, relayed or none: how this node is connected to the peer now).
LINK is how this node is connected to the peer now: out (this node dialled it), in (it dialled this
node, as a peer behind a router does), relayed (only through a relay), - (not connected).
STANDING is what this node's jobs have seen of the peer's answers (docs/trust.md): "new", the number
of its answers verified in a row and the share of its answers --verify spot still checks, or
"excluded" with the time left, after a wrong answer.`
}

export function dataDirOf (values: Record<string, unknown>, io: Io): string {
  return io.env.SHOAL_DATA_DIR ?? (values['data-dir'] as string | undefined) ?? DEFAULT_DATA_DIR
}

/** How this node is connected to a peer, in a word (the peer dialled in: it may sit behind a router). */
const CONNECTION: Record<string, string> = { outbound: 'out', inbound: 'in', relayed: 'relayed', none: '-' }

export function peersTable (peers: PeerView[], now = Date.now()): string {
  if (peers.length === 0) return 'no peers yet: the node has not received any capacity ad\n'
  const rows = peers.map(p => [
    p.peerId,
    // a version this node gives no pieces to says so: otherwise the peer looks idle for no reason
    INCOMPATIBLE_VERSIONS.has(p.version) ? `${p.version} (no work: older wire)` : p.version,
    p.addrs.length === 0 ? '-' : p.addrs[0] + (p.addrs.length > 1 ? ` (+${p.addrs.length - 1})` : ''),
    String(p.cpu.cores),
    formatBytes(p.memory.totalBytes),
    p.gpu ?? '-',
    p.providers.map(x => `${x.name} ${x.gflops.toFixed(1)}`).join(', ') || '-',
    p.paused === true ? `paused/${p.limits.maxConcurrency}` : `${p.freeSlots}/${p.limits.maxConcurrency}`,
    standingText(p.standing, now),
    CONNECTION[p.connection] ?? p.connection,
    `${formatDuration(p.lastSeenMs)} ago`
  ])
  return formatTable(['PEER', 'VERSION', 'ADDRESS', 'CORES', 'MEMORY', 'GPU', 'PROVIDERS (GFLOP/s)', 'FREE', 'STANDING', 'LINK', 'LAST AD'], rows)
}

/** "new", "12 verified (checks 100%)", "excluded 55m0s (2 offences)": what this node's jobs make of a peer's answers. */
export function standingText (s: PeerView['standing'], now: number): string {
  if (s.excludedUntil != null) return `excluded ${formatDuration(Math.max(0, s.excludedUntil - now))} (${s.offences} offence${s.offences === 1 ? '' : 's'})`
  if (s.verified === 0 && s.offences === 0) return 'new'
  return `${s.verified} verified (checks ${Math.round(s.checkShare * 100)}%)${s.offences > 0 ? `, ${s.offences} offence${s.offences === 1 ? '' : 's'}` : ''}`
}

export async function peers (argv: string[], io: Io): Promise<number> {
  const { values } = parse(peersSpec, argv)
  const client = await ApiClient.connect(dataDirOf(values, io))
  const list = await client.peers()
  io.stdout(values.json === true ? JSON.stringify(list, null, 2) + '\n' : peersTable(list))
  return 0
}

/** This file's commands, by name (main.ts loads the file when one of them runs). */
export const commands: Record<string, Command> = {
  'peers': { spec: peersSpec, run: peers }
}
