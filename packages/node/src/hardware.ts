import os from 'node:os'

export interface Hardware {
  cpu: { model: string, cores: number }
  memory: { totalBytes: number, freeBytes: number }
  os: string
  arch: string
}

/** What this machine is, as the ad describes it. Cores are logical cores (what threads can use). */
export function detectHardware (): Hardware {
  return {
    cpu: { model: (os.cpus()[0]?.model ?? 'unknown').trim().slice(0, 256), cores: os.availableParallelism() },
    memory: { totalBytes: os.totalmem(), freeBytes: os.freemem() },
    os: `${os.platform()} ${os.release()}`.slice(0, 256),
    arch: os.arch()
  }
}
