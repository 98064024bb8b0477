// `pnpm install-cli [DIR]`: puts a `shoal` command in DIR (default: ~/.local/bin) that runs this
// clone's CLI with the workspace's Node (the system's when it is 22 or newer, else the Node 24 that
// `pnpm install` fetched), from any directory, without pnpm. Built first (the package script runs
// tsc -b). Run it again after moving the clone; remove DIR/shoal to undo.
import { chmod, mkdir, writeFile } from 'node:fs/promises'
import os from 'node:os'
import { delimiter, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const dir = resolve(process.argv[2] ?? join(os.homedir(), '.local', 'bin'))
const node = join(root, 'node_modules', '.bin', 'node')
const bin = join(root, 'packages', 'cli', 'dist', 'src', 'bin.js')
const quote = (path) => `'${path.replaceAll("'", "'\\''")}'`
const shim = `#!/bin/sh
# shoal, from the clone at ${root} (written by pnpm install-cli)
exec ${quote(node)} ${quote(bin)} "$@"
`
await mkdir(dir, { recursive: true })
const target = join(dir, 'shoal')
await writeFile(target, shim)
await chmod(target, 0o755)
process.stdout.write(`installed ${target}\n`)
if (!(process.env.PATH ?? '').split(delimiter).map(p => resolve(p)).includes(dir)) {
  process.stdout.write(`${dir} is not on your PATH: add it (e.g. export PATH="${dir}:$PATH" in your shell's profile)\n`)
}
