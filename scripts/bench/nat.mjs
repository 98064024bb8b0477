// Reach: how long a worker takes to become reachable, and how fast a job runs, on each path the NAT
// lab shows (scripts/nat-lab.mjs: network namespaces, root needed): a worker with a public address,
// one behind a router reached over the connection it opened, and one reached through an unlimited
// relay, each the only worker of a job. Jobs run with --verify off: what is measured is the path.
import { labPrerequisites, runLab } from '../nat-lab.mjs'
import { record, table } from '../record.mjs'

const JOB = { rows: Number(process.env.SHOAL_BENCH_NAT_ROWS ?? 1024), width: 256, layers: 2, rowsPerPiece: 32 }

export async function run ({ record: save }) {
  const missing = labPrerequisites()
  if (missing != null) {
    process.stderr.write(`bench nat: ${missing}\n`)
    process.exit(2)
  }
  const rows = []
  const add = (label, job, worker) => {
    rows.push([label, job.paths[worker], `${job.reachableMs[worker]} ms`, `${job.wallMs} ms`, String(Math.round(JOB.rows / (job.wallMs / 1000))), `${job.piecesByWorker[worker]} of ${job.pieces} (${job.submitterPieces} here)`, job.correct ? 'yes' : 'NO'])
  }
  const publicWorker = await runLab({ workers: ['w0'], job: JOB, verify: 'off', preload: true, onlyWorkers: true })
  add('public worker, public submitter', publicWorker.publicSubmitter, 'w0')
  add('public worker, submitter behind NAT', publicWorker, 'w0')
  const natWorker = await runLab({ workers: ['w1'], job: JOB, verify: 'off', preload: true, onlyWorkers: true })
  add('worker behind NAT, public submitter', natWorker.publicSubmitter, 'w1')
  add('worker behind NAT, submitter behind NAT (unlimited relay)', natWorker, 'w1')
  const markdown = [
    `One job of ${JOB.rows} rows (an MLP ${JOB.width} wide, ${JOB.layers} layers; pieces of ${JOB.rowsPerPiece} rows, ${JOB.rowsPerPiece * JOB.width * 4} bytes of inputs each) with one worker, on each path of the NAT lab. "Reachable after": from the worker's start until the submitter had a connection to it. Rows/s: the job's rows over its wall time. Pieces: the worker's of the job's (the bootstrap node and the submitters run with --max-concurrency 0: they compute nothing). The workers hold the model before the jobs. Wall time includes the CLI's start and the outputs' writing.`,
    '',
    table(['worker and submitter', 'path', 'reachable after', 'job wall time', 'rows/s', 'pieces', 'outputs exact'], rows)
  ].join('\n')
  process.stdout.write(markdown + '\n')
  if (save) await record('nat', 'pnpm bench nat --record', markdown)
}
