/**
 * A last line any CI can read whatever the runner: "N passed, N failed, N skipped", where failed
 * also counts what is not a test's own failure but still fails the run: an error outside any test
 * (an unhandled EPIPE, a rejected promise) and a test file that could not run (its import or a hook).
 */
import type { Reporter, SerializedError, TestModule } from 'vitest/node';

export default class PlainSummary implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    let errors = unhandledErrors.length;
    for (const module of modules) {
      errors += module.errors().length;
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
      }
    }
    const extra = errors > 0 ? ` (${errors} of them errors outside any test)` : '';
    process.stdout.write(`\n${passed} passed, ${failed + errors} failed${extra}, ${skipped} skipped\n`);
  }
}
