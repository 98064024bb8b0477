import { readFile } from 'node:fs/promises'
import os from 'node:os'
import { join, resolve } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { DEFAULT_AD_INTERVAL_MS, DEFAULT_DATA_DIR, DEFAULT_LISTEN, DEFAULT_MAX_MODEL_BYTES, DEFAULT_MAX_PIECE_MS, DEFAULT_MAX_STORAGE_BYTES, MAX_COUNTED_AD_INTERVAL_MS, DEFAULT_BATCH_WINDOW_MS, MAX_BATCH_WINDOW_MS } from './constants.js'
import { ConfigError, DataDirError } from './errors.js'
import { DEFAULT_MAX_REQUEST_BYTES, MIN_AD_INTERVAL_MS } from '@shoal/protocol'
import { parseSwarmKey } from './mesh/swarm-key.js'
import { parseHourRange, parseModelPattern } from './preferences.js'

/** Everything that shapes a running node. Built by `resolveConfig` from defaults, config file, flags and env. */
export interface NodeConfig {
  dataDir: string
  listen: string[]
  /** Addresses others can reach this node at, announced instead of the listen addresses (a port forward). */
  announce: string[]
  bootstrap: string[]
  apiPort: number
  /** Serve the direct data channel (a TLS listener for big pieces' tensors; docs/protocol.md 6.1). */
  direct: boolean
  /** Its TCP port (0: any free one). */
  directPort: number
  mdns: boolean
  /** Treat loopback and private addresses as reachable (DHT, dialling). Automatic on a loopback-only node. */
  lan: boolean
  maxConcurrency: number
  /** Jobs submitted here run on peers only: this node computes their pieces only while no peer can. */
  peersOnly: boolean
  /** 0: no limit. */
  maxMemoryBytes: number
  gpu: boolean
  cpuThreads: number
  adIntervalMs: number
  recalibrate: boolean
  maxRequestBytes: number
  /**
   * The longest a piece from a peer may hold a slot, whatever deadline its submitter asked for (a
   * deadline is the client's choice, up to 49 days on the wire).
   */
  maxPieceSeconds: number
  maxModelBytes: number
  /** Storage quota for models; least recently used unpinned models are evicted past it. */
  maxStorageBytes: number
  /** Peers whose signed model names (`name@version`) this node accepts, besides its own. */
  trustedPublishers: string[]
  /**
   * Serve as a circuit relay (v2) for peers that cannot be reached: `off`; `limited`, with libp2p's
   * default limits per relayed connection (2 minutes, 128 KiB: enough to introduce peers and try a
   * hole punch, never pieces); `unlimited`, no limits (this node's bandwidth carries pieces between
   * peers that cannot reach each other).
   */
  relay: 'off' | 'limited' | 'unlimited'
  /** Reservations a relay holds at once. */
  relayMaxReservations: number
  /** Ask the router for a port mapping (UPnP IGD) and tell the mapped address. */
  upnp: boolean
  /** How long a small piece waits for others of its model to run with it as one batch, in ms (0: never). */
  batchWindowMs: number
  /** Models this node serves, if only some (preferences.ts patterns: CID, NAME, NAME@VERSION, publisher:PEERID); empty: all. */
  serveModels: string[]
  /** Models this node refuses to serve (the same patterns); a refusal wins over `serveModels`. */
  refuseModels: string[]
  /** Local hours when it takes pieces (HH:MM-HH:MM each); empty: always. */
  hours: string[]
  /** Take pieces only while other programs leave the machine idle. */
  whenIdle: boolean
  /** Take pieces only on AC power (where the OS tells). */
  onlyOnAc: boolean
  /** At most this percentage of the machine's logical cores for peers' pieces (1-100): pieces at once x threads each. */
  cpuShare: number
  /** The key file of the private mesh this node is in (absolute path); null: the public mesh. */
  swarmKey: string | null
  /** That key's 32 bytes, read and checked from the file (null without one). */
  swarmKeyBytes: Uint8Array | null
}

type Kind = 'multiaddr' | 'bootstrap' | 'peerid' | 'port' | 'count' | 'slots' | 'bytes' | 'boolean' | 'ms' | 'window' | 'seconds' | 'file' | 'relay' | 'model' | 'hours' | 'percent'

/** One node option: its flag, environment variable, config-file key and help, in one place. */
export interface OptionSpec {
  key: Exclude<keyof NodeConfig, 'dataDir' | 'swarmKeyBytes'>
  flag: string
  kind: Kind
  multiple?: boolean
  placeholder?: string
  help: string
  /** The default as the help shows it. */
  defaultText: string
  /** Not stored in config.json: it asks for an action, not a setting. */
  flagOnly?: boolean
}

export const NODE_OPTIONS: OptionSpec[] = [
  { key: 'listen', flag: 'listen', kind: 'multiaddr', multiple: true, placeholder: 'MULTIADDR', help: 'address to listen on; repeat for several', defaultText: DEFAULT_LISTEN.join(' and ') },
  { key: 'announce', flag: 'announce', kind: 'multiaddr', multiple: true, placeholder: 'MULTIADDR', help: 'an address others reach this node at (a router\'s port forward: /ip4/<public ip>/tcp/4001), announced instead of the listen addresses; repeat for several', defaultText: 'the listen addresses others can use' },
  { key: 'bootstrap', flag: 'bootstrap', kind: 'bootstrap', multiple: true, placeholder: 'MULTIADDR', help: 'a peer to join the mesh through, ending in /p2p/<peerId>; repeat for several', defaultText: 'none' },
  { key: 'apiPort', flag: 'api-port', kind: 'port', placeholder: 'N', help: 'port of the local HTTP API on 127.0.0.1 (0 picks a free one; the CLI finds it through the data dir)', defaultText: '0' },
  { key: 'direct', flag: 'direct', kind: 'boolean', help: 'accept big pieces\' tensors over a direct TLS connection, much faster than the libp2p stream (--no-direct turns the listener off)', defaultText: 'on' },
  { key: 'directPort', flag: 'direct-port', kind: 'port', placeholder: 'N', help: 'TCP port of the direct data channel, on the host of the first TCP listen address (0 picks a free one; forward it too behind NAT)', defaultText: '0' },
  { key: 'mdns', flag: 'mdns', kind: 'boolean', help: 'find peers on the local network with mDNS (--no-mdns turns it off)', defaultText: 'on' },
  { key: 'lan', flag: 'lan', kind: 'boolean', help: 'treat private and loopback addresses as reachable: a home cluster or a simulation', defaultText: 'on when every listen address is loopback' },
  { key: 'maxConcurrency', flag: 'max-concurrency', kind: 'slots', placeholder: 'N', help: 'pieces this node runs at once (0: none, for a bootstrap node or relay that computes nothing; its own jobs then wait for peers)', defaultText: '2' },
  { key: 'peersOnly', flag: 'peers-only', kind: 'boolean', help: 'jobs submitted on this node run on peers only: it computes their pieces only while no peer can (a laptop on battery); a job\'s own choice (shoal run --share or --peers-only) wins', defaultText: 'off: this node takes a share of its own jobs whenever it would finish a piece first' },
  { key: 'maxMemoryBytes', flag: 'max-memory', kind: 'bytes', placeholder: 'SIZE', help: 'memory this node may use, e.g. 4GiB or 512MB: no piece starts while the process\'s resident memory plus its inputs would exceed it (0: no limit)', defaultText: 'half of total memory' },
  { key: 'gpu', flag: 'gpu', kind: 'boolean', help: 'let the mesh use this machine\'s GPU (--no-gpu turns it off)', defaultText: 'on' },
  { key: 'cpuThreads', flag: 'cpu-threads', kind: 'count', placeholder: 'N', help: 'CPU threads per inference session', defaultText: 'all logical cores' },
  { key: 'adIntervalMs', flag: 'ad-interval', kind: 'ms', placeholder: 'MS', help: `how often to publish this node's capacity ad, in ms (${MIN_AD_INTERVAL_MS}-${MAX_COUNTED_AD_INTERVAL_MS})`, defaultText: String(DEFAULT_AD_INTERVAL_MS) },
  { key: 'batchWindowMs', flag: 'batch-window', kind: 'window', placeholder: 'MS', help: `how long a small piece from a peer (a request) that arrives while this node computes may wait to run with others of its model as one ONNX Runtime call, in ms (0-${MAX_BATCH_WINDOW_MS}; 0: never)`, defaultText: String(DEFAULT_BATCH_WINDOW_MS) },
  { key: 'maxRequestBytes', flag: 'max-request-size', kind: 'bytes', placeholder: 'SIZE', help: 'largest piece (input tensors) this node accepts from a peer', defaultText: '256MiB' },
  { key: 'maxPieceSeconds', flag: 'max-piece-time', kind: 'seconds', placeholder: 'SECONDS', help: 'longest a piece from a peer may run here, its inputs\' transfer included, whatever deadline the peer asks for (1-86400)', defaultText: String(DEFAULT_MAX_PIECE_MS / 1000) },
  { key: 'maxModelBytes', flag: 'max-model-size', kind: 'bytes', placeholder: 'SIZE', help: 'largest model this node stores or runs', defaultText: '1GiB' },
  { key: 'maxStorageBytes', flag: 'max-storage', kind: 'bytes', placeholder: 'SIZE', help: 'disk space for models; the least recently used unpinned model is evicted past it', defaultText: '20GiB' },
  { key: 'relay', flag: 'relay', kind: 'relay', placeholder: 'off|limited|unlimited', help: 'serve as a circuit relay for peers that cannot be reached: limited (2 minutes and 128 KiB a connection: introductions and hole punching only) or unlimited (your bandwidth carries pieces between peers behind routers)', defaultText: 'off' },
  { key: 'upnp', flag: 'upnp', kind: 'boolean', help: 'ask your router to forward a port to this node (UPnP), and tell peers the public address it maps', defaultText: 'off' },
  { key: 'relayMaxReservations', flag: 'relay-max-reservations', kind: 'count', placeholder: 'N', help: 'peers a relay holds a reservation for at once', defaultText: '15' },
  { key: 'swarmKey', flag: 'swarm-key', kind: 'file', placeholder: 'FILE', help: 'join the private mesh of this pre-shared key (shoal key generate makes one): only nodes with the same key can connect to this one', defaultText: 'none: the public mesh' },
  { key: 'trustedPublishers', flag: 'trust', kind: 'peerid', multiple: true, placeholder: 'PEERID', help: 'accept model names (name@version) signed by this peer; repeat for several (this node\'s own names are always trusted)', defaultText: 'none' },
  { key: 'serveModels', flag: 'serve-model', kind: 'model', multiple: true, placeholder: 'PATTERN', help: 'serve pieces only of models that match: a CID, a name (resnet, or resnet@1.0) or publisher:PEERID (names match only models this node knows by that name); repeat for several', defaultText: 'every model' },
  { key: 'refuseModels', flag: 'refuse-model', kind: 'model', multiple: true, placeholder: 'PATTERN', help: 'never serve pieces of models that match (the same patterns; a refusal wins over --serve-model); repeat for several', defaultText: 'none' },
  { key: 'hours', flag: 'hours', kind: 'hours', multiple: true, placeholder: 'HH:MM-HH:MM', help: 'take pieces only during these local hours (22:00-07:00 runs over midnight; 9-17 is 09:00-17:00); repeat for several ranges. Outside them the node finishes what it runs and takes nothing new', defaultText: 'all day' },
  { key: 'whenIdle', flag: 'when-idle', kind: 'boolean', help: 'take pieces only while other programs use less than a quarter of the machine\'s CPU (idle again after 30 s below it)', defaultText: 'off' },
  { key: 'onlyOnAc', flag: 'only-on-ac', kind: 'boolean', help: 'take pieces only on AC power (Linux and macOS tell; elsewhere, or on a machine without a battery, the node serves)', defaultText: 'off' },
  { key: 'cpuShare', flag: 'cpu-share', kind: 'percent', placeholder: 'PERCENT', help: 'use at most this share of the machine\'s logical cores for peers\' pieces, 1-100: pieces at once times threads per piece are lowered to fit (at least one of each)', defaultText: '100' },
  { key: 'recalibrate', flag: 'recalibrate', kind: 'boolean', help: 'measure execution providers again instead of using the cached calibration', defaultText: 'off', flagOnly: true }
]

function isPeerIdText (text: string): boolean {
  try {
    peerIdFromString(text)
    return true
  } catch {
    return false
  }
}

/** SHOAL_MAX_CONCURRENCY for max-concurrency, and so on. */
export function envName (spec: Pick<OptionSpec, 'flag'>): string {
  return 'SHOAL_' + spec.flag.toUpperCase().replaceAll('-', '_')
}

const BYTE_UNITS: Record<string, number> = {
  '': 1, b: 1, kb: 1e3, mb: 1e6, gb: 1e9, tb: 1e12, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4
}

/** "4GiB" -> 4294967296. Plain numbers are bytes. */
export function parseBytes (text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text)
  const unit = BYTE_UNITS[match?.[2]?.toLowerCase() ?? 'x']
  if (match == null || unit == null) throw new Error(`"${text}" is not a size (examples: 4GiB, 512MB, 1000000)`)
  return Math.round(Number(match[1]) * unit)
}

/** A repeatable option's values: an array (flags, config file) or one comma-separated string (env). */
function listOf (raw: unknown): unknown[] {
  return Array.isArray(raw) ? raw : String(raw).split(',').map(s => s.trim()).filter(s => s !== '')
}

function parseValue (spec: OptionSpec, raw: unknown, source: string): unknown {
  const where = `${source}: `
  const fail = (why: string): never => { throw new ConfigError(`${where}${why}`) }
  switch (spec.kind) {
    case 'boolean': {
      if (typeof raw === 'boolean') return raw
      const text = String(raw).toLowerCase()
      if (['1', 'true', 'yes', 'on'].includes(text)) return true
      if (['0', 'false', 'no', 'off'].includes(text)) return false
      return fail(`expected true or false, got "${String(raw)}"`)
    }
    case 'port': case 'count': case 'slots': case 'ms': case 'window': case 'seconds': {
      const n = typeof raw === 'number' ? raw : Number(String(raw).trim())
      const [min, max] = spec.kind === 'port' || spec.kind === 'slots' ? [0, 65535] : spec.kind === 'ms' ? [MIN_AD_INTERVAL_MS, MAX_COUNTED_AD_INTERVAL_MS] : spec.kind === 'window' ? [0, MAX_BATCH_WINDOW_MS] : spec.kind === 'seconds' ? [1, 86_400] : [1, 65535]
      if (String(raw).trim() === '' || !Number.isInteger(n) || n < min || n > max) fail(`expected an integer from ${min} to ${max}, got "${String(raw)}"`)
      return n
    }
    case 'bytes':
      try {
        return typeof raw === 'number' ? raw : parseBytes(String(raw))
      } catch (err: any) {
        return fail(err.message)
      }
    case 'peerid': {
      return listOf(raw).map(text => {
        try {
          return peerIdFromString(String(text)).toString()
        } catch (err: any) {
          return fail(`"${String(text)}" is not a peer id (${err.message})`)
        }
      })
    }
    case 'model': {
      return listOf(raw).map(text => {
        try {
          parseModelPattern(String(text), isPeerIdText)
          return String(text).trim()
        } catch (err: any) {
          return fail(err.message)
        }
      })
    }
    case 'hours': {
      return listOf(raw).map(text => {
        try {
          parseHourRange(String(text))
          return String(text).trim()
        } catch (err: any) {
          return fail(err.message)
        }
      })
    }
    case 'percent': {
      const n = typeof raw === 'number' ? raw : Number(String(raw).trim().replace(/%$/, ''))
      if (String(raw).trim() === '' || !Number.isFinite(n) || n < 1 || n > 100) fail(`expected a percentage from 1 to 100, got "${String(raw)}"`)
      return n
    }
    case 'relay': {
      const text = String(raw).toLowerCase()
      if (text === 'off' || text === 'limited' || text === 'unlimited') return text
      return fail(`expected off, limited or unlimited, got "${String(raw)}"`)
    }
    case 'file':
      if (typeof raw !== 'string' || raw.trim() === '') return fail('expected a file name')
      return resolve(raw)
    case 'multiaddr': case 'bootstrap': {
      return listOf(raw).map(text => {
        let ma
        try {
          ma = multiaddr(String(text))
        } catch (err: any) {
          return fail(`"${String(text)}" is not a valid multiaddr (${err.message})`)
        }
        if (spec.kind === 'bootstrap' && ma.getComponents().findLast(c => c.name === 'p2p') == null) {
          fail(`"${String(text)}" has no /p2p/<peerId> at the end: a bootstrap address must name the peer`)
        }
        return ma.toString()
      })
    }
  }
}

function sourceName (spec: OptionSpec, layer: 'file' | 'flag' | 'env', file: string): string {
  if (layer === 'flag') return `--${spec.flag}`
  if (layer === 'env') return envName(spec)
  return `${file}: "${spec.key}"`
}

export interface ResolveConfigInit {
  /** --data-dir, if given. */
  dataDir?: string
  /** Parsed flags by option key (strings or booleans as the command line gave them). */
  flags?: Partial<Record<OptionSpec['key'], unknown>>
  env?: Record<string, string | undefined>
}

/**
 * Builds the node's configuration. Precedence, lowest first: defaults, `<dataDir>/config.json`, flags,
 * `SHOAL_*` environment variables. Every value is validated; a bad one throws `ConfigError` naming where it came from.
 */
export async function resolveConfig (init: ResolveConfigInit = {}): Promise<NodeConfig> {
  const env = init.env ?? process.env
  const dataDir = resolve(env.SHOAL_DATA_DIR ?? init.dataDir ?? DEFAULT_DATA_DIR)
  const configFile = join(dataDir, 'config.json')

  let fileValues: Record<string, unknown> = {}
  try {
    const text = await readFile(configFile, 'utf8')
    try {
      fileValues = JSON.parse(text)
    } catch (err: any) {
      throw new ConfigError(`${configFile} is not valid JSON (${err.message})`)
    }
    if (typeof fileValues !== 'object' || fileValues == null || Array.isArray(fileValues)) {
      throw new ConfigError(`${configFile} must hold a JSON object`)
    }
    const known = new Set(NODE_OPTIONS.filter(o => o.flagOnly !== true).map(o => o.key as string))
    for (const key of Object.keys(fileValues)) {
      if (!known.has(key)) throw new ConfigError(`${configFile}: unknown setting "${key}" (known: ${[...known].join(', ')})`)
    }
  } catch (err: any) {
    if (err.code === 'ENOTDIR' || err.code === 'EACCES') throw new DataDirError(`cannot use data dir ${dataDir}: ${err.code} (choose another with --data-dir)`)
    if (err.code !== 'ENOENT') throw err.name === 'ConfigError' ? err : new ConfigError(`cannot read ${configFile}: ${err.message}`)
  }

  const totalMemory = os.totalmem()
  const values: Record<string, unknown> = {
    dataDir,
    listen: DEFAULT_LISTEN,
    announce: [],
    bootstrap: [],
    apiPort: 0,
    direct: true,
    directPort: 0,
    mdns: true,
    lan: undefined,
    maxConcurrency: 2,
    peersOnly: false,
    maxMemoryBytes: Math.floor(totalMemory / 2),
    gpu: true,
    cpuThreads: os.availableParallelism(),
    adIntervalMs: DEFAULT_AD_INTERVAL_MS,
    batchWindowMs: DEFAULT_BATCH_WINDOW_MS,
    recalibrate: false,
    maxRequestBytes: DEFAULT_MAX_REQUEST_BYTES,
    maxPieceSeconds: DEFAULT_MAX_PIECE_MS / 1000,
    maxModelBytes: DEFAULT_MAX_MODEL_BYTES,
    maxStorageBytes: DEFAULT_MAX_STORAGE_BYTES,
    trustedPublishers: [],
    relay: 'off',
    relayMaxReservations: 15,
    upnp: false,
    swarmKey: null,
    swarmKeyBytes: null,
    serveModels: [],
    refuseModels: [],
    hours: [],
    whenIdle: false,
    onlyOnAc: false,
    cpuShare: 100
  }
  for (const spec of NODE_OPTIONS) {
    const layers: Array<['file' | 'flag' | 'env', unknown]> = [
      ['file', spec.flagOnly === true ? undefined : fileValues[spec.key]],
      ['flag', init.flags?.[spec.key]],
      ['env', env[envName(spec)]]
    ]
    for (const [layer, raw] of layers) {
      if (raw === undefined || (Array.isArray(raw) && raw.length === 0 && layer !== 'file')) continue
      values[spec.key] = parseValue(spec, raw, sourceName(spec, layer, configFile))
    }
  }
  if ((values.listen as string[]).length === 0) throw new ConfigError('no listen address: give at least one --listen')
  if (values.lan === undefined) values.lan = (values.listen as string[]).every(isLoopback)
  if (values.swarmKey != null) values.swarmKeyBytes = await readSwarmKey(values.swarmKey as string)
  const config = values as unknown as NodeConfig
  if (config.cpuShare < 100) Object.assign(config, withinCpuShare(config, os.availableParallelism()))
  return config
}

/** Pieces at once and threads per piece lowered so that together they use at most `cpuShare` of `cores` (at least 1 each). */
export function withinCpuShare (config: Pick<NodeConfig, 'maxConcurrency' | 'cpuThreads' | 'cpuShare'>, cores: number): { maxConcurrency: number, cpuThreads: number } {
  const budget = Math.max(1, Math.floor(cores * config.cpuShare / 100))
  const maxConcurrency = config.maxConcurrency === 0 ? 0 : Math.min(config.maxConcurrency, budget)
  const cpuThreads = Math.max(1, Math.min(config.cpuThreads, Math.floor(budget / Math.max(1, maxConcurrency))))
  return { maxConcurrency, cpuThreads }
}

/** A swarm key file's key, or a ConfigError naming the file and what is wrong. */
async function readSwarmKey (file: string): Promise<Uint8Array> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err: any) {
    throw new ConfigError(`--swarm-key: cannot read ${file} (${err.code ?? err.message})`)
  }
  try {
    return parseSwarmKey(text)
  } catch (err: any) {
    throw new ConfigError(`--swarm-key: ${file} is ${err.message}`)
  }
}

/** True for a multiaddr on 127.0.0.0/8 or ::1. */
export function isLoopback (addr: string): boolean {
  const ip = multiaddr(addr).getComponents().find(c => c.name === 'ip4' || c.name === 'ip6')?.value
  return ip != null && (ip.startsWith('127.') || ip === '::1')
}
