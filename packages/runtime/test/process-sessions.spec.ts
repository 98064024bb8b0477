import { describe, expect, it } from 'vitest'
// the built module: its child process runs dist/src/session-process.js (`pnpm test` builds first)
import { ProcessSessions } from '../dist/src/process-sessions.js'
import { SessionCache } from '../src/session.js'
import { buildCalibrationModel } from '../src/calibration-model.js'
import type { Tensor } from '../src/tensor.js'
import { endlessLoop, memoryBomb } from '../../../test/integration/test/hostile-models.js'

const honest = buildCalibrationModel({ batch: 4, width: 16, layers: 2 })
const x: Tensor = { dtype: 'float32', dims: [4, 16], data: new Uint8Array(Float32Array.from({ length: 64 }, (_, i) => Math.sin(i)).buffer) }

describe('ProcessSessions: models run in a child process the node can kill', () => {
  it('gives the bytes a session in this process gives, asking for the model once', async () => {
    const sandbox = new ProcessSessions({ providers: ['cpu'], cpuThreads: 1 })
    const local = new SessionCache({ providers: ['cpu'], cpuThreads: 1 })
    let loads = 0
    try {
      const reference = await local.run('m', async () => honest, { input: x })
      for (let i = 0; i < 2; i++) {
        const run = await sandbox.run('m', async () => { loads++; return honest }, { input: x })
        expect(Buffer.from(run.outputs.output.data).equals(Buffer.from(reference.outputs.output.data))).toBe(true)
      }
      expect(loads).toBe(1)
      expect(sandbox.memoryBytes()).toBeGreaterThan(0)
    } finally {
      await sandbox.close()
      await local.close()
    }
  })

  it('kills an endless Loop at its deadline, serves the next piece, and refuses that model for a while', async () => {
    const sandbox = new ProcessSessions({ providers: ['cpu'], cpuThreads: 1 })
    try {
      const started = performance.now()
      const err = await sandbox.run('loop', async () => endlessLoop(), { input: x }, { signal: AbortSignal.timeout(1500) }).catch(e => e)
      expect(err).toMatchObject({ name: 'SandboxError', kind: 'deadline' })
      expect(performance.now() - started).toBeLessThan(10_000)
      const ok = await sandbox.run('m', async () => honest, { input: x })
      expect(ok.outputs.output.dims).toEqual([4, 16])
      // refused at once, without a process spent on it
      const again = await sandbox.run('loop', async () => endlessLoop(), { input: x }).catch(e => e)
      expect(again).toMatchObject({ name: 'SandboxError', kind: 'refused' })
      expect(again.message).toMatch(/outlived its deadline and was killed here; it is refused for \d+ s more/)
      // but the node's own run of a refused model still runs (a peer's short deadline must not stop the node's own jobs)
      const own = await sandbox.run('loop', async () => endlessLoop(), { input: x }, { own: true, signal: AbortSignal.timeout(500) }).catch(e => e)
      expect(own).toMatchObject({ name: 'SandboxError', kind: 'deadline' })
    } finally {
      await sandbox.close()
    }
  })

  it('does not blame a model for a deadline spent waiting behind another piece', async () => {
    const sandbox = new ProcessSessions({ providers: ['cpu'], cpuThreads: 1, processes: 1 })
    try {
      const first = sandbox.run('loop', async () => endlessLoop(), { input: x }, { signal: AbortSignal.timeout(1500) }).catch(e => e)
      // waits for the only child until 1.5 s, then has it for 1 s: killed, but not refused
      const second = sandbox.run('loop-2', async () => endlessLoop(), { input: x }, { signal: AbortSignal.timeout(2500) }).catch(e => e)
      // its deadline passes while it waits: it never reaches a child
      const third = sandbox.run('m', async () => honest, { input: x }, { signal: AbortSignal.timeout(1000) }).catch(e => e)
      expect(await first).toMatchObject({ kind: 'deadline' })
      expect(await third).toMatchObject({ kind: 'deadline', message: expect.stringMatching(/deadline passed while it waited/) })
      expect(await second).toMatchObject({ kind: 'deadline' })
      // the first model is refused, the second and third are not
      expect(await sandbox.run('loop', async () => endlessLoop(), { input: x }).catch(e => e)).toMatchObject({ kind: 'refused' })
      expect((await sandbox.run('m', async () => honest, { input: x })).outputs.output.dims).toEqual([4, 16])
      expect(await sandbox.run('loop-2', async () => endlessLoop(), { input: x }, { signal: AbortSignal.timeout(500) }).catch(e => e)).toMatchObject({ kind: 'deadline' })
    } finally {
      await sandbox.close()
    }
  })

  // the address-space limit is Linux's (RLIMIT_AS through the shell's ulimit); elsewhere the bomb
  // would really take 3 GiB of this machine
  it.runIf(process.platform === 'linux')('stops a memory bomb at its memory limit, then serves an honest model', async () => {
    const sandbox = new ProcessSessions({ providers: ['cpu'], cpuThreads: 1, memoryLimitBytes: 256 * 1024 ** 2 })
    try {
      const err = await sandbox.run('bomb', async () => memoryBomb(), { input: x }).catch(e => e)
      // ONNX Runtime's allocation of 3 GiB fails under the limit, in the child, not in the node
      expect(err.message).toMatch(/Failed to allocate memory for requested buffer of size 3221225472/)
      expect((await sandbox.run('bomb', async () => memoryBomb(), { input: x }).catch(e => e))).toMatchObject({ name: 'SandboxError', kind: 'refused' })
      const ok = await sandbox.run('m', async () => honest, { input: x })
      expect(ok.outputs.output.dims).toEqual([4, 16])
      expect(sandbox.memoryBytes()).toBeLessThan(256 * 1024 ** 2)
    } finally {
      await sandbox.close()
    }
  })
})
