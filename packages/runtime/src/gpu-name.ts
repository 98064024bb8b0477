import { readdir, readFile } from 'node:fs/promises'

/**
 * Best-effort name of the machine's GPU, for the ad. onnxruntime-node does not expose the WebGPU
 * adapter it picked, so we read what the kernel drivers publish. Used only once a GPU provider has
 * really run the calibration model.
 */
export async function detectGpuName (): Promise<string> {
  try {
    // NVIDIA's driver: /proc/driver/nvidia/gpus/<bus id>/information holds "Model: <name>"
    const dir = '/proc/driver/nvidia/gpus'
    for (const bus of await readdir(dir)) {
      const info = await readFile(`${dir}/${bus}/information`, 'utf8')
      const model = /^Model:\s*(.+)$/m.exec(info)?.[1]?.trim()
      if (model != null && model !== '') return model
    }
  } catch {}
  try {
    // other DRM drivers: the PCI vendor id of the first card
    const vendor = (await readFile('/sys/class/drm/card0/device/vendor', 'utf8')).trim()
    const names: Record<string, string> = { '0x10de': 'NVIDIA GPU', '0x1002': 'AMD GPU', '0x8086': 'Intel GPU' }
    return names[vendor] ?? `GPU (PCI vendor ${vendor})`
  } catch {}
  return 'WebGPU adapter'
}
