export { CreditKeeper } from './credit-keeper.js'
export type { CreditedJob, CreditedPiece, CreditKeeperInit, CreditView, ReceiptNet, Verified } from './credit-keeper.js'
export { EarnedReceipts } from './earned-receipts.js'
export type { EarnedReceipt, EarnedSummary } from './earned-receipts.js'
