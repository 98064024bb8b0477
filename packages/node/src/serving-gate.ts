import { readFile, rm } from 'node:fs/promises'
import { writePrivateFile } from './data-dir.js'
import { CpuSampler, onAcPower } from './machine-state.js'
import { IdleDetector, parseHourRange, serving } from './preferences.js'
import type { Serving, ServingPreferences } from './preferences.js'

/** How often the node looks at the clock and the machine for its volunteer's preferences. */
export const SERVING_CHECK_MS = 5_000

export interface ServingGateInit {
  /** `<data dir>/paused.json`: a pause lasts across restarts until `shoal node resume`. */
  pausedFile: string
  hours: string[]
  whenIdle: boolean
  onlyOnAc: boolean
  /** The processes where this node's models run, and the cores its pieces keep busy (for --when-idle). */
  childPids: () => number[]
  busyCores: () => number
  /** Called whenever the node starts or stops taking pieces. */
  onChange: (serving: Serving) => void
  log?: (format: string, ...args: unknown[]) => void
  /** Test hooks: the machine as a test wants it. */
  machine?: { busy?: () => boolean | null, onAc?: () => Promise<boolean | null>, minuteOfDay?: () => number }
  checkMs?: number
}

/** What `shoal node status` and the dashboard show of the gate. */
export interface ServingView extends Serving {
  paused: boolean
  hours: string[]
  whenIdle: boolean
  onlyOnAc: boolean
  /** What the machine told at the last check (null: not asked, or it does not tell). */
  machineBusy: boolean | null
  onAc: boolean | null
}

/**
 * Whether this node takes new pieces now: its volunteer's pause and preferences (preferences.ts)
 * against the clock and the machine, checked every SERVING_CHECK_MS and at once on pause and resume.
 * Pieces already running always finish.
 */
export class ServingGate {
  private readonly prefs: ServingPreferences
  private paused = false
  private machineBusy: boolean | null = null
  private onAc: boolean | null = null
  private state: Serving = { accepting: true, reasons: [] }
  private timer?: ReturnType<typeof setInterval>
  private readonly idle = new IdleDetector()
  private readonly cpu: CpuSampler

  constructor (private readonly init: ServingGateInit) {
    this.prefs = { hours: init.hours.map(parseHourRange), whenIdle: init.whenIdle, onlyOnAc: init.onlyOnAc }
    this.cpu = new CpuSampler({ childPids: init.childPids, busyCores: init.busyCores })
  }

  async start (): Promise<void> {
    try {
      this.paused = JSON.parse(await readFile(this.init.pausedFile, 'utf8')).paused === true
    } catch {}
    if (this.prefs.whenIdle) this.cpu.sample()
    await this.check()
    this.timer = setInterval(() => { void this.check() }, this.init.checkMs ?? SERVING_CHECK_MS)
    this.timer.unref?.()
  }

  stop (): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  /** Takes no new pieces from now on (and after a restart), until `resume`. */
  async pause (): Promise<ServingView> {
    this.paused = true
    await writePrivateFile(this.init.pausedFile, JSON.stringify({ paused: true, since: Date.now() }) + '\n')
    await this.check()
    return this.view()
  }

  async resume (): Promise<ServingView> {
    this.paused = false
    await rm(this.init.pausedFile, { force: true })
    await this.check()
    return this.view()
  }

  get accepting (): boolean {
    return this.state.accepting
  }

  view (): ServingView {
    return { ...this.state, paused: this.paused, hours: this.init.hours, whenIdle: this.prefs.whenIdle, onlyOnAc: this.prefs.onlyOnAc, machineBusy: this.machineBusy, onAc: this.onAc }
  }

  private async check (): Promise<void> {
    const machine = this.init.machine
    if (this.prefs.whenIdle) {
      if (machine?.busy != null) {
        this.machineBusy = machine.busy()
      } else {
        const share = this.cpu.sample()
        if (share != null) this.machineBusy = this.idle.sample(share, performance.now())
      }
    }
    if (this.prefs.onlyOnAc) this.onAc = await (machine?.onAc ?? onAcPower)().catch(() => null)
    const now = new Date()
    const next = serving(this.prefs, { paused: this.paused, minuteOfDay: machine?.minuteOfDay?.() ?? now.getHours() * 60 + now.getMinutes(), machineBusy: this.machineBusy, onAc: this.onAc })
    const changed = next.accepting !== this.state.accepting || next.reasons.join() !== this.state.reasons.join()
    this.state = next
    if (changed) {
      this.init.log?.(next.accepting ? 'taking pieces again' : 'taking no new pieces: %s', next.reasons.join('; '))
      this.init.onChange(next)
    }
  }
}
