import type { Reporter, SerializedError, TestModule } from 'vitest/node'

/**
 * Prints the plain closing line CI tooling reads in any language: "N passed, N failed, N skipped".
 * Vitest's default reporter stays in front of it for people. A test file that fails to load, and an
 * unhandled error, count as failures too: they fail the run, so the line must not say 0 failed.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd (testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>): void {
    const count = { passed: 0, failed: unhandledErrors.length, skipped: 0 }
    for (const module of testModules) {
      let failedTests = 0
      for (const test of module.children.allTests()) {
        const state = test.result().state
        if (state === 'failed') failedTests++
        if (state === 'passed' || state === 'skipped') count[state]++
      }
      count.failed += failedTests
      if (failedTests === 0 && module.state() === 'failed') count.failed++
    }
    process.stdout.write(`\n${count.passed} passed, ${count.failed} failed, ${count.skipped} skipped\n`)
  }
}
