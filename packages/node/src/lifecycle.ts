/** A part of the node that starts and stops: the store, the sandbox, libp2p, the swarm, names, the API. */
export interface Part {
  name: string
  start: () => Promise<void>
  stop: () => Promise<void>
}

/**
 * Parts started in order and stopped in reverse order. A start that fails stops that part (so each
 * part's stop must undo a start that got half way, or none) and then, in reverse, the parts already
 * started: a node that failed to start leaves nothing running (no listener, no sandbox process, no
 * timer). A stop that fails does not keep the other parts from stopping.
 */
export class Lifecycle {
  private readonly parts: Part[] = []
  private started: Part[] = []

  add (name: string, start: () => Promise<void>, stop: () => Promise<void>): this {
    this.parts.push({ name, start, stop })
    return this
  }

  /** Names of the parts started (or starting) now, in order. */
  get running (): string[] {
    return this.started.map(p => p.name)
  }

  async start (): Promise<void> {
    for (const part of this.parts) {
      this.started.push(part)
      try {
        await part.start()
      } catch (err) {
        await this.stop().catch(() => {})
        throw err
      }
    }
  }

  /** Stops every started part, last first; throws the first failure once all were tried. */
  async stop (): Promise<void> {
    const parts = this.started.reverse()
    this.started = []
    const failures: unknown[] = []
    for (const part of parts) {
      try {
        await part.stop()
      } catch (err) {
        failures.push(err)
      }
    }
    if (failures.length > 0) throw failures[0]
  }
}
