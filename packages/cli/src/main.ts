import { helpText } from './args.js'
import type { CommandSpec } from './args.js'
import { id, idSpec } from './commands/id.js'
import { nodeStart, nodeStartSpec } from './commands/node-start.js'
import { nodeStatus, nodeStatusSpec } from './commands/node-status.js'
import { peers, peersSpec } from './commands/peers.js'
import { run, runSpec } from './commands/run.js'
import { sim, simSpec } from './commands/sim.js'
import { modelAdd, modelAddSpec, modelGet, modelGetSpec, modelLs, modelLsSpec, modelPin, modelPinSpec, modelRm, modelRmSpec, modelUnpin, modelUnpinSpec } from './commands/model.js'
import { UsageError } from './errors.js'
import type { Io } from './io.js'
import { SHOAL_VERSION } from '@shoal/node'

interface Command {
  spec: CommandSpec
  run: (argv: string[], io: Io) => Promise<number>
}

const COMMANDS: Command[] = [
  { spec: nodeStartSpec, run: nodeStart },
  { spec: nodeStatusSpec, run: nodeStatus },
  { spec: peersSpec, run: peers },
  { spec: idSpec, run: id },
  { spec: runSpec, run },
  { spec: modelAddSpec, run: modelAdd },
  { spec: modelLsSpec, run: modelLs },
  { spec: modelGetSpec, run: modelGet },
  { spec: modelRmSpec, run: modelRm },
  { spec: modelPinSpec, run: modelPin },
  { spec: modelUnpinSpec, run: modelUnpin },
  { spec: simSpec, run: sim }
]

function overview (): string {
  const width = Math.max(...COMMANDS.map(c => c.spec.name.length)) + 2
  return [
    'shoal: a peer-to-peer inference mesh',
    '',
    'Usage: shoal <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map(c => `  ${c.spec.name.padEnd(width)}${c.spec.summary}`),
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
      const command = COMMANDS.find(c => c.spec.name === wanted)
      io.stdout(command != null ? helpText(command.spec) : overview())
      return argv.length === 0 ? 2 : 0
    }
    if (argv[0] === '--version' || argv[0] === '-v') {
      io.stdout(`shoal ${SHOAL_VERSION}\n`)
      return 0
    }
    // the longest command name that prefixes argv: "node start" before "node"
    const command = COMMANDS
      .filter(c => { const words = c.spec.name.split(' '); return words.every((w, i) => argv[i] === w) })
      .sort((a, b) => b.spec.name.length - a.spec.name.length)[0]
    if (command == null) {
      const near = COMMANDS.filter(c => c.spec.name.startsWith(argv[0])).map(c => `shoal ${c.spec.name}`)
      throw new UsageError(`unknown command "${argv.slice(0, 2).join(' ')}"${near.length > 0 ? ` (did you mean: ${near.join(', ')}?)` : ''}`)
    }
    const rest = argv.slice(command.spec.name.split(' ').length)
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
