/**
 * Test file order for the whole run: the files known to take longest first
 * (so the last minutes of a run are not one long file alone; on a new machine
 * vitest has no durations cached and would go by file size), then vitest's own
 * order, except that files which start by waiting for the test environment's
 * standalone buildkitd go last. On a new machine the daemon's binaries are built
 * in the background for minutes; a file that waits for them at the top holds a
 * worker idle, so it is scheduled when the other files have had that time.
 * A file says it waits with a top-level `await waitForBuildkitd(`.
 */
import { readFileSync } from 'node:fs';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The slowest files of a fresh-machine CI run (seconds, 3 files at a time on 2 cores), longest
 * first. Left out: the differential (213 s) and the packaged-engines test (102 s), which wait for
 * the standalone buildkitd part-way; started first, they would wait for its build with a worker.
 */
export const SLOW_FILES: readonly (readonly [string, number])[] = [
  // the backend contract over the whole catalog: the buildah (143 s) and docker (61 s) contract
  // files it replaced, plus the buildkit and in-place ones (not listed, under a minute each)
  ['libs/backend-catalog/src/contract.test.ts', 240],
  ['tools/release/src/release.test.ts', 139],
  ['e2e/src/packaged.test.ts', 98],
  ['libs/backend-buildah/src/scenarios.test.ts', 97],
  ['libs/backend-buildah/src/backend.test.ts', 85],
  ['libs/backend-docker/src/scenarios.test.ts', 85],
  ['tools/release/src/release-cli.test.ts', 75],
  ['libs/backend-inplace/src/in-place.test.ts', 63],
];

/** Position in SLOW_FILES of an absolute test file path, or -1. */
export function slowRank(file: string): number {
  const normal = file.replaceAll('\\', '/');
  return SLOW_FILES.findIndex(([path]) => normal.endsWith(`/${path}`));
}

const WAITS_FOR_BUILDKITD = /^(?:const|let)\s+\w+\s*=\s*await waitForBuildkitd\(/m;

export function waitsForBuildkitd(source: string): boolean {
  return WAITS_FOR_BUILDKITD.test(source);
}

export default class BuildkitdLastSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const waits = (spec: TestSpecification): boolean => {
      try {
        return waitsForBuildkitd(readFileSync(spec.moduleId, 'utf8'));
      } catch {
        return false;
      }
    };
    const late = sorted.filter(waits);
    const slow = sorted.filter((s) => !late.includes(s) && slowRank(s.moduleId) >= 0).sort((a, b) => slowRank(a.moduleId) - slowRank(b.moduleId));
    return [...slow, ...sorted.filter((s) => !late.includes(s) && !slow.includes(s)), ...late];
  }
}
