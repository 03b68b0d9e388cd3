/**
 * Test support: the buildah executables the backend's tests run against. Each
 * test file declares its suites once per entry (`describe.each`), so every
 * test runs on every buildah listed here.
 *
 * For now: Debian's `buildah` (1.28 on Debian 12, found in `PATH`), plus the
 * executable named by `CNB_TEST_BUILDAH_CURRENT` when it is set (a current
 * buildah, 1.39 or later). The test environment is to provide this list later;
 * only this function changes then.
 */

export interface BuildahExecutable {
  /** Short name for test titles (`debian`, `current`). */
  id: string;
  /** The executable handed to the backend as its `buildah` option. */
  buildah: string;
}

/** The buildah executables to run the tests against (see module doc). */
export function buildahExecutables(env: Readonly<Record<string, string | undefined>> = process.env): BuildahExecutable[] {
  const list: BuildahExecutable[] = [{ id: 'debian', buildah: 'buildah' }];
  const current = env['CNB_TEST_BUILDAH_CURRENT'];
  if (current !== undefined && current !== '') list.push({ id: 'current', buildah: current });
  return list;
}
