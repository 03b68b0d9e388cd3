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

/** Push or write the extended build image and record it (see module doc). */
export async function publishBuildImage(options: PublishBuildImageOptions): Promise<PublishedBuildImage> {
  const { image, target } = options;
  const serialized = serializeImage(image);
  const baseReference = options.baseReference ?? image.reference;
  let client = options.registry;
  const ownClient = client === undefined;
  const where = target.kind === 'registry' ? target.reference : target.dir;
  const getClient = () => (client ??= new RegistryClient(options.signal ? { signal: options.signal } : {}));
  const openLayer = async (descriptor: Descriptor): Promise<ReadableStream<Uint8Array>> => {
    const layer = image.layers.find((l) => l.descriptor.digest === descriptor.digest);
    if (layer?.blob) return Readable.toWeb(await openBlob(layer.blob)) as ReadableStream<Uint8Array>;
    if (!baseReference) throw new ImageBackendError(`layer ${descriptor.digest} has no blob and there is no base reference to fetch it from`);
    return getClient().getBlob(parseReference(baseReference), descriptor);
  };
  let reference: string;
  try {
    if (target.kind === 'registry') {
      const ref = parseReference(target.reference);
      const base = baseReference ? parseReference(baseReference) : undefined;
      const result = await pushImage(getClient(), ref, {
        manifest: { bytes: serialized.manifestBytes, mediaType: serialized.manifestMediaType },
        source: {
          open: (descriptor) => (descriptor.digest === serialized.manifest.config.digest ? serialized.configBytes : openLayer(descriptor)),
        },
        ...(base && base.registry === ref.registry && base.repository !== ref.repository ? { mountFrom: [base.repository] } : {}),
      });
      reference = formatReference({ registry: ref.registry, repository: ref.repository, digest: result.descriptor.digest });
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
