import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'

/**
 * The folder of an installed package, as Node would find it from `from` (a module URL or path).
 * Looks for the folder itself rather than resolving an entry point: model packages often export only
 * subpaths, or nothing but their files.
 */
export function packageDir (name: string, from: string = import.meta.url): string | undefined {
  const paths = createRequire(from).resolve.paths(name) ?? []
  return paths.map(p => join(p, name)).find(dir => existsSync(join(dir, 'package.json')))
}

/** The installed version of a package as seen from `from`, or 'unknown'. */
export function packageVersion (name: string, from: string = import.meta.url): string {
  const dir = packageDir(name, from)
  if (dir == null) return 'unknown'
  try {
    return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version ?? 'unknown'
  } catch {
    return 'unknown'
  }
}
