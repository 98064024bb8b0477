import { helpText } from './args.js'
import type { Command } from './args.js'
import { UsageError } from './errors.js'
import type { Io } from './io.js'
import { SHOAL_VERSION } from '@shoal/node/client'
import { SUMMARIES } from './commands/summaries.js'

/**
 * The file of each command, loaded only when it is the one asked for: `shoal peers` must not load the
 * node (libp2p, ONNX Runtime) that `shoal node start` runs, and answers in a fraction of the time.
 * The overview shows SUMMARIES, which name the same commands in the same order.
 */
const FILES: Record<string, () => Promise<{ commands: Record<string, Command> }>> = {
  'node start': async () => await import('./commands/node-start.js'),
  'node status': async () => await import('./commands/node-status.js'),
  'node pause': async () => await import('./commands/node-pause.js'),
  'node resume': async () => await import('./commands/node-pause.js'),
  'node dashboard': async () => await import('./commands/node-dashboard.js'),
  peers: async () => await import('./commands/peers.js'),
  id: async () => await import('./commands/id.js'),
  run: async () => await import('./commands/run.js'),
  infer: async () => await import('./commands/infer.js'),
  'model add': async () => await import('./commands/model.js'),
  'model ls': async () => await import('./commands/model.js'),
  'model get': async () => await import('./commands/model.js'),
  'model split': async () => await import('./commands/model-split.js'),
  'model rm': async () => await import('./commands/model.js'),
  'model pin': async () => await import('./commands/model.js'),
  'model unpin': async () => await import('./commands/model.js'),
  'key generate': async () => await import('./commands/key.js'),
  sim: async () => await import('./commands/sim.js')
}
const NAMES = Object.keys(SUMMARIES)

async function load (name: string): Promise<Command> {
  return (await FILES[name]()).commands[name]
}

/** Every command, loaded: for tests that check each spec against its name and summary. */
export async function allCommands (): Promise<Command[]> {
  return await Promise.all(NAMES.map(load))
}

function overview (): string {
  const width = Math.max(...NAMES.map(name => name.length)) + 2
  return [
    'shoal: a peer-to-peer inference mesh',
    '',
    'Usage: shoal <command> [options]',
    '',
    'Commands:',
    ...NAMES.map(name => `  ${name.padEnd(width)}${SUMMARIES[name]}`),
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
      io.stdout(NAMES.includes(wanted) ? helpText((await load(wanted)).spec) : overview())
      return argv.length === 0 ? 2 : 0
    }
    if (argv[0] === '--version' || argv[0] === '-v') {
      io.stdout(`shoal ${SHOAL_VERSION}\n`)
      return 0
    }
    // the longest command name that prefixes argv: "node start" before "node"
    const name = NAMES
      .filter(n => n.split(' ').every((w, i) => argv[i] === w))
      .sort((a, b) => b.length - a.length)[0]
    if (name == null) {
      const near = NAMES.filter(n => n.startsWith(argv[0])).map(n => `shoal ${n}`)
      throw new UsageError(`unknown command "${argv.slice(0, 2).join(' ')}"${near.length > 0 ? ` (did you mean: ${near.join(', ')}?)` : ''}`)
    }
    const command = await load(name)
    const rest = argv.slice(name.split(' ').length)
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
