import type { Reporter, TestModule } from 'vitest/node'

/**
 * Prints the plain closing line CI tooling reads in any language: "N passed, N failed, N skipped".
 * Vitest's default reporter stays in front of it for people.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd (testModules: ReadonlyArray<TestModule>): void {
    const count = { passed: 0, failed: 0, skipped: 0 }
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state
        if (state === 'passed' || state === 'failed' || state === 'skipped') count[state]++
      }
    }
    process.stdout.write(`\n${count.passed} passed, ${count.failed} failed, ${count.skipped} skipped\n`)
  }
}
