/**
 * The phases a lifecycle distribution ships (Distribution spec, lifecycle artifact): each is a
 * name under `<lifecycle>/` (upstream: a symlink to the multi-call `lifecycle`) and a
 * `lifecycle <verb>` subcommand. `launcher` is a separate executable, not a phase.
 */
export const LIFECYCLE_PHASES = Object.freeze({
  analyzer: 'analyze',
  builder: 'build',
  creator: 'create',
  detector: 'detect',
  exporter: 'export',
  extender: 'extend',
  rebaser: 'rebase',
  restorer: 'restore',
} as const);

export type LifecyclePhaseName = keyof typeof LIFECYCLE_PHASES;
export type LifecyclePhaseVerb = (typeof LIFECYCLE_PHASES)[LifecyclePhaseName];

/** The phase names, sorted. */
export const LIFECYCLE_PHASE_NAMES: readonly LifecyclePhaseName[] = Object.freeze((Object.keys(LIFECYCLE_PHASES) as LifecyclePhaseName[]).sort());

/** The launcher, shipped beside the phases in every lifecycle distribution. */
export const LIFECYCLE_LAUNCHER = 'launcher';
