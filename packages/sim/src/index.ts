/**
 * @shoal/sim: `shoal sim`. A scenario (YAML) describes a mesh (groups of nodes with speed, concurrency,
 * GPU, link), its churn and its jobs; `planScenario` fixes everything that will happen from the seed;
 * `runSimulation` plays the plan with real Shoal nodes on loopback (real libp2p, scheduler, model
 * swarm; ONNX Runtime or a calibrated delay) and measures it; `renderReport` draws the metrics as one
 * self-contained HTML page. docs/simulation.md is the user's guide.
 */
export { parseScenario, parseDuration, parseRate } from './scenario.js'
export type { Scenario, GroupSpec, JobSpec, ChurnEventSpec, ModelSpec, ChurnMode, CheatMode, CheatSpec } from './scenario.js'
export { cheating, PERTURB_FACTOR } from './cheat.js'
export { SCENARIO_SCHEMA } from './scenario-schema.js'
export { planScenario, seededRandom } from './plan.js'
export type { Plan, PlannedNode, PlannedEvent, PlannedJob } from './plan.js'
export { runSimulation } from './run.js'
export type { SimOptions } from './run.js'
export { summary, unionLength, nodeMetrics, servedByGroup, throughput } from './metrics.js'
export type { SimMetrics, JobMetrics, NodeMetrics, AttemptRecord, EventRecord, VerificationMetrics } from './metrics.js'
export { METRICS_SCHEMA } from './metrics-schema.js'
export { renderReport, renderSweeps } from './report.js'
export type { SweepSeries } from './report.js'
export { writeOutputs } from './outputs.js'
export { loadModel, DelayRuntime, delayOutputs } from './models.js'
export { ScenarioError, SimError } from './errors.js'
export type { ScenarioProblem } from './errors.js'
