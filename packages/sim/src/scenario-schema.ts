/**
 * The JSON Schema of a scenario file (docs/simulation.md describes every field). Durations are
 * strings with a unit ("500ms", "5s", "2m") or plain numbers of milliseconds; counts of nodes in churn
 * events are whole numbers or percentages ("30%") of the group's nodes up at that moment.
 */

/** A number, or a string with a unit that scenario.ts reads; the message replaces ajv's two. */
function numberOrUnit (number: Record<string, unknown>, pattern: string, errorMessage: string): Record<string, unknown> {
  return { anyOf: [number, { type: 'string', pattern }], errorMessage }
}

const duration = numberOrUnit({ type: 'number', minimum: 0 }, '^\\s*\\d+(\\.\\d+)?\\s*(ms|s|m|h)\\s*$', 'a duration such as 500ms, 5s or 2m')

const nodeCount = numberOrUnit({ type: 'integer', minimum: 1 }, '^\\s*\\d+(\\.\\d+)?\\s*%\\s*$', 'a number of nodes (3) or a percentage of the group (30%)')

const bandwidth = numberOrUnit({ type: 'number', exclusiveMinimum: 0 }, '^\\s*\\d+(\\.\\d+)?\\s*(bit|kbit|mbit|gbit|B|kB|MB|GB)(/s)?\\s*$', 'a rate such as 100mbit or 10MB/s (a number is bytes per second)')

const network = {
  type: 'object',
  additionalProperties: false,
  properties: {
    latency: duration,
    bandwidth
  }
}

const group = {
  type: 'object',
  additionalProperties: false,
  required: ['count'],
  properties: {
    name: { type: 'string', pattern: '^[a-z][a-z0-9-]{0,31}$' },
    count: { type: 'integer', minimum: 1, maximum: 1000 },
    speed: { type: 'number', exclusiveMinimum: 0, maximum: 1000 },
    concurrency: { type: 'integer', minimum: 1, maximum: 64 },
    gpu: { type: 'boolean' },
    nat: { type: 'boolean' },
    serve: { type: 'boolean' },
    network,
    cheat: {
      type: 'object',
      additionalProperties: false,
      required: ['rate'],
      properties: {
        rate: { type: 'number', minimum: 0, maximum: 1 },
        mode: { enum: ['zeros', 'perturb', 'lazy'] }
      }
    }
  }
}

const model = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  maxProperties: 1,
  properties: {
    generated: {
      type: 'object',
      additionalProperties: false,
      properties: {
        width: { type: 'integer', minimum: 1, maximum: 4096 },
        layers: { type: 'integer', minimum: 1, maximum: 64 },
        msPerRow: { type: 'number', exclusiveMinimum: 0, maximum: 60000 }
      }
    },
    package: {
      type: 'object',
      additionalProperties: false,
      required: ['name', 'file'],
      properties: {
        name: { type: 'string', minLength: 1 },
        file: { type: 'string', minLength: 1 },
        rowShape: { type: 'array', items: { type: 'integer', minimum: 1 }, maxItems: 8 }
      }
    }
  }
}

const job = {
  type: 'object',
  additionalProperties: false,
  required: ['at', 'batch'],
  properties: {
    at: duration,
    count: { type: 'integer', minimum: 1, maximum: 10000 },
    every: duration,
    from: { type: 'string' },
    model,
    batch: { type: 'integer', minimum: 1, maximum: 1_000_000 },
    rowsPerPiece: { type: 'integer', minimum: 1 },
    maxPieceMs: { type: 'integer', minimum: 1 },
    maxAttempts: { type: 'integer', minimum: 1, maximum: 100 },
    endgame: { type: 'boolean' },
    verify: { enum: ['off', 'spot', 'full'] },
    canaries: { type: 'integer', minimum: 0, maximum: 8 },
    pipeline: {
      type: 'object',
      additionalProperties: false,
      required: ['stages'],
      properties: { stages: { type: 'integer', minimum: 2, maximum: 16 } }
    }
  }
}

const churnEvent = {
  type: 'object',
  additionalProperties: false,
  required: ['at'],
  minProperties: 2,
  properties: {
    at: duration,
    group: { type: 'string' },
    leave: nodeCount,
    join: { type: 'integer', minimum: 1, maximum: 1000 },
    mode: { enum: ['kill', 'leave'] }
  }
}

export const SCENARIO_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['nodes', 'workload'],
  properties: {
    name: { type: 'string' },
    description: { type: 'string' },
    seed: { type: 'integer', minimum: 0, maximum: 4294967295 },
    duration: duration,
    compute: { enum: ['onnx', 'delay'] },
    adInterval: duration,
    credit: { type: 'boolean' },
    nodes: { type: 'array', minItems: 1, maxItems: 64, items: group },
    churn: {
      type: 'object',
      additionalProperties: false,
      properties: {
        events: { type: 'array', items: churnEvent, maxItems: 10000 },
        random: {
          type: 'object',
          additionalProperties: false,
          required: ['rate'],
          properties: {
            rate: { type: 'number', minimum: 0, maximum: 1 },
            per: duration,
            mode: { enum: ['kill', 'leave'] },
            rejoinAfter: duration,
            from: duration,
            until: duration
          }
        }
      }
    },
    workload: {
      type: 'object',
      additionalProperties: false,
      required: ['jobs'],
      properties: {
        model,
        models: { enum: ['preload', 'fetch'] },
        jobs: { type: 'array', minItems: 1, maxItems: 1000, items: job }
      }
    }
  }
} as const
