/**
 * Every exit code the lifecycle's phases use (`cmd/exit.go`, `platform/exit.go`), plus 2 for
 * bad flags (Go's `flag` package exits 2). One table: the CLI maps errors through it and the
 * docs generator prints it.
 */
export const EXIT_CODES = Object.freeze({
  success: 0,
  /** generic failure */
  failed: 1,
  /** a flag is unknown, malformed or has an invalid value (usage is printed) */
  invalidFlags: 2,
  /** bad arguments or inputs (e.g. positional arguments, `-kind` other than build|run) */
  invalidArgs: 3,
  /** CNB_PLATFORM_API is missing, unparsable or unsupported */
  incompatiblePlatformApi: 11,
  /** a buildpack or image extension declares a Buildpack API that is not supported */
  incompatibleBuildpackApi: 12,
  failedDetect: 20,
  failedDetectWithErrors: 21,
  detectError: 22,
  analyzeError: 32,
  restoreError: 42,
  failedBuildWithErrors: 51,
  buildError: 52,
  exportError: 62,
  rebaseError: 72,
  launchError: 82,
  failedGenerateWithErrors: 91,
  generateError: 92,
  /** generic extend failure: any extension failed to apply */
  extendError: 102,
} as const);

export type ExitCodeName = keyof typeof EXIT_CODES;
export type ExitCode = (typeof EXIT_CODES)[ExitCodeName];

export type LifecyclePhase = 'detect' | 'analyze' | 'restore' | 'build' | 'export' | 'rebase' | 'launch' | 'generate' | 'extend';

export interface ExitCodeInfo {
  code: number;
  /** key in EXIT_CODES; absent for reserved codes */
  name?: ExitCodeName;
  phase?: LifecyclePhase;
  description: string;
  /** reserved upstream, never returned */
  reserved?: boolean;
}

/** The documented table, ascending by code. */
export const EXIT_CODE_TABLE: readonly ExitCodeInfo[] = Object.freeze([
  { code: 0, name: 'success', description: 'success' },
  { code: 1, name: 'failed', description: 'generic lifecycle error' },
  { code: 2, name: 'invalidFlags', description: 'unknown flag, bad flag syntax or invalid flag value; usage is printed' },
  { code: 3, name: 'invalidArgs', description: 'invalid arguments or inputs' },
  { code: 4, description: 'invalid environment (reserved upstream)', reserved: true },
  { code: 5, description: 'not found (reserved upstream)', reserved: true },
  { code: 9, description: 'failed update (reserved upstream)', reserved: true },
  { code: 11, name: 'incompatiblePlatformApi', description: 'Platform API incompatibility error' },
  { code: 12, name: 'incompatibleBuildpackApi', description: 'Buildpack API incompatibility error' },
  { code: 20, name: 'failedDetect', phase: 'detect', description: 'no buildpacks detected' },
  { code: 21, name: 'failedDetectWithErrors', phase: 'detect', description: 'no buildpacks detected and at least one errored' },
  { code: 22, name: 'detectError', phase: 'detect', description: 'generic detect error' },
  { code: 32, name: 'analyzeError', phase: 'analyze', description: 'generic analyze error' },
  { code: 42, name: 'restoreError', phase: 'restore', description: 'generic restore error' },
  { code: 51, name: 'failedBuildWithErrors', phase: 'build', description: 'buildpack error during /bin/build' },
  { code: 52, name: 'buildError', phase: 'build', description: 'generic build error' },
  { code: 62, name: 'exportError', phase: 'export', description: 'generic export error' },
  { code: 72, name: 'rebaseError', phase: 'rebase', description: 'generic rebase error' },
  { code: 82, name: 'launchError', phase: 'launch', description: 'generic launch error' },
  { code: 91, name: 'failedGenerateWithErrors', phase: 'generate', description: 'extension error during /bin/generate' },
  { code: 92, name: 'generateError', phase: 'generate', description: 'generic generate error' },
  { code: 102, name: 'extendError', phase: 'extend', description: 'generic extend error: applying an extension failed' },
] satisfies ExitCodeInfo[]);

/** The range each phase owns (`platform/exit.go`): detect 20–29 … extend 100–109. */
export const PHASE_EXIT_RANGES: Readonly<Record<LifecyclePhase, { min: number; max: number }>> = Object.freeze({
  detect: { min: 20, max: 29 },
  analyze: { min: 30, max: 39 },
  restore: { min: 40, max: 49 },
  build: { min: 50, max: 59 },
  export: { min: 60, max: 69 },
  rebase: { min: 70, max: 79 },
  launch: { min: 80, max: 89 },
  generate: { min: 90, max: 99 },
  extend: { min: 100, max: 109 },
});

/** What a code means, or undefined for codes nobody defines. */
export function describeExitCode(code: number): ExitCodeInfo | undefined {
  const exact = EXIT_CODE_TABLE.find((entry) => entry.code === code);
  if (exact) return exact;
  for (const [phase, range] of Object.entries(PHASE_EXIT_RANGES) as [LifecyclePhase, { min: number; max: number }][]) {
    if (code >= range.min && code <= range.max) return { code, phase, description: `${phase} phase error` };
  }
  if ((code >= 1 && code <= 10) || (code >= 13 && code <= 19)) return { code, description: 'generic lifecycle error' };
  return undefined;
}
