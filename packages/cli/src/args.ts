import { parseArgs } from 'node:util'
import type { ParseArgsConfig } from 'node:util'
import { UsageError } from './errors.js'
import type { Io } from './io.js'

export interface FlagSpec {
  name: string
  type: 'string' | 'boolean'
  multiple?: boolean
  placeholder?: string
  help: string
  defaultText?: string
  /** Shown in help as --name / --no-name. */
  negatable?: boolean
  env?: string
}

/** A command: its spec (name, flags, help) and what runs it. */
export interface Command {
  spec: CommandSpec
  run: (argv: string[], io: Io) => Promise<number>
}

export interface CommandSpec {
  /** e.g. "node start" */
  name: string
  summary: string
  usage: string
  flags: FlagSpec[]
  /** Free text after the options: examples, notes. */
  details?: string
  positionals?: boolean
}

export const DATA_DIR_FLAG: FlagSpec = {
  name: 'data-dir', type: 'string', placeholder: 'DIR', help: 'the node\'s data directory (identity, config.json, calibration, API token)', defaultText: '~/.shoal', env: 'SHOAL_DATA_DIR'
}
export const JSON_FLAG: FlagSpec = { name: 'json', type: 'boolean', help: 'print JSON instead of text' }
export const HELP_FLAG: FlagSpec = { name: 'help', type: 'boolean', help: 'show this help' }

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>
  positionals: string[]
}

/** Strict parsing: an unknown flag or a missing value is a UsageError naming it. */
export function parse (spec: CommandSpec, argv: string[]): Parsed {
  const options: ParseArgsConfig['options'] = {}
  for (const flag of [...spec.flags, HELP_FLAG]) {
    options[flag.name] = flag.multiple === true ? { type: flag.type, multiple: true } : { type: flag.type }
  }
  try {
    const { values, positionals } = parseArgs({ args: argv, options, strict: true, allowPositionals: spec.positionals === true, allowNegative: true })
    for (const flag of spec.flags) {
      if (flag.type === 'boolean' && flag.negatable !== true && values[flag.name] === false) {
        throw new UsageError(`unknown option --no-${flag.name}`)
      }
    }
    return { values: values as Parsed['values'], positionals }
  } catch (err: any) {
    if (err instanceof UsageError) throw err
    // Node's messages are precise but long; keep the first sentence
    throw new UsageError(String(err.message).split('. ')[0].replace(/^Unknown option/, 'unknown option').replace(/\.$/, ''))
  }
}

function flagLabel (flag: FlagSpec): string {
  const name = flag.negatable === true ? `--[no-]${flag.name}` : `--${flag.name}`
  return flag.placeholder != null ? `${name} ${flag.placeholder}` : name
}

export function helpText (spec: CommandSpec): string {
  const flags = [...spec.flags, HELP_FLAG]
  const width = Math.max(...flags.map(f => flagLabel(f).length)) + 2
  const lines = [`shoal ${spec.name}: ${spec.summary}`, '', `Usage: ${spec.usage}`, '', 'Options:']
  for (const flag of flags) {
    const extra = [
      flag.multiple === true ? 'repeatable' : undefined,
      flag.defaultText != null ? `default: ${flag.defaultText}` : undefined,
      flag.env != null ? `env: ${flag.env}` : undefined
    ].filter(x => x != null)
    lines.push(`  ${flagLabel(flag).padEnd(width)}${flag.help}${extra.length > 0 ? ` (${extra.join('; ')})` : ''}`)
  }
  if (spec.details != null) lines.push('', spec.details.trimEnd())
  return lines.join('\n') + '\n'
}
