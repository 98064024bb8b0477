import { mkdir, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { SimMetrics } from './metrics.js'
import { renderReport } from './report.js'

/** Writes `DIR/metrics.json` and `DIR/report.html` (each whole or not at all); returns their paths. */
export async function writeOutputs (dir: string, metrics: SimMetrics): Promise<{ metrics: string, report: string }> {
  await mkdir(dir, { recursive: true })
  const files = { metrics: join(dir, 'metrics.json'), report: join(dir, 'report.html') }
  await writeAtomically(files.metrics, JSON.stringify(metrics, null, 2) + '\n')
  await writeAtomically(files.report, renderReport(metrics))
  return files
}

async function writeAtomically (file: string, text: string): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`
  await writeFile(temp, text)
  await rename(temp, file)
}
