/**
 * Readers for the inputs the extender takes from disk: analyzed.toml,
 * group.toml and extend-config.toml. Every error names the file it is about.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseToml } from 'smol-toml';
import { BUILDPACK_APIS, LifecycleError, verifyBuildpackApi, type DeprecationMode } from '@cnb-extender/platform';
import type { BuildArg, ExtendKind } from './backend.ts';
import { ExtenderError, messageOf, type ExtenderErrorCode } from './errors.ts';
import type { EventSink } from './events.ts';

/** Names the core sets itself; an extend-config.toml may not use them. */
export const RESERVED_ARGS = ['build_id', 'user_id', 'group_id'] as const;

export interface AnalyzedImage {
  reference: string;
  image?: string;
  extend?: boolean;
  /** `[<kind>-image.target]` os/arch/variant, when written. */
  target?: { os: string; architecture: string; variant?: string };
}

export interface Analyzed {
  buildImage?: AnalyzedImage;
  runImage?: AnalyzedImage;
  /** The whole parsed document (unknown keys kept). */
  raw: Record<string, unknown>;
}

export interface GroupExtension {
  id: string;
  version: string;
  api: string;
}

async function readTomlFile(path: string, code: ExtenderErrorCode, what: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new ExtenderError(code, `reading ${what} ${path}: ${messageOf(err)}`, { cause: err, path });
  }
  try {
    return parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw new ExtenderError(code, `parsing ${what} ${path}: ${messageOf(err).split('\n')[0]}`, { cause: err, path });
  }
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

function imageSection(doc: Record<string, unknown>, key: string, path: string): AnalyzedImage | undefined {
  const section = doc[key];
  if (section === undefined) return undefined;
  if (!isTable(section)) throw new ExtenderError('ANALYZED_INVALID', `parsing analyzed metadata ${path}: [${key}] must be a table`, { path });
  const reference = section['reference'];
  if (reference !== undefined && typeof reference !== 'string') {
    throw new ExtenderError('ANALYZED_INVALID', `parsing analyzed metadata ${path}: ${key}.reference must be a string`, { path });
  }
  const out: AnalyzedImage = { reference: reference ?? '' };
  if (typeof section['image'] === 'string') out.image = section['image'];
  if (typeof section['extend'] === 'boolean') out.extend = section['extend'];
  const target = section['target'];
  if (isTable(target) && typeof target['os'] === 'string' && typeof target['arch'] === 'string') {
    out.target = { os: target['os'], architecture: target['arch'] };
    if (typeof target['arch-variant'] === 'string') out.target.variant = target['arch-variant'];
  }
  return out;
}

/** Read analyzed.toml. */
export async function readAnalyzed(path: string): Promise<Analyzed> {
  const raw = await readTomlFile(path, 'ANALYZED_INVALID', 'analyzed metadata');
  const out: Analyzed = { raw };
  const build = imageSection(raw, 'build-image', path);
  const run = imageSection(raw, 'run-image', path);
  if (build) out.buildImage = build;
  if (run) out.runImage = run;
  return out;
}

/** The reference a kind extends: `build-image.reference` or `run-image.reference`. */
export function referenceFor(kind: ExtendKind, analyzed: Analyzed, path: string): string {
  const section = kind === 'build' ? analyzed.buildImage : analyzed.runImage;
  const reference = section?.reference ?? '';
  if (reference === '') {
    throw new ExtenderError('ANALYZED_INVALID', `reading analyzed metadata ${path}: no ${kind}-image.reference to extend`, { path });
  }
  return reference;
}

export interface ReadGroupOptions {
  deprecationMode?: DeprecationMode;
  events?: EventSink;
}

/**
 * Read `[[group-extensions]]` from group.toml, in file order, and check each
 * extension's Buildpack API (exit 12 when unsupported).
 */
export async function readGroupExtensions(path: string, options: ReadGroupOptions = {}): Promise<GroupExtension[]> {
  const doc = await readTomlFile(path, 'GROUP_INVALID', 'group');
  const list = doc['group-extensions'];
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new ExtenderError('GROUP_INVALID', `parsing group ${path}: group-extensions must be an array of tables`, { path });
  const out: GroupExtension[] = [];
  for (const [index, entry] of list.entries()) {
    if (!isTable(entry) || typeof entry['id'] !== 'string' || entry['id'] === '') {
      throw new ExtenderError('GROUP_INVALID', `parsing group ${path}: group-extensions[${index}] needs a string id`, { path });
    }
    const id = entry['id'];
    const version = typeof entry['version'] === 'string' ? entry['version'] : '';
    const api = typeof entry['api'] === 'string' ? entry['api'] : '';
    try {
      const verified = verifyBuildpackApi('Extension', `${id}@${version}`, api, {
        apis: BUILDPACK_APIS,
        ...(options.deprecationMode ? { deprecationMode: options.deprecationMode } : {}),
      });
      for (const notice of verified.notices) options.events?.emit({ type: 'warning', level: 'warn', code: 'deprecated-api', message: notice.message, extensionId: id });
    } catch (err) {
      const detail = err instanceof LifecycleError ? err.message : messageOf(err);
      throw new ExtenderError('EXTENSION_API_UNSUPPORTED', `reading group ${path}: ${detail}`, { cause: err, path, extensionId: id });
    }
    out.push({ id, version, api });
  }
  return out;
}

/**
 * Read the args of one kind from an extend-config.toml. A missing file means no
 * args. Reserved names are an error.
 */
export async function readExtendConfigArgs(path: string, kind: ExtendKind): Promise<BuildArg[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new ExtenderError('EXTEND_CONFIG_INVALID', `reading extend config ${path}: ${messageOf(err)}`, { cause: err, path });
  }
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    throw new ExtenderError('EXTEND_CONFIG_INVALID', `parsing extend config ${path}: ${messageOf(err).split('\n')[0]}`, { cause: err, path });
  }
  const section = doc[kind];
  if (section === undefined) return [];
  const bad = (what: string) => new ExtenderError('EXTEND_CONFIG_INVALID', `parsing extend config ${path}: ${what}`, { path });
  if (!isTable(section)) throw bad(`[${kind}] must be a table`);
  const args = section['args'];
  if (args === undefined) return [];
  if (!Array.isArray(args)) throw bad(`${kind}.args must be an array of tables`);
  return args.map((arg, index) => {
    if (!isTable(arg) || typeof arg['name'] !== 'string' || arg['name'] === '') throw bad(`${kind}.args[${index}] needs a string name`);
    const value = arg['value'] ?? '';
    if (typeof value !== 'string') throw bad(`${kind}.args[${index}].value must be a string`);
    if ((RESERVED_ARGS as readonly string[]).includes(arg['name'])) throw bad(`${kind}.args[${index}] uses the reserved name ${arg['name']}`);
    return { name: arg['name'], value };
  });
}
