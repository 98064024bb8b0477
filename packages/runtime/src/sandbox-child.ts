import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { MIN_SANDBOX_ADDRESS_SPACE_BYTES, SANDBOX_ADDRESS_SPACE_MARGIN_BYTES } from './constants.js'

/** The end of a child's stderr kept to explain a crash. */
const STDERR_TAIL_BYTES = 2048

/** Environment variables a sandbox child keeps: the search path, and what ONNX Runtime's GPU providers read. */
const SANDBOX_ENV = /^(PATH|LD_LIBRARY_PATH|TMPDIR|VK_[A-Z_]+|MESA_[A-Z_]+|__GL[A-Z_]*|CUDA_[A-Z_]+|NVIDIA_[A-Z_]+|ORT_[A-Z_]+)$/

export interface SandboxChildInit {
  /** Variables the script reads, on top of those the sandbox keeps. */
  env?: Record<string, string>
  /** The memory the child may hold (0: no address-space limit). */
  memoryLimitBytes?: number
  /** No GPU provider will run in it: the address-space limit applies (GPU drivers reserve far more). */
  cpuOnly?: boolean
  /** Options for Node itself (before the script), such as a heap limit. */
  nodeOptions?: string[]
}

/**
 * Starts `script` (a file of this package) as a sandboxed child of the node: in an empty working
 * directory of its own (which the caller removes), with no environment but the search path and what
 * GPU drivers read, under an address-space limit on Linux, and an IPC channel with structured-clone
 * serialization. `lastWords()` is the end of what it wrote to stderr, in one line: why it crashed.
 */
export function spawnSandboxChild (script: string, init: SandboxChildInit = {}): { child: ChildProcess, cwd: string, lastWords: () => string } {
  const cwd = mkdtempSync(join(os.tmpdir(), 'shoal-sandbox-'))
  const env: Record<string, string> = { ...init.env }
  // what finding a GPU needs (the Vulkan loader and its drivers, CUDA's libraries), nothing else
  for (const [name, value] of Object.entries(process.env)) if (value != null && SANDBOX_ENV.test(name)) env[name] = value
  const options = { cwd, env, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] as Array<'ignore' | 'pipe' | 'ipc'>, serialization: 'advanced' as const }
  const limit = init.memoryLimitBytes ?? 0
  // Node itself reserves about 1.5 GB of address space (1 GB was too little to start): the limit is
  // on allocations far beyond what the node allows, such as a 3 GB ConstantOfShape
  const addressSpaceKb = Math.ceil(Math.max(MIN_SANDBOX_ADDRESS_SPACE_BYTES, limit + SANDBOX_ADDRESS_SPACE_MARGIN_BYTES) / 1024)
  const args = [...init.nodeOptions ?? [], script]
  const child = process.platform === 'linux' && limit > 0 && init.cpuOnly === true
    ? spawn('/bin/sh', ['-c', `ulimit -v ${addressSpaceKb} && exec "$0" "$@"`, process.execPath, ...args], options)
    : spawn(process.execPath, args, options)
  let stderr = ''
  child.stderr?.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString('utf8')).slice(-STDERR_TAIL_BYTES) })
  return { child, cwd, lastWords: () => stderr.trim().split('\n').slice(-3).join(' ').slice(0, 500) }
}

/** Clock ticks per second of /proc's CPU times: 100 on every Linux configuration Node supports. */
const CLOCK_TICKS_PER_S = 100

/**
 * CPU time (user and system) a child has used, in ms, from /proc; undefined where there is no /proc
 * (not Linux) or the process is gone.
 */
export function childCpuMs (pid: number | undefined): number | undefined {
  if (pid == null || process.platform !== 'linux') return undefined
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // the fields after the command (in parentheses, which may hold spaces): state is field 3, utime 14, stime 15
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) * 1000 / CLOCK_TICKS_PER_S
  } catch {
    return undefined
  }
}
