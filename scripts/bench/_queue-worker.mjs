// A BullMQ worker, what a user would run instead of a mesh: takes pieces from the Redis queue, runs them
// with one ONNX Runtime session of one CPU thread, and returns the outputs (base64 in the job's return value).
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { Worker } from 'bullmq'
import { Redis } from 'ioredis'
const ort = createRequire(import.meta.resolve('@shoal/runtime'))('onnxruntime-node')
const [port, modelPath, inputName] = process.argv.slice(2)
const session = await ort.InferenceSession.create(await readFile(modelPath), { intraOpNumThreads: 1, executionProviders: ['cpu'] })
const worker = new Worker('pieces', async job => {
  const bytes = Buffer.from(job.data.x, 'base64')
  const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength))
  const out = await session.run({ [inputName]: new ort.Tensor('float32', values, job.data.dims) })
  const y = out[session.outputNames[0]]
  return { dims: y.dims, y: Buffer.from(y.data.buffer, y.data.byteOffset, y.data.byteLength).toString('base64') }
}, { connection: new Redis({ host: '127.0.0.1', port: Number(port), maxRetriesPerRequest: null }), concurrency: 1 })
await worker.waitUntilReady()
process.stdout.write('ready\n')
