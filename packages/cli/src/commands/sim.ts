import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { parseScenario, runSimulation, summary, writeOutputs } from '@shoal/sim'
import { JSON_FLAG, parse } from '../args.js'
import type { Command, CommandSpec } from '../args.js'
import { UsageError } from '../errors.js'
import type { Io } from '../io.js'
import { SUMMARIES } from './summaries.js'

export const simSpec: CommandSpec = {
  name: 'sim',
  summary: SUMMARIES['sim'],
  usage: 'shoal sim SCENARIO.yaml --out DIR [--json] [--processes | --threads N] [--compute onnx|delay] [--seed N]',
  positionals: true,
  flags: [
    { name: 'out', type: 'string', placeholder: 'DIR', help: 'where metrics.json and report.html are written (created if missing)' },
    { name: 'processes', type: 'boolean', help: 'run each node in its own OS process (default: all in this one)' },
    { name: 'threads', type: 'string', placeholder: 'N', help: 'spread the nodes over N worker threads of this process, to use N cores (large meshes: 100 nodes on 2 cores need 2)', defaultText: '1: every node on the main thread' },
    { name: 'compute', type: 'string', placeholder: 'MODE', help: 'onnx: real ONNX Runtime; delay: a delay calibrated from the real model, so the mesh rather than this machine\'s cores is measured', defaultText: 'the scenario\'s, else onnx' },
    { name: 'seed', type: 'string', placeholder: 'N', help: 'seed for churn and inputs, instead of the scenario\'s' },
    JSON_FLAG
  ],
  details: `Starts real Shoal nodes on loopback (real libp2p, scheduler, model swarm), waits until every
node sees every other, then plays the scenario: nodes killed, leaving and joining at their times, jobs
submitted at theirs. The same scenario and seed give the same churn and the same jobs.

Writes DIR/metrics.json (per job, per node, the mesh; its schema is in docs/simulation.md) and
DIR/report.html (one self-contained page: nodes over time with their pieces, throughput, job times).
Progress goes to stderr. With --json, stdout is the metrics summary: {jobs: [{id, wallMs, pieces,
retries, duplicates, lostPieces, ...}], nodes, convergenceMs, computeMode, ...}.
Exit status: 0 when every job finished with no lost piece, 1 otherwise, 2 for a bad scenario.

Examples:
  shoal sim examples/scenarios/churn-30.yaml --out /tmp/churn
  shoal sim examples/scenarios/mesh-50.yaml --out /tmp/m50 --compute delay --json
  shoal sim examples/scenarios/mesh-50.yaml --out /tmp/m50 --threads 2`
}

export async function sim (argv: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(simSpec, argv)
  if (positionals.length !== 1) throw new UsageError('give exactly one scenario file')
  const out = values.out as string | undefined
  if (out == null) throw new UsageError('--out DIR is required')
  const compute = values.compute as string | undefined
  if (compute != null && compute !== 'onnx' && compute !== 'delay') throw new UsageError(`--compute is onnx or delay, not "${compute}"`)
  const seedText = values.seed as string | undefined
  if (seedText != null && !/^\d+$/.test(seedText)) throw new UsageError(`--seed is a whole number, not "${seedText}"`)
  const threadsText = values.threads as string | undefined
  if (threadsText != null && !/^[1-9]\d*$/.test(threadsText)) throw new UsageError(`--threads is a whole number of at least 1, not "${threadsText}"`)
  if (threadsText != null && threadsText !== '1' && values.processes === true) throw new UsageError('--threads and --processes exclude each other: with --processes every node has its own process')
  const file = positionals[0]
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err: any) {
    throw new UsageError(`cannot read ${file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`)
  }
  const scenario = parseScenario(text, file)
  if (compute != null) scenario.compute = compute
  if (seedText != null) scenario.seed = Number(seedText)
  const metrics = await runSimulation(scenario, { file, processes: values.processes === true, threads: Number(threadsText ?? 1), log: line => io.log(line) })
  const files = await writeOutputs(resolve(out), metrics)
  if (values.json === true) {
    io.stdout(JSON.stringify(summary(metrics), null, 2) + '\n')
  } else {
    const done = metrics.jobs.filter(j => j.state === 'done')
    io.stdout([
      `${metrics.scenario.name}: ${metrics.nodes} nodes, compute ${metrics.computeMode}, seed ${metrics.scenario.seed}`,
      `converged in ${metrics.convergenceMs} ms; ${done.length}/${metrics.jobs.length} jobs done, ${metrics.lostPieces} lost pieces`,
      ...metrics.jobs.map(j => `  ${j.id}: ${j.state}${j.wallMs != null ? ` in ${j.wallMs} ms` : ''}, ${j.pieces} pieces, ${j.retries} retries, ${j.duplicates} duplicates${j.verification.policy !== 'off' ? `, verify ${j.verification.policy}: ${j.verification.mismatches} wrong${j.verification.excluded.length > 0 ? `, excluded ${j.verification.excluded.join(', ')}` : ''}` : ''}${j.correct === false ? ', OUTPUTS DIFFER from a local run' : ''}`),
      `metrics: ${files.metrics}`,
      `report:  ${files.report}`
    ].join('\n') + '\n')
  }
  const ok = metrics.lostPieces === 0 && metrics.jobs.every(j => j.state === 'done' && j.correct !== false)
  return ok ? 0 : 1
}

/** This file's commands, by name (main.ts loads the file when one of them runs). */
export const commands: Record<string, Command> = {
  'sim': { spec: simSpec, run: sim }
}
