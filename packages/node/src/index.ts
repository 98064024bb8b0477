/**
 * @packageDocumentation
 *
 * A Shoal node: a libp2p host (TCP, WebSockets, Noise, Yamux, identify, ping, Shoal's Kademlia DHT,
 * gossipsub) that advertises its measured capacity, keeps a table of its peers' ads, and serves a
 * local HTTP API. `ShoalNode` is the whole node; the parts are exported for tests and simulations.
 */
export { ShoalNode, dhtRoutingTableSize } from './shoal-node.js'
export type { ApiInfo, NodeStatus, PeerView, ShoalNodeInit } from './shoal-node.js'
export { NODE_OPTIONS, envName, isLoopback, parseBytes, resolveConfig } from './config.js'
export type { NodeConfig, OptionSpec, ResolveConfigInit } from './config.js'
export { PeerTable } from './peer-table.js'
export type { PeerEntry, PeerEvent, PeerTableInit, Verdict } from './peer-table.js'
export { CapacityService, capacityService } from './capacity-service.js'
export type { LocalCapacity, CapacityServiceInit } from './capacity-service.js'
export { createShoalLibp2p } from './create-libp2p.js'
export type { MeshTuning, ShoalLibp2p, ShoalServices } from './create-libp2p.js'
export { dataDirFiles, readIdentity } from './data-dir.js'
export { detectHardware } from './hardware.js'
export { ApiClient } from './api-client.js'
export * from './errors.js'
export * from './constants.js'
export { Job, JobError } from './job.js'
export type { JobOptions, JobProgress, JobResult, PieceAttempt } from './job.js'
export type { JobView } from './api-routes.js'
export { ModelStore } from './model-store.js'
export type { ModelEntry, ModelStoreInit } from './model-store.js'
export { ModelSwarm, ModelFetchError } from './model-swarm.js'
export type { FetchOptions, FetchProgress, FetchSummary } from './model-swarm.js'
export { assembleModel, decodeBlock, isModelCid, parseModelCid, ModelDagError } from './model-dag.js'
export { NameService, NameError, parseNameRef, looksLikeNameRef, nameKey, signManifest, verifyNameRecord, selectNameRecord } from './names.js'
export type { Manifest, NameRef, Resolved } from './names.js'
export { Standing } from './standing.js'
export { InferenceService, PieceError } from './inference-service.js'
export type { LinkShape } from './inference-service.js'
export { runRemotePiece, PeerUnreachableError } from './infer-client.js'
