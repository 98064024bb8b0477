/** JSON Schema of `metrics.json` (format shoal-sim-metrics/1); docs/simulation.md explains each field. */

const count = { type: 'integer', minimum: 0 }
const ms = { type: 'number', minimum: 0 }
const msOrNull = { anyOf: [ms, { type: 'null' }] }

const verification = {
  type: 'object',
  additionalProperties: false,
  required: ['policy', 'checkedPieces', 'extraRows', 'mismatches', 'excluded', 'canaryRows'],
  properties: { policy: { enum: ['off', 'spot', 'full'] }, checkedPieces: count, extraRows: count, mismatches: count, excluded: { type: 'array', items: { type: 'string' } }, canaryRows: count }
}

const cheat = {
  anyOf: [
    { type: 'null' },
    { type: 'object', additionalProperties: false, required: ['rate', 'mode'], properties: { rate: { type: 'number', minimum: 0, maximum: 1 }, mode: { enum: ['zeros', 'perturb', 'lazy'] } } }
  ]
}

const credit = {
  anyOf: [
    { type: 'null' },
    { type: 'object', additionalProperties: false, required: ['earnedReceipts', 'earnedWork', 'submitters', 'issuedWork', 'creditors'], properties: { earnedReceipts: count, earnedWork: count, submitters: count, issuedWork: count, creditors: count } }
  ]
}

const job = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'from', 'submitter', 'model', 'batch', 'inputSeed', 'submittedAtMs', 'endedAtMs', 'wallMs', 'state', 'pieces', 'piecesDone', 'retries', 'duplicates', 'bytesSent', 'bytesReceived', 'bytesMoved', 'lostPieces', 'correct', 'verification'],
  properties: {
    id: { type: 'string' },
    from: { type: 'string' },
    submitter: { type: ['string', 'null'] },
    model: { type: 'string' },
    batch: count,
    inputSeed: count,
    submittedAtMs: ms,
    endedAtMs: msOrNull,
    wallMs: msOrNull,
    state: { enum: ['done', 'failed', 'unfinished'] },
    error: { type: 'string' },
    pieces: count,
    piecesDone: count,
    retries: count,
    duplicates: count,
    bytesSent: count,
    bytesReceived: count,
    bytesMoved: count,
    lostPieces: count,
    correct: { type: ['boolean', 'null'] },
    verification,
    pipeline: {
      type: 'object',
      additionalProperties: false,
      required: ['stages', 'microBatches', 'replays'],
      properties: { stages: count, microBatches: count, replays: { type: 'array', items: count } }
    }
  }
}

const served = {
  type: 'object',
  additionalProperties: false,
  required: ['from', 'jobs', 'done', 'meanWallMs', 'maxWallMs', 'firstSubmittedMs', 'lastEndedMs'],
  properties: { from: { type: 'string' }, jobs: count, done: count, meanWallMs: msOrNull, maxWallMs: msOrNull, firstSubmittedMs: ms, lastEndedMs: msOrNull }
}

const node = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'group', 'peerId', 'up', 'upMs', 'busyFraction', 'piecesDone', 'piecesFailed', 'cheat', 'excludedAtMs', 'nat'],
  properties: {
    name: { type: 'string' },
    group: { type: 'string' },
    peerId: { type: 'string' },
    up: { type: 'array', items: { type: 'object', additionalProperties: false, required: ['fromMs', 'toMs'], properties: { fromMs: ms, toMs: ms } } },
    upMs: ms,
    busyFraction: { type: 'number', minimum: 0, maximum: 1 },
    piecesDone: count,
    piecesFailed: count,
    thread: { type: 'integer', minimum: 1 },
    end: { enum: ['kill', 'leave'] },
    cheat,
    excludedAtMs: msOrNull,
    nat: { type: 'boolean' },
    credit
  }
}

export const METRICS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['format', 'scenario', 'versions', 'computeMode', 'processes', 'threads', 'models', 'nodes', 'startupMs', 'convergenceMs', 'runMs', 'lostPieces', 'jobs', 'served', 'nodeStats', 'events', 'attempts', 'throughput'],
  properties: {
    format: { const: 'shoal-sim-metrics/1' },
    scenario: {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'file', 'seed', 'durationMs'],
      properties: { name: { type: 'string' }, file: { type: 'string' }, seed: count, durationMs: ms }
    },
    versions: {
      type: 'object',
      additionalProperties: false,
      required: ['shoal', 'node', 'libp2p', 'onnxruntime'],
      properties: { shoal: { type: 'string' }, node: { type: 'string' }, libp2p: { type: 'string' }, onnxruntime: { type: 'string' } }
    },
    computeMode: { enum: ['onnx', 'delay'] },
    processes: { type: 'boolean' },
    threads: { type: 'integer', minimum: 1 },
    models: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['key', 'label', 'cid', 'bytes', 'msPerRow'],
        properties: { key: { type: 'string' }, label: { type: 'string' }, cid: { type: 'string' }, bytes: count, msPerRow: ms }
      }
    },
    nodes: count,
    startupMs: ms,
    convergenceMs: ms,
    runMs: ms,
    lostPieces: count,
    jobs: { type: 'array', items: job },
    served: { type: 'array', items: served },
    nodeStats: { type: 'array', items: node },
    events: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['atMs', 'kind', 'node', 'doneAtMs'],
        properties: { atMs: ms, kind: { enum: ['kill', 'leave', 'join'] }, node: { type: 'string' }, doneAtMs: msOrNull }
      }
    },
    attempts: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['job', 'piece', 'node', 'rows', 'startMs', 'endMs', 'outcome'],
        properties: { job: { type: 'string' }, piece: count, node: { type: 'string' }, rows: count, startMs: { type: 'number' }, endMs: { type: 'number' }, outcome: { enum: ['done', 'duplicate', 'failed', 'cancelled'] }, reason: { type: 'string' } }
      }
    },
    throughput: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['fromMs', 'toMs', 'rowsPerSecond'],
        properties: { fromMs: ms, toMs: ms, rowsPerSecond: { type: 'number', minimum: 0 } }
      }
    }
  }
} as const
