import { Scheduler } from '../src/scheduler.js'
import type { Decision, FailureCause, Progress, SchedulerPeer } from '../src/scheduler.js'
import type { Piece } from '../src/plan.js'

/** How a simulated peer behaves: its true speed, and optionally a failure mode. */
export interface SimPeer extends SchedulerPeer {
  trueMsPerRow: number
  /** Never answers (accepts pieces and goes silent). */
  silent?: boolean
  /** Answers every piece with this failure after its normal time. */
  failWith?: FailureCause
  /** Leaves the mesh at this time. */
  leavesAt?: number
  /**
   * Computes one piece at a time, as a Shoal worker does: the other pieces it accepted wait in its
   * queue (and a cancelled copy still takes its time: a running ONNX Runtime session cannot be stopped).
   * Otherwise each accepted piece runs at once, at full speed.
   */
  serial?: boolean
  /** Its first piece takes this much longer: it fetches the model first. */
  fetchMs?: number
  /** Every piece costs this much beyond its rows (the round trip, framing): what makes tiny pieces slow. */
  overheadMs?: number
  /** Its answers (with a quorum, answers are compared by this): 'right' unless given; a function of the piece for a cheater that is wrong sometimes. */
  answers?: string | ((pieceId: number) => string)
}

export interface SimResult {
  endedAt: number
  state: Scheduler['state']
  decisions: Decision[]
  cancelled: Decision['cancel']
  completedBy: Record<string, number>
  /** The scheduler's progress right after each result came back, with the time. */
  progress: Array<Progress & { at: number }>
  /** With a quorum: each verdict, as the caller of the scheduler gave it. */
  verdicts: Array<{ pieceId: number, peers: string[], agreeing: string[] | null }>
}

function answerOf (peer: SimPeer, pieceId: number): string {
  return typeof peer.answers === 'function' ? peer.answers(pieceId) : (peer.answers ?? 'right')
}

/**
 * A discrete-event run of a scheduler over simulated peers: each assigned copy completes (or fails) at
 * its peer's true speed; peers leave on schedule; the scheduler's own wake-up times drive timeouts.
 */
export function simulate (scheduler: Scheduler, plan: Piece[], peers: SimPeer[], limitMs = 10 * 60_000, localPeerId?: string): SimResult {
  let now = 0
  let live = peers.filter(p => (p.leavesAt ?? Infinity) > 0)
  scheduler.setPeers(live, now)
  const events: Array<{ at: number, run: () => void }> = []
  const decisions: Decision[] = []
  const cancelled: Decision['cancel'] = []
  const completedBy: Record<string, number> = {}
  const running = new Set<string>()
  const progress: SimResult['progress'] = []
  /** When each serial peer's queue empties. */
  const freeAt = new Map<string, number>()
  /** Peers that have the model (fetched it with their first piece). */
  const fetched = new Set<string>()
  for (const p of peers) {
    if (p.leavesAt != null) {
      events.push({
        at: p.leavesAt,
        run: () => {
          live = live.filter(l => l.peerId !== p.peerId)
          scheduler.setPeers(live, now)
        }
      })
    }
  }
  const pieces = new Map(plan.map(p => [p.id, p]))
  const verdicts: SimResult['verdicts'] = []
  /** With a quorum, the caller's part: answers that two or more peers gave alike win. */
  const judge = (pieceId: number): void => {
    const ballot = scheduler.ballot(pieceId)
    if (ballot == null) return
    const values = ballot.map(id => answerOf(peers.find(p => p.peerId === id)!, pieceId))
    // the local node's answer decides a ballot it is in (and a ballot of one answer is its)
    const local = localPeerId == null ? -1 : ballot.indexOf(localPeerId)
    const winner = values.length === 1 ? values[0] : local >= 0 ? values[local] : values.find(v => values.filter(w => w === v).length >= 2)
    const agreeing = winner == null ? null : ballot.filter((_, i) => values[i] === winner)
    verdicts.push({ pieceId, peers: ballot, agreeing })
    if (agreeing != null) scheduler.agreed(pieceId, agreeing)
    else scheduler.disagreed(pieceId)
  }
  const act = (): void => {
    const decision = scheduler.next(now)
    decisions.push(decision)
    for (const c of decision.cancel) {
      running.delete(`${c.pieceId}@${c.peerId}`)
      cancelled.push(c)
    }
    for (const a of decision.assign) {
      const peer = peers.find(p => p.peerId === a.peerId)!
      const key = `${a.pieceId}@${a.peerId}`
      running.add(key)
      if (peer.silent === true) continue
      // a self-sizing scheduler's pieces exist once it cut them
      const rows = (pieces.get(a.pieceId) ?? scheduler.piece(a.pieceId))?.rows ?? 1
      const fetching = fetched.has(peer.peerId) ? 0 : (peer.fetchMs ?? 0)
      fetched.add(peer.peerId)
      const at = (peer.serial === true ? Math.max(now, freeAt.get(peer.peerId) ?? 0) : now) + fetching + (peer.overheadMs ?? 0) + rows * peer.trueMsPerRow
      if (peer.serial === true) freeAt.set(peer.peerId, at)
      events.push({
        at,
        run: () => {
          if (!running.delete(key) || !live.some(l => l.peerId === peer.peerId)) return
          if (peer.failWith != null) scheduler.failed(a.pieceId, peer.peerId, peer.failWith, now)
          else if (scheduler.succeeded(a.pieceId, peer.peerId, now)) {
            completedBy[peer.peerId] = (completedBy[peer.peerId] ?? 0) + 1
            judge(a.pieceId)
          }
          progress.push({ ...scheduler.progress(now), at: now })
        }
      })
    }
  }
  act()
  while (scheduler.state === 'running' && now < limitMs) {
    const wake = scheduler.nextWakeAt(now)
    events.sort((a, b) => a.at - b.at)
    const nextEvent = events[0]?.at ?? Infinity
    const at = Math.min(nextEvent, wake ?? Infinity)
    if (at === Infinity) break
    now = Math.max(now, at)
    while (events.length > 0 && events[0].at <= now) events.shift()!.run()
    act()
  }
  act()
  return { endedAt: now, state: scheduler.state, decisions, cancelled, completedBy, progress, verdicts }
}
