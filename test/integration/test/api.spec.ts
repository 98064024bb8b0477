import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ApiClient, resolveConfig, ShoalNode } from '@shoal/node'
import { formatNpy, parseNpy } from '@shoal/runtime'
import { afterEach, describe, expect, it } from 'vitest'
import { DETECTION_MODEL, FIXED_CALIBRATION, images, localRun, metricValue, sameBytes, startNode, stopAll, tempDir, waitFor } from './helpers.js'

let nodes: ShoalNode[] = []
afterEach(async () => { await stopAll(nodes); nodes = [] })

describe('HTTP API: models and jobs', () => {
  it('adds a model, runs a job with inline .npy input, serves its output, and refuses bad requests', async () => {
    const dataDir = await tempDir()
    const config = await resolveConfig({ dataDir, env: {}, flags: { listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, adIntervalMs: 300, cpuThreads: 1, peersOnly: true } })
    const submitter = new ShoalNode({ config, calibration: FIXED_CALIBRATION })
    await submitter.start()
    nodes.push(submitter)
    nodes.push(await startNode([submitter.addrs[0]]))
    await waitFor(() => submitter.peers().length === 1, 'the worker to be seen')
    const client = await ApiClient.connect(dataDir)

    const bytes = await readFile(DETECTION_MODEL)
    const model = await client.addModel(bytes)
    expect(model.inputs.map(i => i.name)).toEqual(['x'])
    expect((await client.get<any[]>('/v1/models')).map(m => m.cid)).toEqual([model.cid])

    const x = images(4, 64, 64)
    const { jobId } = await client.submitJob({ model: model.cid, inputs: { x: { npy: Buffer.from(formatNpy(x)).toString('base64') } }, options: { rowsPerPiece: 1 } })
    let view = await client.job(jobId)
    await waitFor(async () => { view = await client.job(jobId); return view.state === 'done' || view.state === 'failed' }, 'the job to end', 30_000)
    expect(view.state).toBe('done')
    expect(view.progress.done).toBe(4)
    expect(view.outputs).toEqual([{ name: 'sigmoid_0.tmp_0', dtype: 'float32', dims: [4, 1, 64, 64] }])
    const output = parseNpy(await client.output(jobId, 'sigmoid_0.tmp_0'))
    expect(sameBytes(output, (await localRun(bytes, { x }))['sigmoid_0.tmp_0'])).toBe(true)

    await expect(client.job('nope')).rejects.toMatchObject({ status: 404 })
    await expect(client.output(jobId, 'nope')).rejects.toMatchObject({ status: 404, message: expect.stringMatching(/outputs: sigmoid_0.tmp_0/) })
    await expect(client.submitJob({ model: model.cid, inputs: { x: { path: 'relative.npy' } } })).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/must be absolute/) })
    await expect(client.submitJob({ model: model.cid, inputs: { x: { npy: 'AAAA' } } })).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/not a \.npy file/) })
    await expect(client.submitJob({ model: model.cid, inputs: { y: { npy: Buffer.from(formatNpy(x)).toString('base64') } } })).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/needs input "x"/) })
    await expect(client.submitJob({ model: model.cid, inputs: { x: { npy: Buffer.from(formatNpy(x)).toString('base64') } }, options: { maxPieceMs: 0 } } as any)).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/options.maxPieceMs must be a whole number of ms from 1 to 3600000/) })
    await expect(client.submitJob({ model: model.cid, inputs: { x: { npy: Buffer.from(formatNpy(x)).toString('base64') } }, options: { local: 'everywhere' } } as any)).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/options.local must be "share" or "fallback"/) })
    await expect(client.addModel(new TextEncoder().encode('nope'))).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/not an ONNX model/) })
    // a device or directory never ends or is no file: refused before reading
    await expect(client.submitJob({ model: model.cid, inputs: { x: { path: '/dev/zero' } } })).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/\/dev\/zero is not a regular file/) })
    await expect(client.submitJob({ model: model.cid, inputs: { x: { path: dataDir } } })).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/is not a regular file/) })
    const onDisk = join(dataDir, 'x.npy')
    await writeFile(onDisk, formatNpy(x))
    const fromFile = await client.submitJob({ model: model.cid, inputs: { x: { path: onDisk } }, options: { rowsPerPiece: 2 } })
    await waitFor(async () => (await client.job(fromFile.jobId)).state === 'done', 'the job read from a file to end', 30_000)
    await expect(client.get('/v1/jobs/%E0%A4%A')).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/bad %-encoding/) })
  })

  it('serves Prometheus metrics at GET /metrics, with the token written alone for a scrape config', async () => {
    const dataDir = await tempDir()
    const config = await resolveConfig({ dataDir, env: {}, flags: { listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, adIntervalMs: 300, cpuThreads: 1, peersOnly: true } })
    const submitter = new ShoalNode({ config, calibration: FIXED_CALIBRATION })
    await submitter.start()
    nodes.push(submitter)
    const worker = await startNode([submitter.addrs[0]])
    nodes.push(worker)
    await waitFor(() => submitter.peers().length === 1, 'the worker to be seen')
    const model = await submitter.addModel(await readFile(DETECTION_MODEL))
    const result = await submitter.submitJob(model.cid, { x: images(3, 64, 64) }, { rowsPerPiece: 1 }).run()

    const { url, token } = JSON.parse(await readFile(join(dataDir, 'api.json'), 'utf8'))
    expect(await readFile(join(dataDir, 'api-token'), 'utf8')).toBe(`${token}\n`)
    const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${token}` } })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8')
    const text = await res.text()
    expect(metricValue(text, `shoal_info{version="${submitter.status().version}",peer_id="${submitter.peerId}"}`)).toBe(1)
    expect(metricValue(text, 'shoal_jobs_total{state="done"}')).toBe(1)
    expect(metricValue(text, 'shoal_job_pieces_total{where="remote"}')).toBe(result.progress.perPeer[worker.peerId])
    expect(metricValue(text, 'shoal_job_pieces_total{where="local"}')).toBe(result.progress.perPeer[submitter.peerId] ?? 0)
    expect(metricValue(text, 'shoal_peers')).toBe(1)
    expect(metricValue(text, 'shoal_models')).toBe(1)
    expect(metricValue(text, 'shoal_model_store_bytes')).toBe(model.bytes)
    // the worker fetched the model from here: its blocks (the file's bytes and the DAG's links)
    const served = metricValue(text, 'shoal_model_served_bytes_total')!
    expect(served).toBeGreaterThanOrEqual(model.bytes)
    expect(served).toBeLessThan(model.bytes * 1.01)
    expect(metricValue(text, 'process_resident_memory_bytes')).toBeGreaterThan(0)
    // what the worker did, seen from its side
    const workerText = await worker.metrics.text()
    expect(metricValue(workerText, 'shoal_worker_pieces_total{outcome="ok"}')).toBe(result.progress.perPeer[worker.peerId])
    expect(metricValue(workerText, 'shoal_model_fetches_total{outcome="done"}')).toBe(1)
    expect(metricValue(workerText, 'shoal_model_fetched_bytes_total')).toBe(served)
    // like every endpoint, only with the token
    expect((await fetch(`${url}/metrics`)).status).toBe(401)
  })
})
