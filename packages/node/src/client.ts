/**
 * @packageDocumentation
 *
 * `@shoal/node/client`: what talks to a running node through its local HTTP API, and nothing that
 * runs one (no libp2p, no ONNX Runtime). The CLI's commands that only ask a node (`shoal peers`,
 * `shoal node status`, `shoal model ls`, ...) load this alone, so that they start in a fraction of
 * the time the whole node takes to load. (What a model CID is: `@shoal/node/model-cid`, which loads
 * multiformats.)
 */
export { ApiClient } from './api/api-client.js'
export type { InferView } from './api/api-client.js'
export type { RequestOptions } from './jobs/request.js'
export type { ApiInfo, Evidence, NodeStatus, PeerView, Standing } from './shoal-node.js'
export type { JobView } from './api/api-routes.js'
export type { JobOptions, JobProgress } from './jobs/job.js'
export type { ModelEntry } from './models/model-store.js'
export type { PipelineEntry } from './models/pipelines.js'
export { pipelineManifestOf } from './models/pipelines.js'
export type { FetchProgress, FetchSummary } from './models/model-swarm.js'
export type { Contribution } from './metrics.js'
export type { CreditView } from './credit/index.js'
export type { ServingView } from './serving-gate.js'
export type { Manifest, Resolved } from './models/names.js'
export { dataDirFiles } from './data-dir-layout.js'
export { ApiError, NoRunningNodeError } from './errors.js'
export { DEFAULT_DATA_DIR, INCOMPATIBLE_VERSIONS, SHOAL_VERSION } from './constants.js'
export { generateSwarmKey, parseSwarmKey, swarmKeyFingerprint, SwarmKeyError } from './mesh/swarm-key.js'
