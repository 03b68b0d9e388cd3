/**
 * How the multi-call `lifecycle` is reached, as the Go lifecycle dispatches: on the name it
 * was invoked by (`/cnb/lifecycle/extender` is a symlink to `lifecycle`), or on the first
 * argument (`lifecycle extend`).
 */
import { basename, extname } from 'node:path';
import { LIFECYCLE_PHASES } from '@cnb-extender/platform';

/** The phase binaries (symlink names) the lifecycle ships, and the verb of each (libs/platform's one list). */
export const PHASE_NAMES = LIFECYCLE_PHASES;

export type PhaseName = keyof typeof PHASE_NAMES;
export type PhaseVerb = (typeof PHASE_NAMES)[PhaseName];

export const PHASE_VERBS: readonly PhaseVerb[] = Object.freeze(Object.values(PHASE_NAMES).sort());

/** Names that mean "the multi-call binary itself" (the executable, or this app run from its sources). */
const SELF_NAMES = new Set(['lifecycle', 'main']);

export function isPhaseName(name: string): name is PhaseName {
  return Object.hasOwn(PHASE_NAMES, name);
}

export function isPhaseVerb(name: string): name is PhaseVerb {
  return (PHASE_VERBS as readonly string[]).includes(name);
}

/** The name the program was invoked by, without directory and extension (`/cnb/lifecycle/extender` → `extender`). */
export function invokedName(path: string): string {
  const base = basename(path);
  return base.slice(0, base.length - extname(base).length) || base;
}

export type Dispatch =
  | { kind: 'self' }
  | { kind: 'phase'; name: PhaseName }
  | { kind: 'unknown'; name: string };

/** What an invocation name means. */
export function dispatchName(name: string): Dispatch {
  if (SELF_NAMES.has(name)) return { kind: 'self' };
  if (isPhaseName(name)) return { kind: 'phase', name };
  return { kind: 'unknown', name };
}
