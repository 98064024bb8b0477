// Every workspace package's declared dependencies against what its files import: a dependency declared
// and never imported is dead weight in every install; one imported and not declared works only by
// pnpm's hoisting, until it does not. `node scripts/check-deps.mjs` prints both lists and exits 1 if
// either is not empty; test/workspace/deps.spec.ts runs it with the suite.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

/** Folders holding no source of the package: build output, installs, test fixtures. */
const SKIP = new Set(['node_modules', 'dist', '.runtime', 'fixtures'])
const SOURCE = /\.(ts|mts|js|mjs|cjs)$/
/** Every way a file of this workspace names another package: import/export from, import(), require(). */
const NAME = '([@a-z0-9.][\\w./@-]*)'
const SPECIFIERS = [
  new RegExp(`\\bfrom\\s+'${NAME}'`, 'g'),
  new RegExp(`\\bimport\\s+'${NAME}'`, 'g'),
  new RegExp(`\\bimport\\(\\s*'${NAME}'\\s*\\)`, 'g'),
  new RegExp(`\\brequire\\(\\s*'${NAME}'\\s*\\)`, 'g'),
  new RegExp(`createRequire\\([^)]*\\)\\(\\s*'${NAME}'\\s*\\)`, 'g')
]

/** The package a bare specifier names ('@scope/name/sub' -> '@scope/name'); undefined for relative paths and Node's own. */
export function packageOf (specifier) {
  if (specifier.startsWith('.') || specifier.startsWith('/') || specifier.startsWith('node:')) return undefined
  const parts = specifier.split('/')
  const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]
  return builtinModules.includes(name) ? undefined : name
}

function sourceFiles (dir) {
  const files = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(entry.name) || entry.name.startsWith('.')) continue
    const path = join(dir, entry.name)
    if (entry.isDirectory()) {
      // a folder that is a workspace package of its own is checked on its own
      if (!statSync(join(path, 'package.json'), { throwIfNoEntry: false })) files.push(...sourceFiles(path))
    } else if (SOURCE.test(entry.name) && !entry.name.endsWith('.d.ts')) {
      files.push(path)
    }
  }
  return files
}

/** The workspace's packages: the folders pnpm-workspace.yaml names (the root's devDependencies are the tests' tools). */
function workspacePackages () {
  const yaml = readFileSync(join(ROOT, 'pnpm-workspace.yaml'), 'utf8')
  const globs = [...yaml.split(/^catalog:/m)[0].matchAll(/^\s+-\s+(\S+)/gm)].map(m => m[1])
  const dirs = []
  for (const glob of globs) {
    if (glob.endsWith('/*')) {
      const parent = join(ROOT, glob.slice(0, -2))
      for (const entry of readdirSync(parent, { withFileTypes: true, throwIfNoEntry: false }) ?? []) {
        if (entry.isDirectory() && statSync(join(parent, entry.name, 'package.json'), { throwIfNoEntry: false })) dirs.push(join(parent, entry.name))
      }
    } else if (statSync(join(ROOT, glob, 'package.json'), { throwIfNoEntry: false })) {
      dirs.push(join(ROOT, glob))
    }
  }
  return dirs
}

/** For each package: dependencies declared and never used, and packages used and not declared. */
export function checkDependencies () {
  const problems = []
  // the test tools (vitest) are the root's: every package's tests use them
  const rootManifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
  const forTests = new Set(Object.keys(rootManifest.devDependencies ?? {}))
  for (const dir of workspacePackages()) {
    const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
    const declared = new Set([...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.devDependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {})])
    const used = new Map()
    for (const file of sourceFiles(dir)) {
      const text = readFileSync(file, 'utf8')
      for (const pattern of SPECIFIERS) {
        for (const match of text.matchAll(pattern)) {
          const name = packageOf(match[1])
          if (name != null && name !== manifest.name && !used.has(name)) used.set(name, relative(ROOT, file))
        }
      }
    }
    // a package whose command a script runs (protons, tsc) is used by that script
    const scripts = Object.values(manifest.scripts ?? {}).join(' ')
    const usedByScript = (name) => new RegExp(`(^|[\\s/])${name.replace(/^@[^/]+\//, '')}(\\s|$)`).test(scripts)
    const unused = [...declared].filter(name => !used.has(name) && !name.startsWith('@types/') && !usedByScript(name))
    const undeclared = [...used].filter(([name, file]) => !declared.has(name) && !(forTests.has(name) && /(^|\/)test\//.test(file)))
    for (const name of unused) problems.push(`${relative(ROOT, dir) || '.'}: declares ${name} and never imports it`)
    for (const [name, file] of undeclared) problems.push(`${relative(ROOT, dir) || '.'}: ${file} imports ${name}, which its package.json does not declare`)
  }
  return problems
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const problems = checkDependencies()
  for (const problem of problems) process.stdout.write(`${problem}\n`)
  process.exit(problems.length === 0 ? 0 : 1)
}
