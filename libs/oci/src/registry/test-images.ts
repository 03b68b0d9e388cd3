/**
 * Test support: small images built from a directory into an OCI image layout,
 * for the registry client's round-trip tests. Not exported from the package.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256, type Digest } from '../digest.ts';
import { walkDirectory } from '../layer/walk.ts';
import { writeLayer } from '../layer/writer.ts';
import { MediaType } from '../media-types.ts';
import { REF_NAME_ANNOTATION, canonicalJson, type Descriptor, type ImageConfig, type ImageManifest, type Platform } from '../model.ts';

export interface BuiltImage {
  layoutDir: string;
  manifest: ImageManifest;
  manifestBytes: Uint8Array;
  digest: Digest;
  descriptor: Descriptor;
  config: ImageConfig;
  /** Every blob of the image (config and layers) by digest. */
  blobs: Map<string, Uint8Array>;
}

/** Write a few files (text, random binary, nested directory, symlink) into a fresh directory. */
export async function makeSourceTree(parent: string, payloadBytes = 200_000): Promise<string> {
  const root = await mkdtemp(join(parent, 'tree-'));
  await mkdir(join(root, 'app', 'bin'), { recursive: true });
  await writeFile(join(root, 'app', 'hello.txt'), `hello from ${root}\n`);
  await writeFile(join(root, 'app', 'bin', 'payload.bin'), randomBytes(payloadBytes));
  await symlink('hello.txt', join(root, 'app', 'link.txt'));
  return root;
}

/** A gzip layer of a directory's contents, written by our reproducible layer writer. */
async function layerFromDirectory(dir: string, out: string): Promise<{ bytes: Uint8Array; diffId: Digest }> {
  const written = await writeLayer(await walkDirectory(dir, { xattrs: false }), out, { compression: 'gzip' });
  const bytes = await readFile(out);
  await rm(out);
  if (sha256(bytes) !== written.digest) throw new Error(`layer writer reported ${written.digest} for ${out}`);
  return { bytes, diffId: written.diffId };
}

/**
 * Build an image whose one layer holds `sourceDir`, and write it as an OCI
 * layout (tag `latest`) in a new temporary directory under `parent`.
 */
export async function buildImageFromDirectory(
  sourceDir: string,
  parent: string = tmpdir(),
  platform: Platform = { os: 'linux', architecture: 'amd64' },
): Promise<BuiltImage> {
  const layoutDir = await mkdtemp(join(parent, 'layout-'));
  await mkdir(join(layoutDir, 'blobs', 'sha256'), { recursive: true });
  const layer = await layerFromDirectory(sourceDir, join(layoutDir, 'layer.tmp'));
  const config: ImageConfig = {
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: { Env: ['PATH=/usr/bin:/bin'], WorkingDir: '/app' },
    rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    history: [{ created_by: 'registry client test' }],
  };
  const configBytes = new TextEncoder().encode(canonicalJson(config));
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: sha256(configBytes), size: configBytes.byteLength },
    layers: [{ mediaType: MediaType.ociLayerGzip, digest: sha256(layer.bytes), size: layer.bytes.byteLength }],
  };
  const manifestBytes = new TextEncoder().encode(canonicalJson(manifest));
  const digest = sha256(manifestBytes);
  const blobs = new Map<string, Uint8Array>([
    [manifest.config.digest, configBytes],
    [manifest.layers[0]!.digest, layer.bytes],
  ]);
  for (const [d, bytes] of [...blobs, [digest, manifestBytes] as const]) {
    await writeFile(join(layoutDir, 'blobs', 'sha256', d.slice('sha256:'.length)), bytes);
  }
  const descriptor: Descriptor = { mediaType: MediaType.ociManifest, digest, size: manifestBytes.byteLength };
  await writeFile(join(layoutDir, 'oci-layout'), canonicalJson({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(layoutDir, 'index.json'),
    canonicalJson({
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: [{ ...descriptor, annotations: { [REF_NAME_ANNOTATION]: 'latest' } }],
    }),
  );
  return { layoutDir, manifest, manifestBytes, digest, descriptor, config, blobs };
}
