import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import os from 'node:os'
import { dirname } from 'node:path'
import { detectGpuName } from './gpu-name.js'
import { bundledProviders, probeProvider } from './probe.js'
import type { ProbeOptions } from './probe.js'

export interface ProviderMeasure {
  name: string
  gflops: number
}

export interface Calibration {
  /** Providers that ran the calibration model, fastest first. Always includes cpu unless it failed. */
  providers: ProviderMeasure[]
  /** Providers ONNX Runtime carries that did not work here, with the reason. */
  failed: Array<{ name: string, error: string }>
  /** GPU adapter name when a GPU provider works, else null. */
  gpu: string | null
  measuredAt: number
  /** What the measure depends on: a cache entry for another fingerprint is measured again. */
  fingerprint: string
}

export interface CalibrateOptions extends Omit<ProbeOptions, 'cpuThreads'> {
  cpuThreads: number
  /** Skip GPU providers (the volunteer's --no-gpu). */
  noGpu: boolean
  /** Where the result is cached; omitted: always measure. */
  cacheFile?: string
  /** Measure even if the cache is valid. */
  recalibrate?: boolean
  /** Providers to probe; default: every provider bundled with onnxruntime-node. */
  candidates?: string[]
}

const CPU_PROVIDERS = new Set(['cpu'])

function ortVersion (): string {
  const require = createRequire(import.meta.url)
  return (require('onnxruntime-node/package.json') as { version: string }).version
}

/** Everything that changes what calibration would measure. */
export function calibrationFingerprint (options: Pick<CalibrateOptions, 'cpuThreads' | 'noGpu'>): string {
  const cpu = os.cpus()[0]?.model ?? 'unknown'
  return [ortVersion(), process.platform, process.arch, cpu, os.availableParallelism(), `threads=${options.cpuThreads}`, `gpu=${!options.noGpu}`].join('|')
}

async function readCache (file: string, fingerprint: string): Promise<Calibration | undefined> {
  try {
    const cached = JSON.parse(await readFile(file, 'utf8')) as Calibration
    if (cached.fingerprint === fingerprint && Array.isArray(cached.providers)) return cached
  } catch {}
  return undefined
}

/**
 * Finds the execution providers that really work on this machine and measures each one's GFLOP/s on
 * the calibration model, each in its own child process. The result is cached in `cacheFile` and reused
 * while the fingerprint (ONNX Runtime version, CPU, threads, GPU allowed) is unchanged.
 */
export async function calibrate (options: CalibrateOptions): Promise<Calibration & { cached: boolean }> {
  const fingerprint = calibrationFingerprint(options)
  if (options.cacheFile != null && options.recalibrate !== true) {
    const cached = await readCache(options.cacheFile, fingerprint)
    if (cached != null) return { ...cached, cached: true }
  }

  const candidates = (options.candidates ?? bundledProviders())
    .filter(name => !options.noGpu || CPU_PROVIDERS.has(name))
  // One at a time: probes running side by side would share the cores and measure each other.
  const results = []
  for (const name of candidates) results.push(await probeProvider(name, options))

  const providers = results.flatMap(r => r.ok ? [{ name: r.provider, gflops: Math.round(r.gflops * 100) / 100 }] : [])
    .sort((a, b) => b.gflops - a.gflops)
  const failed = results.flatMap(r => r.ok ? [] : [{ name: r.provider, error: r.error }])
  const gpu = providers.some(p => !CPU_PROVIDERS.has(p.name)) ? await detectGpuName() : null
  const calibration: Calibration = { providers, failed, gpu, measuredAt: Date.now(), fingerprint }

  if (options.cacheFile != null) {
    await mkdir(dirname(options.cacheFile), { recursive: true })
    const tmp = `${options.cacheFile}.${process.pid}.tmp`
    await writeFile(tmp, JSON.stringify(calibration, null, 2) + '\n')
    await rename(tmp, options.cacheFile)
  }
  return { ...calibration, cached: false }
}
