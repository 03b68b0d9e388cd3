/**
 * Run-kind output: `<extended>/run/sha256:<manifest-hex>/`, a sparse OCI layout
 * holding the manifest, the config and only the new layers' blobs. Written into a
 * temporary directory beside `run/` and renamed into place, so `run/` never holds
 * a half-written layout.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MediaType, canonicalJson, familyOf, hashingStream, sha256, type Descriptor, type Digest, type ImageIndex, type ImageManifest } from '@cnb-extender/oci';
import type { BlobSource, ImageDescription } from './backend.ts';
import { blobPath } from './base.ts';

/** The manifest and config bytes of an image description. */
export function serializeImage(image: ImageDescription): { manifest: ImageManifest; manifestBytes: Buffer; manifestDigest: Digest; configBytes: Buffer; manifestMediaType: string } {
  const family = familyOf(image.manifestMediaType);
  const configBytes = Buffer.from(canonicalJson(image.config));
  const manifestMediaType = family === 'docker' ? MediaType.dockerManifest : MediaType.ociManifest;
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: manifestMediaType,
    config: { mediaType: family === 'docker' ? MediaType.dockerConfig : MediaType.ociConfig, digest: sha256(configBytes), size: configBytes.length },
    layers: image.layers.map((layer) => layer.descriptor),
  };
  if (image.annotations && Object.keys(image.annotations).length > 0) manifest.annotations = image.annotations;
  // Plain JSON.stringify: keys stay in the order read, so base layer descriptors are
  // byte-identical to the original manifest's.
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  return { manifest, manifestBytes, manifestDigest: sha256(manifestBytes), configBytes, manifestMediaType };
}

export async function openBlob(source: BlobSource): Promise<Readable> {
  if (source.kind === 'file') return createReadStream(source.path);
  return await source.open();
}

/** Copy a blob to `dest`, checking its digest and size. */
export async function copyBlob(source: BlobSource, descriptor: Descriptor, dest: string, signal?: AbortSignal): Promise<void> {
  let digest = '';
  let size = 0;
  const counter = hashingStream('sha256', (hex, n) => {
    digest = `sha256:${hex}`;
    size = n;
  });
  await pipeline(await openBlob(source), counter, createWriteStream(dest), signal ? { signal } : {});
  if (digest !== descriptor.digest) throw new Error(`blob for layer ${descriptor.digest} has digest ${digest}`);
  if (size !== descriptor.size) throw new Error(`blob for layer ${descriptor.digest} has ${size} bytes, descriptor says ${descriptor.size}`);
}

export interface WriteRunOutputOptions {
  extendedDir: string;
  image: ImageDescription;
  /** How many layers belong to the original run image (their blobs are not written). */
  baseLayerCount: number;
  signal?: AbortSignal;
}

/** Write the run-kind layout; returns its directory. */
export async function writeRunOutput(options: WriteRunOutputOptions): Promise<{ dir: string; manifestDigest: Digest }> {
  const { extendedDir, image, baseLayerCount, signal } = options;
  const runDir = join(extendedDir, 'run');
  await mkdir(runDir, { recursive: true });
  const tmp = join(extendedDir, `.run-${process.pid}-${randomBytes(6).toString('hex')}`);
  await mkdir(join(tmp, 'blobs', 'sha256'), { recursive: true });
  try {
    const serialized = serializeImage(image);
    for (const layer of image.layers.slice(baseLayerCount)) {
      signal?.throwIfAborted();
      if (!layer.blob) throw new Error(`new layer ${layer.descriptor.digest} has no blob`);
      await copyBlob(layer.blob, layer.descriptor, blobPath(tmp, layer.descriptor.digest), signal);
    }
    await writeFile(blobPath(tmp, serialized.manifest.config.digest), serialized.configBytes);
    await writeFile(blobPath(tmp, serialized.manifestDigest), serialized.manifestBytes);
    const index: ImageIndex = {
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [{ mediaType: serialized.manifestMediaType, digest: serialized.manifestDigest, size: serialized.manifestBytes.length }],
    };
    await writeFile(join(tmp, 'index.json'), canonicalJson(index));
    await writeFile(join(tmp, 'oci-layout'), canonicalJson({ imageLayoutVersion: '1.0.0' }));
    signal?.throwIfAborted();
    // The exporter wants exactly one entry: drop what an earlier run left.
    for (const entry of await readdir(runDir)) await rm(join(runDir, entry), { recursive: true, force: true });
    const dir = join(runDir, serialized.manifestDigest);
    await rename(tmp, dir);
    return { dir, manifestDigest: serialized.manifestDigest };
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
