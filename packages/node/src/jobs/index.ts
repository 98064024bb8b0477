// What the rest of the node uses of jobs/: other folders import from here, not from its files.
export { Job, JobError, MAX_CANARIES } from './job.js'
export { CanaryPool } from './canaries.js'
export { ModelCosts } from './model-costs.js'
export type { JobOptions, SubmitterDeps, WrongAnswer } from './job.js'
export { PipelineJob } from './pipeline-job.js'
export type { PipelineJobDeps, PipelineProgress, StageProgress } from './pipeline-job.js'
export { RequestSlots, runRequest } from './request.js'
export type { RequestDeps, RequestOptions, RequestResult } from './request.js'
