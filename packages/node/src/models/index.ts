// What the rest of the node uses of models/: other folders import from here, not from its files.
export { isModelCid, parseModelCid } from './model-dag.js'
export { ModelStore } from './model-store.js'
export type { ModelEntry } from './model-store.js'
export { modelSwarm } from './model-swarm.js'
export type { FetchOptions, FetchProgress, FetchSummary, ModelSwarm, ModelSwarmInit } from './model-swarm.js'
export { nameRecordSelectors, nameRecordValidators, nameService, parseNameRef } from './names.js'
export type { Manifest, NameService, NameServiceInit, Resolved } from './names.js'
