import { helpText } from './args.js'
import type { CommandSpec } from './args.js'
import { UsageError } from './errors.js'
import type { Io } from './io.js'
import { SHOAL_VERSION } from '@shoal/node/client'
import { SUMMARIES } from './commands/summaries.js'

interface Command {
  spec: CommandSpec
  run: (argv: string[], io: Io) => Promise<number>
}

/**
 * Each command by name, loaded only when it is the one asked for: `shoal peers` must not load the
 * node (libp2p, ONNX Runtime) that `shoal node start` runs, and answers in a fraction of the time.
 */
const COMMANDS: Array<{ name: string, load: () => Promise<Command> }> = [
  { name: 'node start', load: async () => { const m = await import('./commands/node-start.js'); return { spec: m.nodeStartSpec, run: m.nodeStart } } },
  { name: 'node status', load: async () => { const m = await import('./commands/node-status.js'); return { spec: m.nodeStatusSpec, run: m.nodeStatus } } },
  { name: 'peers', load: async () => { const m = await import('./commands/peers.js'); return { spec: m.peersSpec, run: m.peers } } },
  { name: 'id', load: async () => { const m = await import('./commands/id.js'); return { spec: m.idSpec, run: m.id } } },
  { name: 'run', load: async () => { const m = await import('./commands/run.js'); return { spec: m.runSpec, run: m.run } } },
  { name: 'model add', load: async () => { const m = await import('./commands/model.js'); return { spec: m.modelAddSpec, run: m.modelAdd } } },
  { name: 'model ls', load: async () => { const m = await import('./commands/model.js'); return { spec: m.modelLsSpec, run: m.modelLs } } },
  { name: 'model get', load: async () => { const m = await import('./commands/model.js'); return { spec: m.modelGetSpec, run: m.modelGet } } },
  { name: 'model rm', load: async () => { const m = await import('./commands/model.js'); return { spec: m.modelRmSpec, run: m.modelRm } } },
  { name: 'model pin', load: async () => { const m = await import('./commands/model.js'); return { spec: m.modelPinSpec, run: m.modelPin } } },
  { name: 'model unpin', load: async () => { const m = await import('./commands/model.js'); return { spec: m.modelUnpinSpec, run: m.modelUnpin } } },
  { name: 'sim', load: async () => { const m = await import('./commands/sim.js'); return { spec: m.simSpec, run: m.sim } } }
]

/** Every command, loaded: for tests that check each spec against its name and summary. */
export async function allCommands (): Promise<Command[]> {
  return await Promise.all(COMMANDS.map(async c => await c.load()))
}

function overview (): string {
  const width = Math.max(...COMMANDS.map(c => c.name.length)) + 2
  return [
    'shoal: a peer-to-peer inference mesh',
    '',
    'Usage: shoal <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map(c => `  ${c.name.padEnd(width)}${SUMMARIES[c.name]}`),
    '',
    '`shoal <command> --help` describes a command and every option.',
    'Exit status: 0 success, 1 failure while running, 2 bad input (wrong option, bad address, no running node, ...).'
  ].join('\n') + '\n'
}

/** Errors whose message is the whole story for the user: bad input, exit status 2. */
const INPUT_ERRORS = new Set(['UsageError', 'ConfigError', 'DataDirError', 'ListenError', 'NoRunningNodeError', 'ScenarioError'])

/** Runs the CLI; returns the exit status. Never throws. */
export async function main (argv: string[], io: Io): Promise<number> {
  try {
    if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
      const wanted = argv.slice(1).join(' ')
      const command = COMMANDS.find(c => c.name === wanted)
      io.stdout(command != null ? helpText((await command.load()).spec) : overview())
      return argv.length === 0 ? 2 : 0
    }
    if (argv[0] === '--version' || argv[0] === '-v') {
      io.stdout(`shoal ${SHOAL_VERSION}\n`)
      return 0
    }
    // the longest command name that prefixes argv: "node start" before "node"
    const entry = COMMANDS
      .filter(c => { const words = c.name.split(' '); return words.every((w, i) => argv[i] === w) })
      .sort((a, b) => b.name.length - a.name.length)[0]
    if (entry == null) {
      const near = COMMANDS.filter(c => c.name.startsWith(argv[0])).map(c => `shoal ${c.name}`)
      throw new UsageError(`unknown command "${argv.slice(0, 2).join(' ')}"${near.length > 0 ? ` (did you mean: ${near.join(', ')}?)` : ''}`)
    }
    const command = await entry.load()
    const rest = argv.slice(entry.name.split(' ').length)
    if (rest.includes('--help') || rest.includes('-h')) {
      io.stdout(helpText(command.spec))
      return 0
    }
    try {
      return await command.run(rest, io)
    } catch (err: any) {
      if (err instanceof UsageError) err.message += ` (see: shoal ${command.spec.name} --help)`
      throw err
    }
  } catch (err: any) {
    // the node refused the request as wrong (400, 404, 413): bad input too
    const input = INPUT_ERRORS.has(err?.name) || (err?.name === 'ApiError' && err.status < 500)
    io.log(`error: ${err?.message ?? String(err)}`)
    if (!input && io.env.SHOAL_DEBUG != null) io.log(err?.stack ?? '')
    return input ? 2 : 1
  }
}
