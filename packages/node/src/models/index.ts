// What the rest of the node uses of models/: other folders import from here, not from its files.
export { isModelCid, parseModelCid } from './model-dag.js'
export { ModelStore } from './model-store.js'
export type { ModelEntry } from './model-store.js'
export { ModelSwarm } from './model-swarm.js'
export type { FetchOptions, FetchProgress, FetchSummary } from './model-swarm.js'
export { NameService, nameRecordSelectors, nameRecordValidators, parseNameRef } from './names.js'
export type { Manifest, Resolved } from './names.js'
