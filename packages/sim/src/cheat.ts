import type { PieceRuntime, Tensor } from '@shoal/runtime'
import { seededRandom } from './plan.js'
import type { CheatSpec } from './scenario.js'

/** 1 + 1e-3: what `perturb` multiplies every float output value by (ten times the verification tolerance). */
export const PERTURB_FACTOR = 1 + 1e-3

function zeros (t: Tensor): Tensor {
  return { dtype: t.dtype, dims: [...t.dims], data: new Uint8Array(t.data.byteLength) }
}

function perturbed (t: Tensor): Tensor {
  const data = t.data.slice()
  if (t.dtype === 'float32') new Float32Array(data.buffer).forEach((v, i, a) => { a[i] = v * PERTURB_FACTOR })
  else if (t.dtype === 'float64') new Float64Array(data.buffer).forEach((v, i, a) => { a[i] = v * PERTURB_FACTOR })
  return { dtype: t.dtype, dims: [...t.dims], data }
}

function mapOutputs (outputs: Record<string, Tensor>, f: (t: Tensor) => Tensor): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(outputs).map(([name, t]) => [name, f(t)]))
}

/**
 * A scenario's cheating node: its runtime answers a share `rate` of the pieces wrong, drawn with its
 * own seed. `zeros` and `lazy` pieces are not computed at all (the point of cheating is to save the
 * work: they answer at once); `perturb` computes the piece and scales every float value. `lazy`
 * replays the outputs of an earlier piece of the same shape that it computed, or zeros when there is
 * none. Everything else (streams, shapes, timing of honest pieces) is the node's own.
 */
export function cheating (runtime: PieceRuntime, cheat: CheatSpec & { seed: number }): PieceRuntime {
  const random = seededRandom(cheat.seed)
  /** The outputs of the last piece it computed, per shape of its inputs. */
  const earlier = new Map<string, Record<string, Tensor>>()
  return {
    run: async (cid, load, inputs, options) => {
      const shape = `${cid}:${Object.entries(inputs).map(([name, t]) => `${name}[${t.dims.join(',')}]`).join(';')}`
      const cheats = random() < cheat.rate
      if (cheats && cheat.mode !== 'perturb') {
        options?.onStart?.()
        const outputs = earlier.get(shape)
        if (cheat.mode === 'lazy' && outputs != null) return { outputs: mapOutputs(outputs, t => ({ ...t, dims: [...t.dims], data: t.data.slice() })), provider: 'cpu', computeMs: 0 }
        // zeros of the outputs' shapes: those of an earlier piece of this shape, else of a run
        const shaped = outputs ?? (await runtime.run(cid, load, inputs, options)).outputs
        return { outputs: mapOutputs(shaped, zeros), provider: 'cpu', computeMs: 0 }
      }
      const result = await runtime.run(cid, load, inputs, options)
      earlier.set(shape, result.outputs)
      return cheats ? { ...result, outputs: mapOutputs(result.outputs, perturbed) } : result
    },
    close: async () => { await runtime.close() },
    memoryBytes: () => runtime.memoryBytes?.() ?? 0
  }
}
