/**
 * The schedule this build of the CLI carries. A bundle embeds the parsed schedule at build
 * time (the bundler defines `__CNB_DEPRECATION_SCHEDULE__`); running from the sources reads
 * `release/deprecations.toml` from the repository.
 */
import { readFileSync } from 'node:fs';
import { parseSchedule, type DeprecationSchedule } from './schedule.ts';

declare const __CNB_DEPRECATION_SCHEDULE__: DeprecationSchedule | undefined;

/** Repository path of the schedule, relative to this file (computed late: a bundle has no `import.meta.url`). */
export function scheduleFileUrl(): URL {
  return new URL('../../../../release/deprecations.toml', import.meta.url);
}

let cached: DeprecationSchedule | undefined;

export function builtInSchedule(): DeprecationSchedule {
  if (typeof __CNB_DEPRECATION_SCHEDULE__ !== 'undefined') return __CNB_DEPRECATION_SCHEDULE__;
  cached ??= parseSchedule(readFileSync(scheduleFileUrl(), 'utf8'), 'release/deprecations.toml');
  return cached;
}
