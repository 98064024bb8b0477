import { describe, expect, it } from 'vitest'
import { checkDependencies, packageOf } from '../../scripts/check-deps.mjs'

describe('the workspace\'s dependencies', () => {
  it('every package declares what it imports and imports what it declares', () => {
    expect(checkDependencies()).toEqual([])
  })

  it('names the package of a specifier, and none for Node\'s own modules or relative paths', () => {
    expect(packageOf('@libp2p/crypto/keys')).toBe('@libp2p/crypto')
    expect(packageOf('race-signal')).toBe('race-signal')
    expect(packageOf('multiformats/cid')).toBe('multiformats')
    expect(packageOf('node:fs')).toBeUndefined()
    expect(packageOf('fs/promises')).toBeUndefined()
    expect(packageOf('./frames.js')).toBeUndefined()
  })
})
