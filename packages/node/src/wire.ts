/**
 * @packageDocumentation
 *
 * `@shoal/node/wire`: the piece protocol from the submitter's side, one layer below `Job`: length-
 * prefixed frames over a stream or a socket (`frames`, `readMessage`, `writeData`, ...), one piece run
 * on one peer (`runRemotePiece`) and the direct data channel (`openDirectChannel`). For tools, benches
 * and tests that talk to a peer themselves; a node's users want `ShoalNode` and `Job` instead.
 * docs/protocol.md is the specification these follow.
 */
export { frames, readData, readMessage, streamChannel, writeData, writeMessage } from './pieces/frames.js'
export type { Channel, Frames } from './pieces/frames.js'
export { PeerUnreachableError, runRemotePiece } from './pieces/infer-client.js'
export type { PieceRequest, PieceResult } from './pieces/infer-client.js'
export { PieceError } from './pieces/inference-service.js'
export { DirectUnavailableError, SocketFrames, openDirectChannel, openReverseChannel } from './pieces/direct-channel.js'
export type { ReverseTicket } from './pieces/direct-channel.js'
