import { MAX_MODEL_COSTS } from '../constants.js'

/**
 * What this node's jobs measured a row of each model to cost, as ms per row on a node of 1 GFLOP/s
 * (a peer's observed ms per row times its advertised throughput), so that the next job of the model
 * sizes its pieces from a measurement rather than a guess. Bounded: the least recently measured model
 * is forgotten first. Kept in memory only: a node's first job of a model after a start measures anew.
 */
export class ModelCosts {
  private readonly costs = new Map<string, number>()
  private readonly max: number

  constructor (max = MAX_MODEL_COSTS) {
    this.max = max
  }

  /** A job's measurement (ms per row at 1 GFLOP/s); a later one replaces it. */
  record (modelCid: string, msPerRowAtOneGflops: number): void {
    if (!Number.isFinite(msPerRowAtOneGflops) || msPerRowAtOneGflops <= 0) return
    this.costs.delete(modelCid)
    this.costs.set(modelCid, msPerRowAtOneGflops)
    while (this.costs.size > this.max) this.costs.delete(this.costs.keys().next().value as string)
  }

  /** Expected ms per row on a node of `gflops`, if the model was measured. */
  msPerRow (modelCid: string, gflops: number): number | undefined {
    const cost = this.costs.get(modelCid)
    return cost == null || gflops <= 0 ? undefined : cost / gflops
  }
}
