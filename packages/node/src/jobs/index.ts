// What the rest of the node uses of jobs/: other folders import from here, not from its files.
export { Job, JobError } from './job.js'
export type { JobOptions, WrongAnswer } from './job.js'
