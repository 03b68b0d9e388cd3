/**
 * The first stage of the extend phase: from the inputs to a plain plan value (the verified
 * Platform API, the image to extend, every Dockerfile in order, where work goes), with every
 * Dockerfile checked before anything is applied.
 */
import { join } from 'node:path';
import type { Platform } from '@cnb-extender/oci';
import { verifyPlatformApi, type ApiVersion } from '@cnb-extender/platform';
import type { ExtendKind, ExtenderBackend } from './backend.ts';
import { discoverDockerfiles, type DiscoveredDockerfile } from './discovery.ts';
import { ExtenderError, messageOf, wrap } from './errors.ts';
import type { EventSink } from './events.ts';
import type { ExtendInputs } from './extend.ts';
import { readAnalyzed, readGroupExtensions, referenceFor } from './files.ts';
import { checkExtensionDockerfile } from './validate.ts';

/** The extend dir when nothing else is configured (what platforms mount today). */
export const DEFAULT_EXTEND_DIR = '/kaniko';
/** `-kaniko-cache-ttl` default: two weeks. */
export const DEFAULT_CACHE_TTL_MS = 336 * 60 * 60 * 1000;

export interface ExtendPlan {
  kind: ExtendKind;
  platformApi: ApiVersion;
  /** The image to extend, as analyzed.toml names it. */
  reference: string;
  /** Platform wanted when the reference is an index (`inputs.platform`, else analyzed.toml's target). */
  platform?: Platform;
  /** analyzed.toml's `[<kind>-image.target]`, which the base must match. */
  target?: Platform;
  dockerfiles: readonly DiscoveredDockerfile[];
  extendDir: string;
  workRoot: string;
  /** Paths no layer may capture (the platform's mounts, the work area). */
  ignorePaths: string[];
  cacheTtlMs: number;
  /** Run kind: where `run/sha256:<hex>/` is written. */
  extendedDir: string;
}

/** Platform API first, like the lifecycle; its deprecation notices become warnings. */
function verifiedApi(inputs: ExtendInputs, events: EventSink): ApiVersion {
  try {
    const verified = verifyPlatformApi(inputs.platformApi, inputs.deprecationMode ? { deprecationMode: inputs.deprecationMode } : {});
    for (const notice of verified.notices) events.emit({ type: 'warning', level: 'warn', code: 'deprecated-api', message: notice.message });
    return verified.api;
  } catch (err) {
    // Kept as the lifecycle words it (`failed to get platform API version; please set …`).
    if (err instanceof ExtenderError) throw err;
    throw new ExtenderError('PLATFORM_API_UNSUPPORTED', `failed to check platform API: ${messageOf(err)}`, { cause: err });
  }
}

/**
 * Refuses a kind the backend cannot extend. The CLI asks it of the backend's definition before
 * the backend is created; the core asks it of the backend before reading anything.
 */
export function checkBackendKind(kind: ExtendKind, backend: { id: string; kinds: readonly ExtendKind[] }): void {
  if (!backend.kinds.includes(kind)) {
    throw new ExtenderError('BACKEND_UNSUPPORTED', `selecting backend: backend ${backend.id} cannot extend ${kind} images`);
  }
}

/** The plan from the inputs (the Go extender's factory: analyzed.toml, group.toml, the Dockerfiles). */
export async function planExtend(kind: ExtendKind, inputs: ExtendInputs, backend: ExtenderBackend, events: EventSink): Promise<ExtendPlan> {
  const platformApi = verifiedApi(inputs, events);
  checkBackendKind(kind, { id: backend.id, kinds: backend.capabilities.kinds });
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
  const dockerfiles = await discoverDockerfiles({ kind, platformApi, generatedDir: inputs.generatedDir, appDir: inputs.appDir, extensions, events }).catch((err: unknown) => {
    throw wrap(err, `getting ${kind}.Dockerfiles`, 'DOCKERFILE_INVALID');
  });
  const extendDir = inputs.extendDir ?? DEFAULT_EXTEND_DIR;
  const workRoot = inputs.workRoot ?? join(extendDir, 'work');
  const analyzedTarget = (kind === 'build' ? analyzed.buildImage : analyzed.runImage)?.target;
  const target = analyzedTarget ? { ...analyzedTarget } : undefined;
  const platform = inputs.platform ?? target;
  return {
    kind,
    platformApi,
    reference,
    ...(platform ? { platform } : {}),
    ...(target ? { target } : {}),
    dockerfiles,
    extendDir,
    workRoot,
    ignorePaths: [inputs.appDir, inputs.layersDir, inputs.platformDir, '/var/run', workRoot],
    cacheTtlMs: inputs.cacheTtlMs ?? DEFAULT_CACHE_TTL_MS,
    extendedDir: inputs.extendedDir,
  };
}

/**
 * Every Dockerfile is checked before anything is applied: a bad second one must not be found
 * after the first has changed the image (in place: the live root filesystem).
 */
export function checkDockerfiles(plan: ExtendPlan, events: EventSink): void {
  for (const dockerfile of plan.dockerfiles) {
    const validation = checkExtensionDockerfile(dockerfile.content, plan.kind, dockerfile.path);
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
}
