/**
 * Base image resolution, in order:
 * 1. the extend dir's `cache/base/<manifest-digest>/` OCI layout written by the
 *    restorer (sparse: manifest + config only; or full);
 * 2. the backend's own resolution, when it offers one (e.g. a daemon's image store);
 * 3. the registry, with the digest reference from analyzed.toml (spec issue #414:
 *    the extender does not depend on the restorer). A tag reference is resolved to
 *    a digest first and that resolution is reported as an event.
 *
 * Whatever the source, the image must be the one asked for: a layout in
 * `cache/base/<digest>/` whose index.json does not list that digest is refused (not
 * read as "its only image"), and the image's os/architecture must be the target
 * analyzed.toml records (`[run-image.target]`).
 */
import { join } from 'node:path';
import {
  OciLayout,
  RegistryClient,
  parseReference,
  type RegistryClientOptions,
  isDigest,
  type Digest,
  type ImageConfig,
  type ImageManifest,
  type Platform,
} from '@cnb-extender/oci';
import type { ExtendKind, ImageDescription, LayerDescription, ResolveBaseRequest } from './backend.ts';
import { ExtenderError, messageOf } from './errors.ts';
import type { EventSink } from './events.ts';

/** The small part of a registry client the resolver needs (libs/oci's `RegistryClient` fits). */
export interface RegistryAccess {
  /** Resolve a reference to one image manifest (through an index for `platform`). */
  resolve(reference: string, platform: Platform | undefined, signal: AbortSignal): Promise<{ digest: Digest; mediaType: string; manifest: ImageManifest }>;
  /** Read a blob fully (configs). */
  blob(reference: string, digest: Digest, signal: AbortSignal): Promise<Uint8Array>;
}

export interface ResolveBaseOptions {
  kind: ExtendKind;
  reference: string;
  extendDir: string;
  /** Wanted platform when the registry reference points at an index. */
  platform?: Platform;
  /**
   * The target analyzed.toml records for the image (`[run-image.target]`): the resolved
   * image's os and architecture (and variant, when both name one) must be these.
   */
  target?: Platform;
  registry?: RegistryAccess;
  /** A backend's own resolution, tried after the extend dir and before the registry. */
  backend?: (request: ResolveBaseRequest) => Promise<ImageDescription | undefined>;
  events: EventSink;
  signal: AbortSignal;
}

/** The digest part of `repo@sha256:…`, if any. */
export function digestOfReference(reference: string): Digest | undefined {
  const at = reference.lastIndexOf('@');
  if (at < 0) return undefined;
  const digest = reference.slice(at + 1);
  return isDigest(digest) ? (digest as Digest) : undefined;
}

export function blobPath(layoutDir: string, digest: string): string {
  const [algorithm, hex] = digest.split(':') as [string, string];
  return join(layoutDir, 'blobs', algorithm, hex);
}

/** Describe an image fetched from a registry (no layer blobs: the core never needs base blobs). */
function describeRemote(manifest: ImageManifest, mediaType: string, manifestDigest: Digest, config: ImageConfig, reference: string): ImageDescription {
  const diffIds = config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== manifest.layers.length) {
    throw new Error(`manifest ${manifestDigest} has ${manifest.layers.length} layers but its config lists ${diffIds.length} diff_ids`);
  }
  const layers: LayerDescription[] = manifest.layers.map((descriptor, index) => ({ descriptor, diffId: diffIds[index]! }));
  const image: ImageDescription = { reference, manifestMediaType: mediaType, config, layers, manifestDigest };
  if (manifest.annotations) image.annotations = manifest.annotations;
  return image;
}

/**
 * Read an image from an OCI layout (libs/oci's reader: digests checked) whose
 * index.json lists `digest`, or its only image. Layers whose blobs are present
 * get file blob sources.
 */
export async function readLayoutImage(layoutDir: string, reference: string, digest?: Digest, platform?: Platform): Promise<{ image: ImageDescription; full: boolean }> {
  const layout = await OciLayout.open(layoutDir);
  const listed = digest !== undefined && layout.index.manifests.some((m) => m.digest === digest);
  const selector = {
    ...(listed ? { digest } : {}),
    ...(platform ? { platform } : {}),
  };
  const read = await layout.image(selector);
  const diffIds = read.config.rootfs?.diff_ids ?? [];
  if (diffIds.length !== read.layers.length) {
    throw new Error(`manifest ${read.descriptor.digest} has ${read.layers.length} layers but its config lists ${diffIds.length} diff_ids`);
  }
  const layers: LayerDescription[] = read.layers.map(({ descriptor, present }, index) => ({
    descriptor,
    diffId: diffIds[index]!,
    ...(present ? { blob: { kind: 'file' as const, path: layout.blobPath(descriptor.digest) } } : {}),
  }));
  const image: ImageDescription = {
    reference,
    manifestMediaType: read.manifest.mediaType ?? read.descriptor.mediaType,
    config: read.config,
    layers,
    manifestDigest: read.descriptor.digest,
  };
  if (read.manifest.annotations) image.annotations = read.manifest.annotations;
  return { image, full: layers.length > 0 && read.layers.every((l) => l.present) };
}

/** `<extendDir>/cache/base/<digest>`; the lifecycle names it `sha256:<hex>`. */
export function baseLayoutDir(extendDir: string, digest: Digest): string {
  return join(extendDir, 'cache', 'base', digest);
}

/**
 * How an image's platform differs from the analyzed target (`{ actual: 'linux/arm64',
 * expected: 'linux/amd64' }`), or undefined when it does not, or when either side does not
 * say. The variant counts only when both name one.
 */
export function platformMismatch(
  config: Pick<ImageConfig, 'os' | 'architecture' | 'variant'>,
  target: Platform | undefined,
): { actual: string; expected: string } | undefined {
  if (!target || !config.os || !config.architecture) return undefined;
  const variants = config.variant !== undefined && target.variant !== undefined;
  if (config.os === target.os && config.architecture === target.architecture && (!variants || config.variant === target.variant)) return undefined;
  const name = (p: { os: string; architecture: string; variant?: string | undefined }) => [p.os, p.architecture, ...(variants && p.variant ? [p.variant] : [])].join('/');
  return { actual: name(config), expected: name(target) };
}

/** The resolved image must be of the target analyzed.toml records for it. */
function checkTarget(image: ImageDescription, options: ResolveBaseOptions, action: string, source: string, path?: string): void {
  const mismatch = platformMismatch(image.config, options.target);
  if (!mismatch) return;
  throw new ExtenderError(
    'BASE_IMAGE',
    `${action}: the image ${source} is ${mismatch.actual}, but analyzed.toml's [${options.kind}-image.target] is ${mismatch.expected}; extend an image of the platform that was analyzed`,
    path ? { path } : {},
  );
}

/** Resolve the image to extend (see module doc for the order). */
export async function resolveBaseImage(options: ResolveBaseOptions): Promise<ImageDescription> {
  const { reference, extendDir, events, kind } = options;
  const digest = digestOfReference(reference);
  const action = `resolving ${kind} image ${reference}`;
  if (digest) {
    const dir = baseLayoutDir(extendDir, digest);
    if (await OciLayout.exists(dir)) {
      let listed: string[];
      try {
        listed = (await OciLayout.open(dir)).index.manifests.map((m) => m.digest);
      } catch (err) {
        throw new ExtenderError('BASE_IMAGE', `${action}: reading layout ${dir}: ${messageOf(err)}`, { cause: err, path: dir });
      }
      if (!listed.includes(digest)) {
        // a layout named after one image that holds another: never extend the wrong image
        throw new ExtenderError('BASE_IMAGE', `${action}: the layout ${dir} does not hold ${digest}: its index.json lists ${listed.length > 0 ? listed.join(', ') : 'no image'}`, { path: dir });
      }
      try {
        const { image, full } = await readLayoutImage(dir, reference, digest, options.platform);
        checkTarget(image, options, action, `in the layout ${dir}`, dir);
        events.emit({ type: 'base-resolved', level: 'info', kind, reference, source: full ? 'layout-full' : 'layout-sparse', manifestDigest: digest, location: dir });
        return image;
      } catch (err) {
        if (err instanceof ExtenderError) throw err;
        throw new ExtenderError('BASE_IMAGE', `${action}: reading layout ${dir}: ${messageOf(err)}`, { cause: err, path: dir });
      }
    }
  }
  if (options.backend) {
    let fromBackend: ImageDescription | undefined;
    try {
      fromBackend = await options.backend({ kind, reference, extendDir });
    } catch (err) {
      if (options.signal.aborted) throw err;
      throw new ExtenderError('BASE_IMAGE', `${action}: through the backend: ${messageOf(err)}`, { cause: err });
    }
    if (fromBackend) {
      checkTarget(fromBackend, options, action, 'the backend found');
      events.emit({ type: 'base-resolved', level: 'info', kind, reference, source: 'backend', ...(fromBackend.manifestDigest ? { manifestDigest: fromBackend.manifestDigest } : {}) });
      return fromBackend;
    }
  }
  if (!options.registry) {
    throw new ExtenderError('BASE_IMAGE', `${action}: no layout in ${join(extendDir, 'cache', 'base')} and no registry access configured`, {
      path: join(extendDir, 'cache', 'base'),
    });
  }
  try {
    const resolved = await options.registry.resolve(reference, options.platform, options.signal);
    if (digest && resolved.digest !== digest) {
      // The reference named an index; the image manifest inside it is what we extend.
      events.emit({ type: 'debug', level: 'debug', message: `${reference} is an index; using manifest ${resolved.digest}` });
    }
    const configBytes = await options.registry.blob(reference, resolved.manifest.config.digest, options.signal);
    const config = JSON.parse(Buffer.from(configBytes).toString('utf8')) as ImageConfig;
    const image = describeRemote(resolved.manifest, resolved.mediaType, resolved.digest, config, reference);
    checkTarget(image, options, action, 'from the registry');
    const event: Parameters<EventSink['emit']>[0] = {
      type: 'base-resolved',
      level: 'info',
      kind,
      reference: digest ? reference : `${repositoryOf(reference)}@${resolved.digest}`,
      source: 'registry',
      manifestDigest: resolved.digest,
      ...(digest ? {} : { resolvedFrom: reference }),
    };
    events.emit(event);
    if (!digest) image.reference = `${repositoryOf(reference)}@${resolved.digest}`;
    return image;
  } catch (err) {
    if (options.signal.aborted || err instanceof ExtenderError) throw err;
    throw new ExtenderError('BASE_IMAGE', `${action}: from the registry: ${messageOf(err)}`, { cause: err });
  }
}

/** `host/repo:tag@digest` → `host/repo`. */
export function repositoryOf(reference: string): string {
  let name = reference;
  const at = name.indexOf('@');
  if (at >= 0) name = name.slice(0, at);
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  if (colon > slash) name = name.slice(0, colon);
  return name;
}

/**
 * Registry access through libs/oci's `RegistryClient` (credentials from
 * CNB_REGISTRY_AUTH / Docker's config, CNB_INSECURE_REGISTRIES, retries).
 */
export function registryAccess(options: RegistryClientOptions | RegistryClient = {}): RegistryAccess {
  const client = options instanceof RegistryClient ? options : new RegistryClient(options);
  return {
    async resolve(reference, platform) {
      const ref = parseReference(reference);
      const resolved = platform ? await client.resolveImage(ref, platform) : await client.resolveImage(ref);
      return { digest: resolved.descriptor.digest, mediaType: resolved.manifest.mediaType ?? resolved.descriptor.mediaType, manifest: resolved.manifest };
    },
    async blob(reference, digest) {
      return client.getBlobBytes(parseReference(reference), digest);
    },
  };
}
