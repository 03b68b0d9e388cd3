/**
 * Give a tool the base image as a full OCI layout on disk. Blobs the description
 * points at are hard-linked (or copied); layers without a blob (sparse restorer
 * layouts, registry-resolved bases) are fetched from the registry named by the
 * base's reference and kept in a blob directory shared by later calls.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { copyFile, link, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { openBlob, serializeImage, type ImageDescription } from '@cnb-extender/extender-core';
import { MediaType, RegistryClient, canonicalJson, parseDigest, parseReference, type Descriptor, type Digest } from '@cnb-extender/oci';
import { ImageBackendError, messageOf } from './errors.ts';

export interface MaterializeBaseOptions {
  /** The layout directory to write (replaced when it exists). */
  dir: string;
  /** `org.opencontainers.image.ref.name` of the image (default `base`). */
  refName?: string;
  /** Where blobs fetched from a registry are kept between calls (default: only in `dir`). */
  fetchedBlobDir?: string;
  /** Registry client for blob-less layers (default: a client with the lifecycle's credential sources). */
  registry?: RegistryClient;
  /** The reference to fetch blob-less layers from (default `base.reference`). */
  reference?: string;
  signal?: AbortSignal;
}

export interface MaterializedBase {
  layoutDir: string;
  refName: string;
  manifestDigest: Digest;
  manifestBytes: Buffer;
  configBytes: Buffer;
  /** `oci:<dir>:<refName>` (containers-image transport syntax). */
  ociReference: string;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

function blobFile(dir: string, digest: string): string {
  const { algorithm, hex } = parseDigest(digest as Digest);
  return join(dir, 'blobs', algorithm, hex);
}

async function linkOrCopy(from: string, to: string): Promise<void> {
  if (await exists(to)) return;
  try {
    await link(from, to);
  } catch {
    await copyFile(from, to);
  }
}

async function writeStream(stream: Readable, to: string, signal?: AbortSignal): Promise<void> {
  const tmp = `${to}.tmp-${randomBytes(4).toString('hex')}`;
  try {
    await pipeline(stream, createWriteStream(tmp), ...(signal ? [{ signal }] : []));
    await rename(tmp, to);
  } finally {
    await rm(tmp, { force: true });
  }
}

/** Fetch one layer blob of `reference`'s repository into `to` (digest-checked by the client). */
export async function fetchBlob(client: RegistryClient, reference: string, descriptor: Descriptor, to: string, signal?: AbortSignal): Promise<void> {
  const ref = parseReference(reference);
  try {
    const web = await client.getBlob(ref, descriptor);
    await writeStream(Readable.fromWeb(web as NodeReadableStream<Uint8Array>), to, signal);
  } catch (err) {
    throw new ImageBackendError(`fetching layer ${descriptor.digest} from ${ref.registry}/${ref.repository}: ${messageOf(err)}`, { cause: err });
  }
}

/** Write `base` as a full OCI layout (see module doc). */
export async function materializeBaseLayout(base: ImageDescription, options: MaterializeBaseOptions): Promise<MaterializedBase> {
  const { dir, signal } = options;
  const refName = options.refName ?? 'base';
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  if (options.fetchedBlobDir) await mkdir(join(options.fetchedBlobDir, 'blobs', 'sha256'), { recursive: true });
  let client = options.registry;
  let ownClient = false;
  try {
    for (const layer of base.layers) {
      signal?.throwIfAborted();
      const target = blobFile(dir, layer.descriptor.digest);
      if (layer.blob?.kind === 'file') {
        await linkOrCopy(layer.blob.path, target);
        continue;
      }
      if (layer.blob) {
        await writeStream(await openBlob(layer.blob), target, signal);
        continue;
      }
      const kept = options.fetchedBlobDir ? blobFile(options.fetchedBlobDir, layer.descriptor.digest) : undefined;
      if (kept && (await exists(kept))) {
        await linkOrCopy(kept, target);
        continue;
      }
      const reference = options.reference ?? base.reference;
      if (!reference) throw new ImageBackendError(`base layer ${layer.descriptor.digest} has no blob and the base image has no registry reference to fetch it from`);
      if (!client) {
        client = new RegistryClient(signal ? { signal } : {});
        ownClient = true;
      }
      await fetchBlob(client, reference, layer.descriptor, kept ?? target, signal);
      if (kept) await linkOrCopy(kept, target);
    }
  } finally {
    if (ownClient) await client?.close();
  }
  const serialized = serializeImage(base);
  await writeFile(blobFile(dir, serialized.manifest.config.digest), serialized.configBytes);
  await writeFile(blobFile(dir, serialized.manifestDigest), serialized.manifestBytes);
  const index = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [
      {
        mediaType: serialized.manifestMediaType,
        digest: serialized.manifestDigest,
        size: serialized.manifestBytes.length,
        annotations: { 'org.opencontainers.image.ref.name': refName },
      },
    ],
  };
  await writeFile(join(dir, 'index.json'), canonicalJson(index));
  await writeFile(join(dir, 'oci-layout'), canonicalJson({ imageLayoutVersion: '1.0.0' }));
  return {
    layoutDir: dir,
    refName,
    manifestDigest: serialized.manifestDigest,
    manifestBytes: serialized.manifestBytes,
    configBytes: serialized.configBytes,
    ociReference: `oci:${dir}:${refName}`,
  };
}
