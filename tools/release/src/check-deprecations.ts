/**
 * `node tools/release/src/check-deprecations.ts [--schedule <file>] [--version <semver>]`
 * fails (exit 1) when the deprecation schedule is inconsistent or when releasing the
 * version (default: the apps' version) would drop a surface before its removal version or
 * keep one past it. Run it before every release; its test runs it on the repository.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { checkRelease, parseSchedule, ScheduleError, SURFACE_IDS } from '@cnb-extender/extender-cli';
import { appVersion, REPO_ROOT } from './bundle.ts';

function option(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const scheduleFile = option('--schedule') ?? join(REPO_ROOT, 'release', 'deprecations.toml');
const version = option('--version') ?? (await appVersion('extender'));
try {
  const problems = checkRelease(parseSchedule(await readFile(scheduleFile, 'utf8'), scheduleFile), version, SURFACE_IDS);
  if (problems.length > 0) {
    process.stderr.write(`deprecation schedule ${scheduleFile} does not allow releasing ${version}:\n${problems.map((p) => `  - ${p}\n`).join('')}`);
    process.exitCode = 1;
  } else {
    process.stdout.write(`deprecation schedule ${scheduleFile}: OK for ${version}\n`);
  }
} catch (err) {
  process.stderr.write(`${err instanceof ScheduleError ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
