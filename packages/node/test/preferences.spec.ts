import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { CpuSampler, onAcPower } from '../src/machine-state.js'
import { IdleDetector, parseHourRange, parseModelPattern, servesModel, serving, withinHours } from '../src/preferences.js'

const isPeerId = (s: string): boolean => s.startsWith('12D3KooW')
const PUB = '12D3KooWPublisher'
const CID_A = 'bafkreiaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'
const CID_B = 'bafkreibbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'

describe('which models a volunteer serves', () => {
  const p = (t: string): ReturnType<typeof parseModelPattern> => parseModelPattern(t, isPeerId)
  const resnet = { cid: CID_A, names: [{ name: 'resnet', version: '1.0', publisher: PUB }] }
  const stranger = { cid: CID_B, names: [] }

  it('parses CIDs, names with or without a version, and publishers; refuses anything else with what a pattern may be', () => {
    expect(p(CID_A)).toEqual({ kind: 'cid', cid: CID_A })
    expect(p('resnet')).toEqual({ kind: 'name', name: 'resnet' })
    expect(p('resnet@1.0')).toEqual({ kind: 'name', name: 'resnet', version: '1.0' })
    expect(p(`publisher:${PUB}`)).toEqual({ kind: 'publisher', publisher: PUB })
    expect(() => p('publisher:nobody')).toThrow(/not a peer id/)
    expect(() => p('a b')).toThrow(/a CID \(bafy...\), a name \(resnet or resnet@1.0\) or publisher:PEERID/)
    expect(() => p('x@')).toThrow(/not a model pattern/)
  })

  it('no lists: every model; a refusal wins over an allowance; an allow-list serves only what it names; names match only names known for the CID', () => {
    expect(servesModel([], [], stranger)).toBe(true)
    expect(servesModel([], [p('resnet')], resnet)).toBe(false)
    expect(servesModel([], [p('resnet@2.0')], resnet)).toBe(true)
    expect(servesModel([p(`publisher:${PUB}`)], [], resnet)).toBe(true)
    // an allow-list: a CID nobody named is nobody's model
    expect(servesModel([p(`publisher:${PUB}`)], [], stranger)).toBe(false)
    expect(servesModel([p(CID_B)], [], stranger)).toBe(true)
    expect(servesModel([p(`publisher:${PUB}`)], [p(CID_A)], resnet)).toBe(false)
  })
})

describe('when a volunteer serves', () => {
  it('hours: plain, over midnight, whole hours, and a clear error for anything else', () => {
    expect(parseHourRange('9-17')).toEqual({ from: 540, to: 1020 })
    const night = parseHourRange('22:00-07:30')
    expect(night).toEqual({ from: 1320, to: 450 })
    expect([withinHours([night], 23 * 60), withinHours([night], 7 * 60 + 29), withinHours([night], 7 * 60 + 30), withinHours([night], 12 * 60)]).toEqual([true, true, false, false])
    expect(withinHours([parseHourRange('0-24')], 1439)).toBe(true)
    expect(withinHours([parseHourRange('18:00-00:00')], 23 * 60 + 59)).toBe(true)
    expect(withinHours([parseHourRange('18:00-00:00')], 0)).toBe(false)
    expect(withinHours([], 123)).toBe(true)
    expect(withinHours([parseHourRange('1-2'), parseHourRange('3-4')], 3 * 60)).toBe(true)
    for (const bad of ['9', '25-3', '9:60-10', '10-10', 'nine-five']) expect(() => parseHourRange(bad)).toThrow(/range of hours/)
  })

  it('serving: paused, outside hours, a busy machine, battery: each a reason; unknown machine state never stops it', () => {
    const prefs = { hours: [parseHourRange('22:00-07:00')], whenIdle: true, onlyOnAc: true }
    expect(serving(prefs, { paused: false, minuteOfDay: 23 * 60, machineBusy: false, onAc: true })).toEqual({ accepting: true, reasons: [] })
    expect(serving(prefs, { paused: false, minuteOfDay: 23 * 60, machineBusy: null, onAc: null }).accepting).toBe(true)
    const all = serving(prefs, { paused: true, minuteOfDay: 12 * 60, machineBusy: true, onAc: false })
    expect(all.accepting).toBe(false)
    expect(all.reasons).toEqual(['paused (shoal node resume)', 'outside its hours (22:00-07:00)', 'the machine is in use by other programs (--when-idle)', 'on battery (--only-on-ac)'])
    // without the preferences, the machine's state does not matter
    expect(serving({ hours: [], whenIdle: false, onlyOnAc: false }, { paused: false, minuteOfDay: 0, machineBusy: true, onAc: false }).accepting).toBe(true)
  })

  it('idle detection: busy at once, idle again only after a quiet while', () => {
    const idle = new IdleDetector(0.25, 30_000)
    expect(idle.busy).toBe(null)
    expect(idle.sample(0.05, 0)).toBe(false)
    expect(idle.sample(0.6, 5_000)).toBe(true)
    expect(idle.sample(0.1, 10_000)).toBe(true)
    expect(idle.sample(0.1, 35_000)).toBe(true)
    expect(idle.sample(0.1, 40_000)).toBe(false)
    // a burst restarts the quiet while
    expect(idle.sample(0.3, 45_000)).toBe(true)
    expect(idle.sample(0.0, 50_000)).toBe(true)
  })
})

describe('what the machine tells', () => {
  it('a program spinning beside the node is counted as others\' use; the node\'s own work is not', async () => {
    let childPids: number[] = []
    const sampler = new CpuSampler({ childPids: () => childPids, busyCores: () => 0 })
    expect(sampler.sample()).toBe(null)
    const spin = (): ReturnType<typeof spawn> => spawn(process.execPath, ['-e', 'const end = Date.now() + 3000; while (Date.now() < end) {}'], { stdio: 'ignore' })
    const other = spin()
    await new Promise(resolve => setTimeout(resolve, 800))
    const othersShare = sampler.sample()!
    // one of the machine's cores spinning: at least most of a core's share
    expect(othersShare).toBeGreaterThan(0.6 / Math.max(1, (await import('node:os')).cpus().length))
    other.kill()
    // the same spinner as one of the node's own children: not counted (only what else runs is)
    const own = spin()
    childPids = [own.pid!]
    sampler.sample()
    await new Promise(resolve => setTimeout(resolve, 800))
    const mine = sampler.sample()!
    own.kill()
    expect(mine).toBeLessThan(othersShare)
  })

  it('AC power from /sys/class/power_supply: mains online, on battery, or nothing to tell', async () => {
    const root = await mkdtemp(join(tmpdir(), 'power-'))
    const supply = async (dir: string, files: Record<string, string>): Promise<void> => {
      await mkdir(join(root, dir), { recursive: true })
      for (const [f, v] of Object.entries(files)) await writeFile(join(root, dir, f), v + '\n')
    }
    expect(await onAcPower('linux', join(root, 'none'))).toBe(null)
    await supply('BAT0', { type: 'Battery', status: 'Discharging' })
    expect(await onAcPower('linux', root)).toBe(false)
    await supply('AC', { type: 'Mains', online: '0' })
    expect(await onAcPower('linux', root)).toBe(false)
    await supply('AC', { type: 'Mains', online: '1' })
    expect(await onAcPower('linux', root)).toBe(true)
    expect(await onAcPower('win32', root)).toBe(null)
  })
})
