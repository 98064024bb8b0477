import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    reporters: ['default', './test/summary-reporter.ts'],
    include: ['packages/*/test/**/*.spec.ts', 'test/*/**/*.spec.ts'],
    // multi-node tests start real libp2p nodes and processes on a 2-core machine: one file at a time, so
    // that a simulation of a dozen nodes does not starve another file's mesh of CPU (kad-dht's routing
    // table then filled too slowly for mesh.spec, under 100 s of waiting)
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 30_000
  }
})
