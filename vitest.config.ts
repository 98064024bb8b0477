import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    reporters: ['default', './test/summary-reporter.ts'],
    include: ['packages/*/test/**/*.spec.ts', 'test/*/**/*.spec.ts'],
    // multi-node tests start real libp2p nodes and processes on a 2-core machine
    testTimeout: 30_000,
    hookTimeout: 30_000
  }
})
