/**
 * What a release does to the deprecated surfaces, and the guards that refuse a release the
 * deprecation schedule (`release/deprecations.toml`) does not allow:
 * - the schedule is inconsistent (`checkSchedule`: invalid versions, not warn < fail < remove,
 *   duplicates);
 * - the schedule and the surfaces the code implements disagree for the version
 *   (`checkRelease` against `SURFACE_IDS`, the one list of deprecated surfaces in
 *   libs/extender-cli): the version reaches a surface's `remove` step while the code still
 *   implements it, the code dropped one before its `remove` step, or implements one the
 *   schedule does not list;
 * - the version reaches a surface's `fail` step although no released version ever warned
 *   about it (its `warn` step was never released: users would go from working to failing).
 */
import semver from 'semver';
import { checkRelease, checkSchedule, stageOf, type DeprecatedSurface, type DeprecationSchedule, type SurfaceStage } from '@cnb-extender/extender-cli';

export type ReleaseGuard = 'arguments' | 'clean-tree' | 'changesets' | 'version' | 'schedule' | 'surfaces' | 'unwarned-fail';

/** A release the repository's state or the schedule does not allow; `guard` says which check refused it. */
export class ReleaseRefused extends Error {
  override name = 'ReleaseRefused';
  readonly guard: ReleaseGuard;
  constructor(guard: ReleaseGuard, message: string, options?: ErrorOptions) {
    super(message, options);
    this.guard = guard;
  }
}

/** The latest released version below `version`, if any. */
export function previousRelease(released: readonly string[], version: string): string | undefined {
  return released.filter((v) => semver.lt(v, version)).sort(semver.rcompare)[0];
}

function stageAt(surface: DeprecatedSurface, version: string | undefined): SurfaceStage {
  return version === undefined ? 'active' : stageOf(surface, version);
}

/** The deprecation steps a release reaches, compared with the release before it. */
export interface DeprecationSteps {
  version: string;
  /** The release before it (none for a first release: then every step reached so far is new). */
  previous?: string;
  /** Surfaces that start logging a notice in this version. */
  warn: DeprecatedSurface[];
  /** Surfaces that start failing (exit 3 unless CNB_DEPRECATION_MODE=warn or quiet) in this version. */
  fail: DeprecatedSurface[];
  /** Surfaces removed in this version. */
  remove: DeprecatedSurface[];
  /** Surfaces deprecated before this version that stay as they were: warning or failing. */
  unchanged: { surface: DeprecatedSurface; stage: 'warn' | 'fail' }[];
}

export function deprecationSteps(schedule: DeprecationSchedule, version: string, previous: string | undefined): DeprecationSteps {
  const steps: DeprecationSteps = { version, ...(previous ? { previous } : {}), warn: [], fail: [], remove: [], unchanged: [] };
  for (const surface of schedule.surfaces) {
    const now = stageOf(surface, version);
    const before = stageAt(surface, previous);
    if (now === 'active' || (now === 'removed' && before === 'removed')) continue;
    if (now === before) steps.unchanged.push({ surface, stage: now as 'warn' | 'fail' });
    else if (now === 'warn') steps.warn.push(surface);
    else if (now === 'fail') steps.fail.push(surface);
    else steps.remove.push(surface);
  }
  return steps;
}

function refusal(guard: ReleaseGuard, version: string, what: string, problems: readonly string[]): ReleaseRefused {
  return new ReleaseRefused(guard, `refusing to release ${version}: ${what}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
}

export interface ScheduleGuardInput {
  schedule: DeprecationSchedule;
  /** Where the schedule was read from, for the messages. */
  scheduleFile: string;
  version: string;
  /** Versions released so far. */
  released: readonly string[];
  /** The deprecated surfaces the code implements (`SURFACE_IDS`). */
  implemented: readonly string[];
}

/** Throws ReleaseRefused when the schedule does not allow releasing `version`; see the module's comment. */
export function checkScheduleGuards(input: ScheduleGuardInput): void {
  const { schedule, scheduleFile, version, released, implemented } = input;
  const inconsistent = checkSchedule(schedule);
  if (inconsistent.length > 0) throw refusal('schedule', version, `the deprecation schedule ${scheduleFile} is inconsistent`, inconsistent);

  const mismatched = checkRelease(schedule, version, implemented);
  if (mismatched.length > 0) {
    throw refusal(
      'surfaces',
      version,
      `the deprecation schedule ${scheduleFile} and the deprecated surfaces the code implements (SURFACE_IDS in libs/extender-cli/src/deprecation/schedule.ts) disagree`,
      mismatched,
    );
  }

  const previous = previousRelease(released, version);
  const unwarned: string[] = [];
  for (const s of schedule.surfaces) {
    // only the release that crosses the fail step: one already past it was checked when it was cut
    if (semver.lt(version, s.fail) || (previous !== undefined && semver.gte(previous, s.fail))) continue;
    const warned = released.some((v) => semver.gte(v, s.warn) && semver.lt(v, s.fail));
    if (!warned) {
      unwarned.push(
        `${s.id}: ${version} reaches its fail step (${s.fail}), but its warn step (${s.warn}) was never released ` +
          `(released: ${released.length > 0 ? released.join(', ') : 'none'}); release a version from ${s.warn} up to ${s.fail} first, or move the steps`,
      );
    }
  }
  if (unwarned.length > 0) throw refusal('unwarned-fail', version, 'it would make surfaces fail that no released version warned about', unwarned);
}
