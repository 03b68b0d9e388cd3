/**
 * The extend phase: everything the Go lifecycle's `phase.Extender` does,
 * backend-neutral. `extend()` is what a CLI calls.
 */
import { randomUUID } from 'node:crypto';
import { rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ZERO_TIME, type HistoryEntry, type ImageConfig, type Platform } from '@cnb-extender/oci';
import { LifecycleError, verifyPlatformApi, type ApiVersion, type DeprecationMode, type ExtenderInputs } from '@cnb-extender/platform';
import type { ApplyOptions, BackendContext, DockerfileSpec, ExtendKind, ExtenderBackend, ImageDescription } from './backend.ts';
import { registryAccess, repositoryOf, resolveBaseImage, type RegistryAccess } from './base.ts';
import { buildArgsFor, discoverDockerfiles, isRootUser, userFrom } from './discovery.ts';
import { ExtenderError, messageOf, wrap } from './errors.ts';
import { measure, nullSink, type EventSink } from './events.ts';
import { readAnalyzed, readGroupExtensions, referenceFor, type AnalyzedImage } from './files.ts';
import { orderInstructionEvents } from './instruction-order.ts';
import { serializeImage, writeRunOutput } from './output.ts';
import { dockerfileSteps } from './steps.ts';
import { checkExtensionDockerfile } from './validate.ts';
import { createWorkDir, pruneWorkDirs } from './work-dir.ts';

export const REBASABLE_LABEL = 'io.buildpacks.rebasable';
/** The extend dir when nothing else is configured (what platforms mount today). */
export const DEFAULT_EXTEND_DIR = '/kaniko';
/** `-kaniko-cache-ttl` default: two weeks. */
export const DEFAULT_CACHE_TTL_MS = 336 * 60 * 60 * 1000;

/** Resolved inputs of the extend phase (the CLI maps flags and env to these). */
export interface ExtendInputs {
  /** `CNB_PLATFORM_API` as given. */
  platformApi: string;
  analyzedPath: string;
  groupPath: string;
  generatedDir: string;
  appDir: string;
  layersDir: string;
  platformDir: string;
  /** Run kind: where `run/sha256:<hex>/` is written. */
  extendedDir: string;
  /** `/kaniko` by default (`-extend-dir` / `CNB_EXTEND_DIR`). */
  extendDir?: string;
  /** Layer cache validity (`-kaniko-cache-ttl`), ms. */
  cacheTtlMs?: number;
  /** Where per-run work directories go; default `<extendDir>/work`. */
  workRoot?: string;
  deprecationMode?: DeprecationMode;
  /** Platform wanted when the registry reference is an index; default from analyzed.toml's target. */
  platform?: Platform;
}

/**
 * The core's inputs from libs/platform's resolved extender inputs (flags, env,
 * defaults, `-kaniko-cache-ttl` aliases already applied) and the verified
 * Platform API.
 */
export function extendInputsFrom(platform: ExtenderInputs, platformApi: ApiVersion | string, deprecationMode?: DeprecationMode): ExtendInputs {
  return {
    platformApi: String(platformApi),
    analyzedPath: platform.analyzedPath,
    groupPath: platform.groupPath,
    generatedDir: platform.generatedDir,
    appDir: platform.appDir,
    layersDir: platform.layersDir,
    platformDir: platform.platformDir,
    extendedDir: platform.extendedDir,
    extendDir: platform.extendDir,
    cacheTtlMs: platform.extendCacheTtl,
    ...(deprecationMode ? { deprecationMode } : {}),
  };
}

export interface ExtendOptions {
  kind: ExtendKind;
  inputs: ExtendInputs;
  backend: ExtenderBackend;
  events?: EventSink;
  signal?: AbortSignal;
  /**
   * Registry access for base resolution without a layout. Default: libs/oci's
   * RegistryClient with its default keychain and `CNB_INSECURE_REGISTRIES`.
   */
  registry?: RegistryAccess;
  /**
   * Run kind: `layout` (default) writes `<extended>/run/sha256:<hex>/`; `none` writes nothing,
   * for a caller that publishes `result.image` itself (the run-image reference mode), whose
   * new layers' blobs must then outlive the work directory (a backend `layerDir`).
   */
  runOutput?: 'layout' | 'none';
}

export interface ExtendResult {
  kind: ExtendKind;
  /** The extended image (run kind: with the zeroed `created` and the rebasable label). */
  image: ImageDescription;
  rebasable: boolean;
  /** Run kind: the written layout. */
  outputDir?: string;
  /** Extended `Env` as `KEY=value` strings (build kind hands these to the build phase). */
  env: string[];
  /** `Env` as a map, split on the first `=` (values may contain `=`). */
  envMap: Record<string, string>;
  /** Extended `User`. */
  user: string;
  /** Work directory used (already removed). */
  workDir: string;
}

/** `KEY=value` → map, split on the first `=` (the Go extender fails on values with `=`; we do not). */
export function envToMap(env: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of env) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue;
    out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return out;
}

/** Go's `strconv.ParseBool` truth values. */
function parseBool(value: string | undefined): boolean {
  return value !== undefined && ['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value);
}

/** History with entries for empty layers removed and padded to `layerCount` (imgutil's NormalizedHistory). */
export function normalizedHistory(history: readonly HistoryEntry[] | undefined, layerCount: number): HistoryEntry[] {
  if (!history) return Array.from({ length: layerCount }, () => ({}));
  const kept = history.filter((h) => !h.empty_layer);
  while (kept.length < layerCount) kept.push({});
  return kept;
}

/** The history line for one layer added by an extension. */
export function extensionLayerHistory(createdBy: string | undefined, extensionId: string): string {
  return `Layer: '${createdBy ?? ''}', Created by extension: ${extensionId}`;
}

function abortError(signal: AbortSignal, action: string): ExtenderError {
  const reason: unknown = signal.reason;
  return new ExtenderError('ABORTED', `${action}: cancelled${reason instanceof Error ? `: ${reason.message}` : ''}`, { cause: reason });
}

function cloneConfig(config: ImageConfig): ImageConfig {
  return structuredClone(config);
}

/**
 * Extend the build or run image. Throws `ExtenderError` (see `exitCode`).
 */
export async function extend(options: ExtendOptions): Promise<ExtendResult> {
  const { kind, inputs, backend } = options;
  const events = options.events ?? nullSink;
  const signal = options.signal ?? new AbortController().signal;
  const top = `failed to extend ${kind} image`;
  try {
    return await measure(events, 'extend', () => run(kind, inputs, backend, events, signal, options.registry, options.runOutput ?? 'layout'));
  } catch (err) {
    if (signal.aborted) throw abortError(signal, top);
    if (err instanceof ExtenderError && err.code === 'PLATFORM_API_UNSUPPORTED') throw err;
    if (err instanceof ExtenderError) {
      throw new ExtenderError(err.code, `${top}: ${err.message}`, {
        cause: err,
        ...(err.path ? { path: err.path } : {}),
        ...(err.instruction ? { instruction: err.instruction } : {}),
        ...(err.extensionId ? { extensionId: err.extensionId } : {}),
      });
    }
    throw new ExtenderError('APPLY_FAILED', `${top}: ${messageOf(err)}`, { cause: err });
  }
}

async function run(
  kind: ExtendKind,
  inputs: ExtendInputs,
  backend: ExtenderBackend,
  events: EventSink,
  signal: AbortSignal,
  registry: RegistryAccess | undefined,
  runOutput: 'layout' | 'none',
): Promise<ExtendResult> {
  // Platform API first, like the lifecycle.
  let platformApi;
  try {
    const verified = verifyPlatformApi(inputs.platformApi, inputs.deprecationMode ? { deprecationMode: inputs.deprecationMode } : {});
    platformApi = verified.api;
    for (const notice of verified.notices) events.emit({ type: 'warning', level: 'warn', code: 'deprecated-api', message: notice.message });
  } catch (err) {
    // Kept as the lifecycle words it (`failed to get platform API version; please set …`).
    throw new ExtenderError('PLATFORM_API_UNSUPPORTED', err instanceof LifecycleError ? err.message : `failed to check platform API: ${messageOf(err)}`, { cause: err });
  }
  if (!backend.capabilities.kinds.includes(kind)) {
    throw new ExtenderError('BACKEND_UNSUPPORTED', `selecting backend: backend ${backend.id} cannot extend ${kind} images`);
  }

  // Inputs (the Go extender's factory): analyzed.toml, group.toml.
  const analyzed = await readAnalyzed(inputs.analyzedPath).catch((err: unknown) => {
    throw wrap(err, 'initializing extender', 'ANALYZED_INVALID', { path: inputs.analyzedPath });
  });
  const reference = referenceFor(kind, analyzed, inputs.analyzedPath);
  const extensions = await readGroupExtensions(inputs.groupPath, {
    events,
    ...(inputs.deprecationMode ? { deprecationMode: inputs.deprecationMode } : {}),
  }).catch((err: unknown) => {
    throw wrap(err, 'initializing extender', 'GROUP_INVALID', { path: inputs.groupPath });
  });
  const dockerfiles = await discoverDockerfiles({
    kind,
    platformApi,
    generatedDir: inputs.generatedDir,
    appDir: inputs.appDir,
    extensions,
    events,
  }).catch((err: unknown) => {
    throw wrap(err, `getting ${kind}.Dockerfiles`, 'DOCKERFILE_INVALID');
  });

  const extendDir = inputs.extendDir ?? DEFAULT_EXTEND_DIR;
  const workRoot = inputs.workRoot ?? join(extendDir, 'work');
  // Work directories of runs that were killed (SIGKILL, OOM) could not remove themselves.
  for (const dir of await pruneWorkDirs(workRoot, {
    onError: (dir, err) => events.emit({ type: 'warning', level: 'warn', code: 'cleanup-failed', message: `removing the work directory ${dir} of a run that is gone: ${messageOf(err)}` }),
  })) {
    events.emit({ type: 'debug', level: 'debug', message: `Removed the work directory ${dir} of a run that is gone` });
  }
  let workDir: string;
  try {
    workDir = await createWorkDir(workRoot, kind);
  } catch (err) {
    throw new ExtenderError('INVALID_INPUT', `creating a work directory in ${workRoot}: ${messageOf(err)}`, { cause: err, path: workRoot });
  }
  const context: BackendContext = { signal, events, workDir };
  events.emit({ type: 'extend-started', level: 'info', kind, backend: backend.id, reference });

  let result: Omit<ExtendResult, 'workDir'>;
  try {
    result = await extendWith(kind, reference, dockerfiles, inputs, extendDir, backend, context, registry, kind === 'build' ? analyzed.buildImage : analyzed.runImage, runOutput);
  } catch (err) {
    await cleanUp(backend, context, workRoot).catch((cleanupErr: unknown) => {
      events.emit({ type: 'warning', level: 'warn', code: 'cleanup-failed', message: messageOf(cleanupErr) });
    });
    throw err;
  }
  // Like the lifecycle, a failing cleanup fails an otherwise successful run.
  await cleanUp(backend, context, workRoot);
  return { ...result, workDir };
}

/** The backend's cleanup, then the work directory (always removed, even when the backend fails). */
async function cleanUp(backend: ExtenderBackend, context: BackendContext, workRoot: string): Promise<void> {
  let failure: unknown;
  try {
    await backend.cleanup({ ...context, signal: new AbortController().signal });
  } catch (err) {
    failure = err;
  }
  await rm(context.workDir, { recursive: true, force: true });
  await rmdir(workRoot).catch(() => undefined); // only when empty (another process may share it)
  if (failure !== undefined) throw new ExtenderError('CLEANUP_FAILED', `cleaning up backend ${backend.id}: ${messageOf(failure)}`, { cause: failure });
}

async function extendWith(
  kind: ExtendKind,
  reference: string,
  dockerfiles: Awaited<ReturnType<typeof discoverDockerfiles>>,
  inputs: ExtendInputs,
  extendDir: string,
  backend: ExtenderBackend,
  context: BackendContext,
  registry: RegistryAccess | undefined,
  analyzedImage: AnalyzedImage | undefined,
  runOutput: 'layout' | 'none',
): Promise<Omit<ExtendResult, 'workDir'>> {
  const { events, signal } = context;
  // Every Dockerfile is checked before anything is applied: a bad second one must not
  // be found after the first has changed the image (in place: the live root filesystem).
  for (const dockerfile of dockerfiles) {
    const validation = checkExtensionDockerfile(dockerfile.content, kind, dockerfile.path);
    for (const warning of validation.warnings) {
      events.emit({ type: 'warning', level: 'warn', code: 'dockerfile-rule', message: `${dockerfile.path}: ${warning}`, extensionId: dockerfile.extensionId });
    }
    if (validation.errors.length > 0) {
      throw new ExtenderError('DOCKERFILE_INVALID', `applying Dockerfile for ${dockerfile.extensionId}: ${dockerfile.path}: ${validation.errors.join('; ')}`, {
        path: dockerfile.path,
        extensionId: dockerfile.extensionId,
      });
    }
  }
  const target = platformFromAnalyzed(analyzedImage);
  const platform = inputs.platform ?? target;
  const base = await measure(events, 'resolve-base', async () => {
    return resolveBaseImage({
      kind,
      reference,
      extendDir,
      events,
      signal,
      registry: registry ?? registryAccess({ signal }),
      ...(platform ? { platform } : {}),
      ...(target ? { target } : {}),
      ...(backend.resolveBase ? { backend: (request) => backend.resolveBase!(request, context) } : {}),
    });
  }).catch((err: unknown) => {
    throw wrap(err, `getting ${kind} image to extend`, 'BASE_IMAGE');
  });

  const baseLayerCount = base.layers.length;
  let current: ImageDescription = { ...base, config: cloneConfig(base.config) };
  let workingHistory = normalizedHistory(current.config.history, current.config.rootfs.diff_ids.length);
  current.config.history = workingHistory;
  let rebasable = true; // the original base need not be rebasable
  let { userId } = userFrom(current.config.config?.User);
  const originalUserId = userId;
  const ignorePaths = [inputs.appDir, inputs.layersDir, inputs.platformDir, '/var/run', inputs.workRoot ?? join(extendDir, 'work')];

  for (const [position, dockerfile] of dockerfiles.entries()) {
    signal.throwIfAborted();
    const action = `applying Dockerfile for ${dockerfile.extensionId}`;
    // The first Dockerfile extends the analyzed reference; later ones an intermediate image
    // that exists nowhere else, named by the digest of its manifest.
    const intermediateRef = position === 0 ? (base.reference ?? reference) : `${repositoryOf(reference)}@${serializeImage(current).manifestDigest}`;
    const spec: DockerfileSpec = {
      extensionId: dockerfile.extensionId,
      kind,
      path: dockerfile.path,
      content: dockerfile.content,
      args: buildArgsFor(dockerfile.configArgs, current.config.config?.User, intermediateRef, randomUUID()),
      contextDir: dockerfile.contextDir,
    };
    const applyOptions: ApplyOptions = {
      buildContext: dockerfile.contextDir,
      ignorePaths,
      cacheTtlMs: inputs.cacheTtlMs ?? DEFAULT_CACHE_TTL_MS,
      extendDir,
    };
    events.emit({ type: 'extension-started', level: 'info', kind, extensionId: dockerfile.extensionId, path: dockerfile.path });
    // the backend's instruction events, by position, in the order every backend gives them
    const ordered = orderInstructionEvents(events, dockerfile.extensionId, dockerfileSteps(dockerfile.content));
    let result: ImageDescription;
    try {
      result = await measure(events, `apply:${dockerfile.extensionId}`, async () => {
        const applied = await backend.apply(spec, current, applyOptions, { ...context, events: ordered });
        ordered.complete();
        return applied;
      });
    } catch (err) {
      if (signal.aborted) throw abortError(signal, action);
      const instruction = (err as { instruction?: unknown }).instruction;
      const where = typeof instruction === 'string' ? `${action}: ${instruction}` : action;
      // The instruction is named once, also when a backend's message starts with it.
      let detail = messageOf(err);
      if (typeof instruction === 'string' && instruction !== '' && detail.startsWith(`${instruction}: `)) detail = detail.slice(instruction.length + 2);
      if (typeof instruction === 'string') {
        const index = (err as { index?: unknown }).index;
        ordered.fail({ instruction, message: detail, ...(typeof index === 'number' ? { index } : {}) });
      }
      throw new ExtenderError('APPLY_FAILED', `${where}: ${detail}`, {
        cause: err,
        path: dockerfile.path,
        extensionId: dockerfile.extensionId,
        ...(typeof instruction === 'string' ? { instruction } : {}),
      });
    }
    checkResult(result, current, action, dockerfile.extensionId);
    const config = cloneConfig(result.config);
    config.config ??= {};

    // rebasable: AND over every applied Dockerfile's resulting label.
    rebasable = rebasable && parseBool(config.config.Labels?.[REBASABLE_LABEL]);
    config.config.Labels = { ...config.config.Labels, [REBASABLE_LABEL]: String(rebasable) };

    // history: keep what we had, one entry per new layer naming the extension.
    const resultHistory = normalizedHistory(config.history, config.rootfs.diff_ids.length);
    const nextHistory = [...workingHistory];
    for (let i = workingHistory.length; i < resultHistory.length; i++) {
      nextHistory.push({ created_by: extensionLayerHistory(resultHistory[i]!.created_by, dockerfile.extensionId) });
    }
    workingHistory = nextHistory;
    config.history = workingHistory;

    const previousUserId = userId;
    userId = userFrom(config.config.User).userId;
    if (isRootUser(userId)) {
      events.emit({
        type: 'warning',
        level: 'warn',
        code: 'user-root',
        extensionId: dockerfile.extensionId,
        message: `Extension from ${dockerfile.path} changed the user ID from ${previousUserId} to ${userId}; this must not be the final user ID (a following extension must reset the user).`,
      });
    }
    const newLayers = result.layers.length - current.layers.length;
    current = { ...result, config };
    events.emit({ type: 'extension-finished', level: 'info', kind, extensionId: dockerfile.extensionId, newLayers });
  }

  if (isRootUser(userId) && kind === 'run') {
    throw new ExtenderError('ROOT_USER', 'extending run image: the final user ID is 0 (root); please add another extension that resets the user to non-root');
  }
  if (userId !== originalUserId) {
    events.emit({
      type: 'warning',
      level: 'warn',
      code: 'user-changed',
      message: `The original user ID was ${originalUserId} but the final extension left the user ID set to ${userId}.`,
    });
  }

  let outputDir: string | undefined;
  if (kind === 'run') {
    current.config.created = ZERO_TIME;
    current.config.config ??= {};
    current.config.config.Labels = { ...current.config.config.Labels, [REBASABLE_LABEL]: String(rebasable) };
    signal.throwIfAborted();
  }
  if (kind === 'run' && runOutput === 'none') {
    current.manifestDigest = serializeImage(current).manifestDigest;
  } else if (kind === 'run') {
    const written = await measure(events, 'write-output', () =>
      writeRunOutput({ extendedDir: inputs.extendedDir, image: current, baseLayerCount, signal }),
    ).catch((err: unknown) => {
      if (signal.aborted) throw abortError(signal, 'copying extended image to output directory');
      throw wrap(err, `copying extended image to output directory ${join(inputs.extendedDir, 'run')}`, 'OUTPUT_FAILED', { path: inputs.extendedDir });
    });
    outputDir = written.dir;
    current.manifestDigest = written.manifestDigest;
  }
  const env = current.config.config?.Env ?? [];
  events.emit({ type: 'extend-finished', level: 'info', kind, rebasable, ...(outputDir ? { output: outputDir } : {}) });
  return {
    kind,
    image: current,
    rebasable,
    ...(outputDir ? { outputDir } : {}),
    env: [...env],
    envMap: envToMap(env),
    user: current.config.config?.User ?? '',
  };
}

function platformFromAnalyzed(image: AnalyzedImage | undefined): Platform | undefined {
  return image?.target ? { ...image.target } : undefined;
}

/** A backend result must keep the base's layers and describe every layer. */
function checkResult(result: ImageDescription, base: ImageDescription, action: string, extensionId: string): void {
  const fail = (what: string) => new ExtenderError('APPLY_FAILED', `${action}: backend returned an inconsistent image: ${what}`, { extensionId });
  if (result.layers.length < base.layers.length) throw fail(`it has ${result.layers.length} layers, fewer than the base's ${base.layers.length}`);
  for (const [i, layer] of base.layers.entries()) {
    const got = result.layers[i]!;
    if (got.diffId !== layer.diffId || got.descriptor.digest !== layer.descriptor.digest) throw fail(`base layer ${i} changed from ${layer.descriptor.digest} to ${got.descriptor.digest}`);
  }
  if (result.config.rootfs.diff_ids.length !== result.layers.length) {
    throw fail(`config lists ${result.config.rootfs.diff_ids.length} diff_ids for ${result.layers.length} layers`);
  }
  for (const [i, layer] of result.layers.entries()) {
    if (result.config.rootfs.diff_ids[i] !== layer.diffId) throw fail(`diff_id ${i} is ${result.config.rootfs.diff_ids[i]} but layer ${i} says ${layer.diffId}`);
    if (i >= base.layers.length && !layer.blob) throw fail(`new layer ${layer.descriptor.digest} has no blob`);
  }
}
