/**
 * The extender's OCI image: one reproducible layer (libs/oci's writer) holding
 *
 *   /cnb/extender/extender            self-contained executable (loader and rpath below)
 *   /cnb/extender/lib/…               ld-linux-x86-64.so.2, libc.so.6, …
 *   /cnb/extender/node_modules/@napi-rs/xattr/…
 *   /cnb/extender/extender.toml
 *
 * on no base image (it needs nothing from one), entrypoint `/cnb/extender/extender`,
 * written as an OCI image layout. Platforms copy `/cnb/extender` into their builder or run
 * containers, or run the image itself for image-producing backends.
 */
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { buildImageFromDirectory, type BuiltImage } from '@cnb-extender/oci';
import { nativeAddonFiles } from './bundle.ts';
import { makeSelfContained, sharedLibraries } from './package.ts';

/** Where the executable lives in the image; its loader and libraries are below it. */
export const IMAGE_PREFIX = '/cnb/extender';

export interface ImageOptions {
  /** The extender single executable (not yet patched). */
  executable: string;
  /** `extender.toml` content. */
  descriptor: string;
  version: string;
  /** The OCI layout to write. */
  layoutDir: string;
  /** Scratch directory for the image's root filesystem. */
  workDir: string;
  mtime: Date;
}

export async function buildExtenderImage(options: ImageOptions): Promise<BuiltImage> {
  const rootfs = join(options.workDir, 'rootfs');
  await rm(rootfs, { recursive: true, force: true });
  const prefix = join(rootfs, IMAGE_PREFIX);
  await mkdir(join(prefix, 'lib'), { recursive: true });
  await makeSelfContained(options.executable, join(prefix, 'extender'), IMAGE_PREFIX);
  await chmod(join(prefix, 'extender'), 0o755);
  for (const [name, bytes] of await sharedLibraries()) {
    await writeFile(join(prefix, 'lib', name), bytes);
    await chmod(join(prefix, 'lib', name), 0o755);
  }
  for (const [source, rel] of nativeAddonFiles()) {
    await mkdir(dirname(join(prefix, rel)), { recursive: true });
    await writeFile(join(prefix, rel), await readFile(source));
  }
  await writeFile(join(prefix, 'extender.toml'), options.descriptor);
  for (const dir of ['cnb', 'cnb/extender', 'cnb/extender/lib']) await chmod(join(rootfs, dir), 0o755);
  return buildImageFromDirectory({
    rootfs,
    layoutDir: options.layoutDir,
    refName: options.version,
    platform: { os: 'linux', architecture: 'amd64' },
    created: options.mtime.toISOString().replace(/\.000Z$/, 'Z'),
    createdBy: `cnb-extender ${options.version}: /cnb/extender`,
    layer: { mtime: options.mtime },
    walk: { xattrs: false },
    config: {
      Entrypoint: [`${IMAGE_PREFIX}/extender`],
      Env: ['PATH=/cnb/extender'],
      Labels: {
        'org.opencontainers.image.title': 'cnb-extender',
        'org.opencontainers.image.version': options.version,
        'io.buildpacks.extender.version': options.version,
      },
    },
  });
}
