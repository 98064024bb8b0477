import { describe, expect, it } from 'vitest'
import { parseScenario, planScenario, seededRandom } from '../src/index.js'

const CHURNY = `seed: 4
duration: 60s
nodes:
  - { name: a, count: 10 }
  - { name: b, count: 4 }
churn:
  events:
    - { at: 1s, leave: 30%, group: a, mode: kill }
    - { at: 2s, leave: 2, mode: leave }
    - { at: 3s, join: 3, group: b }
  random: { rate: 0.1, per: 1s, rejoinAfter: 2s, from: 5s, until: 20s }
workload:
  jobs:
    - { at: 0s, batch: 100, count: 5, every: 500ms }
    - { at: 100ms, batch: 10 }
`

describe('plans', () => {
  it('the same scenario and seed give the same churn and workload', () => {
    const a = planScenario(parseScenario(CHURNY))
    const b = planScenario(parseScenario(CHURNY))
    expect(b).toEqual(a)
    expect(a.events.length).toBeGreaterThan(8)
  })

  it('a cheating group\'s nodes each get a seed of their own; making a group cheat leaves the rest of the plan as it was', () => {
    const honest = planScenario(parseScenario(CHURNY))
    const plan = planScenario(parseScenario(CHURNY.replace('{ name: b, count: 4 }', '{ name: b, count: 4, cheat: { rate: 0.5, mode: lazy } }')))
    const cheaters = plan.nodes.filter(n => n.cheat != null)
    expect(cheaters.map(n => n.group).every(g => g === 'b')).toBe(true)
    expect(cheaters.length).toBe(plan.nodes.filter(n => n.group === 'b').length)
    expect(new Set(cheaters.map(n => n.cheat!.seed)).size).toBe(cheaters.length)
    expect(cheaters[0].cheat).toMatchObject({ rate: 0.5, mode: 'lazy' })
    expect(plan.events).toEqual(honest.events)
    expect(plan.jobs).toEqual(honest.jobs)
  })

  it('another seed gives other victims and other inputs', () => {
    const a = planScenario(parseScenario(CHURNY))
    const b = planScenario(parseScenario(CHURNY.replace('seed: 4', 'seed: 5')))
    expect(b.events.map(e => e.node)).not.toEqual(a.events.map(e => e.node))
    expect(b.jobs.map(j => j.inputSeed)).not.toEqual(a.jobs.map(j => j.inputSeed))
  })

  it('takes percentages of the nodes up, never removes a node twice, and joins fresh nodes', () => {
    const plan = planScenario(parseScenario(CHURNY))
    const first = plan.events.filter(e => e.atMs === 1000)
    // 30% of group a's 10 nodes
    expect(first).toHaveLength(3)
    expect(first.every(e => e.kind === 'kill' && e.node.startsWith('a-'))).toBe(true)
    expect(plan.events.filter(e => e.atMs === 2000).map(e => e.kind)).toEqual(['leave', 'leave'])
    const removed = plan.events.filter(e => e.kind !== 'join').map(e => e.node)
    expect(new Set(removed).size).toBe(removed.length)
    const joined = plan.events.filter(e => e.kind === 'join').map(e => e.node)
    expect(joined.slice(0, 3)).toEqual(['b-4', 'b-5', 'b-6'])
    // every joined node is a planned node that did not exist at the start
    for (const name of joined) expect(plan.nodes.find(n => n.name === name)?.initial).toBe(false)
    // events in time order
    expect(plan.events.map(e => e.atMs)).toEqual([...plan.events.map(e => e.atMs)].sort((x, y) => x - y))
  })

  it('random failures are replaced after rejoinAfter, by a node of the same group', () => {
    const plan = planScenario(parseScenario(CHURNY))
    const random = plan.events.filter(e => e.atMs > 3000 && e.kind === 'kill')
    expect(random.length).toBeGreaterThan(0)
    for (const kill of random) {
      const group = kill.node.split('-')[0]
      expect(plan.events.some(e => e.kind === 'join' && e.atMs === kill.atMs + 2000 && e.node.startsWith(`${group}-`))).toBe(true)
    }
  })

  it('lays out repeated jobs in time order with their own ids', () => {
    const plan = planScenario(parseScenario(CHURNY))
    expect(plan.jobs.map(j => [j.id, j.atMs, j.batch])).toEqual([
      ['job-0', 0, 100], ['job-1', 100, 10], ['job-2', 500, 100], ['job-3', 1000, 100], ['job-4', 1500, 100], ['job-5', 2000, 100]
    ])
  })

  it('free riders take no pieces; jobs from a group keep their group, the rest are the client\'s; a group that does not exist is named', () => {
    const plan = planScenario(parseScenario(`seed: 1
credit: false
nodes:
  - { name: givers, count: 2 }
  - { name: riders, count: 2, serve: false }
workload:
  jobs:
    - { at: 0s, batch: 10, count: 2, from: riders }
    - { at: 1s, batch: 10 }
`))
    expect(plan.nodes.map(n => [n.name, n.serve ?? true])).toEqual([['givers-0', true], ['givers-1', true], ['riders-0', false], ['riders-1', false]])
    expect(plan.jobs.map(j => j.from)).toEqual(['riders', 'riders', undefined])
    expect(parseScenario('nodes: [{ count: 1 }]\nworkload: { jobs: [{ at: 0s, batch: 1 }] }').credit).toBe(true)
    expect(() => parseScenario('nodes: [{ name: a, count: 1 }]\nworkload: { jobs: [{ at: 0s, batch: 1, from: b }] }')).toThrow(/workload.jobs\[0\].from.*no node group is named "b" \(groups: a\)/s)
  })

  it('the generator is a fixed stream per seed', () => {
    const a = seededRandom(1)
    const b = seededRandom(1)
    const xs = Array.from({ length: 5 }, () => a())
    expect(Array.from({ length: 5 }, () => b())).toEqual(xs)
    expect(xs.every(x => x >= 0 && x < 1)).toBe(true)
    expect(new Set(xs).size).toBe(5)
  })
})
