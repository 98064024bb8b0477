import type { ChildProcess } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { SANDBOX_REFUSE_MS } from './constants.js'
import { SandboxError } from './errors.js'
import type { PieceRun, PieceRunOptions, PieceRuntime, SessionCacheInit } from './session.js'
import type { FromHost, ToHost } from './session-host.js'
import type { Tensor } from './tensor.js'
import { HostPool, onHostMessage } from './host-pool.js'
import type { HostCall, HostSlot } from './host-pool.js'
import { spawnSandboxChild } from './sandbox-child.js'

export interface ProcessSessionsInit extends SessionCacheInit {
  /** Child processes, each with its own sessions: pieces that compute at once (default 1). */
  processes?: number
  /**
   * Memory a child may hold (0: no limit): its resident memory is checked after every run, and the
   * operating system refuses it address space beyond this plus a margin (RLIMIT_AS, on Linux).
   */
  memoryLimitBytes?: number
  /** How long a model that crashed, was killed or used too much memory is refused (default SANDBOX_REFUSE_MS). */
  refuseForMs?: number
  now?: () => number
}

/** How long close() waits for a child to finish its piece and end before it is killed. */
const CLOSE_WAIT_MS = 10_000

interface Slot extends HostSlot {
  child: ChildProcess
  cwd: string
  calls: Map<number, HostCall & { cid: string }>
  /** The end of its stderr, in one line (sandbox-child.ts). */
  lastWords: () => string
  /** The child has said something (asked for a model, answered a run): it started. */
  answered: boolean
}

/**
 * ONNX Runtime sessions in child processes: a model is a stranger's code, and a process is what the
 * node can stop. Each child runs in an empty working directory of its own (a relative path inside a
 * model finds nothing of the node's), under an address-space limit, with no environment but the
 * search path and what GPU drivers read.
 * A run that outlives its signal is killed with its process (ONNX Runtime cannot be interrupted: an
 * endless Loop held a thread, and its slot, until the node restarted); a child that crashes fails
 * its run; a child that holds more memory than allowed after a run is ended, so its memory returns.
 * Each of those makes its model refused for a while (SandboxError 'refused'), without a new attempt.
 * Inputs and outputs cross the process boundary by copy over the IPC channel.
 */
export class ProcessSessions implements PieceRuntime {
  private readonly pool = new HostPool<Slot>(() => Math.max(1, this.init.processes ?? 1), () => this.spawn())
  private readonly refused = new Map<string, { until: number, why: string }>()
  private readonly init: ProcessSessionsInit
  private readonly now: () => number
  private nextId = 0
  private closed = false
  private prestarting = false

  constructor (init: ProcessSessionsInit) {
    this.init = init
    this.now = init.now ?? Date.now
  }

  async run (cid: string, load: () => Promise<Uint8Array>, inputs: Record<string, Tensor>, options: PieceRunOptions = {}): Promise<PieceRun> {
    if (this.closed) throw new Error('the inference sessions are closed')
    const refusal = options.own === true ? undefined : this.refusal(cid)
    if (refusal != null) throw refusal
    options.signal?.throwIfAborted()
    const calledAt = this.now()
    const slot = await this.pool.acquire()
    let settled = false
    try {
      if (this.closed) throw new Error('the inference sessions are closed')
      // while it waited for a child: its deadline may have passed (no listener would fire now), or
      // another piece of the model may have had it refused
      if (options.signal?.aborted === true) throw new SandboxError('deadline', `the piece's deadline passed while it waited for the sandbox (model ${cid})`)
      const late = options.own === true ? undefined : this.refusal(cid)
      if (late != null) throw late
      options.onStart?.()
      const run = await new Promise<PieceRun>((resolve, reject) => {
        const id = ++this.nextId
        const sentAt = this.now()
        const onAbort = (): void => {
          // the model is to blame only if it had the child for most of the piece's time, not a
          // piece that spent its deadline waiting behind another (an endless one, say)
          const held = this.now() - sentAt
          if (options.own !== true && held * 2 >= this.now() - calledAt) this.refuse(cid, 'outlived its deadline and was killed')
          this.kill(slot, new SandboxError('deadline', `the run of model ${cid} outlived its deadline: its process was killed`))
        }
        const done = (): void => { settled = true; options.signal?.removeEventListener('abort', onAbort) }
        slot.calls.set(id, {
          cid,
          load,
          resolve: run => { done(); resolve(run) },
          reject: err => { done(); reject(err) }
        })
        options.signal?.addEventListener('abort', onAbort, { once: true })
        slot.child.send({ type: 'run', id, cid, inputs } satisfies ToHost)
      })
      this.checkMemory(slot, cid)
      return run
    } catch (err: any) {
      // ONNX Runtime's own words for an allocation the address-space limit refused
      if (settled && !(err instanceof SandboxError) && /bad.?alloc|failed to allocate|out of memory/i.test(String(err?.message))) {
        this.refuse(cid, 'ran out of the memory it may use')
        const error = new SandboxError('memory', `model ${cid} ran out of the memory it may use here: ${String(err?.message)}`)
        this.kill(slot, error)
        throw error
      }
      throw err
    } finally {
      this.pool.release(slot)
    }
  }

  /**
   * Starts the children ahead of the first piece (a child takes a few hundred ms to start and load
   * ONNX Runtime; a node's first piece should not wait for that), and again after one was killed.
   */
  prestart (): void {
    this.prestarting = true
    while (!this.closed && this.pool.slots.length < Math.max(1, this.init.processes ?? 1)) this.spawn()
  }

  /** The children's process ids. */
  childPids (): number[] {
    return this.pool.slots.flatMap(slot => slot.child.pid != null ? [slot.child.pid] : [])
  }

  /** Resident memory of the children now, in bytes (0 where /proc cannot tell). */
  memoryBytes (): number {
    return this.pool.slots.reduce((sum, slot) => sum + residentBytes(slot.child.pid), 0)
  }

  /**
   * Ends the children: each finishes the piece it runs (within CLOSE_WAIT_MS, else it is killed),
   * releases its sessions and exits; their working directories are removed.
   */
  async close (): Promise<void> {
    this.closed = true
    const slots = this.pool.close()
    await Promise.all(slots.map(async slot => {
      await new Promise<void>(resolve => {
        const timer = setTimeout(() => { slot.child.kill('SIGKILL') }, CLOSE_WAIT_MS)
        slot.child.once('exit', () => { clearTimeout(timer); resolve() })
        if (slot.child.exitCode != null || slot.child.signalCode != null || !slot.child.connected) {
          slot.child.kill('SIGKILL')
          if (slot.child.exitCode != null || slot.child.signalCode != null) { clearTimeout(timer); resolve() }
          return
        }
        slot.child.on('message', (m: FromHost) => { if (m.type === 'closed') slot.child.kill('SIGKILL') })
        slot.child.send({ type: 'close' } satisfies ToHost)
      })
      rmSync(slot.cwd, { recursive: true, force: true })
    }))
  }

  private refusal (cid: string): SandboxError | undefined {
    const entry = this.refused.get(cid)
    if (entry == null) return undefined
    if (entry.until <= this.now()) {
      this.refused.delete(cid)
      return undefined
    }
    return new SandboxError('refused', `model ${cid} ${entry.why} here; it is refused for ${Math.ceil((entry.until - this.now()) / 1000)} s more`)
  }

  private refuse (cid: string, why: string): void {
    this.refused.set(cid, { until: this.now() + (this.init.refuseForMs ?? SANDBOX_REFUSE_MS), why })
  }

  /** A child holding more than it may after a run is ended: its memory returns to the machine. */
  private checkMemory (slot: Slot, cid: string): void {
    const limit = this.init.memoryLimitBytes ?? 0
    if (limit <= 0) return
    const rss = residentBytes(slot.child.pid)
    if (rss <= limit) return
    this.refuse(cid, `held ${rss} bytes of memory, over the limit of ${limit}`)
    this.kill(slot, new SandboxError('memory', `model ${cid} held ${rss} bytes of memory`))
  }

  private spawn (): Slot {
    const { processes, memoryLimitBytes, refuseForMs, now, ...cacheInit } = this.init
    const script = fileURLToPath(new URL('./session-process.js', import.meta.url))
    const { child, cwd, lastWords } = spawnSandboxChild(script, {
      env: { SHOAL_SESSION_INIT: JSON.stringify(cacheInit) },
      memoryLimitBytes,
      cpuOnly: cacheInit.providers.every(p => p === 'cpu')
    })
    const slot: Slot = { child, cwd, busy: false, calls: new Map(), lastWords, answered: false }
    child.on('message', (m: FromHost) => {
      slot.answered = true
      onHostMessage(slot, m, message => { if (child.connected) child.send(message satisfies ToHost) })
    })
    // no process (EAGAIN: too many; ENOMEM): the machine's fault, not the model's
    child.on('error', (err: NodeJS.ErrnoException) => { this.kill(slot, new SandboxError('unavailable', `could not start an inference process (${err.code ?? err.message})`)) })
    child.on('exit', (code, signal) => {
      if (!this.pool.slots.includes(slot)) return
      const why = slot.lastWords()
      const how = `${signal ?? `exit code ${String(code)}`}${why === '' ? '' : `: ${why}`}`
      // a child that never said a word could not start (no shell, no memory): not the model's fault
      if (!slot.answered) {
        this.kill(slot, new SandboxError('unavailable', `the inference process could not start (${how})`))
        return
      }
      for (const call of slot.calls.values()) this.refuse(call.cid, `crashed its inference process (${signal ?? `exit code ${String(code)}`})`)
      this.kill(slot, new SandboxError('crashed', `the inference process exited (${how})`))
    })
    this.pool.slots.push(slot)
    return slot
  }

  /** Ends a child at once: its runs fail with `err`, and the next waiting run gets a new child. */
  private kill (slot: Slot, err: Error): void {
    slot.child.kill('SIGKILL')
    if (!this.pool.remove(slot, err, this.closed)) return
    rmSync(slot.cwd, { recursive: true, force: true })
    // a child that could not even start (no shell, no memory) is not started again and again
    if (this.prestarting && slot.answered) this.prestart()
  }
}

/** A process's resident memory from /proc (Linux); 0 elsewhere or once it is gone. */
function residentBytes (pid: number | undefined): number {
  if (pid == null) return 0
  try {
    const pages = Number(readFileSync(`/proc/${pid}/statm`, 'utf8').split(' ')[1])
    return Number.isFinite(pages) ? pages * 4096 : 0
  } catch {
    return 0
  }
}
