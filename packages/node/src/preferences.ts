/**
 * A volunteer's preferences beyond the limits (docs/operators.md, "What you give"): which models this
 * node serves, when it takes pieces (hours of the day, only while the machine is otherwise idle, only
 * on AC power) and whether it is paused. Pure: parsing and decisions over plain data; the machine's
 * state comes from machine-state.ts.
 */

/** A model pattern of `--serve-model` / `--refuse-model`: a CID, a name (any version, or one), or a publisher. */
export type ModelPattern =
  | { kind: 'cid', cid: string }
  | { kind: 'name', name: string, version?: string }
  | { kind: 'publisher', publisher: string }

/** What this node knows a model by: its CID and the signed names that point at it. */
export interface ModelIdentity {
  cid: string
  names: Array<{ name: string, version: string, publisher: string }>
}

const CID = /^(bafk|bafy|baga)[a-z2-7]{20,}$/
const NAME = /^[A-Za-z0-9._-]{1,128}$/

/**
 * `bafy...` (a CID), `publisher:PEERID` (every model named by that publisher), `NAME` (any version)
 * or `NAME@VERSION`. Throws an Error saying what a pattern may be.
 */
export function parseModelPattern (text: string, isPeerId: (s: string) => boolean): ModelPattern {
  const t = text.trim()
  if (t.startsWith('publisher:')) {
    const publisher = t.slice('publisher:'.length)
    if (!isPeerId(publisher)) throw new Error(`"${publisher}" (after publisher:) is not a peer id`)
    return { kind: 'publisher', publisher }
  }
  if (CID.test(t)) return { kind: 'cid', cid: t }
  const at = t.lastIndexOf('@')
  const name = at >= 0 ? t.slice(0, at) : t
  const version = at >= 0 ? t.slice(at + 1) : undefined
  if (!NAME.test(name) || (version != null && !NAME.test(version))) {
    throw new Error(`"${text}" is not a model pattern: a CID (bafy...), a name (resnet or resnet@1.0) or publisher:PEERID`)
  }
  return version != null ? { kind: 'name', name, version } : { kind: 'name', name }
}

function matches (pattern: ModelPattern, model: ModelIdentity): boolean {
  switch (pattern.kind) {
    case 'cid': return pattern.cid === model.cid
    case 'name': return model.names.some(n => n.name === pattern.name && (pattern.version == null || n.version === pattern.version))
    case 'publisher': return model.names.some(n => n.publisher === pattern.publisher)
  }
}

/**
 * Whether this node serves pieces of `model`: not when a refusal matches it; with an allow-list, only
 * when one of its patterns matches. Names and publishers match only the names this node knows for the
 * CID (an unknown CID is no name's model).
 */
export function servesModel (serve: ModelPattern[], refuse: ModelPattern[], model: ModelIdentity): boolean {
  if (refuse.some(p => matches(p, model))) return false
  return serve.length === 0 || serve.some(p => matches(p, model))
}

/** Local hours when this node takes pieces: [from, to) in minutes since midnight; over midnight when to <= from. */
export interface HourRange {
  from: number
  to: number
}

/** "22:00-07:00" -> { from: 1320, to: 420 }; "9-17" as 09:00-17:00. */
export function parseHourRange (text: string): HourRange {
  const m = /^\s*(\d{1,2})(?::(\d{2}))?\s*-\s*(\d{1,2})(?::(\d{2}))?\s*$/.exec(text)
  const minutes = (h: string, mm: string | undefined): number => Number(h) * 60 + Number(mm ?? 0)
  if (m == null) throw new Error(`"${text}" is not a range of hours: write HH:MM-HH:MM (22:00-07:00, or 9-17)`)
  const from = minutes(m[1], m[2])
  const to = minutes(m[3], m[4])
  if (Number(m[1]) > 24 || Number(m[3]) > 24 || Number(m[2] ?? 0) > 59 || Number(m[4] ?? 0) > 59 || from > 1440 || to > 1440) throw new Error(`"${text}" is not a range of hours: hours 0-24, minutes 00-59`)
  if (from === to) throw new Error(`"${text}" is an empty range of hours`)
  return { from: from % 1440, to: to % 1440 === 0 && to !== 0 ? 1440 : to }
}

/** Whether `minuteOfDay` (0-1439, local) falls in any of the ranges; no ranges: always. */
export function withinHours (ranges: HourRange[], minuteOfDay: number): boolean {
  if (ranges.length === 0) return true
  return ranges.some(r => r.from < r.to ? minuteOfDay >= r.from && minuteOfDay < r.to : minuteOfDay >= r.from || minuteOfDay < r.to)
}

export function formatHourRange (r: HourRange): string {
  const hm = (m: number): string => `${String(Math.floor(m / 60)).padStart(2, '0')}:${String(m % 60).padStart(2, '0')}`
  return `${hm(r.from)}-${hm(r.to)}`
}

/** When this node takes pieces: its volunteer's settings. */
export interface ServingPreferences {
  hours: HourRange[]
  /** Only while other programs leave the machine idle. */
  whenIdle: boolean
  /** Only on AC power, where the OS tells. */
  onlyOnAc: boolean
}

/** What the node knows of its machine and its volunteer's wish now. */
export interface ServingState {
  paused: boolean
  /** Local minutes since midnight. */
  minuteOfDay: number
  /** Other programs are using the machine (machine-state.ts); null: not known. */
  machineBusy: boolean | null
  /** On AC power; null: the OS does not tell (a desktop, a server, an OS this node cannot ask). */
  onAc: boolean | null
}

/** Whether the node takes new pieces now, and if not, every reason why (for `shoal node status`). */
export interface Serving {
  accepting: boolean
  reasons: string[]
}

export function serving (prefs: ServingPreferences, state: ServingState): Serving {
  const reasons: string[] = []
  if (state.paused) reasons.push('paused (shoal node resume)')
  if (!withinHours(prefs.hours, state.minuteOfDay)) reasons.push(`outside its hours (${prefs.hours.map(formatHourRange).join(', ')})`)
  if (prefs.whenIdle && state.machineBusy === true) reasons.push('the machine is in use by other programs (--when-idle)')
  if (prefs.onlyOnAc && state.onAc === false) reasons.push('on battery (--only-on-ac)')
  return { accepting: reasons.length === 0, reasons }
}

/**
 * Whether other programs keep the machine busy, from samples of its CPU use, with hysteresis: busy
 * once others use more than `busyShare` of its cores in a sample; idle again only after `quietMs` of
 * samples below it (a user typing in bursts does not flip it every few seconds).
 */
export class IdleDetector {
  private quietSince: number | null = null
  private state: boolean | null = null

  constructor (private readonly busyShare = 0.25, private readonly quietMs = 30_000) {}

  /** One sample: the share of the machine's CPU time (0-1) other programs used since the last one. */
  sample (othersShare: number, now: number): boolean {
    if (othersShare > this.busyShare) {
      this.quietSince = null
      this.state = true
    } else {
      this.quietSince ??= now
      if (this.state !== true || now - this.quietSince >= this.quietMs) {
        this.state = false
      }
    }
    return this.state
  }

  get busy (): boolean | null {
    return this.state
  }
}
