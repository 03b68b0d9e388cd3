/**
 * Test support: small images built from a directory into an OCI image layout,
 * for the registry client's round-trip tests. Not exported from the package.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Digest } from '../digest.ts';
import { buildImageFromDirectory } from '../image.ts';
import { OciLayout } from '../layout/layout.ts';
import type { Descriptor, ImageConfig, ImageManifest, Platform } from '../model.ts';

export interface TestImage {
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

/**
 * Build an image whose one layer holds `sourceDir` with the package's own
 * image builder, into an OCI layout (ref name `latest`) in a new temporary
 * directory under `parent`.
 */
export async function buildTestImage(
  sourceDir: string,
  parent: string = tmpdir(),
  platform: Platform = { os: 'linux', architecture: 'amd64' },
): Promise<TestImage> {
  const layoutDir = join(await mkdtemp(join(parent, 'layout-')), 'image');
  const built = await buildImageFromDirectory({ rootfs: sourceDir, layoutDir, refName: 'latest', platform, walk: { xattrs: false } });
  const layout = await OciLayout.open(layoutDir);
  const blobs = new Map<string, Uint8Array>([[built.configDescriptor.digest, built.configBytes]]);
  for (const layer of built.manifest.layers) blobs.set(layer.digest, await layout.readBlob(layer));
  return {
    layoutDir,
    manifest: built.manifest,
    manifestBytes: built.manifestBytes,
    digest: built.manifestDescriptor.digest,
    descriptor: built.manifestDescriptor,
    config: built.config,
    blobs,
  };
}
