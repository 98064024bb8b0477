import { copyFile, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { formatNpy, parseNpy } from '@shoal/runtime'
import { buildCalibrationModel } from '@shoal/runtime/calibration-model'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DETECTION_MODEL, images, localRun, runCli, sameBytes, spawnNode, tempDir, TEST_AD_INTERVAL_MS, waitFor, withDynamicBatch } from './helpers.js'
import type { NodeProcess } from './helpers.js'

const common = ['--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns', '--ad-interval', String(TEST_AD_INTERVAL_MS), '--no-gpu', '--cpu-threads', '1']

describe('shoal run, end to end through node processes', () => {
  const dirs: string[] = []
  const procs: NodeProcess[] = []
  let work: string

  beforeAll(async () => {
    for (let i = 0; i < 3; i++) dirs.push(await tempDir('shoal-run-'))
    procs.push(await spawnNode(['--data-dir', dirs[0], ...common]))
    for (const dir of dirs.slice(1)) await copyFile(join(dirs[0], 'calibration.json'), join(dir, 'calibration.json'))
    procs.push(...await Promise.all(dirs.slice(1).map(async dir => await spawnNode(['--data-dir', dir, ...common, '--bootstrap', procs[0].addrs[0]]))))
    await waitFor(async () => JSON.parse((await runCli(['peers', '--json', '--data-dir', dirs[0]])).stdout).length === 2, 'the submitter to see both workers', 20_000)
    work = await tempDir('shoal-run-files-')
  })

  afterAll(() => {
    for (const p of procs) p.proc.kill('SIGKILL')
  })

  it('writes one .npy per output, identical to a local ONNX Runtime run, and a JSON summary', async () => {
    const x = images(8, 64, 64)
    await writeFile(join(work, 'x.npy'), formatNpy(x))
    const out = join(work, 'out')
    const result = await runCli(['run', DETECTION_MODEL, '--input', `x=${join(work, 'x.npy')}`, '--output', out, '--json', '--data-dir', dirs[0], '--rows-per-piece', '2'])
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    const summary = JSON.parse(result.stdout)
    // every piece goes over a direct connection when the worker offers one
    expect(summary).toMatchObject({ pieces: 4, retries: 0, directPieces: 4, executionProviders: { cpu: 4 }, failures: [], failedAttempts: 0 })
    expect(typeof summary.jobId).toBe('string')
    expect(summary.wallMs).toBeGreaterThan(0)
    expect(Object.values(summary.peers).reduce((a: number, b: any) => a + b, 0)).toBe(4)
    expect(Object.keys(summary.peers).every(p => p === procs[1].peerId || p === procs[2].peerId)).toBe(true)
    const reference = await localRun(await readFile(DETECTION_MODEL), { x })
    const [name] = Object.keys(reference)
    expect(summary.outputs[name]).toBe(join(out, `${name}.npy`))
    expect(sameBytes(parseNpy(await readFile(summary.outputs[name])), reference[name])).toBe(true)
    // each worker's `node status` says what it did for the submitter (nothing else ran on them yet):
    // the pieces it answered, its results that won and any end-game copy that finished second
    // (a worker may have served the other blocks of the model it fetched first: the swarm at work)
    let answered = 0
    let served = 0
    for (const i of [1, 2]) {
      const status = JSON.parse((await runCli(['node', 'status', '--json', '--data-dir', dirs[i]])).stdout)
      const { pieces } = status.contributed
      expect(pieces).toBeGreaterThanOrEqual(summary.peers[procs[i].peerId] ?? 0)
      expect(status.contributed.rows).toBe(pieces * 2)
      answered += pieces as number
      served += status.contributed.modelBytesServed as number
      const text = (await runCli(['node', 'status', '--data-dir', dirs[i]])).stdout
      expect(text).toMatch(new RegExp(`contributed  ${pieces} pieces? \\(${pieces * 2} rows, .* of compute\\) and [\\d.]+ [KMG]?i?B of models served to others since start`))
    }
    expect(served).toBeLessThanOrEqual((await readFile(DETECTION_MODEL)).byteLength)
    // the submitter signed a receipt for each piece it kept, and each worker holds its own (docs/trust.md, "Credit")
    for (const i of [1, 2]) {
      const won = summary.peers[procs[i].peerId] ?? 0
      await waitFor(async () => JSON.parse((await runCli(['node', 'status', '--json', '--data-dir', dirs[i]])).stdout).credit.earned.receipts === won, `worker ${i}'s receipts`)
      const text = (await runCli(['node', 'status', '--data-dir', dirs[i]])).stdout
      expect(text).toMatch(won === 0 ? /earned {7}no receipts yet/ : new RegExp(`earned {7}${won} receipts? from 1 submitter \\(${won * 2} rows, [\\d.]+[kMG]? work units\\)`))
    }
    const given = (await runCli(['node', 'status', '--data-dir', dirs[0]])).stdout
    expect(given).toMatch(/credit {7}signed 4 receipts \([\d.]+[kMG]? units\) for peers' work; [12] peers? ha(s|ve) credit here \(most: \w{8} [\d.]+/)
    expect(answered).toBeLessThanOrEqual(4 + summary.duplicates + summary.retries)
    // the model file given to `run` is now in the node's store
    const models = JSON.parse((await runCli(['model', 'ls', '--json', '--data-dir', dirs[0]])).stdout)
    expect(models.map((m: any) => m.inputs[0].name)).toEqual(['x'])
    const table = await runCli(['model', 'ls', '--data-dir', dirs[0]])
    expect(table.stdout).toMatch(/^CID\s+NAME\s+SIZE\s+FLAGS\s+INPUTS\s+OUTPUTS\nbafybei\w+\s+-\s+4\.\d MiB\s+-\s+x float32/)
  })

  it('prints a readable summary without --json', async () => {
    await writeFile(join(work, 'x2.npy'), formatNpy(images(4, 64, 64, 7)))
    const result = await runCli(['run', DETECTION_MODEL, '--input', `x=${join(work, 'x2.npy')}`, '--output', join(work, 'out2'), '--data-dir', dirs[0]])
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(/^done: \d+ pieces? of \d+(-\d+)? rows \(sized as it ran\) on \d+ peers? in /)
    expect(result.stdout).toContain('sigmoid_0.tmp_0.npy  float32 [4, 1, 64, 64]')
  })

  it('model commands: add with a signed name, run by name only with --trust, get from the swarm, pin, unpin, rm', async () => {
    const gen = join(work, 'gen.onnx')
    await writeFile(gen, withDynamicBatch(buildCalibrationModel({ batch: 1, width: 16, layers: 2 })))
    const added = await runCli(['model', 'add', gen, '--name', 'gen@1', '--pin', '--json', '--data-dir', dirs[2]])
    expect(added.code).toBe(0)
    const entry = JSON.parse(added.stdout)
    expect(entry).toMatchObject({ name: 'gen@1', pinned: true, manifest: { name: 'gen', version: '1', cid: entry.cid, publisher: procs[2].peerId } })

    const x = { dtype: 'float32' as const, dims: [3, 16], data: new Uint8Array(Float32Array.from({ length: 48 }, (_, i) => i / 7).buffer) }
    await writeFile(join(work, 'g.npy'), formatNpy(x))
    const args = ['run', 'gen@1', '--input', `input=${join(work, 'g.npy')}`, '--output', join(work, 'gen-out'), '--json', '--data-dir', dirs[0]]
    // a name signed by another peer is not trusted unless asked
    const untrusted = await runCli(args)
    expect(untrusted.code).toBe(2)
    expect(untrusted.stderr).toMatch(/no trusted publisher has published gen@1 .*--trust PEERID/)
    const trusted = await runCli([...args, '--trust', procs[2].peerId])
    expect(trusted.stderr).toBe('')
    expect(trusted.code).toBe(0)
    const summary = JSON.parse(trusted.stdout)
    expect(summary.pieces).toBeGreaterThanOrEqual(1)
    const reference = await localRun(await readFile(gen), { input: x })
    expect(sameBytes(parseNpy(await readFile(summary.outputs.output)), reference.output)).toBe(true)

    // a node that has it (the submitter fetched it) and one that does not
    const got = await runCli(['model', 'get', entry.cid, '--json', '--data-dir', dirs[1]])
    expect(got.code).toBe(0)
    const fetched = JSON.parse(got.stdout)
    expect(fetched.cid).toBe(entry.cid)
    expect(fetched.bytes).toBe(entry.bytes)
    // unless a piece already brought it to this worker, it came from the publisher or the submitter
    if (fetched.wallMs > 0) expect(fetched.providers.map((p: any) => p.peerId).every((p: string) => p === procs[0].peerId || p === procs[2].peerId)).toBe(true)
    const held = async (): Promise<any> => JSON.parse((await runCli(['model', 'ls', '--json', '--data-dir', dirs[1]])).stdout).find((m: any) => m.cid === entry.cid)
    expect(await held()).toMatchObject({ pinned: false })
    expect((await runCli(['model', 'pin', entry.cid, '--data-dir', dirs[1]])).code).toBe(0)
    expect(await held()).toMatchObject({ pinned: true })
    expect((await runCli(['model', 'unpin', entry.cid, '--data-dir', dirs[1]])).code).toBe(0)
    expect(await held()).toMatchObject({ pinned: false })
    expect((await runCli(['model', 'rm', entry.cid, '--data-dir', dirs[1]])).code).toBe(0)
    expect(await held()).toBeUndefined()

    for (const [argv, message] of [
      [['model', 'get', 'bafynotacid'], /"bafynotacid" is not a CID/],
      [['model', 'rm', 'nope'], /nope is not a model CID/],
      [['model', 'add', gen, '--name', 'no-version'], /write NAME@VERSION/],
      [['model', 'pin', entry.cid], new RegExp(`model ${entry.cid} is not in this node's store`)]
    ] as Array<[string[], RegExp]>) {
      const result = await runCli([...argv, '--data-dir', dirs[1]])
      expect({ argv, code: result.code }).toEqual({ argv, code: 2 })
      expect(result.stderr).toMatch(message)
    }
  })

  it('refuses bad input with one clear line and exit status 2', async () => {
    const good = formatNpy(images(2, 64, 64))
    await writeFile(join(work, 'truncated.npy'), good.subarray(0, good.length - 100))
    await writeFile(join(work, 'int.npy'), formatNpy({ dtype: 'int32', dims: [2, 3, 64, 64], data: new Uint8Array(2 * 3 * 64 * 64 * 4) }))
    await writeFile(join(work, 'not-a-model.onnx'), 'hello')
    const cases: Array<[string[], RegExp]> = [
      [['run', DETECTION_MODEL, '--input', `x=${join(work, 'truncated.npy')}`, '--output', join(work, 'o')], /truncated/],
      [['run', DETECTION_MODEL, '--input', `x=${join(work, 'int.npy')}`, '--output', join(work, 'o')], /input "x" is int32, the model wants float32/],
      [['run', join(work, 'not-a-model.onnx'), '--input', `x=${join(work, 'int.npy')}`, '--output', join(work, 'o')], /not an ONNX model/],
      [['run', DETECTION_MODEL, '--input', `x=${join(work, 'missing.npy')}`, '--output', join(work, 'o')], /cannot read .*missing\.npy/],
      [['run', DETECTION_MODEL, '--input', 'x', '--output', join(work, 'o')], /expected NAME=FILE\.npy/],
      [['run', DETECTION_MODEL, '--input', `x=${join(work, 'x.npy')}`], /--output DIR is required/]
    ]
    for (const [args, message] of cases) {
      const result = await runCli([...args, '--data-dir', dirs[0]])
      expect({ args, code: result.code }).toEqual({ args, code: 2 })
      expect(result.stderr).toMatch(message)
      expect(result.stderr.trim().split('\n')).toHaveLength(1)
    }
    // the mesh still serves
    const ok = await runCli(['run', DETECTION_MODEL, '--input', `x=${join(work, 'x.npy')}`, '--output', join(work, 'o3'), '--json', '--data-dir', dirs[0]])
    expect(ok.code).toBe(0)
  })
})
