/**
 * Which Dockerfiles apply, with which extend-config and build context, per
 * Platform API:
 *
 * | Platform API | Dockerfile | extend-config | context |
 * |---|---|---|---|
 * | < 0.13 | `<generated>/<kind>/<id>/Dockerfile` | `<generated>/<kind>/<id>/extend-config.toml` | `<app>` |
 * | ≥ 0.13 | `<generated>/<id>/<kind>.Dockerfile` | `<generated>/<id>/extend-config.toml` | `context.<kind>`, else `context`, else `<app>` |
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ApiVersion, PLATFORM_API_FEATURES } from '@cnb-extender/platform';
import type { BuildArg, ExtendKind } from './backend.ts';
import { ExtenderError, messageOf } from './errors.ts';
import type { EventSink } from './events.ts';
import { readExtendConfigArgs, type GroupExtension } from './files.ts';

/** A Dockerfile found for one extension, before the per-apply args are added. */
export interface DiscoveredDockerfile {
  extensionId: string;
  kind: ExtendKind;
  path: string;
  content: string;
  /** Args from extend-config.toml, in file order. */
  configArgs: BuildArg[];
  contextDir: string;
}

export interface DiscoveryInputs {
  kind: ExtendKind;
  platformApi: ApiVersion | string;
  generatedDir: string;
  appDir: string;
  extensions: readonly GroupExtension[];
  events?: EventSink;
}

/** `<id>` as a directory name: `/` becomes `_`. */
export function escapeId(id: string): string {
  return id.replaceAll('/', '_');
}

/** The Dockerfile and extend-config paths for one extension. */
export function pathsFor(kind: ExtendKind, platformApi: ApiVersion | string, generatedDir: string, extensionId: string): { dockerfile: string; config: string; dir: string } {
  const escaped = escapeId(extensionId);
  if (ApiVersion.from(platformApi).atLeast(PLATFORM_API_FEATURES.perExtensionGeneratedLayout)) {
    const dir = join(generatedDir, escaped);
    return { dir, dockerfile: join(dir, `${kind}.Dockerfile`), config: join(dir, 'extend-config.toml') };
  }
  const dir = join(generatedDir, kind, escaped);
  return { dir, dockerfile: join(dir, 'Dockerfile'), config: join(dir, 'extend-config.toml') };
}

/** Whether `path` is a directory (false when it does not exist); another failure is a `code` error about `action`. */
async function isDirectory(path: string, code: 'CONTEXT_UNREADABLE' | 'DOCKERFILE_DIR_MISSING', action: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw new ExtenderError(code, `${action}: ${messageOf(err)}`, { cause: err, path });
  }
}

function isContextDirectory(path: string): Promise<boolean> {
  return isDirectory(path, 'CONTEXT_UNREADABLE', `checking build context ${path}`);
}

/** The build context for one extension (Platform API ≥ 0.13); both kinds of context dir is an error. */
export async function contextDirFor(kind: ExtendKind, generatedDir: string, appDir: string, extensionId: string): Promise<string> {
  const dir = join(generatedDir, escapeId(extensionId));
  const shared = join(dir, 'context');
  const specific = join(dir, `context.${kind}`);
  const hasShared = await isContextDirectory(shared);
  const hasSpecific = await isContextDirectory(specific);
  if (hasShared && (hasSpecific || (await isContextDirectory(join(dir, `context.${kind === 'build' ? 'run' : 'build'}`))))) {
    throw new ExtenderError(
      'CONTEXT_CONFLICT',
      `selecting build context for extension ${extensionId}: ${shared} cannot be used together with context.build or context.run`,
      { path: shared, extensionId },
    );
  }
  if (hasSpecific) return specific;
  if (hasShared) return shared;
  return appDir;
}

/** Check that a context directory can be listed (a backend will read it). */
async function assertReadable(dir: string, extensionId: string): Promise<void> {
  try {
    await readdir(dir);
  } catch (err) {
    throw new ExtenderError('CONTEXT_UNREADABLE', `reading build context ${dir} for extension ${extensionId}: ${messageOf(err)}`, {
      cause: err,
      path: dir,
      extensionId,
    });
  }
}

async function readDockerfile(path: string, extensionId: string): Promise<string | undefined> {
  try {
    const info = await stat(path);
    if (!info.isFile()) return undefined;
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ExtenderError('DOCKERFILE_INVALID', `reading Dockerfile ${path} for extension ${extensionId}: ${messageOf(err)}`, {
      cause: err,
      path,
      extensionId,
    });
  }
}

/**
 * Every Dockerfile to apply for `kind`, in group order. Extensions without one
 * are skipped. A missing `<generated>` directory (with extensions in the group)
 * is an error: the platform did not run the generator or mounted the wrong dir.
 */
export async function discoverDockerfiles(inputs: DiscoveryInputs): Promise<DiscoveredDockerfile[]> {
  const { kind, generatedDir, appDir, extensions } = inputs;
  if (extensions.length === 0) return [];
  if (!(await isDirectory(generatedDir, 'DOCKERFILE_DIR_MISSING', `finding Dockerfiles in ${generatedDir}`))) {
    throw new ExtenderError('DOCKERFILE_DIR_MISSING', `finding ${kind} Dockerfiles: generated directory ${generatedDir} does not exist`, {
      path: generatedDir,
    });
  }
  const perExtension = ApiVersion.from(inputs.platformApi).atLeast(PLATFORM_API_FEATURES.perExtensionGeneratedLayout);
  const out: DiscoveredDockerfile[] = [];
  for (const ext of extensions) {
    const paths = pathsFor(kind, inputs.platformApi, generatedDir, ext.id);
    // `.ignore` files are never applied: we only ever look at the exact names above.
    const content = await readDockerfile(paths.dockerfile, ext.id);
    if (content === undefined) continue;
    const contextDir = perExtension ? await contextDirFor(kind, generatedDir, appDir, ext.id) : appDir;
    await assertReadable(contextDir, ext.id);
    const configArgs = await readExtendConfigArgs(paths.config, kind);
    inputs.events?.emit({ type: 'dockerfile-found', level: 'debug', kind, extensionId: ext.id, path: paths.dockerfile, contextDir });
    out.push({ extensionId: ext.id, kind, path: paths.dockerfile, content, configArgs, contextDir });
  }
  return out;
}

/** `User` split on `:` the lifecycle's way: `"1234:1000"` → 1234/1000, `"cnb"` → cnb/"", `""` → ""/"". */
export function userFrom(user: string | undefined): { userId: string; groupId: string } {
  const value = user ?? '';
  const parts = value.split(':');
  if (parts.length < 2) return { userId: value, groupId: '' };
  return { userId: parts[0]!, groupId: parts[1]! };
}

export function isRootUser(userId: string): boolean {
  return userId === '0' || userId === 'root';
}

/**
 * The build args one Dockerfile receives, in order: `build_id`, `user_id`,
 * `group_id` (from the intermediate image's User), the extend-config args, then
 * `base_image` (the intermediate image's reference).
 */
export function buildArgsFor(configArgs: readonly BuildArg[], intermediateUser: string | undefined, baseImage: string, buildId: string): BuildArg[] {
  const { userId, groupId } = userFrom(intermediateUser);
  return [
    { name: 'build_id', value: buildId },
    { name: 'user_id', value: userId },
    { name: 'group_id', value: groupId },
    ...configArgs,
    { name: 'base_image', value: baseImage },
  ];
}
