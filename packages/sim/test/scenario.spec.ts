import { describe, expect, it } from 'vitest'
import { parseDuration, parseRate, parseScenario, ScenarioError } from '../src/index.js'

const VALID = `name: small
seed: 9
duration: 30s
nodes:
  - name: fast
    count: 3
    speed: 2
  - name: slow
    count: 2
    speed: 0.5
    network: { latency: 20ms, bandwidth: 100mbit }
churn:
  events:
    - { at: 2s, leave: 50%, group: fast, mode: leave }
    - { at: 4s, join: 1, group: slow }
workload:
  model:
    generated: { width: 64, layers: 2 }
  jobs:
    - { at: 0s, batch: 64, count: 2, every: 1s, rowsPerPiece: 8 }
`

/** The problems of a scenario that must be refused. */
function problems (text: string): Array<{ path: string, line: number, message: string }> {
  try {
    parseScenario(text, 'test.yaml')
  } catch (err) {
    expect(err).toBeInstanceOf(ScenarioError)
    expect((err as Error).name).toBe('ScenarioError')
    return (err as ScenarioError).problems
  }
  throw new Error('the scenario was accepted')
}

describe('scenario files', () => {
  it('reads a valid scenario, units and defaults applied', () => {
    const s = parseScenario(VALID)
    expect(s.seed).toBe(9)
    expect(s.durationMs).toBe(30_000)
    expect(s.compute).toBe('onnx')
    expect(s.models).toBe('preload')
    expect(s.groups.map(g => [g.name, g.count, g.speed, g.concurrency])).toEqual([['fast', 3, 2, 2], ['slow', 2, 0.5, 2]])
    expect(s.groups[1].network).toEqual({ latencyMs: 20, bytesPerSecond: 12_500_000 })
    expect(s.churn.events[0]).toEqual({ atMs: 2000, group: 'fast', leave: { percent: 50 }, join: undefined, mode: 'leave' })
    expect(s.jobs[0]).toMatchObject({ atMs: 0, count: 2, everyMs: 1000, batch: 64, rowsPerPiece: 8, model: { kind: 'generated', width: 64, layers: 2 } })
    // 5 nodes: the automatic ad interval is its floor
    expect(s.adIntervalMs).toBe(1000)
  })

  it('reads cheating groups and jobs\' verification; refuses an unknown way to cheat', () => {
    const s = parseScenario(VALID.replace('    speed: 0.5\n', '    speed: 0.5\n    cheat: { rate: 0.25 }\n').replace('rowsPerPiece: 8 }', 'rowsPerPiece: 8, verify: full }'))
    expect(s.groups[1].cheat).toEqual({ rate: 0.25, mode: 'zeros' })
    expect(s.groups[0].cheat).toBeUndefined()
    expect(s.jobs[0].verify).toBe('full')
    const [p] = problems(VALID.replace('    speed: 0.5\n', '    speed: 0.5\n    cheat: { rate: 0.25, mode: sloppy }\n'))
    expect(p.path).toBe('nodes[1].cheat.mode')
    expect(problems(VALID.replace('rowsPerPiece: 8 }', 'rowsPerPiece: 8, verify: always }'))[0].path).toBe('workload.jobs[0].verify')
  })

  it('parses durations and rates with their units', () => {
    expect(parseDuration('500ms')).toBe(500)
    expect(parseDuration('1.5s')).toBe(1500)
    expect(parseDuration('2m')).toBe(120_000)
    expect(parseDuration(42)).toBe(42)
    expect(parseRate('8bit')).toBe(1)
    expect(parseRate('10MB/s')).toBe(10_000_000)
  })

  it('names the field and the line of an unknown field', () => {
    const text = VALID.replace('    speed: 0.5\n', '    sped: 0.5\n')
    const [p] = problems(text)
    expect(p.path).toBe('nodes[1].sped')
    expect(p.line).toBe(10)
    expect(p.message).toMatch(/unknown field "sped".*speed/)
  })

  it('names the field and the line of a value of the wrong kind', () => {
    const found = problems(VALID.replace('batch: 64', 'batch: many').replace('duration: 30s', 'duration: soon'))
    expect(found).toEqual([
      { path: 'duration', line: 3, message: expect.stringMatching(/a duration such as 500ms.*"soon"/) },
      { path: 'workload.jobs[0].batch', line: 20, message: expect.stringMatching(/must be integer.*"many"/) }
    ])
  })

  it('names a missing field, and every problem at once', () => {
    const found = problems('seed: -1\nnodes:\n  - speed: 2\n')
    expect(found.map(p => p.path).sort()).toEqual(['', 'nodes[0]', 'seed'])
    expect(found.find(p => p.path === 'nodes[0]')).toMatchObject({ line: 3, message: 'missing field "count"' })
    expect(found.find(p => p.path === '')?.message).toBe('missing field "workload"')
  })

  it('checks what the schema cannot: group names, percentages, times after the end', () => {
    const found = problems(VALID.replace('group: slow }', 'group: medium }').replace('leave: 50%', 'leave: 150%').replace('at: 4s', 'at: 40s'))
    expect(found).toEqual(expect.arrayContaining([
      { path: 'churn.events[0].leave', line: 14, message: expect.stringMatching(/\(0, 100\], got 150%/) },
      { path: 'churn.events[1].group', line: 15, message: expect.stringMatching(/no node group is named "medium" \(groups: fast, slow\)/) },
      { path: 'churn.events[1].at', line: 15, message: expect.stringMatching(/after the scenario's duration/) }
    ]))
  })

  it('reports broken YAML with its line', () => {
    const [p] = problems('nodes:\n  - count: 2\n workload: [\n')
    expect(p.line).toBeGreaterThanOrEqual(2)
    expect(p.message).toMatch(/not valid YAML/)
  })

  it('the error message lists line and field for a person', () => {
    try {
      parseScenario(VALID.replace('count: 3', 'count: 0'), 'mine.yaml')
      throw new Error('accepted')
    } catch (err: any) {
      expect(err.message).toMatch(/^mine.yaml is not a valid scenario:\n {2}line 6, nodes\[0\].count: must be >= 1/)
    }
  })
})
