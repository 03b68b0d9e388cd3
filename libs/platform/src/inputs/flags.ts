import { FlagError } from '../errors.ts';
import { formatGoDuration, GoValueError, parseGoBool, parseGoDuration, parseGoInt } from './go-values.ts';

/**
 * A small command-line parser with the rules of Go's `flag` package, which the lifecycle
 * uses: `-name value`, `-name=value`, `--name` and `--name=value` are the same; boolean
 * flags take no separate value (`-no-color`, `-no-color=false`); a value may start with `-`
 * (`-app -x` sets app to `-x`); parsing stops at the first non-flag argument or after `--`;
 * `-h` / `-help` ask for usage unless defined; the last occurrence of a flag wins, except for
 * `list` flags, whose occurrences accumulate (Go's flag package has no list type; this is a
 * `flag.Value` whose `Set` appends).
 *
 * Commander was tried first and cannot express these rules: it refuses multi-character
 * single-dash flags (`-layers`), treats `--no-color` as the negation of a `color` option and
 * rejects `--no-color=false`, and keeps parsing options after a positional argument.
 */

export type FlagKind = 'string' | 'path' | 'bool' | 'int' | 'duration' | 'list';

export interface FlagSpec {
  /** without dashes: `layers` */
  name: string;
  kind: FlagKind;
  usage: string;
  /** default as text (Go syntax for durations); shown in usage unless it is the zero value */
  defaultText?: string;
}

export interface ParsedFlags {
  /** flag name → raw value text (bools normalised to `true`/`false`); the last occurrence wins; no `list` flags */
  values: Map<string, string>;
  /** `list` flag name → every value given, in order */
  lists: Map<string, string[]>;
  /** flag names in the order they were given (repeats included) */
  seen: string[];
  /** arguments after the flags */
  positional: string[];
  /** `-h`/`-help` was given (parsing stopped there) */
  help: boolean;
}

/** Why a value is invalid for a flag (Go's wording), or undefined when it is fine. */
function invalidReason(spec: FlagSpec, value: string): string | undefined {
  try {
    if (spec.kind === 'int') parseGoInt(value);
    if (spec.kind === 'duration') parseGoDuration(value);
    return undefined;
  } catch (err) {
    if (!(err instanceof GoValueError)) throw err;
    return err.message.endsWith('value out of range') ? 'value out of range' : 'parse error';
  }
}

/**
 * Parse argv (without the program name) against the specs. Errors are FlagErrors (exit 2)
 * with Go's messages and the usage text.
 */
export function parseGoFlags(argv: readonly string[], specs: readonly FlagSpec[], usage: string): ParsedFlags {
  const byName = new Map(specs.map((s) => [s.name, s]));
  const values = new Map<string, string>();
  const lists = new Map<string, string[]>();
  const seen: string[] = [];
  const fail = (message: string): never => {
    throw new FlagError(message, usage);
  };
  let i = 0;
  while (i < argv.length) {
    const arg = argv[i]!;
    if (arg.length < 2 || arg[0] !== '-') break;
    let minuses = 1;
    if (arg[1] === '-') {
      minuses = 2;
      if (arg.length === 2) {
        i++;
        break; // "--" ends the flags
      }
    }
    let name = arg.slice(minuses);
    if (name.length === 0 || name[0] === '-' || name[0] === '=') fail(`bad flag syntax: ${arg}`);
    i++;
    let value: string | undefined;
    const eq = name.indexOf('=');
    if (eq > 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const spec = byName.get(name);
    if (!spec) {
      if (name === 'help' || name === 'h') return { values, lists, seen, positional: [], help: true };
      fail(`flag provided but not defined: -${name}`);
    }
    const flag = spec!;
    if (flag.kind === 'bool') {
      if (value !== undefined) {
        try {
          value = String(parseGoBool(value));
        } catch {
          fail(`invalid boolean value ${JSON.stringify(value)} for -${name}: parse error`);
        }
      } else value = 'true';
    } else {
      if (value === undefined) {
        if (i >= argv.length) fail(`flag needs an argument: -${name}`);
        value = argv[i++]!;
      }
      const reason = invalidReason(flag, value);
      if (reason) fail(`invalid value ${JSON.stringify(value)} for flag -${name}: ${reason}`);
    }
    if (flag.kind === 'list') lists.set(name, [...(lists.get(name) ?? []), value!]);
    else values.set(name, value!);
    seen.push(name);
  }
  return { values, lists, seen, positional: argv.slice(i), help: false };
}

function isZeroDefault(spec: FlagSpec): boolean {
  const d = spec.defaultText;
  if (d === undefined || d === '') return true;
  if (spec.kind === 'bool') return d === 'false';
  if (spec.kind === 'int') return Number(d) === 0;
  if (spec.kind === 'duration') return parseGoDuration(d) === 0;
  return false;
}

const TYPE_WORD: Record<FlagKind, string> = { string: 'string', path: 'string', bool: '', int: 'int', duration: 'duration', list: 'value' };

/**
 * Usage text in Go's `PrintDefaults` layout, flags sorted by name:
 * ```
 * Usage of lifecycle:
 *   -analyzed string
 *     	path to analyzed.toml (default "<layers>/analyzed.toml")
 * ```
 */
export function formatGoUsage(programName: string, specs: readonly FlagSpec[]): string {
  const lines = [`Usage of ${programName}:`];
  for (const spec of [...specs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    let line = `  -${spec.name}`;
    const word = TYPE_WORD[spec.kind];
    if (word) line += ` ${word}`;
    line += line.length <= 4 ? '\t' : '\n    \t';
    line += spec.usage.replaceAll('\n', '\n    \t');
    if (!isZeroDefault(spec)) {
      const d = spec.defaultText!;
      line += spec.kind === 'string' || spec.kind === 'path' ? ` (default ${JSON.stringify(d)})` : ` (default ${spec.kind === 'duration' ? formatGoDuration(parseGoDuration(d)) : d})`;
    }
    lines.push(line);
  }
  return `${lines.join('\n')}\n`;
}
