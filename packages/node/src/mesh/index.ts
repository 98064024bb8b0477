// What the rest of the node uses of mesh/: other folders import from here, not from its files.
export { createShoalLibp2p } from './create-libp2p.js'
export type { MeshTuning, ShoalLibp2p } from './create-libp2p.js'
export { detectHardware } from './hardware.js'
export type { PeerEvent } from './peer-table.js'
