import { randomBytes } from 'node:crypto';
import { open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { parse, stringify, TomlError, type TomlTable, type TomlValue } from 'smol-toml';

export type { TomlTable, TomlValue };

/**
 * A platform file could not be read, parsed, validated or written. The message names the
 * file and, when known, the key (`run-image.extend`, `group-extensions[1].api`) or the
 * line and column of a syntax error.
 */
export class TomlFileError extends Error {
  override name = 'TomlFileError';
  /** what the file is, e.g. `analyzed file` */
  readonly what: string;
  readonly path: string;
  readonly key: string | undefined;
  readonly line: number | undefined;
  readonly column: number | undefined;
  /** the file does not exist */
  readonly notFound: boolean;

  constructor(
    what: string,
    path: string,
    reason: string,
    options: { key?: string; line?: number; column?: number; cause?: unknown; notFound?: boolean; verb?: string } = {},
  ) {
    const where = options.key !== undefined ? `key ${options.key}: ` : options.line !== undefined ? `line ${options.line}, column ${options.column ?? 0}: ` : '';
    super(`${options.verb ?? 'reading'} ${what} ${path}: ${where}${reason}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.what = what;
    this.path = path;
    this.key = options.key;
    this.line = options.line;
    this.column = options.column;
    this.notFound = options.notFound ?? false;
  }
}

/** Where a document came from, for error messages. */
export interface FileContext {
  /** `analyzed file`, `group file`, … */
  what: string;
  path: string;
}

/**
 * Parse TOML text. Integers become bigint and floats stay numbers so that values we do not
 * model survive a read-modify-write with their types (`1` stays `1`, `1.0` stays `1.0`).
 */
export function parseToml(text: string, ctx: FileContext): TomlTable {
  try {
    return parse(text, { integersAsBigInt: true });
  } catch (err) {
    if (err instanceof TomlError) {
      const reason = (err.message.split('\n')[0] ?? err.message).replace(/^Invalid TOML document: /, '');
      throw new TomlFileError(ctx.what, ctx.path, reason, { line: err.line, column: err.column, cause: err });
    }
    throw new TomlFileError(ctx.what, ctx.path, String(err), { cause: err });
  }
}

/** TOML text for a table (the inverse of parseToml's typing). */
export function stringifyToml(table: TomlTable): string {
  const text = stringify(table, { numbersAsFloat: true });
  return text === '' || text.endsWith('\n') ? text : `${text}\n`;
}

/** Read and parse a TOML file; a missing file gives a TomlFileError with `notFound`. */
export async function readTomlFile(ctx: FileContext): Promise<TomlTable> {
  let text: string;
  try {
    text = await readFile(ctx.path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const notFound = code === 'ENOENT';
    throw new TomlFileError(ctx.what, ctx.path, notFound ? 'file does not exist' : (err as Error).message, { cause: err, notFound });
  }
  return parseToml(text, ctx);
}

/** Resolve to undefined when the file does not exist; other errors pass through. */
export async function ifExists<T>(pending: Promise<T>): Promise<T | undefined> {
  try {
    return await pending;
  } catch (err) {
    if (err instanceof TomlFileError && err.notFound) return undefined;
    throw err;
  }
}

export interface AtomicWriteOptions {
  /** file mode for a new file (default 0o644, minus umask); an existing file keeps its mode */
  mode?: number;
}

/**
 * Write a file atomically: a temp file in the same directory, flushed, then renamed over the
 * target. Readers see the old or the new content, never a partial one. When replacing a
 * file, its mode and (where permitted) owner are kept: the extender runs as root but later
 * phases run as the CNB user.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const existing = await stat(path).catch(() => undefined);
  const handle = await open(temp, 'wx', options.mode ?? 0o644);
  let renamed = false;
  try {
    try {
      await handle.writeFile(data);
      if (existing) {
        await handle.chmod(existing.mode & 0o7777);
        if (typeof process.getuid === 'function' && (existing.uid !== process.getuid() || existing.gid !== process.getgid?.())) {
          await handle.chown(existing.uid, existing.gid).catch(() => {});
        }
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
    renamed = true;
  } finally {
    if (!renamed) await unlink(temp).catch(() => {});
  }
}

/** Stringify and write a TOML file atomically, naming the file on failure. */
export async function writeTomlFile(ctx: FileContext, table: TomlTable): Promise<void> {
  try {
    await writeFileAtomic(ctx.path, stringifyToml(table));
  } catch (err) {
    if (err instanceof TomlFileError) throw err;
    throw new TomlFileError(ctx.what, ctx.path, (err as Error).message, { cause: err, verb: 'writing' });
  }
}

/** A platform TOML file: its name in messages, its default file name, its table conversions. */
export interface TomlFileSpec<T> {
  /** `analyzed file`, `group file`, … */
  what: string;
  /** The path errors name when parsed text comes without one. */
  file: string;
  /** Validate a parsed table. */
  fromTable(table: TomlTable, ctx: FileContext): T;
  toTable(value: T): TomlTable;
}

/** Parse, stringify, read and atomically write one kind of platform TOML file. */
export interface TomlFileFormat<T> {
  parse(text: string, path?: string): T;
  stringify(value: T): string;
  /** A missing file is a TomlFileError with `notFound` (wrap in `ifExists` to allow it). */
  read(path: string): Promise<T>;
  write(path: string, value: T): Promise<void>;
}

export function tomlFileFormat<T>(spec: TomlFileSpec<T>): TomlFileFormat<T> {
  const { what } = spec;
  return {
    parse: (text, path = spec.file) => {
      const ctx = { what, path };
      return spec.fromTable(parseToml(text, ctx), ctx);
    },
    stringify: (value) => stringifyToml(spec.toTable(value)),
    read: async (path) => {
      const ctx = { what, path };
      return spec.fromTable(await readTomlFile(ctx), ctx);
    },
    write: (path, value) => writeTomlFile({ what, path }, spec.toTable(value)),
  };
}

// ---- typed views over parsed tables ----

function isTable(value: unknown): value is TomlTable {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return 'a date';
  if (isTable(value)) return 'a table';
  if (typeof value === 'bigint') return 'an integer';
  if (typeof value === 'number') return 'a float';
  if (typeof value === 'boolean') return 'a boolean';
  if (typeof value === 'string') return 'a string';
  return typeof value;
}

function keyPart(key: string): string {
  return /^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key);
}

/**
 * A read-only view of one TOML table that validates the keys we model and remembers them,
 * so that `extra()` returns every other key untouched.
 */
export class TableView {
  readonly data: TomlTable;
  readonly at: string;
  readonly ctx: FileContext;
  readonly #used = new Set<string>();

  constructor(table: TomlTable, ctx: FileContext, at = '') {
    this.data = table;
    this.ctx = ctx;
    this.at = at;
  }

  keyPath(key: string): string {
    return this.at === '' ? keyPart(key) : `${this.at}.${keyPart(key)}`;
  }

  fail(key: string, reason: string, index?: number): TomlFileError {
    const path = index === undefined ? this.keyPath(key) : `${this.keyPath(key)}[${index}]`;
    return new TomlFileError(this.ctx.what, this.ctx.path, reason, { key: path });
  }

  #get(key: string): unknown {
    this.#used.add(key);
    return Object.hasOwn(this.data, key) ? this.data[key] : undefined;
  }

  has(key: string): boolean {
    return Object.hasOwn(this.data, key);
  }

  string(key: string): string | undefined {
    const value = this.#get(key);
    if (value === undefined || typeof value === 'string') return value;
    throw this.fail(key, `expected a string, got ${describe(value)}`);
  }

  requiredString(key: string): string {
    const value = this.string(key);
    if (value === undefined) throw this.fail(key, 'missing required key');
    return value;
  }

  boolean(key: string): boolean | undefined {
    const value = this.#get(key);
    if (value === undefined || typeof value === 'boolean') return value;
    throw this.fail(key, `expected a boolean, got ${describe(value)}`);
  }

  stringArray(key: string): string[] | undefined {
    const value = this.#get(key);
    if (value === undefined) return undefined;
    if (!Array.isArray(value)) throw this.fail(key, `expected an array of strings, got ${describe(value)}`);
    return value.map((item, i) => {
      if (typeof item !== 'string') throw this.fail(key, `expected a string, got ${describe(item)}`, i);
      return item;
    });
  }

  /** A sub-table as another view, or undefined when absent. */
  table(key: string): TableView | undefined {
    const value = this.#get(key);
    if (value === undefined) return undefined;
    if (!isTable(value)) throw this.fail(key, `expected a table, got ${describe(value)}`);
    return new TableView(value, this.ctx, this.keyPath(key));
  }

  /** A sub-table kept as raw data (pass-through). */
  rawTable(key: string): TomlTable | undefined {
    const value = this.#get(key);
    if (value === undefined) return undefined;
    if (!isTable(value)) throw this.fail(key, `expected a table, got ${describe(value)}`);
    return value;
  }

  /** An array of tables (`[[key]]`) as views; absent → []. */
  tables(key: string): TableView[] {
    const value = this.#get(key);
    if (value === undefined) return [];
    if (!Array.isArray(value)) throw this.fail(key, `expected an array of tables, got ${describe(value)}`);
    return value.map((item, i) => {
      if (!isTable(item)) throw this.fail(key, `expected a table, got ${describe(item)}`, i);
      return new TableView(item, this.ctx, `${this.keyPath(key)}[${i}]`);
    });
  }

  /** The keys no accessor asked for, or undefined when there are none. */
  extra(): TomlTable | undefined {
    const out: TomlTable = {};
    let any = false;
    for (const key of Object.keys(this.data)) {
      if (this.#used.has(key)) continue;
      out[key] = this.data[key]!;
      any = true;
    }
    return any ? out : undefined;
  }
}

/**
 * Build a table for writing: the modelled keys in the given order (undefined values are
 * left out), then the preserved unknown keys.
 */
export function composeTable(known: Record<string, TomlValue | undefined>, extra?: TomlTable): TomlTable {
  const out: TomlTable = {};
  for (const [key, value] of Object.entries(known)) {
    if (value !== undefined) out[key] = value;
  }
  for (const [key, value] of Object.entries(extra ?? {})) {
    if (!Object.hasOwn(known, key)) out[key] = value;
  }
  return out;
}

/** Drop undefined properties (in place) so typed objects compare and print cleanly. */
export function prune<T extends object>(value: T): T {
  for (const key of Object.keys(value) as (keyof T)[]) {
    if (value[key] === undefined) delete value[key];
  }
  return value;
}
