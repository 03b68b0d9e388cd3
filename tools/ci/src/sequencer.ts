/**
 * Test file order for the whole run: vitest's own (slowest first, from its
 * cache), except that files which start by waiting for the test environment's
 * standalone buildkitd go last. On a new machine the daemon's binaries are built
 * in the background for minutes; a file that waits for them at the top holds a
 * worker idle, so it is scheduled when the other files have had that time.
 * A file says it waits with a top-level `await waitForBuildkitd(`.
 */
import { readFileSync } from 'node:fs';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

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
    return [...sorted.filter((s) => !late.includes(s)), ...late];
  }
}
