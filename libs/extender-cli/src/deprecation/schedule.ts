/**
 * The deprecation schedule (`release/deprecations.toml`): for each deprecated surface the
 * version from which it warns, the version from which it fails (unless
 * `CNB_DEPRECATION_MODE` says otherwise) and the version that removes it. The CLIs compare
 * their own version with it; `tools/release` checks it before a release.
 */
import semver from 'semver';
import { parse as parseToml } from 'smol-toml';
import { ExtenderError, type DeprecationMode } from '@cnb-extender/platform';

/** Every deprecated surface the code still implements. The release check compares the schedule with this list. */
export const SURFACE_IDS = ['lifecycle-extender-entry', 'kaniko-cache-ttl-flag', 'kaniko-cache-ttl-env', 'implicit-kaniko-dir', 'inplace-build-chaining'] as const;
export type SurfaceId = (typeof SURFACE_IDS)[number];

export interface DeprecatedSurface {
  id: string;
  /** What is deprecated, as users know it (`/cnb/lifecycle/extender`, `-kaniko-cache-ttl`). */
  surface: string;
  /** First version that warns. */
  warn: string;
  /** First version that fails unless `CNB_DEPRECATION_MODE=warn|quiet`. */
  fail: string;
  /** First version without the surface. */
  remove: string;
  /** What to use instead. */
  replacement: string;
  /** Where the change is explained. */
  docs: string;
}

export interface DeprecationSchedule {
  surfaces: DeprecatedSurface[];
}

/** The schedule file is malformed: not TOML, or an entry lacks a field. */
export class ScheduleError extends Error {
  override name = 'ScheduleError';
}

const FIELDS = ['id', 'surface', 'warn', 'fail', 'remove', 'replacement', 'docs'] as const;

/** Parse `deprecations.toml` (`[[deprecation]]` tables). Checks the shape only; `checkSchedule` checks the content. */
export function parseSchedule(text: string, source = 'deprecations.toml'): DeprecationSchedule {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw new ScheduleError(`reading deprecation schedule ${source}: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  const entries = doc['deprecation'] ?? [];
  if (!Array.isArray(entries)) throw new ScheduleError(`reading deprecation schedule ${source}: "deprecation" must be an array of tables ([[deprecation]])`);
  const surfaces = entries.map((entry: unknown, i: number) => {
    if (typeof entry !== 'object' || entry === null) throw new ScheduleError(`reading deprecation schedule ${source}: deprecation[${i}] is not a table`);
    const out: Record<string, string> = {};
    for (const field of FIELDS) {
      const value = (entry as Record<string, unknown>)[field];
      if (typeof value !== 'string' || value.trim() === '') {
        throw new ScheduleError(`reading deprecation schedule ${source}: deprecation[${i}].${field} must be a non-empty string`);
      }
      out[field] = value;
    }
    return out as unknown as DeprecatedSurface;
  });
  return { surfaces };
}

/**
 * Problems that make a schedule unusable: invalid versions, an order other than
 * warn < fail < remove, duplicate ids. Empty when the schedule is consistent.
 */
export function checkSchedule(schedule: DeprecationSchedule): string[] {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const s of schedule.surfaces) {
    if (seen.has(s.id)) problems.push(`${s.id}: listed more than once`);
    seen.add(s.id);
    let valid = true;
    for (const field of ['warn', 'fail', 'remove'] as const) {
      if (semver.valid(s[field]) === null) {
        problems.push(`${s.id}: ${field} version "${s[field]}" is not a valid semver version`);
        valid = false;
      }
    }
    if (!valid) continue;
    if (!semver.lt(s.warn, s.fail)) problems.push(`${s.id}: warn version ${s.warn} must be lower than fail version ${s.fail}`);
    if (!semver.lt(s.fail, s.remove)) problems.push(`${s.id}: fail version ${s.fail} must be lower than remove version ${s.remove}`);
  }
  return problems;
}

/**
 * Problems with releasing `version` under this schedule, given the surfaces the code still
 * implements: a surface the code dropped before its remove version, a surface still shipped
 * at or after its remove version, or an implemented surface the schedule does not list.
 */
export function checkRelease(schedule: DeprecationSchedule, version: string, implemented: readonly string[] = SURFACE_IDS): string[] {
  const problems = checkSchedule(schedule);
  if (semver.valid(version) === null) return [...problems, `release version "${version}" is not a valid semver version`];
  const listed = new Map(schedule.surfaces.map((s) => [s.id, s]));
  for (const id of implemented) {
    const s = listed.get(id);
    if (!s) problems.push(`${id}: implemented as a deprecated surface but missing from the schedule`);
    else if (semver.valid(s.remove) && semver.gte(version, s.remove)) problems.push(`${id}: still shipped in ${version}, but the schedule removes it in ${s.remove}`);
  }
  for (const s of schedule.surfaces) {
    if (implemented.includes(s.id) || semver.valid(s.remove) === null) continue;
    if (semver.lt(version, s.remove)) problems.push(`${s.id}: removed from the code in ${version}, before its scheduled removal in ${s.remove}`);
  }
  return problems;
}

export type SurfaceStage = 'active' | 'warn' | 'fail' | 'removed';

/** Where `version` stands for a surface: before `warn` it is simply supported. */
export function stageOf(surface: DeprecatedSurface, version: string): SurfaceStage {
  if (semver.gte(version, surface.remove)) return 'removed';
  if (semver.gte(version, surface.fail)) return 'fail';
  if (semver.gte(version, surface.warn)) return 'warn';
  return 'active';
}

/** `CNB_DEPRECATION_MODE` as given (libs/platform's `deprecationModeSetting`): `undefined` when unset or unknown (the schedule decides). */
export type DeprecationModeSetting = DeprecationMode | undefined;

export interface DeprecationOutcome {
  /** A line to log once at warn level. */
  notice?: string;
  /** The run must stop with this error (`DEPRECATED_SURFACE`, exit 3). */
  error?: ExtenderError;
}

function seeDocs(s: DeprecatedSurface): string {
  return `see ${s.docs}`;
}

/**
 * What using a deprecated surface means for this version and mode:
 * - warn stage: a notice (`quiet` silences it, `error` makes it fail);
 * - fail stage: exit 3 (`warn` turns it back into a notice, `quiet` silences it);
 * - removed: exit 3 whatever the mode.
 */
export function evaluateSurface(surface: DeprecatedSurface, version: string, mode: DeprecationModeSetting): DeprecationOutcome {
  const stage = stageOf(surface, version);
  const failure = (why: string, hint = '') =>
    new ExtenderError('DEPRECATED_SURFACE', `failed to use ${surface.surface}: ${why}; use ${surface.replacement} instead${hint} (${seeDocs(surface)})`, {
      action: `use ${surface.surface}`,
    });
  switch (stage) {
    case 'active':
      return {};
    case 'removed':
      return { error: failure(`it was removed in ${surface.remove}`) };
    case 'warn':
      if (mode === 'quiet') return {};
      if (mode === 'error') return { error: failure(`it is deprecated since ${surface.warn} and CNB_DEPRECATION_MODE=error`) };
      return { notice: `${surface.surface} is deprecated since ${surface.warn} and fails from ${surface.fail}; use ${surface.replacement} instead (${seeDocs(surface)})` };
    case 'fail':
      if (mode === 'quiet') return {};
      if (mode === 'warn') return { notice: `${surface.surface} is deprecated since ${surface.warn} and is removed in ${surface.remove}; use ${surface.replacement} instead (${seeDocs(surface)})` };
      return {
        error: failure(
          `it is deprecated since ${surface.warn} and disabled since ${surface.fail} (removed in ${surface.remove})`,
          ', or set CNB_DEPRECATION_MODE=warn to keep it until then',
        ),
      };
  }
}

/** Look up a surface; a schedule without it means the surface is not deprecated. */
export function surfaceById(schedule: DeprecationSchedule, id: string): DeprecatedSurface | undefined {
  return schedule.surfaces.find((s) => s.id === id);
}

/** `evaluateSurface` by id; nothing for surfaces the schedule does not list. */
export function evaluateDeprecation(schedule: DeprecationSchedule, id: SurfaceId, version: string, mode: DeprecationModeSetting): DeprecationOutcome {
  const surface = surfaceById(schedule, id);
  return surface ? evaluateSurface(surface, version, mode) : {};
}
