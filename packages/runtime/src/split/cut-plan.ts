/**
 * Where to cut a graph into consecutive stages: pure code over an outline of the graph (its nodes in
 * topological order, what each reads and writes, the weight bytes each brings). No ONNX here:
 * split-model.ts makes the outline from a model and the stages from the chosen cuts.
 */

export interface OutlineNode {
  /** Its operator (fusions.ts: which pairs of operators ONNX Runtime fuses). */
  opType?: string
  /** Tensors it reads, outer-scope references of its subgraphs included; weights (initializers, Constant nodes) are not listed. */
  inputs: string[]
  outputs: string[]
  /** Bytes of the weights it brings into its stage (a weight shared with an earlier node counts there only). */
  weightBytes: number
}

export interface GraphOutline {
  nodes: OutlineNode[]
  /** The graph's inputs (fed by the job). */
  inputs: string[]
  /** The graph's outputs. */
  outputs: string[]
}

/** A place to cut: before node `position`, with the tensors that must cross it. */
export interface Cut {
  position: number
  /** Tensors defined before the cut (by a node or as a graph input) and read at or after it. */
  live: string[]
  /** Their bytes per row of the batch, where known (the sum of `sizes`). */
  bytesPerRow: number
  /** Of `live`, the tensors whose producer and a reader across the cut are a pair ONNX Runtime may fuse (fusions.ts). */
  fusable: string[]
}

import { mayFuse } from './fusions.js'

export class SplitError extends Error {
  override name = 'SplitError'
}

/** Checks that every node reads only tensors defined before it (ONNX requires a topological order). */
export function checkTopological (outline: GraphOutline): void {
  const defined = new Set(outline.inputs)
  const producedLater = new Set(outline.nodes.flatMap(n => n.outputs))
  for (const [i, node] of outline.nodes.entries()) {
    for (const input of node.inputs) {
      if (input !== '' && !defined.has(input) && producedLater.has(input)) {
        throw new SplitError(`node ${i} reads "${input}" before any node writes it: the graph is not in topological order`)
      }
    }
    for (const output of node.outputs) defined.add(output)
  }
}

/**
 * The live tensors at every position 1..n-1 (index p: the cut before node p), as counts and as the
 * positions' sets, computed in one sweep: a tensor is live from where it is defined to its last reader.
 */
export function liveAt (outline: GraphOutline): Array<Set<string>> {
  const n = outline.nodes.length
  const definedAt = new Map<string, number>()
  for (const input of outline.inputs) definedAt.set(input, 0)
  outline.nodes.forEach((node, i) => { for (const o of node.outputs) if (o !== '' && !definedAt.has(o)) definedAt.set(o, i + 1) })
  const lastRead = new Map<string, number>()
  outline.nodes.forEach((node, i) => { for (const t of node.inputs) if (definedAt.has(t)) lastRead.set(t, i) })
  const live: Array<Set<string>> = Array.from({ length: n }, () => new Set<string>())
  for (const [tensor, last] of lastRead) {
    const from = Math.max(1, definedAt.get(tensor)!)
    for (let p = from; p <= last && p < n; p++) live[p].add(tensor)
  }
  return live
}

export interface ChooseCutsOptions {
  stages: number
  /** Bytes per row of each tensor, where known; a cut across a tensor of unknown size is never chosen. */
  sizes: ReadonlyMap<string, number>
  /** Cut exactly here (stages - 1 increasing positions), rather than where the rules below choose. */
  positions?: number[]
  /** How far (as a share of an even stage's weight) a cut may sit from the even split to cross fewer, smaller tensors (default 0.25). */
  slack?: number
}

/**
 * Chooses `stages - 1` cuts. Stages are balanced by weight bytes (by node count when the graph has no
 * weights): the k-th cut aims at k/stages of the total. Within `slack` of that aim, the cut crossing
 * the fewest tensors wins, then the one splitting the fewest pairs of operators ONNX Runtime may fuse
 * (fusions.ts), then the fewest bytes per row, then the nearest to the aim; where nothing in that
 * window can be cut, the nearest position that can. Deterministic: the same outline gives the same cuts.
 */
export function chooseCuts (outline: GraphOutline, options: ChooseCutsOptions): Cut[] {
  const { stages, sizes } = options
  const n = outline.nodes.length
  if (!Number.isSafeInteger(stages) || stages < 1) throw new SplitError(`stages must be a whole number of at least 1, not ${stages}`)
  if (stages > n) throw new SplitError(`cannot cut a graph of ${n} node${n === 1 ? '' : 's'} into ${stages} stages`)
  if (stages === 1) return []
  const live = liveAt(outline)
  const totalWeight = outline.nodes.reduce((s, node) => s + node.weightBytes, 0)
  const weightOf = (node: OutlineNode): number => totalWeight > 0 ? node.weightBytes : 1
  // prefix[p]: weight of the nodes before position p
  const prefix = [0]
  for (const node of outline.nodes) prefix.push(prefix[prefix.length - 1] + weightOf(node))
  const total = prefix[n]
  const slack = (options.slack ?? 0.25) * total / stages
  const bytesAt = (p: number): number | undefined => {
    let bytes = 0
    for (const t of live[p]) {
      const size = sizes.get(t)
      if (size == null) return undefined
      bytes += size
    }
    return bytes
  }
  const producer = new Map<string, OutlineNode>()
  const readers = new Map<string, number[]>()
  outline.nodes.forEach((node, i) => {
    for (const o of node.outputs) producer.set(o, node)
    for (const t of node.inputs) readers.set(t, [...(readers.get(t) ?? []), i])
  })
  const fusableAt = (p: number): string[] => [...live[p]].filter(t => {
    const from = producer.get(t)
    return from != null && (readers.get(t) ?? []).some(r => r >= p && mayFuse(from, outline.nodes[r].opType ?? ''))
  })
  const cuts: Cut[] = []
  let previous = 0
  for (let k = 1; k < stages; k++) {
    const forced = options.positions?.[k - 1]
    if (options.positions != null) {
      if (options.positions.length !== stages - 1) throw new SplitError(`${stages} stages need ${stages - 1} cut positions, not ${options.positions.length}`)
      if (forced == null || !Number.isSafeInteger(forced) || forced <= previous || forced > n - (stages - k)) throw new SplitError(`cut position ${String(forced)} is not after ${previous} and before ${n - (stages - k) + 1}`)
      const bytes = bytesAt(forced)
      if (bytes == null) throw new SplitError(`cut position ${forced} crosses a tensor whose size could not be measured`)
      cuts.push({ position: forced, live: [...live[forced]].sort(), bytesPerRow: bytes, fusable: fusableAt(forced).sort() })
      previous = forced
      continue
    }
    const aim = k * total / stages
    // every later stage needs one node at least
    const last = n - (stages - k)
    let best: { p: number, fused: number, count: number, bytes: number, distance: number } | undefined
    let nearest: { p: number, bytes: number, distance: number } | undefined
    for (let p = previous + 1; p <= last; p++) {
      const bytes = bytesAt(p)
      if (bytes == null) continue
      const distance = Math.abs(prefix[p] - aim)
      if (nearest == null || distance < nearest.distance) nearest = { p, bytes, distance }
      if (distance > slack) continue
      const candidate = { p, fused: fusableAt(p).length, count: live[p].size, bytes, distance }
      if (best == null || better(candidate, best)) best = candidate
    }
    const chosen = best ?? nearest
    if (chosen == null) throw new SplitError(`no place to cut stage ${k} from stage ${k + 1}: every position between node ${previous + 1} and node ${last} crosses a tensor whose size could not be measured`)
    cuts.push({ position: chosen.p, live: [...live[chosen.p]].sort(), bytesPerRow: chosen.bytes, fusable: fusableAt(chosen.p).sort() })
    previous = chosen.p
  }
  return cuts
}

type Ranked = { fused: number, count: number, bytes: number, distance: number }
function better (a: Ranked, b: Ranked): boolean {
  if (a.count !== b.count) return a.count < b.count
  if (a.fused !== b.fused) return a.fused < b.fused
  if (a.bytes !== b.bytes) return a.bytes < b.bytes
  return a.distance < b.distance
}
