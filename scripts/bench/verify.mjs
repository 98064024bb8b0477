// Result verification: how often `--verify spot` catches a cheater, measured over many seeded jobs
// against the computed 1 - (1 - r)^(f n), and what `spot` and `full` cost in an honest mesh. The jobs
// are @shoal/node's Job with its verifier, over in-memory peers (no network, no ONNX Runtime: the
// model is y = x, so a right answer is the piece's input and a wrong one is zeros); what is measured
// is the policy and the job's handling of it, not transport.
import { Job } from '@shoal/node'
import { checkFraction, TrustRecords } from '@shoal/scheduler'
import { seededRandom as seeded } from '@shoal/sim'
import { record, table } from '../record.mjs'

const JOBS = Number(process.env.SHOAL_BENCH_VERIFY_JOBS ?? 2000)
const PIECES = 50
const CASES = [[0.1, 0.05], [0.1, 0.25], [0.2, 0.1], [0.5, 0.05], [1, 0.05]]
const COST_JOBS = Number(process.env.SHOAL_BENCH_VERIFY_COST_JOBS ?? 60)

const model = { cid: 'bafkreibench', bytes: 100, opsets: [], inputs: [{ name: 'x', dtype: 'float32', dims: ['batch', 4] }], outputs: [{ name: 'y', dtype: 'float32', dims: ['batch', 4] }] }
const honest = inputs => ({ outputs: { y: inputs.x }, computeMs: 1, provider: 'cpu' })
const zeros = inputs => ({ outputs: { y: { ...inputs.x, data: new Uint8Array(inputs.x.data.byteLength) } }, computeMs: 1, provider: 'cpu' })

function batch (rows) {
  return { dtype: 'float32', dims: [rows, 4], data: new Uint8Array(Float32Array.from({ length: rows * 4 }, (_, i) => i + 1).buffer) }
}

/** A job over in-memory peers: `workers[peerId](request)` answers; this node computes honestly. */
function job (workers, rows, options, trust, random) {
  const peers = Object.keys(workers).map(peerId => ({ peerId, gflops: 50, slots: 2 }))
  return new Job({
    localPeerId: 'me',
    localGflops: 50,
    localSlots: 1,
    model,
    peers: () => peers.filter(p => !trust.excluded(p.peerId)),
    onPeersChanged: () => () => {},
    runRemote: async (peerId, request) => workers[peerId](request),
    runLocal: async (_cid, inputs) => honest(inputs),
    maxResponseBytes: 1 << 20,
    trust,
    random
  }, { x: batch(rows) }, { rowsPerPiece: 1, ...options })
}

/** The share of jobs in which a cheater checked at fraction r, corrupting round(f n) of its n pieces, is caught. */
async function catchRate (f, r) {
  const record = Math.round(10 / r)
  if (Math.abs(checkFraction(record) - r) > 1e-9) throw new Error(`no record gives a check fraction of ${r}`)
  const bad = Math.round(f * PIECES)
  let caught = 0
  for (let j = 0; j < JOBS; j++) {
    const random = seeded(j * 7919 + Math.round(f * 1000) * 31 + Math.round(r * 1000))
    // which pieces it corrupts: round(f n) of them, drawn
    const ids = Array.from({ length: PIECES }, (_, i) => i)
    for (let i = ids.length - 1; i > 0; i--) { const k = Math.floor(random() * (i + 1)); [ids[i], ids[k]] = [ids[k], ids[i]] }
    const corrupt = new Set(ids.slice(0, bad))
    // the record stays at the one that gives r: the fraction is the same for every piece of the job
    const trust = new TrustRecords(Date.now)
    trust.load({ cheater: { record, offences: 0, excludedUntil: 0 } })
    trust.verified = () => {}
    const result = await job({ cheater: async req => corrupt.has(req.pieceId) ? zeros(req.inputs) : honest(req.inputs) }, PIECES, { verify: 'spot' }, trust, random).run()
    if (result.progress.verification.excluded.includes('cheater')) caught++
  }
  return { measured: caught / JOBS, computed: 1 - (1 - r) ** bad, bad }
}

/** Extra rows computed (checks, second answers) per row of the job, over a run of jobs in an honest mesh of 4 peers. */
async function cost (policy) {
  const trust = new TrustRecords(Date.now)
  const random = seeded(99)
  const workers = Object.fromEntries(['a', 'b', 'c', 'd'].map(id => [id, async req => honest(req.inputs)]))
  const shares = []
  for (let j = 0; j < COST_JOBS; j++) {
    const result = await job(workers, 64, { verify: policy }, trust, random).run()
    shares.push({ extra: result.progress.verification.extraRows / 64, excluded: result.progress.verification.excluded.length, record: Math.min(...['a', 'b', 'c', 'd'].map(id => trust.get(id).record)) })
  }
  return shares
}

export async function run ({ record: save }) {
  const catchRows = []
  for (const [f, r] of CASES) {
    const { measured, computed, bad } = await catchRate(f, r)
    // one standard error of a share measured over JOBS jobs
    const se = Math.sqrt(computed * (1 - computed) / JOBS)
    catchRows.push([String(f), String(r), String(bad), measured.toFixed(3), computed.toFixed(3), `±${se.toFixed(3)}`])
  }
  const spot = await cost('spot')
  const full = await cost('full')
  const pick = [1, 2, 5, 10, 20, 40, 60, 100, 200].filter(n => n <= COST_JOBS)
  const costRows = pick.map(n => [String(n), `${(spot[n - 1].extra * 100).toFixed(1)}%`, String(spot[n - 1].record), `${(full[n - 1].extra * 100).toFixed(1)}%`])
  const exclusions = [...spot, ...full].reduce((n, s) => n + s.excluded, 0)
  const markdown = [
    `Catch probability of \`--verify spot\` per job: a cheater checked at fraction r that corrupts round(f n) of its n = ${PIECES} pieces (zeros), over ${JOBS} seeded jobs per row, against 1 - (1 - r)^(f n); its record is held at 10 / r for the whole job.`,
    '',
    table(['f', 'r', 'corrupt pieces', 'caught (measured)', 'caught (computed)', '1 s.e.'], catchRows),
    '',
    `Cost in an honest mesh of 4 peers: rows computed beyond one answer per piece, as a share of the job's 64 rows (pieces of 1 row), for the nth job of ${COST_JOBS} in a row on one submitter (records carry over from job to job); "least record" is the smallest of the four peers' records after that job. Exclusions over every job: ${exclusions}.`,
    '',
    table(['job', 'spot: extra', 'least record', 'full: extra'], costRows)
  ].join('\n')
  process.stdout.write(markdown + '\n')
  if (save) await record('verify', 'pnpm bench verify --record', markdown)
}
