/**
 * What the operating system tells of the machine, for a volunteer's preferences (preferences.ts):
 * how much of its CPU other programs use, and whether it runs on AC power. Adapters over os, /proc
 * and /sys (Linux) and pmset (macOS); what an OS does not tell is null.
 */
import { execFile } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'

/** CPU time of the whole machine so far: busy and total, in ms summed over its cores. */
function machineTimes (): { busy: number, total: number } {
  let busy = 0
  let total = 0
  for (const cpu of os.cpus()) {
    const t = cpu.times
    busy += t.user + t.nice + t.sys + t.irq
    total += t.user + t.nice + t.sys + t.irq + t.idle
  }
  return { busy, total }
}

/** A process's CPU time so far in ms, from /proc (Linux; clock ticks of 10 ms); null elsewhere or once it is gone. */
function procCpuMs (pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // the command may hold spaces and parentheses: fields count from the last ')'
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 10
  } catch {
    return null
  }
}

export interface CpuSamplerInit {
  /** The processes where this node's models run (its sandbox's children). */
  childPids: () => number[]
  /** Where /proc cannot tell a child's time: the cores this node's pieces keep busy now (an estimate). */
  busyCores: () => number
}

/**
 * Samples the share of the machine's CPU (0-1) that programs other than this node used since the
 * last sample: the machine's busy time less this process's and its children's. The first call
 * starts the count and returns null.
 */
export class CpuSampler {
  private last?: { at: number, machine: { busy: number, total: number }, self: number, children: Map<number, number> }

  constructor (private readonly init: CpuSamplerInit) {}

  sample (): number | null {
    const at = performance.now()
    const machine = machineTimes()
    const self = process.cpuUsage()
    const selfMs = (self.user + self.system) / 1000
    const children = new Map<number, number>()
    let childrenKnown = true
    for (const pid of this.init.childPids()) {
      const ms = procCpuMs(pid)
      if (ms == null) childrenKnown = false
      else children.set(pid, ms)
    }
    const last = this.last
    this.last = { at, machine, self: selfMs, children }
    if (last == null) return null
    const total = machine.total - last.machine.total
    if (!(total > 0)) return null
    let own = selfMs - last.self
    if (childrenKnown) {
      // a child started since the last sample counts from its start; one that ended is gone from both
      for (const [pid, ms] of children) own += ms - (last.children.get(pid) ?? 0)
    } else {
      own += this.init.busyCores() * (at - last.at)
    }
    const others = (machine.busy - last.machine.busy - Math.max(0, own)) / total
    return Math.min(1, Math.max(0, others))
  }
}

/**
 * Whether the machine runs on AC power: Linux from /sys/class/power_supply (a mains or USB supply
 * online: yes; a battery discharging, or every supply offline: no), macOS from `pmset -g batt`; null
 * where the OS does not tell (no power supplies listed: a desktop, a server, a VM; Windows).
 */
export async function onAcPower (platform: NodeJS.Platform = process.platform, sysRoot = '/sys/class/power_supply'): Promise<boolean | null> {
  if (platform === 'darwin') {
    const out = await new Promise<string>(resolve => { execFile('pmset', ['-g', 'batt'], { timeout: 2000 }, (err, stdout) => { resolve(err != null ? '' : stdout) }) })
    if (out.includes("'AC Power'")) return true
    if (out.includes("'Battery Power'")) return false
    return null
  }
  if (platform !== 'linux') return null
  let names: string[]
  try {
    names = await readdir(sysRoot)
  } catch {
    return null
  }
  let supplies = 0
  let discharging = false
  for (const name of names) {
    const read = async (file: string): Promise<string> => (await readFile(join(sysRoot, name, file), 'utf8').catch(() => '')).trim()
    const type = await read('type')
    if (type === 'Mains' || type === 'USB') {
      supplies++
      if (await read('online') === '1') return true
    } else if (type === 'Battery') {
      if (await read('status') === 'Discharging') discharging = true
    }
  }
  if (discharging || supplies > 0) return false
  return null
}
