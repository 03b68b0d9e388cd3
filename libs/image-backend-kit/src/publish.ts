/**
 * Build kind for image-producing backends: they cannot change the running
 * container, so the extended build image is published instead — pushed to a
 * registry or written as an OCI layout — and its digest reference is recorded in
 * analyzed.toml under `[build-image]` (unknown keys kept). The platform then runs
 * the `builder` phase in that image (the path buildpacks/rfcs#331 anticipates).
 */
import { mkdir } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { openBlob, serializeImage, type ImageDescription } from '@cnb-extender/extender-core';
import {
  OciLayoutWriter,
  RegistryClient,
  formatReference,
  parseReference,
  pushImage,
  type Descriptor,
  type Digest,
} from '@cnb-extender/oci';
import { updateAnalyzed } from '@cnb-extender/platform';
import { ImageBackendError, messageOf } from './errors.ts';

export type BuildImageTarget = { kind: 'registry'; reference: string } | { kind: 'layout'; dir: string; refName?: string };

export interface PublishBuildImageOptions {
  /** `extend()`'s result image for kind build (new layers' blobs must still be readable). */
  image: ImageDescription;
  target: BuildImageTarget;
  /** analyzed.toml to record `[build-image] reference` in; omitted: nothing is recorded. */
  analyzedPath?: string;
  /** Where blob-less base layers come from (default `image.reference`, the analyzed build image). */
  baseReference?: string;
  /** Registry client (default: the lifecycle's credential sources, CNB_INSECURE_REGISTRIES). */
  registry?: RegistryClient;
  signal?: AbortSignal;
}

export interface PublishedBuildImage {
  /** Digest reference (registry) or `<dir>@sha256:…` (layout). */
  reference: string;
  manifestDigest: Digest;
  target: BuildImageTarget;
  /** What the platform must do next, for the CLI to print. */
  message: string;
}

type Serialized = ReturnType<typeof serializeImage>;

/** A source of the image's layers: new ones from their blobs, base ones from the base image's registry. */
function layerOpener(image: ImageDescription, baseReference: string | undefined, getClient: () => RegistryClient): (descriptor: Descriptor) => Promise<ReadableStream<Uint8Array>> {
  return async (descriptor) => {
    const layer = image.layers.find((l) => l.descriptor.digest === descriptor.digest);
    if (layer?.blob) return Readable.toWeb(await openBlob(layer.blob)) as ReadableStream<Uint8Array>;
    if (!baseReference) throw new ImageBackendError(`layer ${descriptor.digest} has no blob and there is no base reference to fetch it from`);
    return getClient().getBlob(parseReference(baseReference), descriptor);
  };
}

/** Push the serialized image to `target` (base layers mounted from the base's repository on the same registry); its digest reference. */
async function pushToRegistry(
  target: string,
  serialized: Serialized,
  client: RegistryClient,
  openLayer: (descriptor: Descriptor) => Promise<ReadableStream<Uint8Array>>,
  baseReference: string | undefined,
): Promise<string> {
  const ref = parseReference(target);
  const base = baseReference ? parseReference(baseReference) : undefined;
  const result = await pushImage(client, ref, {
    manifest: { bytes: serialized.manifestBytes, mediaType: serialized.manifestMediaType },
    source: {
      open: (descriptor) => (descriptor.digest === serialized.manifest.config.digest ? serialized.configBytes : openLayer(descriptor)),
    },
    ...(base && base.registry === ref.registry && base.repository !== ref.repository ? { mountFrom: [base.repository] } : {}),
  });
  return formatReference({ registry: ref.registry, repository: ref.repository, digest: result.descriptor.digest });
}

/** Push or write the extended build image and record it (see module doc). */
export async function publishBuildImage(options: PublishBuildImageOptions): Promise<PublishedBuildImage> {
  const { image, target } = options;
  const serialized = serializeImage(image);
  const baseReference = options.baseReference ?? image.reference;
  let client = options.registry;
  const ownClient = client === undefined;
  const where = target.kind === 'registry' ? target.reference : target.dir;
  const getClient = () => (client ??= new RegistryClient(options.signal ? { signal: options.signal } : {}));
  const openLayer = layerOpener(image, baseReference, getClient);
  let reference: string;
  try {
    if (target.kind === 'registry') {
      reference = await pushToRegistry(target.reference, serialized, getClient(), openLayer, baseReference);
    } else {
      await mkdir(target.dir, { recursive: true });
      const writer = await OciLayoutWriter.create(target.dir, { keepExisting: true });
      try {
        for (const layer of image.layers) {
          options.signal?.throwIfAborted();
          if (await writer.hasBlob(layer.descriptor.digest)) continue;
          const stream = Readable.fromWeb((await openLayer(layer.descriptor)) as import('node:stream/web').ReadableStream<Uint8Array>);
          await writer.putBlob(stream, layer.descriptor.mediaType, layer.descriptor);
        }
        await writer.putBlob(Readable.from([serialized.configBytes]), serialized.manifest.config.mediaType, serialized.manifest.config);
        const manifest = { mediaType: serialized.manifestMediaType, digest: serialized.manifestDigest, size: serialized.manifestBytes.length };
        await writer.putBlob(Readable.from([serialized.manifestBytes]), manifest.mediaType, manifest);
        writer.addManifest(manifest, target.refName ?? 'latest');
        await writer.commit();
      } catch (err) {
        await writer.abort().catch(() => undefined);
        throw err;
      }
      reference = `${target.dir}@${serialized.manifestDigest}`;
    }
  } catch (err) {
    throw new ImageBackendError(`publishing the extended build image to ${where}: ${messageOf(err)}`, { cause: err });
  } finally {
    if (ownClient) await client?.close();
  }
  if (options.analyzedPath) {
    try {
      await updateAnalyzed(options.analyzedPath, (analyzed) => {
        analyzed.buildImage = { ...(analyzed.buildImage ?? {}), reference };
      });
    } catch (err) {
      throw new ImageBackendError(`recording the extended build image in ${options.analyzedPath}: ${messageOf(err)}`, { cause: err });
    }
  }
  return {
    reference,
    manifestDigest: serialized.manifestDigest,
    target,
    message:
      `the extended build image is ${reference}` +
      (options.analyzedPath ? ` (recorded as [build-image] reference in ${options.analyzedPath})` : '') +
      '; this backend does not run the build phase: the platform must now run the builder in that image',
  };
}

export interface PublishRunImageOptions {
  /** `extend()`'s result image for kind run, written with `runOutput: 'none'` (new layers' blobs must still be readable). */
  image: ImageDescription;
  /** Registry reference to push to (`-extended-run-image`). */
  reference: string;
  /** analyzed.toml to record `[run-image.extended] reference` in (written atomically, only after the push succeeded). */
  analyzedPath: string;
  /** Where blob-less base layers come from (default `image.reference`, the analyzed run image). */
  baseReference?: string;
  registry?: RegistryClient;
  signal?: AbortSignal;
}

export interface PublishedRunImage {
  /** Digest reference of the pushed extended run image. */
  reference: string;
  manifestDigest: Digest;
  message: string;
}

/**
 * The run-image reference mode (buildpacks/spec#414, docs/spec-delta.md): push the extended
 * run image — the manifest and config `<extended>/run` would hold, with the original run
 * image's layers (mounted or copied from its repository) and the new ones — and record its
 * digest reference as `[run-image.extended] reference` in analyzed.toml (other keys kept).
 * A failed push leaves analyzed.toml as it was.
 */
export async function publishRunImage(options: PublishRunImageOptions): Promise<PublishedRunImage> {
  const { image } = options;
  const serialized = serializeImage(image);
  const baseReference = options.baseReference ?? image.reference;
  let client = options.registry;
  const ownClient = client === undefined;
  const getClient = () => (client ??= new RegistryClient(options.signal ? { signal: options.signal } : {}));
  let reference: string;
  try {
    reference = await pushToRegistry(options.reference, serialized, getClient(), layerOpener(image, baseReference, getClient), baseReference);
  } catch (err) {
    throw new ImageBackendError(`pushing the extended run image to ${options.reference}: ${messageOf(err)}`, { cause: err });
  } finally {
    if (ownClient) await client?.close();
  }
  try {
    await updateAnalyzed(options.analyzedPath, (analyzed) => {
      if (!analyzed.runImage) throw new Error('it has no [run-image] table');
      analyzed.runImage = { ...analyzed.runImage, extended: { ...(analyzed.runImage.extended ?? {}), reference } };
    });
  } catch (err) {
    throw new ImageBackendError(`recording the extended run image in ${options.analyzedPath}: ${messageOf(err)}`, { cause: err });
  }
  return {
    reference,
    manifestDigest: serialized.manifestDigest,
    message:
      `the extended run image is ${reference} (recorded as [run-image.extended] reference in ${options.analyzedPath}); ` +
      'nothing was written to <extended>/run: an exporter must read the extended run image from that reference',
  };
}
