import { randomUUID } from 'node:crypto'
import { MAX_LISTED_FAILURES } from '../constants.js'
import type { JobProgress, JobResult, PieceAttempt, PieceFailure } from './job.js'

/** A job that cannot run or did not finish; the message says which piece and why. */
export class JobError extends Error {
  override name = 'JobError'
}

/**
 * What batch and pipeline jobs share: an id, listeners of progress and of piece attempts, the failed
 * attempts kept for the user, one run, and cancellation. The scheduling is each subclass's own.
 */
export abstract class SubmittedJob {
  readonly id = randomUUID()
  private readonly listeners = new Set<(p: JobProgress) => void>()
  private readonly attemptListeners = new Set<(a: PieceAttempt) => void>()
  protected readonly failures: PieceFailure[] = []
  protected failedAttempts = 0
  /** Why the job was cancelled, once it was. */
  protected cancelled?: string
  /** Aborted by cancel(): stops this node's own runs (probes, checks), which no scheduler loop watches. */
  protected readonly stopping = new AbortController()
  /** Wakes the scheduling loop (set by it while it waits). */
  protected wake: () => void = () => {}
  private running?: Promise<JobResult>
  /** Set once the job has ended. */
  result?: JobResult
  error?: Error

  abstract get modelCid (): string
  abstract progress (): JobProgress
  /** Throws JobError if the job cannot run (so an API can refuse before accepting it). */
  abstract validate (): void
  protected abstract execute (): Promise<JobResult>

  onProgress (listener: (p: JobProgress) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  /** Every piece attempt as it ends (simulations draw timelines from these). */
  onPieceAttempt (listener: (a: PieceAttempt) => void): () => void {
    this.attemptListeners.add(listener)
    return () => this.attemptListeners.delete(listener)
  }

  /** Runs the job (once: later calls return the same promise). */
  async run (): Promise<JobResult> {
    this.running ??= this.execute().then(result => { this.result = result; return result }, err => { this.error = err; throw err })
    return await this.running
  }

  /** Stops the job: pieces in flight are cancelled and `run()` rejects with a JobError. */
  cancel (reason = 'the job was cancelled'): void {
    this.cancelled ??= reason
    this.stopping.abort(new JobError(reason))
    this.wake()
  }

  /** A failed attempt, kept (the first MAX_LISTED_FAILURES) for `progress.failures` and counted. */
  protected addFailure (failure: PieceFailure): void {
    this.failedAttempts++
    if (this.failures.length < MAX_LISTED_FAILURES) this.failures.push(failure)
  }

  protected emit (): void {
    const progress = this.progress()
    for (const listener of this.listeners) {
      try {
        listener(progress)
      } catch {}
    }
  }

  protected emitAttempt (attempt: PieceAttempt): void {
    for (const listener of this.attemptListeners) {
      try {
        listener(attempt)
      } catch {}
    }
  }
}
