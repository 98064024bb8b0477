// What a user would pick instead of the mesh for requests: onnxruntime-node behind node:http, one
// session of one CPU thread, a float32 body in, the first output's bytes out. Prints its port.
import http from 'node:http'
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
const ort = createRequire(import.meta.resolve('@shoal/runtime'))('onnxruntime-node')
const [modelPath, inputName, dimsText] = process.argv.slice(2)
const dims = dimsText.split(',').map(Number)
const session = await ort.InferenceSession.create(await readFile(modelPath), { intraOpNumThreads: 1, executionProviders: ['cpu'] })
const server = http.createServer((req, res) => {
  const chunks = []
  req.on('data', c => chunks.push(c))
  req.on('end', async () => {
    const body = Buffer.concat(chunks)
    const values = new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength))
    const out = await session.run({ [inputName]: new ort.Tensor('float32', values, [values.length / dims.reduce((a, b) => a * b, 1), ...dims]) })
    const first = out[session.outputNames[0]].data
    res.end(Buffer.from(first.buffer, first.byteOffset, first.byteLength))
  })
})
server.keepAliveTimeout = 60_000
server.listen(0, '127.0.0.1', () => { process.stdout.write(`${server.address().port}\n`) })
