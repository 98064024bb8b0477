/** One thing wrong in a scenario file: the field (a path like `workload.jobs[0].batch`), its line, why. */
export interface ScenarioProblem {
  path: string
  line: number
  message: string
}

/** A scenario file that cannot run; the message lists every problem with its line and field. */
export class ScenarioError extends Error {
  override name = 'ScenarioError'
  readonly problems: ScenarioProblem[]

  constructor (file: string, problems: ScenarioProblem[]) {
    super(`${file} is not a valid scenario:\n${problems.map(p => `  line ${p.line}${p.path === '' ? '' : `, ${p.path}`}: ${p.message}`).join('\n')}\n(docs/simulation.md describes every field)`)
    this.problems = problems
  }
}

/** A simulation that could not start or run (a model that cannot be loaded, a mesh that never formed). */
export class SimError extends Error {
  override name = 'SimError'
}
