import os from 'node:os'
import type { Capacity } from '@shoal/protocol'

/** The hardware fields of a capacity ad. */
export type Hardware = Pick<Capacity, 'cpu' | 'memory' | 'os' | 'arch'>

/** What this machine is, as the ad describes it. Cores are logical cores (what threads can use). */
export function detectHardware (): Hardware {
  return {
    cpu: { model: (os.cpus()[0]?.model ?? 'unknown').trim().slice(0, 256), cores: os.availableParallelism() },
    memory: { totalBytes: os.totalmem(), freeBytes: os.freemem() },
    os: `${os.platform()} ${os.release()}`.slice(0, 256),
    arch: os.arch()
  }
}
