/**
 * The inputs the extender reads from disk (analyzed.toml, group.toml,
 * extend-config.toml), through libs/platform's readers, with errors turned into
 * ExtenderErrors that name the file.
 */
import {
  TomlFileError,
  extendArgsFor,
  ifExists,
  readAnalyzed as readAnalyzedFile,
  readExtendConfig,
  readGroup,
  verifyBuildpackApi,
  moduleName,
  BUILDPACK_APIS,
  type DeprecationMode,
} from '@cnb-extender/platform';
import type { BuildArg, ExtendKind } from './backend.ts';
import { ExtenderError, messageOf, type ErrorCode } from './errors.ts';
import type { EventSink } from './events.ts';

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
}

export interface GroupExtension {
  id: string;
  version: string;
  api: string;
}

/** A TomlFileError (or anything else) as an ExtenderError naming `path`. */
function fileError(err: unknown, code: ErrorCode, path: string, what: string): ExtenderError {
  if (err instanceof TomlFileError) {
    // The platform reader's message already reads `reading <what> <path>: …`.
    const message = err.notFound ? `reading ${what} ${path}: file does not exist` : err.message.replace(/^reading/, 'parsing');
    return new ExtenderError(code, message, { cause: err, path });
  }
  return new ExtenderError(code, `reading ${what} ${path}: ${messageOf(err)}`, { cause: err, path });
}

/** Read analyzed.toml. */
export async function readAnalyzed(path: string): Promise<Analyzed> {
  let file;
  try {
    file = await readAnalyzedFile(path);
  } catch (err) {
    throw fileError(err, 'ANALYZED_INVALID', path, 'analyzed file');
  }
  const out: Analyzed = {};
  if (file.buildImage) out.buildImage = { reference: file.buildImage.reference, ...(file.buildImage.extend === undefined ? {} : { extend: file.buildImage.extend }) };
  if (file.runImage) {
    const run: AnalyzedImage = { reference: file.runImage.reference };
    if (file.runImage.image !== undefined) run.image = file.runImage.image;
    if (file.runImage.extend !== undefined) run.extend = file.runImage.extend;
    const target = file.runImage.target;
    if (target?.os && target.arch) run.target = { os: target.os, architecture: target.arch, ...(target.archVariant ? { variant: target.archVariant } : {}) };
    out.runImage = run;
  }
  return out;
}

/** The reference a kind extends: `build-image.reference` or `run-image.reference`. */
export function referenceFor(kind: ExtendKind, analyzed: Analyzed, path: string): string {
  const section = kind === 'build' ? analyzed.buildImage : analyzed.runImage;
  const reference = section?.reference ?? '';
  if (reference === '') {
    throw new ExtenderError('ANALYZED_INVALID', `reading analyzed file ${path}: no ${kind}-image.reference to extend`, { path });
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
  let group;
  try {
    group = await readGroup(path);
  } catch (err) {
    throw fileError(err, 'GROUP_INVALID', path, 'group file');
  }
  const out: GroupExtension[] = [];
  for (const element of group.groupExtensions) {
    const api = element.api ?? '';
    try {
      const verified = verifyBuildpackApi('Extension', moduleName(element), api, {
        apis: BUILDPACK_APIS,
        ...(options.deprecationMode ? { deprecationMode: options.deprecationMode } : {}),
      });
      for (const notice of verified.notices) options.events?.emit({ type: 'warning', level: 'warn', code: 'deprecated-api', message: notice.message, extensionId: element.id });
    } catch (err) {
      throw new ExtenderError('EXTENSION_API_UNSUPPORTED', `reading group file ${path}: ${messageOf(err)}`, { cause: err, path, extensionId: element.id });
    }
    out.push({ id: element.id, version: element.version, api });
  }
  return out;
}

/**
 * Read the args of one kind from an extend-config.toml. A missing file means no
 * args. Reserved names are an error.
 */
export async function readExtendConfigArgs(path: string, kind: ExtendKind): Promise<BuildArg[]> {
  try {
    const config = await ifExists(readExtendConfig(path));
    return config ? extendArgsFor(config, kind) : [];
  } catch (err) {
    throw fileError(err, 'EXTEND_CONFIG_INVALID', path, 'extend config');
  }
}
