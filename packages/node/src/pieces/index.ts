// What the rest of the node uses of pieces/: other folders import from here, not from its files.
export { directChannelService } from './direct-channel.js'
export type { DirectChannelService } from './direct-channel.js'
export { DirectPool } from './direct-pool.js'
export type { Channel } from './frames.js'
export { PeerUnreachableError, isMalformedAnswer, runRemotePiece } from './infer-client.js'
export type { PieceRequest, PieceResult, SignedCommitment } from './infer-client.js'
export { PieceError, inferenceService } from './inference-service.js'
export type { InferenceService, InferenceServiceInit, LinkShape } from './inference-service.js'
