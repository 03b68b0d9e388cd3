/**
 * The extender's OCI image: one reproducible layer (libs/oci's writer) holding
 *
 *   /cnb/extender/extender            self-contained executable (loader and rpath below)
 *   /cnb/extender/lib/…               ld-linux-x86-64.so.2, libc.so.6, …
 *   /cnb/extender/node_modules/@napi-rs/xattr/…
 *   /cnb/extender/extender.toml
 *   /cnb/lifecycle/lifecycle          the lifecycle overlay, as in its tarball:
 *   /cnb/lifecycle/extender -> lifecycle
 *   /cnb/lifecycle/lib/…, /cnb/lifecycle/node_modules/…
 *   /cnb/lifecycle.toml
 *
 * on no base image (it needs nothing from one), entrypoint `/cnb/extender/extender`,
 * written as an OCI image layout. Platforms copy `/cnb/extender` into their builder or run
 * containers, or run the image itself for image-producing backends; pack grafts an
 * image's last layer onto the run image to run `/cnb/lifecycle/extender` there, so the
 * overlay is in that (only) layer too.
 */
import { chmod, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { buildImageFromDirectory, type BuiltImage } from '@cnb-extender/oci';
import { nativeAddonFiles } from './bundle.ts';
import { makeSelfContained, sharedLibraries } from './package.ts';

/** Where the executable lives in the image; its loader and libraries are below it. */
export const IMAGE_PREFIX = '/cnb/extender';
/** Where the lifecycle overlay lives in the image, as in a lifecycle image. */
export const IMAGE_LIFECYCLE_PREFIX = '/cnb/lifecycle';

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
  /** The lifecycle overlay: its executable, already made self-contained for `/cnb/lifecycle`, and `lifecycle.toml`. */
  lifecycle: { executable: string; descriptor: string };
}

/** The loader, C libraries and xattr addon an executable at `<dir>/<name>` resolves from `<dir>`. */
async function writeRuntime(dir: string): Promise<void> {
  await mkdir(join(dir, 'lib'), { recursive: true });
  for (const [name, bytes] of await sharedLibraries()) {
    await writeFile(join(dir, 'lib', name), bytes);
    await chmod(join(dir, 'lib', name), 0o755);
  }
  for (const [source, rel] of nativeAddonFiles()) {
    await mkdir(dirname(join(dir, rel)), { recursive: true });
    await writeFile(join(dir, rel), await readFile(source));
  }
}

export async function buildExtenderImage(options: ImageOptions): Promise<BuiltImage> {
  const rootfs = join(options.workDir, 'rootfs');
  await rm(rootfs, { recursive: true, force: true });
  const prefix = join(rootfs, IMAGE_PREFIX);
  await writeRuntime(prefix);
  await makeSelfContained(options.executable, join(prefix, 'extender'), IMAGE_PREFIX);
  await chmod(join(prefix, 'extender'), 0o755);
  await writeFile(join(prefix, 'extender.toml'), options.descriptor);
  const lifecycle = join(rootfs, IMAGE_LIFECYCLE_PREFIX);
  await writeRuntime(lifecycle);
  await writeFile(join(lifecycle, 'lifecycle'), await readFile(options.lifecycle.executable));
  await chmod(join(lifecycle, 'lifecycle'), 0o755);
  await symlink('lifecycle', join(lifecycle, 'extender'));
  await writeFile(join(rootfs, 'cnb', 'lifecycle.toml'), options.lifecycle.descriptor);
  for (const dir of ['cnb', 'cnb/extender', 'cnb/extender/lib', 'cnb/lifecycle', 'cnb/lifecycle/lib']) await chmod(join(rootfs, dir), 0o755);
  return buildImageFromDirectory({
    rootfs,
    layoutDir: options.layoutDir,
    refName: options.version,
    platform: { os: 'linux', architecture: 'amd64' },
    created: options.mtime.toISOString().replace(/\.000Z$/, 'Z'),
    createdBy: `cnb-extender ${options.version}: /cnb/extender and /cnb/lifecycle`,
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
