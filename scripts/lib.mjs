// Helpers shared by the demo and the benchmarks: start `shoal node start` processes and talk to the CLI.
import { createRequire } from 'node:module'
import { spawn } from 'node:child_process'
import { mkdtemp } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const SHOAL_BIN = fileURLToPath(new URL('../packages/cli/dist/src/bin.js', import.meta.url))

export async function tempDir (prefix = 'shoal-') {
  return await mkdtemp(join(os.tmpdir(), prefix))
}

/**
 * Starts a node process; resolves with its peer id and addresses once it prints its ready line.
 * `prefix`: a command the node runs under (the NAT lab's `ip netns exec <namespace>`).
 */
export function startNodeProcess (args, { timeoutMs = 30_000, env = {}, prefix = [] } = {}) {
  const startedAt = performance.now()
  const command = [...prefix, process.execPath, SHOAL_BIN, 'node', 'start', ...args]
  const proc = spawn(command[0], command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } })
  let stdout = ''
  let stderr = ''
  proc.stderr.on('data', d => { stderr += d })
  const exited = new Promise(resolve => proc.on('exit', code => resolve(code)))
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ready line in ${timeoutMs} ms:\n${stderr}`)), timeoutMs)
    proc.stdout.on('data', d => {
      stdout += d
      const line = stdout.split('\n').find(l => l.startsWith('ready '))
      if (line != null) {
        clearTimeout(timer)
        const [, peerId, ...addrs] = line.trim().split(' ')
        resolve({ peerId, addrs, readyMs: performance.now() - startedAt })
      }
    })
    exited.then(code => { clearTimeout(timer); reject(new Error(`node exited with ${code} before ready:\n${stderr}`)) })
  })
  return { proc, ready, exited, stderr: () => stderr }
}

/** Runs the CLI to completion. */
export async function shoal (args) {
  return await runToEnd(process.execPath, [SHOAL_BIN, ...args])
}

/** Runs a command to completion: its exit code and what it printed. */
export async function runToEnd (command, args) {
  const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  proc.stdout.on('data', d => { stdout += d })
  proc.stderr.on('data', d => { stderr += d })
  const code = await new Promise(resolve => proc.on('exit', resolve))
  return { code, stdout, stderr }
}

export async function waitFor (condition, what, timeoutMs = 20_000, pollMs = 100) {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, pollMs))
  }
}

/** Resident set size of a process, from /proc (Linux). */
export async function rssBytes (pid) {
  const { readFile } = await import('node:fs/promises')
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]) * 1024
}

/** A model's first dimension of every input and output made free (`batch`): a model a job can split into pieces. */
export function dynamicBatch (bytes) {
  const onnxProto = createRequire(import.meta.resolve('@shoal/runtime'))('onnx-proto')
  const m = onnxProto.onnx.ModelProto.decode(bytes)
  for (const v of [...m.graph.input, ...m.graph.output]) v.type.tensorType.shape.dim[0] = { dimParam: 'batch' }
  return onnxProto.onnx.ModelProto.encode(m).finish()
}
