import { join } from 'node:path'

/** The files a node keeps in its data directory. */
export function dataDirFiles (dataDir: string): { identity: string, config: string, calibration: string, api: string, apiToken: string, trust: string, evidence: string, credit: string, receipts: string, paused: string } {
  return {
    identity: join(dataDir, 'identity.key'),
    config: join(dataDir, 'config.json'),
    calibration: join(dataDir, 'calibration.json'),
    api: join(dataDir, 'api.json'),
    apiToken: join(dataDir, 'api-token'),
    // peers' records of verified and wrong answers (result verification)
    trust: join(dataDir, 'trust.json'),
    // the signed commitments of answers proven wrong (docs/protocol.md 6.3)
    evidence: join(dataDir, 'evidence.json'),
    // what peers did for this node (docs/trust.md, "Credit")
    credit: join(dataDir, 'credit.json'),
    // the receipts submitters signed for this node's work
    receipts: join(dataDir, 'receipts.json'),
    // present while the volunteer paused the node (shoal node pause)
    paused: join(dataDir, 'paused.json')
  }
}
