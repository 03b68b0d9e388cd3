/**
 * The extend phase: everything the Go lifecycle's `phase.Extender` does,
 * backend-neutral. `extend()` is what a CLI calls: prepare (a plan from the inputs) →
 * resolve the base → check every Dockerfile → apply each → finish (the output), around a
 * work directory that is always removed.
 */
import { rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ZERO_TIME, type Platform } from '@cnb-extender/oci';
import type { ApiVersion, DeprecationMode, ExtenderInputs } from '@cnb-extender/platform';
import { abortError, applyExtension } from './apply-extension.ts';
import type { BackendContext, ExtendKind, ExtenderBackend, ImageDescription } from './backend.ts';
import { registryAccess, resolveBaseImage, type RegistryAccess } from './base.ts';
import { isRootUser } from './discovery.ts';
import { ExtenderError, messageOf, wrap } from './errors.ts';
import { measure, nullSink, type EventSink } from './events.ts';
import { checkDockerfiles, planExtend, type ExtendPlan } from './extend-plan.ts';
import { envToMap, recordExtension, REBASABLE_LABEL, startRecord, type ExtensionRecord } from './extension-record.ts';
import { serializeImage, writeRunOutput } from './output.ts';
import { createWorkDir, pruneWorkDirs } from './work-dir.ts';

export { DEFAULT_CACHE_TTL_MS, DEFAULT_EXTEND_DIR } from './extend-plan.ts';
export { envToMap, extensionLayerHistory, normalizedHistory, REBASABLE_LABEL } from './extension-record.ts';

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

/**
 * Extend the build or run image. Throws `ExtenderError` (see its `code`).
 */
export async function extend(options: ExtendOptions): Promise<ExtendResult> {
  const { kind } = options;
  const events = options.events ?? nullSink;
  const signal = options.signal ?? new AbortController().signal;
  const top = `failed to extend ${kind} image`;
  try {
    return await measure(events, 'extend', () => run(options, events, signal));
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

async function run(options: ExtendOptions, events: EventSink, signal: AbortSignal): Promise<ExtendResult> {
  const { kind, inputs, backend } = options;
  const plan = await planExtend(kind, inputs, backend, events);
  const workDir = await prepareWorkDir(plan.workRoot, kind, events);
  const context: BackendContext = { signal, events, workDir };
  events.emit({ type: 'extend-started', level: 'info', kind, backend: backend.id, reference: plan.reference });

  let result: Omit<ExtendResult, 'workDir'>;
  try {
    checkDockerfiles(plan, events);
    const base = await resolveBase(plan, backend, context, options.registry);
    const record = await applyEach(plan, base, backend, context);
    result = await finish(plan, record, base.layers.length, options.runOutput ?? 'layout', context);
  } catch (err) {
    await cleanUp(backend, context, plan.workRoot).catch((cleanupErr: unknown) => {
      events.emit({ type: 'warning', level: 'warn', code: 'cleanup-failed', message: messageOf(cleanupErr) });
    });
    throw err;
  }
  // Like the lifecycle, a failing cleanup fails an otherwise successful run.
  await cleanUp(backend, context, plan.workRoot);
  return { ...result, workDir };
}

/** A work directory of this run, after removing those of runs that were killed (SIGKILL, OOM) and could not remove theirs. */
async function prepareWorkDir(workRoot: string, kind: ExtendKind, events: EventSink): Promise<string> {
  for (const dir of await pruneWorkDirs(workRoot, {
    onError: (dir, err) => events.emit({ type: 'warning', level: 'warn', code: 'cleanup-failed', message: `removing the work directory ${dir} of a run that is gone: ${messageOf(err)}` }),
  })) {
    events.emit({ type: 'debug', level: 'debug', message: `Removed the work directory ${dir} of a run that is gone` });
  }
  try {
    return await createWorkDir(workRoot, kind);
  } catch (err) {
    throw new ExtenderError('INVALID_INPUT', `creating a work directory in ${workRoot}: ${messageOf(err)}`, { cause: err, path: workRoot });
  }
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

async function resolveBase(plan: ExtendPlan, backend: ExtenderBackend, context: BackendContext, registry: RegistryAccess | undefined): Promise<ImageDescription> {
  const { events, signal } = context;
  return measure(events, 'resolve-base', () =>
    resolveBaseImage({
      kind: plan.kind,
      reference: plan.reference,
      extendDir: plan.extendDir,
      events,
      signal,
      registry: registry ?? registryAccess({ signal }),
      ...(plan.platform ? { platform: plan.platform } : {}),
      ...(plan.target ? { target: plan.target } : {}),
      ...(backend.resolveBase ? { backend: (request) => backend.resolveBase!(request, context) } : {}),
    }),
  ).catch((err: unknown) => {
    throw wrap(err, `getting ${plan.kind} image to extend`, 'BASE_IMAGE');
  });
}

/** Each Dockerfile in order, each on the image the ones before it left. */
async function applyEach(plan: ExtendPlan, base: ImageDescription, backend: ExtenderBackend, context: BackendContext): Promise<ExtensionRecord> {
  const { events, signal } = context;
  let record = startRecord(base);
  const originalUserId = record.userId;
  for (const [position, dockerfile] of plan.dockerfiles.entries()) {
    signal.throwIfAborted();
    events.emit({ type: 'extension-started', level: 'info', kind: plan.kind, extensionId: dockerfile.extensionId, path: dockerfile.path });
    const result = await applyExtension(plan, { dockerfile, position, current: record.image, baseReference: base.reference }, backend, context);
    const recorded = recordExtension(record, result, dockerfile.extensionId, dockerfile.path);
    for (const warning of recorded.warnings) events.emit(warning);
    record = recorded.record;
    events.emit({ type: 'extension-finished', level: 'info', kind: plan.kind, extensionId: dockerfile.extensionId, newLayers: recorded.newLayers });
  }
  if (isRootUser(record.userId) && plan.kind === 'run') {
    throw new ExtenderError('ROOT_USER', 'extending run image: the final user ID is 0 (root); please add another extension that resets the user to non-root');
  }
  if (record.userId !== originalUserId) {
    events.emit({
      type: 'warning',
      level: 'warn',
      code: 'user-changed',
      message: `The original user ID was ${originalUserId} but the final extension left the user ID set to ${record.userId}.`,
    });
  }
  return record;
}

/** The result; run kind: the zeroed `created`, the rebasable label, and the layout unless the caller publishes it. */
async function finish(plan: ExtendPlan, record: ExtensionRecord, baseLayerCount: number, runOutput: 'layout' | 'none', context: BackendContext): Promise<Omit<ExtendResult, 'workDir'>> {
  const { events, signal } = context;
  const { kind } = plan;
  const { image, rebasable } = record;
  let outputDir: string | undefined;
  if (kind === 'run') {
    image.config.created = ZERO_TIME;
    image.config.config ??= {};
    image.config.config.Labels = { ...image.config.config.Labels, [REBASABLE_LABEL]: String(rebasable) };
    signal.throwIfAborted();
  }
  if (kind === 'run' && runOutput === 'none') {
    image.manifestDigest = serializeImage(image).manifestDigest;
  } else if (kind === 'run') {
    const written = await measure(events, 'write-output', () => writeRunOutput({ extendedDir: plan.extendedDir, image, baseLayerCount, signal })).catch((err: unknown) => {
      if (signal.aborted) throw abortError(signal, 'copying extended image to output directory');
      throw wrap(err, `copying extended image to output directory ${join(plan.extendedDir, 'run')}`, 'OUTPUT_FAILED', { path: plan.extendedDir });
    });
    outputDir = written.dir;
    image.manifestDigest = written.manifestDigest;
  }
  const env = image.config.config?.Env ?? [];
  events.emit({ type: 'extend-finished', level: 'info', kind, rebasable, ...(outputDir ? { output: outputDir } : {}) });
  return { kind, image, rebasable, ...(outputDir ? { outputDir } : {}), env: [...env], envMap: envToMap(env), user: image.config.config?.User ?? '' };
}
