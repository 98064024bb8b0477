import { afterEach, describe, expect, it } from 'vitest'
import { ApiServer, HttpError, JsonBody, RawBody, readJson } from '../src/api/api-server.js'

let server: ApiServer | undefined
afterEach(async () => { await server?.stop(); server = undefined })

async function start (routes: ConstructorParameters<typeof ApiServer>[0]['routes']): Promise<ApiServer> {
  server = new ApiServer({ port: 0, routes })
  await server.start()
  return server
}

describe('local HTTP API server', () => {
  it('answers only requests that carry its token', async () => {
    const s = await start({ 'GET /v1/id': () => ({ ok: true }) })
    const none = await fetch(`${s.url}/v1/id`)
    expect(none.status).toBe(401)
    expect((await none.json()).error.message).toMatch(/missing or wrong API token/)
    const wrong = await fetch(`${s.url}/v1/id`, { headers: { authorization: 'Bearer nope' } })
    expect(wrong.status).toBe(401)
    const right = await fetch(`${s.url}/v1/id`, { headers: { authorization: `Bearer ${s.token}` } })
    expect(await right.json()).toEqual({ ok: true })
  })

  it('routes path parameters, raw bodies, statuses and errors', async () => {
    const s = await start({
      'GET /v1/jobs/:id/outputs/:name': (_req, _url, params) => new RawBody(new TextEncoder().encode(`${params.id}/${params.name}`)),
      'POST /v1/jobs': async (req) => new JsonBody({ got: (await readJson(req, 100)).x }, 202),
      'GET /v1/fail': () => { throw new HttpError(409, 'not yet') },
      'GET /v1/bad': () => { const err = new Error('inputs disagree'); err.name = 'JobError'; throw err },
      'GET /v1/bug': () => { throw new Error('oops') }
    })
    const auth = { authorization: `Bearer ${s.token}` }
    const raw = await fetch(`${s.url}/v1/jobs/j%201/outputs/out`, { headers: auth })
    expect(raw.headers.get('content-type')).toBe('application/octet-stream')
    expect(await raw.text()).toBe('j 1/out')
    const posted = await fetch(`${s.url}/v1/jobs`, { method: 'POST', body: '{"x": 5}', headers: auth })
    expect(posted.status).toBe(202)
    expect(await posted.json()).toEqual({ got: 5 })
    const big = await fetch(`${s.url}/v1/jobs`, { method: 'POST', body: JSON.stringify({ x: 'y'.repeat(200) }), headers: auth })
    expect(big.status).toBe(413)
    const notJson = await fetch(`${s.url}/v1/jobs`, { method: 'POST', body: '{nope', headers: auth })
    expect(notJson.status).toBe(400)
    expect((await fetch(`${s.url}/v1/fail`, { headers: auth })).status).toBe(409)
    expect((await fetch(`${s.url}/v1/bad`, { headers: auth })).status).toBe(400)
    const bug = await fetch(`${s.url}/v1/bug`, { headers: auth })
    expect(bug.status).toBe(500)
    expect((await bug.json()).error.message).toBe('oops')
    const missing = await fetch(`${s.url}/v1/nothing`, { headers: auth })
    expect(missing.status).toBe(404)
    expect((await missing.json()).error.message).toMatch(/endpoints: GET \/v1\/jobs\/:id\/outputs\/:name, POST \/v1\/jobs/)
  })

  it('says so when its port is taken', async () => {
    const first = await start({})
    const port = Number(new URL(first.url).port)
    const second = new ApiServer({ port, routes: {} })
    await expect(second.start()).rejects.toMatchObject({ name: 'ListenError', message: expect.stringMatching(/already in use/) })
  })
})
