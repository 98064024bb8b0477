import { describe, expect, it } from 'vitest'
import { helpText, parse } from '../src/args.js'
import type { CommandSpec } from '../src/args.js'
import { formatBytes, formatDuration, formatTable } from '../src/format.js'
import { main } from '../src/main.js'
import type { Io } from '../src/io.js'

const spec: CommandSpec = {
  name: 'try',
  summary: 'a command for tests',
  usage: 'shoal try [options]',
  flags: [
    { name: 'listen', type: 'string', multiple: true, placeholder: 'MULTIADDR', help: 'where', env: 'SHOAL_LISTEN' },
    { name: 'mdns', type: 'boolean', negatable: true, help: 'mdns', defaultText: 'on' },
    { name: 'json', type: 'boolean', help: 'json' }
  ]
}

function io (): Io & { out: string, err: string[] } {
  const result = {
    out: '',
    err: [] as string[],
    stdout: (text: string) => { result.out += text },
    log: (line: string) => { result.err.push(line) },
    env: {},
    onSignal: () => {},
    isTTY: false,
    progress: () => {}
  }
  return result
}

describe('argument parsing', () => {
  it('collects repeated flags and negated booleans', () => {
    const { values } = parse(spec, ['--listen', '/a', '--listen', '/b', '--no-mdns'])
    expect(values).toEqual({ listen: ['/a', '/b'], mdns: false })
  })

  it('refuses unknown options, negations of plain booleans and missing values', () => {
    expect(() => parse(spec, ['--nope'])).toThrow(/unknown option '--nope'/)
    expect(() => parse(spec, ['--no-json'])).toThrow(/unknown option --no-json/)
    expect(() => parse(spec, ['--listen'])).toThrow(/argument missing|requires/i)
    expect(() => parse(spec, ['stray'])).toThrow(/positional|unexpected/i)
  })

  it('documents every flag with its default and environment variable', () => {
    const text = helpText(spec)
    expect(text).toContain('--listen MULTIADDR')
    expect(text).toContain('env: SHOAL_LISTEN')
    expect(text).toContain('--[no-]mdns')
    expect(text).toContain('default: on')
  })
})

describe('main', () => {
  it('prints the command list for `help` and exits 0, and 2 with no command at all', async () => {
    const a = io()
    expect(await main(['help'], a)).toBe(0)
    expect(a.out).toContain('node start')
    expect(await main([], io())).toBe(2)
  })

  it('turns a usage error into one line and status 2', async () => {
    const a = io()
    expect(await main(['peers', '--bogus'], a)).toBe(2)
    expect(a.err).toEqual(["error: unknown option '--bogus' (see: shoal peers --help)"])
    // a policy that does not exist is refused before any node is asked
    const b = io()
    expect(await main(['run', 'model.onnx', '--input', `x=${import.meta.filename}`, '--output', 'out', '--verify', 'always'], b)).toBe(2)
    expect(b.err).toEqual(['error: --verify must be off, spot or full, not always (see: shoal run --help)'])
    const c = io()
    expect(await main(['run', 'model.onnx', '--input', `x=${import.meta.filename}`, '--output', 'out', '--tolerance', '1e-3,-1'], c)).toBe(2)
    expect(c.err).toEqual(['error: --tolerance must be RTOL or RTOL,ATOL (numbers of at least 0, as 1e-3,1e-5), not 1e-3,-1 (see: shoal run --help)'])
  })
})

describe('formatting', () => {
  it('formats sizes, durations and aligned tables', () => {
    expect(formatBytes(512)).toBe('512 B')
    expect(formatBytes(1.5 * 2 ** 30)).toBe('1.5 GiB')
    expect(formatBytes(24 * 2 ** 30)).toBe('24 GiB')
    expect(formatDuration(850)).toBe('850ms')
    expect(formatDuration(4200)).toBe('4.2s')
    expect(formatDuration(190_000)).toBe('3m10s')
    expect(formatTable(['A', 'LONG'], [['xyz', '1'], ['q', '22']])).toBe('A    LONG\nxyz  1\nq    22\n')
  })
})
