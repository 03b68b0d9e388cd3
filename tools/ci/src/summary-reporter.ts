import type { Reporter, TestModule } from 'vitest/node';

/** Counts of one test run, as the closing summary line reports them. */
export interface RunCounts {
  passed: number;
  failed: number;
  skipped: number;
}

/**
 * Count a finished run. A module that failed to load (so it has no tests) and
 * an unhandled error each count as one failure: a suite that crashed must
 * never read as green.
 */
export function countRun(testModules: ReadonlyArray<TestModule>, unhandledErrors: number): RunCounts {
  const counts: RunCounts = { passed: 0, failed: unhandledErrors, skipped: 0 };
  for (const testModule of testModules) {
    let tests = 0;
    for (const test of testModule.children.allTests()) {
      tests += 1;
      const state = test.result().state;
      if (state === 'passed') counts.passed += 1;
      else if (state === 'failed') counts.failed += 1;
      else counts.skipped += 1;
    }
    if (tests === 0 && testModule.state() === 'failed') counts.failed += 1;
  }
  return counts;
}

export function formatSummary(counts: RunCounts): string {
  const skipped = counts.skipped > 0 ? `, ${counts.skipped} skipped` : '';
  return `${counts.passed} passed, ${counts.failed} failed${skipped}`;
}

/**
 * Prints the runtime the tests run on at the start, and a plain
 * `N passed, N failed` line at the end, after vitest's own report.
 */
export default class SummaryReporter implements Reporter {
  onInit(): void {
    process.stdout.write(`tests run on Node ${process.version} (${process.platform}-${process.arch})\n`);
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    process.stdout.write(`\n${formatSummary(countRun(testModules, unhandledErrors.length))}\n`);
  }
}
