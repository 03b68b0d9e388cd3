/**
 * The extender's OCI image: one reproducible layer (libs/oci's writer) holding
 *
 *   /cnb/extender/extender            self-contained executable (loader and rpath below)
 *   /cnb/extender/lib/…               ld-linux-x86-64.so.2 (ld-linux-aarch64.so.1), libc.so.6, …
 *   /cnb/extender/node_modules/@napi-rs/xattr/…
 *   /cnb/extender/extender.toml
 *   /cnb/lifecycle/lifecycle          the lifecycle overlay, as in its tarball:
 *   /cnb/lifecycle/extender -> lifecycle
 *   /cnb/lifecycle/lib/…, /cnb/lifecycle/node_modules/…
 *   /cnb/lifecycle.toml
 *
 * on no base image (it needs nothing from one), entrypoint `/cnb/extender/extender`. One
 * image per platform (each with its own executables and libraries), listed in an OCI image
 * index tagged `<version>` in an OCI image layout (`skopeo copy --all` pushes them all).
 * Platforms copy `/cnb/extender` into their builder or run containers, or run the image
 * itself for image-producing backends; pack grafts an image's last layer onto the run
 * image to run `/cnb/lifecycle/extender` there, so the overlay is in that (only) layer too.
 */
import { chmod, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { buildImageIndexFromDirectories, type BuiltImageIndex } from '@cnb-extender/oci';
import { makeSelfContained } from './package.ts';
import type { ReleasePlatform } from './platforms.ts';

/** Where the executable lives in the image; its loader and libraries are below it. */
export const IMAGE_PREFIX = '/cnb/extender';
/** Where the lifecycle overlay lives in the image, as in a lifecycle image. */
export const IMAGE_LIFECYCLE_PREFIX = '/cnb/lifecycle';

/** One platform's image. */
export interface ImagePlatform {
  platform: ReleasePlatform;
  /** The extender single executable (not yet patched). */
  executable: string;
  /** The lifecycle overlay's executable, already made self-contained for `/cnb/lifecycle`. */
  lifecycleExecutable: string;
  /** The loader and C libraries: [file name, content]. */
  libraries: [string, Buffer][];
  /** The xattr addon's files: [source, path relative to the executable's directory]. */
  addon: [string, string][];
}

export interface ImageOptions {
  /** One image per platform, listed in the index in this order. */
  platforms: ImagePlatform[];
  /** `extender.toml` content. */
  descriptor: string;
  /** `lifecycle.toml` content. */
  lifecycleDescriptor: string;
  version: string;
  /** The OCI layout to write. */
  layoutDir: string;
  /** Scratch directory for the images' root filesystems. */
  workDir: string;
  mtime: Date;
}

/** The loader, C libraries and xattr addon an executable at `<dir>/<name>` resolves from `<dir>`. */
async function writeRuntime(dir: string, image: ImagePlatform): Promise<void> {
  await mkdir(join(dir, 'lib'), { recursive: true });
  for (const [name, bytes] of image.libraries) {
    await writeFile(join(dir, 'lib', name), bytes);
    await chmod(join(dir, 'lib', name), 0o755);
  }
  for (const [source, rel] of image.addon) {
    await mkdir(dirname(join(dir, rel)), { recursive: true });
    await writeFile(join(dir, rel), await readFile(source));
  }
}

/** The root filesystem of one platform's image. */
async function writeRootfs(rootfs: string, image: ImagePlatform, options: ImageOptions): Promise<void> {
  await rm(rootfs, { recursive: true, force: true });
  const prefix = join(rootfs, IMAGE_PREFIX);
  await writeRuntime(prefix, image);
  await makeSelfContained(image.executable, join(prefix, 'extender'), IMAGE_PREFIX, image.platform.loader);
  await chmod(join(prefix, 'extender'), 0o755);
  await writeFile(join(prefix, 'extender.toml'), options.descriptor);
  const lifecycle = join(rootfs, IMAGE_LIFECYCLE_PREFIX);
  await writeRuntime(lifecycle, image);
  await writeFile(join(lifecycle, 'lifecycle'), await readFile(image.lifecycleExecutable));
  await chmod(join(lifecycle, 'lifecycle'), 0o755);
  await symlink('lifecycle', join(lifecycle, 'extender'));
  await writeFile(join(rootfs, 'cnb', 'lifecycle.toml'), options.lifecycleDescriptor);
  for (const dir of ['cnb', 'cnb/extender', 'cnb/extender/lib', 'cnb/lifecycle', 'cnb/lifecycle/lib']) await chmod(join(rootfs, dir), 0o755);
}

export async function buildExtenderImage(options: ImageOptions): Promise<BuiltImageIndex> {
  const images = [];
  for (const image of options.platforms) {
    const rootfs = join(options.workDir, image.platform.arch, 'rootfs');
    await writeRootfs(rootfs, image, options);
    images.push({
      rootfs,
      platform: image.platform.oci,
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
  return buildImageIndexFromDirectories({ layoutDir: options.layoutDir, refName: options.version, images });
}
