/**
 * Backend settings (`-backend-opt name=value`, `CNB_EXTEND_BACKEND_OPTS`): each definition
 * declares its settings in one table (`BackendSetting`, declared by the core), and
 * `parseBackendSettings` turns the entries a platform gives into that backend's constructor
 * options. Anything it cannot use — an entry that is not `name=value`, a name the backend does
 * not have (or that belongs to another backend), a value of the wrong kind — is refused before
 * the backend is created, with exit 3.
 */
import { resolve } from 'node:path';
import type { BackendSetting } from '@cnb-extender/extender-core';
import { GoValueError, parseGoBool, parseGoInt } from '@cnb-extender/platform';
import { BackendSelectionError } from './errors.ts';

/** A BuildKit cache import or export (the shape of BuildKit's `CacheOptionsEntry`). */
export interface CacheSettingEntry {
  type: string;
  attrs: Record<string, string>;
}

/** What a backend's definition says about its settings (the part `parseBackendSettings` needs). */
export interface SettingsOwner {
  id: string;
  settings?: readonly BackendSetting[];
}

export interface ParseBackendSettingsOptions {
  /** Where the entries came from, for messages (default `-backend-opt`). */
  source?: string;
  /** Base of relative `path` values (default `process.cwd()`). */
  cwd?: string;
}

function settingNames(owner: SettingsOwner): string {
  const names = (owner.settings ?? []).map((s) => s.name);
  return names.length === 0 ? 'it has none' : `its settings: ${names.join(', ')}`;
}

/**
 * A BuildKit cache entry from `type=<type>[,key=value…]` (the CSV form of buildctl and
 * `docker buildx build --cache-from/--cache-to`). `type=registry` needs a `ref`; a
 * `type=local` entry without `src`/`dest` is left to the backend (it keeps such a cache in the
 * extend directory).
 */
export function parseCacheEntry(text: string): CacheSettingEntry {
  const attrs: Record<string, string> = {};
  for (const field of text.split(',')) {
    const eq = field.indexOf('=');
    if (eq <= 0) throw new Error(`${JSON.stringify(field)} is not key=value; expected type=<type>[,key=value…] (e.g. type=registry,ref=registry.example/cache,mode=max or type=local,dest=/cache)`);
    const key = field.slice(0, eq);
    if (key in attrs) throw new Error(`${key} is given twice`);
    attrs[key] = field.slice(eq + 1);
  }
  const type = attrs['type'];
  if (type === undefined || !/^[a-z][a-z0-9-]*$/.test(type)) throw new Error('expected type=<type> (registry, local, inline, …) among the fields');
  delete attrs['type'];
  if (type === 'registry' && !attrs['ref']) throw new Error('a registry cache needs ref=<repository>');
  return { type, attrs };
}

/** A Go-style value; text that is not one fails with `expected`. */
function goValue<T>(parse: (text: string) => T, text: string, expected: string): T {
  try {
    return parse(text);
  } catch (err) {
    if (err instanceof GoValueError) throw new Error(expected);
    throw err;
  }
}

function convert(setting: BackendSetting, text: string, cwd: string): unknown {
  switch (setting.kind) {
    case 'string':
      if (text === '') throw new Error('expected a value');
      return text;
    case 'path':
      if (text === '') throw new Error('expected a path');
      return resolve(cwd, text);
    case 'bool':
      return goValue(parseGoBool, text, 'expected true or false');
    case 'int':
      return goValue(parseGoInt, text, 'expected an integer');
    case 'choice':
      if (!(setting.choices ?? []).includes(text)) throw new Error(`expected one of ${(setting.choices ?? []).join(', ')}`);
      return text;
    case 'cache':
      return parseCacheEntry(text);
  }
}

/**
 * The constructor options `entries` (`name=value`) set for the backend `owner`. Throws a
 * `BackendSelectionError` (exit 3) naming the entry: `-backend-opt colour=red: the buildkit
 * backend has no setting "colour" (its settings: address, …)`; a name that belongs to another
 * backend in `others` says whose it is.
 */
export function parseBackendSettings(owner: SettingsOwner, entries: readonly string[], others: Iterable<SettingsOwner> = [], options: ParseBackendSettingsOptions = {}): Record<string, unknown> {
  const source = options.source ?? '-backend-opt';
  const cwd = options.cwd ?? process.cwd();
  const result: Record<string, unknown> = {};
  const given = new Set<string>();
  for (const entry of entries) {
    const refuse = (why: string, cause?: unknown): never => {
      throw new BackendSelectionError(owner.id, 'setting', `${source} ${entry}: ${why}`, cause);
    };
    const eq = entry.indexOf('=');
    const name = eq < 0 ? entry : entry.slice(0, eq);
    if (name === '' || /\s/.test(name)) refuse('expected name=value');
    const setting = (owner.settings ?? []).find((s) => s.name === name);
    if (!setting) {
      const elsewhere = [...others].filter((o) => o.id !== owner.id && (o.settings ?? []).some((s) => s.name === name)).map((o) => o.id);
      if (elsewhere.length > 0) refuse(`${name} is a setting of the ${elsewhere.join(' and the ')} backend${elsewhere.length > 1 ? 's' : ''}, not of ${owner.id} (${settingNames(owner)})`);
      refuse(`the ${owner.id} backend has no setting ${JSON.stringify(name)} (${settingNames(owner)})`);
    }
    const known = setting!;
    if (eq < 0 && known.kind !== 'bool') refuse(`expected ${name}=<value>`);
    if (!known.repeatable && given.has(name)) refuse(`${name} is given more than once`);
    given.add(name);
    let value: unknown;
    try {
      value = convert(known, eq < 0 ? 'true' : entry.slice(eq + 1), cwd);
    } catch (err) {
      refuse((err as Error).message, err);
    }
    if (known.repeatable) result[known.option] = [...((result[known.option] as unknown[] | undefined) ?? []), value];
    else result[known.option] = value;
  }
  return result;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

function valueText(setting: BackendSetting): string {
  switch (setting.kind) {
    case 'bool':
      return '`true` \\| `false`';
    case 'choice':
      return (setting.choices ?? []).map((c) => `\`${c}\``).join(' \\| ');
    case 'cache':
      return 'BuildKit cache entry';
    default:
      return setting.kind;
  }
}

/** One backend's settings as a Markdown table (docs/backends.md). */
export function settingsTable(owner: SettingsOwner): string[] {
  const settings = owner.settings ?? [];
  if (settings.length === 0) return ['(none)'];
  const rows = ['| setting | value | description |', '|---|---|---|'];
  for (const s of settings) rows.push(`| \`${s.name}\`${s.repeatable ? ' (repeatable)' : ''} | ${valueText(s)} | ${cell(s.description)} |`);
  return rows;
}
