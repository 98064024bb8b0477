import { constants } from 'node:fs'
import { access, chmod, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { dataDirFiles } from './data-dir-layout.js'
import { DataDirError } from './errors.js'

export { dataDirFiles } from './data-dir-layout.js'

/** Creates the data dir if needed and checks that we can write to it, with an error a user can act on. */
export async function prepareDataDir (dataDir: string): Promise<string[]> {
  try {
    await mkdir(dataDir, { recursive: true, mode: 0o700 })
    await access(dataDir, constants.R_OK | constants.W_OK | constants.X_OK)
  } catch (err: any) {
    throw new DataDirError(`cannot use data dir ${dataDir}: ${err.code ?? err.message} (choose another with --data-dir)`)
  }
  return await tightenDataDir(dataDir)
}

/**
 * A data dir that already existed may be open to other users of the machine (made by hand, or
 * unpacked from a backup): it holds the node's identity key and API token. The directory and the
 * identity key are made the owner's alone where this process owns them; returns what was changed
 * or could not be, for a warning.
 */
async function tightenDataDir (dataDir: string): Promise<string[]> {
  if (process.platform === 'win32') return []
  const notes: string[] = []
  const files = dataDirFiles(dataDir)
  for (const [path, mode] of [[dataDir, 0o700], [files.identity, 0o600]] as const) {
    let current: number
    try {
      current = (await stat(path)).mode & 0o777
    } catch {
      continue
    }
    if ((current & 0o077) === 0) continue
    try {
      await chmod(path, mode)
      notes.push(`${path} was readable by other users (mode ${current.toString(8)}): made ${mode.toString(8)}`)
    } catch (err: any) {
      notes.push(`${path} is readable by other users (mode ${current.toString(8)}) and could not be changed (${err.code ?? err.message}): fix it with chmod ${mode.toString(8)}`)
    }
  }
  return notes
}

let tempCounter = 0

/** Writes a file so that a reader never sees half of it, readable by its owner only. */
export async function writePrivateFile (file: string, data: string | Uint8Array): Promise<void> {
  // a name of its own per write: two writes of one file at once must not share a half-written temp file
  const tmp = `${file}.${process.pid}.${++tempCounter}.tmp`
  await writeFile(tmp, data, { mode: 0o600 })
  await rename(tmp, file)
}

/**
 * The node's persistent Ed25519 identity: loaded from `identity.key` (libp2p's protobuf key format), or
 * generated and saved on first start. A damaged key file is an error, never silently replaced: the
 * peer id is the node's name in the mesh.
 */
export async function loadOrCreateIdentity (dataDir: string): Promise<PrivateKey> {
  const file = dataDirFiles(dataDir).identity
  let bytes: Uint8Array
  try {
    bytes = await readFile(file)
  } catch (err: any) {
    if (err.code !== 'ENOENT') throw new DataDirError(`cannot read ${file}: ${err.code ?? err.message}`)
    const key = await generateKeyPair('Ed25519')
    await writePrivateFile(file, privateKeyToProtobuf(key))
    return key
  }
  try {
    return privateKeyFromProtobuf(bytes)
  } catch (err: any) {
    throw new DataDirError(`${file} is not a libp2p private key (${err.message}); move it away to start with a new identity`)
  }
}

/** Reads the identity without creating one: for commands that must not invent a node. */
export async function readIdentity (dataDir: string): Promise<PrivateKey | undefined> {
  const file = dataDirFiles(dataDir).identity
  try {
    return privateKeyFromProtobuf(await readFile(file))
  } catch (err: any) {
    if (err.code === 'ENOENT') return undefined
    throw new DataDirError(`cannot read ${file}: ${err.code ?? err.message}`)
  }
}
