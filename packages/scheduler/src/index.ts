/**
 * @packageDocumentation
 *
 * The scheduler of batch jobs: how a batch is cut into pieces (`planPieces`, or as it runs: `sizePiece`) and
 * which peer runs which piece when (`Scheduler`). Pure logic over plain data and an injected clock.
 */
export { planPieces, sizePiece } from './plan.js'
export type { Piece, PieceSizing, SizeInput } from './plan.js'
export { Scheduler, describeCause } from './scheduler.js'
export type { Assignment, Cancellation, Decision, FailureCause, JobFailure, Progress, SchedulerOptions, SchedulerPeer } from './scheduler.js'
export * from './constants.js'
export { checkFraction, DEFAULT_SPOT, DEFAULT_TRUST, majority, needsCheck, TrustRecords, VERIFY_POLICIES } from './verification.js'
export type { PeerTrust, SpotOptions, TrustOptions, VerifyPolicy } from './verification.js'
export { RequestRouter } from './requests.js'
export type { RequestCandidate, Route, RouterOptions } from './requests.js'
export { CreditLedger, DEFAULT_CREDIT } from './credit.js'
export type { CreditFile, CreditOptions, PeerCredit, PresentedReceipt } from './credit.js'
