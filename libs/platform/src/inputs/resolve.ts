import { resolve as resolvePath } from 'node:path';
import { ApiVersion } from '../api/version.ts';
import { fail } from '../errors.ts';
import { PLACEHOLDER_LAYERS, type InputDefinition } from './definitions.ts';
import type { FlagSpec } from './flags.ts';
import { formatGoDuration, GoValueError, parseGoBool, parseGoDuration, parseGoInt } from './go-values.ts';

/** Resolved values: paths and strings as text, durations in milliseconds, ints, bools, lists of entries. */
export type InputValue = string | number | boolean | string[];
export type InputSource = 'flag' | 'env' | 'default';

export interface InputOrigin {
  source: InputSource;
  /** `-layers` or `CNB_LAYERS_DIR`; absent for defaults */
  name?: string;
  /** the text as given (before placeholder and path resolution) */
  raw?: string;
}

/** A deprecated alias that was set. */
export interface DeprecatedUse {
  /** input key, e.g. `extendCacheTtl` */
  input: string;
  kind: 'flag' | 'env';
  /** what was used: `-kaniko-cache-ttl` or `CNB_KANIKO_CACHE_TTL` */
  used: string;
  /** what to use instead: `-extend-cache-ttl` or `CNB_EXTEND_CACHE_TTL` */
  replacement: string;
  /** whether this alias supplied the final value */
  effective: boolean;
  /** the name that won instead, when one did */
  overriddenBy?: string;
}

export interface ResolvedInputs {
  values: Record<string, InputValue>;
  origins: Record<string, InputOrigin>;
  deprecations: DeprecatedUse[];
  /** env values that could not be parsed and were replaced by the default (as upstream does) */
  warnings: string[];
}

export interface ResolveOptions {
  /** flag values from parseGoFlags (name → text; a `list` flag's name → its entries) */
  flags?: ReadonlyMap<string, string | readonly string[]>;
  env?: Readonly<Record<string, string | undefined>>;
  /** gates flags by their `since` version; omitted means every flag is available */
  platformApi?: ApiVersion | string;
  /** base for relative paths (default `process.cwd()`) */
  cwd?: string;
}

/** Whether a definition's flag exists at a Platform API. */
export function flagAvailable(def: InputDefinition, platformApi?: ApiVersion | string): boolean {
  if (def.flag === undefined) return false;
  if (def.since === undefined || platformApi === undefined) return true;
  return ApiVersion.from(platformApi).atLeast(def.since);
}

/** Flag specs for the definitions available at a Platform API, deprecated alias flags included. */
export function flagSpecsFor(defs: readonly InputDefinition[], platformApi?: ApiVersion | string): FlagSpec[] {
  const specs: FlagSpec[] = [];
  for (const def of defs) {
    if (!flagAvailable(def, platformApi)) continue;
    const base = { kind: def.kind, ...(def.default !== undefined ? { defaultText: def.default } : {}) };
    specs.push({ name: def.flag!, usage: def.description, ...base });
    for (const alias of def.deprecatedAliases ?? []) {
      if (alias.flag) specs.push({ name: alias.flag, usage: `[deprecated: use -${def.flag}] ${def.description}`, ...base });
    }
  }
  return specs;
}

/** A `list` input's entries in an environment variable: separated by whitespace. */
function listEntries(text: string): string[] {
  return text.split(/\s+/).filter((entry) => entry !== '');
}

function convert(def: InputDefinition, text: string): InputValue {
  switch (def.kind) {
    case 'list':
      return listEntries(text);
    case 'bool':
      return parseGoBool(text);
    case 'int':
      return parseGoInt(text);
    case 'duration':
      return parseGoDuration(text);
    default:
      return text;
  }
}

function describeDefault(def: InputDefinition): string {
  if (def.default === undefined) return def.kind === 'list' ? 'none' : 'no value';
  if (def.kind === 'duration') return `the default ${formatGoDuration(parseGoDuration(def.default))}`;
  return `the default ${JSON.stringify(def.default)}`;
}

/** One place an input's value may come from: its flag or env var, or a deprecated alias of either. */
interface Candidate {
  kind: 'flag' | 'env';
  name: string;
  text: string;
  /** A `list` flag's occurrences, as given. */
  entries?: readonly string[];
  /** The current name, when this candidate is a deprecated alias. */
  alias?: string;
}

function flagCandidate(flags: ReadonlyMap<string, string | readonly string[]>, flagName: string, alias?: string): Candidate | undefined {
  const given = flags.get(flagName);
  if (given === undefined) return undefined;
  const candidate: Candidate =
    typeof given === 'string' ? { kind: 'flag', name: `-${flagName}`, text: given } : { kind: 'flag', name: `-${flagName}`, text: given.join(' '), entries: given };
  if (alias !== undefined) candidate.alias = alias;
  return candidate;
}

/** The candidates that were set, in precedence order: flag, its aliases, env var, its aliases. */
function candidatesFor(def: InputDefinition, flags: ReadonlyMap<string, string | readonly string[]>, options: ResolveOptions): Candidate[] {
  const env = options.env ?? {};
  const candidates: Candidate[] = [];
  const aliases = def.deprecatedAliases ?? [];
  if (flagAvailable(def, options.platformApi)) {
    const own = flagCandidate(flags, def.flag!);
    if (own) candidates.push(own);
    for (const alias of aliases) {
      const aliased = alias.flag ? flagCandidate(flags, alias.flag, `-${def.flag}`) : undefined;
      if (aliased) candidates.push(aliased);
    }
  }
  if (def.env) {
    const text = env[def.env];
    if (text !== undefined && text !== '') candidates.push({ kind: 'env', name: def.env, text });
    for (const alias of aliases) {
      const aliasText = alias.env ? env[alias.env] : undefined;
      if (aliasText !== undefined && aliasText !== '') candidates.push({ kind: 'env', name: alias.env!, text: aliasText, alias: def.env });
    }
  }
  return candidates;
}

/** The first candidate whose value converts; env values that do not are warned about and skipped. */
function chooseCandidate(def: InputDefinition, candidates: Candidate[], warnings: string[]): { chosen?: Candidate; value?: InputValue } {
  for (const candidate of candidates) {
    if (candidate.kind === 'flag') {
      // parseGoFlags already checked the syntax of flag values; a list flag's entries are kept as given
      return { chosen: candidate, value: candidate.entries && def.kind === 'list' ? [...candidate.entries] : convert(def, candidate.text) };
    }
    try {
      return { value: convert(def, candidate.text), chosen: candidate };
    } catch (err) {
      if (!(err instanceof GoValueError)) throw err;
      warnings.push(`ignoring ${candidate.name}=${JSON.stringify(candidate.text)}: ${err.message}; using ${describeDefault(def)}`);
    }
  }
  return {};
}

function deprecatedUses(def: InputDefinition, candidates: Candidate[], chosen: Candidate | undefined): DeprecatedUse[] {
  const uses: DeprecatedUse[] = [];
  for (const candidate of candidates) {
    if (candidate.alias) {
      const use: DeprecatedUse = { input: def.key, kind: candidate.kind, used: candidate.name, replacement: candidate.alias, effective: candidate === chosen };
      if (chosen && candidate !== chosen) use.overriddenBy = chosen.name;
      uses.push(use);
    }
  }
  return uses;
}

/** Replace `<layers>` placeholders with the resolved layers directory, then make path inputs absolute. */
function resolvePaths(defs: readonly InputDefinition[], values: Record<string, InputValue>, cwd: string): void {
  const layers = values['layersDir'];
  for (const def of defs) {
    const value = values[def.key];
    if (typeof value !== 'string') continue;
    let next = value;
    if (typeof layers === 'string' && def.key !== 'layersDir' && next.includes(PLACEHOLDER_LAYERS)) {
      next = next.replace(PLACEHOLDER_LAYERS, layers);
    }
    if (def.kind === 'path' && next !== '') next = resolvePath(cwd, next);
    values[def.key] = next;
  }
}

/**
 * Resolve inputs with precedence flag > env > default. Within each level the current name
 * beats its deprecated aliases. An empty env var counts as unset. A `list` input takes every
 * occurrence of its flag, else the whitespace-separated entries of its env var, else none (`[]`). Env values that do not
 * parse fall back to the default, as the lifecycle does, and are reported in `warnings`.
 * Then `<layers>` placeholders are replaced with the resolved layers directory and path
 * inputs are made absolute.
 */
export function resolveInputs(defs: readonly InputDefinition[], options: ResolveOptions = {}): ResolvedInputs {
  const flags = options.flags ?? new Map<string, string>();
  const cwd = options.cwd ?? process.cwd();
  const values: Record<string, InputValue> = {};
  const origins: Record<string, InputOrigin> = {};
  const deprecations: DeprecatedUse[] = [];
  const warnings: string[] = [];

  for (const def of defs) {
    const candidates = candidatesFor(def, flags, options);
    const { chosen, value } = chooseCandidate(def, candidates, warnings);
    deprecations.push(...deprecatedUses(def, candidates, chosen));
    if (chosen) {
      values[def.key] = value!;
      origins[def.key] = { source: chosen.kind, name: chosen.name, raw: chosen.text };
    } else if (def.default !== undefined) {
      values[def.key] = convert(def, def.default);
      origins[def.key] = { source: 'default', raw: def.default };
    } else if (def.kind === 'list') {
      values[def.key] = [];
      origins[def.key] = { source: 'default' };
    }
  }
  resolvePaths(defs, values, cwd);
  return { values, origins, deprecations, warnings };
}

/**
 * Check `choices` (e.g. `-kind` build|run). A value outside them is an `INVALID_INPUT` error
 * (exit 3): `failed to resolve inputs: invalid value "x" for -kind: expected one of build, run`.
 */
export function checkChoices(defs: readonly InputDefinition[], resolved: ResolvedInputs): void {
  for (const def of defs) {
    if (!def.choices) continue;
    const value = resolved.values[def.key];
    if (typeof value === 'string' && !def.choices.includes(value)) {
      const origin = resolved.origins[def.key];
      const from = origin?.name ?? 'default';
      throw fail('INVALID_INPUT', 'resolve inputs', new Error(`invalid value ${JSON.stringify(value)} for ${from}: expected one of ${def.choices.join(', ')}`));
    }
  }
}

/** One warning line per deprecated alias used, for the CLI to print once. */
export function deprecationMessages(deprecations: readonly DeprecatedUse[]): string[] {
  return deprecations.map(
    (d) => `${d.used} is deprecated; use ${d.replacement} instead${d.overriddenBy ? ` (ignored: ${d.overriddenBy} takes precedence)` : ''}`,
  );
}
