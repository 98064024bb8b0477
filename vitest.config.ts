import { configDefaults, defineConfig } from 'vitest/config'

// Two projects: `unit` (pure logic and single-node tests: no mesh, well under a minute; `pnpm
// test:unit`) and `integration` (real libp2p meshes on loopback, node processes, simulations, the
// independent peer). `pnpm test` runs both.
const UNIT = ['packages/*/test/**/*.spec.ts', 'test/workspace/**/*.spec.ts', 'test/conformance/test/codec.spec.ts', 'test/conformance/test/fuzz.spec.ts']

export default defineConfig({
  test: {
    reporters: ['default', './test/summary-reporter.ts'],
    // multi-node tests start real libp2p nodes and processes on a 2-core machine: one file at a time, so
    // that a simulation of a dozen nodes does not starve another file's mesh of CPU (kad-dht's routing
    // table then filled too slowly for mesh.spec, under 100 s of waiting)
    fileParallelism: false,
    testTimeout: 30_000,
    hookTimeout: 30_000,
    projects: [
      { extends: true, test: { name: 'unit', include: UNIT } },
      // exclude replaces vitest's default, which keeps node_modules out (workspace links would run every package's tests again)
      { extends: true, test: { name: 'integration', include: ['test/*/**/*.spec.ts'], exclude: [...configDefaults.exclude, ...UNIT] } }
    ]
  }
})
