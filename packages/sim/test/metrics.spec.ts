import { Ajv } from 'ajv'
import { describe, expect, it } from 'vitest'
import { METRICS_SCHEMA, nodeMetrics, renderReport, servedByGroup, summary, throughput, unionLength } from '../src/index.js'
import type { SimMetrics } from '../src/index.js'

function sample (): SimMetrics {
  const attempts: SimMetrics['attempts'] = [
    { job: 'job-0', piece: 0, node: 'a-0', rows: 10, startMs: 0, endMs: 400, outcome: 'done' },
    { job: 'job-0', piece: 1, node: 'a-0', rows: 10, startMs: 200, endMs: 600, outcome: 'done' },
    { job: 'job-0', piece: 2, node: 'a-1', rows: 10, startMs: 0, endMs: 300, outcome: 'failed', reason: 'peer disconnected' },
    { job: 'job-0', piece: 2, node: 'a-0', rows: 10, startMs: 600, endMs: 900, outcome: 'done' }
  ]
  const nodes = [
    { name: 'a-0', group: 'a', peerId: 'P0', startedAtMs: 0, stoppedAtMs: null },
    { name: 'a-1', group: 'a', peerId: 'P1', startedAtMs: 0, stoppedAtMs: 300, end: 'kill' as const, cheat: { rate: 0.5, mode: 'zeros' as const }, excludedAtMs: 250 }
  ]
  return {
    format: 'shoal-sim-metrics/1',
    scenario: { name: 'a <b> & "c"', file: 'x.yaml', seed: 1, durationMs: 10_000 },
    versions: { shoal: '0.1.0', node: 'v24', libp2p: '3', onnxruntime: '1.30.0' },
    computeMode: 'delay',
    processes: false,
    threads: 1,
    models: [{ key: 'generated:8x1', label: 'generated', cid: 'bafk', bytes: 10, msPerRow: 0.5 }],
    nodes: 2,
    startupMs: 10,
    convergenceMs: 20,
    runMs: 1000,
    lostPieces: 0,
    served: [],
    jobs: [{ id: 'job-0', from: 'client', submitter: 'client', model: 'generated:8x1', batch: 30, inputSeed: 3, submittedAtMs: 0, endedAtMs: 900, wallMs: 900, state: 'done', pieces: 3, piecesDone: 3, retries: 1, duplicates: 0, bytesSent: 100, bytesReceived: 50, bytesMoved: 150, lostPieces: 0, correct: null, verification: { policy: 'spot', checkedPieces: 3, extraRows: 30, mismatches: 1, excluded: ['a-1'], canaryRows: 0 } }],
    nodeStats: nodeMetrics(nodes, attempts, 1000),
    events: [{ atMs: 300, kind: 'kill', node: 'a-1', doneAtMs: 300 }],
    attempts,
    throughput: throughput(attempts, 1000, 10)
  }
}

describe('metrics', () => {
  it('counts overlapping intervals once', () => {
    expect(unionLength([[0, 400], [200, 600], [700, 800]])).toBe(700)
    expect(unionLength([])).toBe(0)
  })

  it('per node: time up, busy fraction, pieces done and failed', () => {
    const [a0, a1] = sample().nodeStats
    expect(a0).toMatchObject({ upMs: 1000, busyFraction: 0.9, piecesDone: 3, piecesFailed: 0 })
    expect(a1).toMatchObject({ upMs: 300, busyFraction: 1, piecesDone: 0, piecesFailed: 1, end: 'kill', up: [{ fromMs: 0, toMs: 300 }] })
  })

  it('throughput counts done rows in the bucket where they finished', () => {
    const buckets = sample().throughput
    expect(buckets).toHaveLength(10)
    // 10 rows at 400 ms, 10 at 600 ms, 10 at 900 ms; buckets of 100 ms
    expect(buckets[4].rowsPerSecond).toBe(100)
    expect(buckets[6].rowsPerSecond).toBe(100)
    expect(buckets[9].rowsPerSecond).toBe(100)
    expect(buckets.reduce((n, b) => n + b.rowsPerSecond, 0)).toBe(300)
  })

  it('valid metrics pass the schema; a lost field or a wrong kind does not', () => {
    const validate = new Ajv({ allErrors: true }).compile(METRICS_SCHEMA)
    expect(validate(sample())).toBe(true)
    const broken: any = sample()
    delete broken.convergenceMs
    broken.jobs[0].state = 'maybe'
    expect(validate(broken)).toBe(false)
    expect(validate.errors?.map(e => e.instancePath || e.params.missingProperty).sort()).toEqual(['/jobs/0/state', 'convergenceMs'])
  })

  it('the summary keeps the fields --json promises and drops the bulky ones', () => {
    const s = summary(sample()) as any
    expect(s.jobs[0]).toMatchObject({ id: 'job-0', wallMs: 900, pieces: 3, retries: 1, duplicates: 0, lostPieces: 0 })
    expect(s).toMatchObject({ nodes: 2, convergenceMs: 20, computeMode: 'delay' })
    expect(s.attempts).toBeUndefined()
    expect(s.nodeStats).toBeUndefined()
  })
})

describe('who got served', () => {
  it('per submitting group, in order of first submission: jobs, how many ended, mean and longest times; unfinished jobs count but have no time', () => {
    const job = (id: string, from: string, submittedAtMs: number, wallMs: number | null): any => ({ id, from, submittedAtMs, endedAtMs: wallMs == null ? null : submittedAtMs + wallMs, wallMs, state: wallMs == null ? 'unfinished' : 'done' })
    const served = servedByGroup([job('j0', 'riders', 100, 3000), job('j1', 'givers', 0, 1000), job('j2', 'givers', 50, 2000), job('j3', 'riders', 200, null)])
    expect(served).toEqual([
      { from: 'givers', jobs: 2, done: 2, meanWallMs: 1500, maxWallMs: 2000, firstSubmittedMs: 0, lastEndedMs: 2050 },
      { from: 'riders', jobs: 2, done: 1, meanWallMs: 3000, maxWallMs: 3000, firstSubmittedMs: 100, lastEndedMs: 3100 }
    ])
    const m = sample()
    m.jobs = [{ ...m.jobs[0], from: 'givers', submitter: 'givers-0' }]
    m.served = servedByGroup(m.jobs)
    m.nodeStats[0].credit = { earnedReceipts: 3, earnedWork: 120, submitters: 1, issuedWork: 40, creditors: 2 }
    const html = renderReport(m)
    expect(html).toContain('<h2>Who got served</h2>')
    expect(html).toContain('<td>givers</td><td>1</td><td>1</td><td>900 ms</td>')
    expect(html).toContain('<td>job-0</td><td>givers-0</td>')
    expect(html).toContain('<td>3 (120)</td><td>40 to 2</td>')
    expect(renderReport(sample())).not.toContain('Who got served')
  })
})

describe('report', () => {
  it('is one self-contained page with the three plots', () => {
    const html = renderReport(sample())
    for (const id of ['timeline', 'throughput', 'jobs']) expect(html).toContain(`<svg id="${id}"`)
    // no scripts, styles or images from anywhere: it opens offline
    expect(html).not.toMatch(/<script|<link|<img|src=|url\(/i)
    expect(html.match(/https?:\/\/[^"]*/g)?.every(u => u === 'http://www.w3.org/2000/svg')).toBe(true)
    // names are escaped, delay compute is said plainly
    expect(html).toContain('a &lt;b&gt; &amp; &quot;c&quot;')
    expect(html).toContain('calibrated delay')
    // the timeline has a bar per node up and a mark per piece attempt, the failed one with its reason
    const timeline = html.slice(html.indexOf('<svg id="timeline"'), html.indexOf('</svg>', html.indexOf('<svg id="timeline"')))
    expect(timeline.match(/<rect/g)).toHaveLength(2 + 4)
    expect(timeline).toContain('failed (peer disconnected)')
    expect(timeline).toContain('✕')
    // the cheater's exclusion is on the timeline, and in the tables
    expect(timeline).toContain('a-1 excluded at 250 ms for a wrong answer')
    expect(html).toContain('<td>zeros 50%</td><td>250 ms</td>')
  })
})
