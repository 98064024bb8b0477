/**
 * @packageDocumentation
 *
 * `@shoal/node`: run a Shoal node from TypeScript, submit jobs to it, or ask one that runs.
 *
 * This is the package's public surface, and all of it: the node (`ShoalNode`), its configuration,
 * jobs, the local API's client, the errors a caller can catch, and the types of what these return.
 * The parts a node is made of (peer table, capacity service, model store, swarm, inference service,
 * ...) are not exported: they are reached through `ShoalNode`, and tested inside the package.
 *
 * Other entry points: `@shoal/node/client` (the API client alone, without libp2p or ONNX Runtime),
 * `@shoal/node/model-cid` and `@shoal/node/names` (model CIDs and signed names, small),
 * `@shoal/node/data-dir` (what a data dir holds), and `@shoal/node/wire` (the piece protocol's
 * framing and client, for tools and tests that speak the protocol to a peer themselves).
 */
export { ShoalNode } from './shoal-node.js'
export type { ApiInfo, Evidence, NodeStatus, PeerView, ShoalNodeInit, Standing } from './shoal-node.js'
export { NODE_OPTIONS, envName, parseBytes, resolveConfig } from './config.js'
export type { NodeConfig, OptionSpec, ResolveConfigInit } from './config.js'
export type { MeshTuning } from './mesh/create-libp2p.js'
export type { PeerEntry, PeerEvent } from './mesh/peer-table.js'
export { Job, JobError } from './jobs/job.js'
export type { JobOptions, JobProgress, JobResult, PieceAttempt } from './jobs/job.js'
export { PipelineJob } from './jobs/pipeline-job.js'
export type { RequestOptions, RequestResult } from './jobs/request.js'
export type { PipelineProgress, StageProgress } from './jobs/pipeline-job.js'
export { pipelineManifestOf } from './models/pipelines.js'
export type { PipelineEntry } from './models/pipelines.js'
export type { JobView } from './api/api-routes.js'
export type { VerificationView } from './jobs/verifier.js'
export { ApiClient } from './api/api-client.js'
export type { ModelEntry } from './models/model-store.js'
export type { FetchOptions, FetchProgress, FetchSummary } from './models/model-swarm.js'
export { ModelDagError, isModelCid, parseModelCid } from './models/model-cid.js'
export { NameError, parseNameRef } from './models/names.js'
export type { Manifest, NameRef, Resolved } from './models/names.js'
export type { Contribution } from './metrics.js'
export {
  ApiError, ConfigError, DataDirError, FetchBusyError, ListenError, ModelFetchError, ModelInUseError, ModelNotFoundError,
  NoRunningNodeError, StorageFullError
} from './errors.js'
export { DEFAULT_DATA_DIR, DEFAULT_LISTEN, INCOMPATIBLE_VERSIONS, MAX_COUNTED_AD_INTERVAL_MS, SHOAL_VERSION } from './constants.js'
