/**
 * The composed lifecycle image: what upstream publishes as `buildpacksio/lifecycle:<version>`
 * (and what pack's `--lifecycle-image` and kpack's lifecycle images are), made from composed
 * lifecycle tarballs (compose.ts), one image per platform in one OCI image index:
 *
 * - one layer: the tarball under `/cnb` (`/cnb/lifecycle.toml`, `/cnb/lifecycle/…`), uid/gid
 *   0, one mtime, written by libs/oci's reproducible layer writer, so that pack grafting the
 *   image's last layer onto the run image gets the whole lifecycle;
 * - labels as upstream's images carry them: `io.buildpacks.lifecycle.version`,
 *   `io.buildpacks.lifecycle.apis` (`{"buildpack":{"deprecated":[…],"supported":[…]},
 *   "platform":{…}}`), `io.buildpacks.builder.metadata` (`{"lifecycle":{"version":…},
 *   "api":{"buildpack":<first supported>,"platform":<first supported>}}`);
 * - working directory `/layers`.
 *
 * Upstream bases its image on distroless/static (CA certificates, /etc/passwd); this one has
 * no base: every executable in it needs nothing from one (upstream's are static, the
 * overlay's carries its loader and libraries), and a base can be added by whoever publishes it.
 */
import { chmod, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { buildImageIndexFromDirectories, type BuiltImageIndex } from '@cnb-extender/oci';
import { parseLifecycleDescriptor, type LifecycleDescriptor } from '@cnb-extender/platform';
import { readEntries, tarballPlatform } from './compose.ts';
import { releaseMtime } from './package.ts';
import type { ReleasePlatform } from './platforms.ts';

export const LIFECYCLE_IMAGE_LABELS = Object.freeze({
  version: 'io.buildpacks.lifecycle.version',
  apis: 'io.buildpacks.lifecycle.apis',
  builderMetadata: 'io.buildpacks.builder.metadata',
});

/** The labels of a lifecycle image for its `lifecycle.toml`. */
export function lifecycleImageLabels(descriptor: LifecycleDescriptor): Record<string, string> {
  const set = (s: LifecycleDescriptor['apis']['platform']) => ({ deprecated: [...s.deprecated], supported: [...s.supported] });
  return {
    [LIFECYCLE_IMAGE_LABELS.apis]: JSON.stringify({ buildpack: set(descriptor.apis.buildpack), platform: set(descriptor.apis.platform) }),
    [LIFECYCLE_IMAGE_LABELS.version]: descriptor.lifecycle.version,
    [LIFECYCLE_IMAGE_LABELS.builderMetadata]: JSON.stringify({
      lifecycle: { version: descriptor.lifecycle.version },
      api: { buildpack: descriptor.apis.buildpack.supported[0] ?? '', platform: descriptor.apis.platform.supported[0] ?? '' },
    }),
  };
}

export interface LifecycleImageOptions {
  /** Composed lifecycle tarballs, one per platform (listed in the index in this order). */
  tarballs: readonly string[];
  /** The OCI layout to write. */
  layoutDir: string;
  /** Scratch directory for the root filesystems (removed afterwards). */
  workDir: string;
  mtime?: Date;
}

export interface LifecycleImage extends BuiltImageIndex {
  /** The OCI layout written. */
  layoutDir: string;
  version: string;
  /** The tag-safe name index.json lists the index under (`+` → `_`). */
  refName: string;
  platforms: ReleasePlatform[];
}

/** Write the tarball's entries under `<rootfs>/cnb` with their modes. */
async function writeRootfs(tarball: string, rootfs: string): Promise<{ descriptor: LifecycleDescriptor; platform: ReleasePlatform }> {
  const entries = await readEntries(tarball);
  const toml = entries.get('lifecycle.toml');
  if (toml?.type !== 'file') throw new Error(`${tarball} has no lifecycle.toml`);
  const descriptor = parseLifecycleDescriptor(toml.content.toString('utf8'), `${tarball}:lifecycle.toml`);
  const platform = tarballPlatform(tarball, entries, 'the composed lifecycle');
  await rm(rootfs, { recursive: true, force: true });
  const cnb = join(rootfs, 'cnb');
  await mkdir(cnb, { recursive: true, mode: 0o755 });
  const dirs: [string, number][] = [[cnb, 0o755]];
  for (const entry of [...entries.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const path = join(cnb, entry.name);
    await mkdir(dirname(path), { recursive: true, mode: 0o755 });
    if (entry.type === 'directory') {
      await mkdir(path, { recursive: true });
      dirs.push([path, entry.mode ?? 0o755]);
    } else if (entry.type === 'symlink') await symlink(entry.target, path);
    else {
      await writeFile(path, entry.content);
      await chmod(path, entry.mode ?? 0o644);
    }
  }
  for (const [dir, mode] of dirs) await chmod(dir, mode);
  return { descriptor, platform };
}

/** Build the multi-platform lifecycle image from composed tarballs (all of one version). */
export async function buildLifecycleImage(options: LifecycleImageOptions): Promise<LifecycleImage> {
  const mtime = options.mtime ?? releaseMtime();
  const created = mtime.toISOString().replace(/\.000Z$/, 'Z');
  const images = [];
  const platforms: ReleasePlatform[] = [];
  let version: string | undefined;
  try {
    for (const tarball of options.tarballs) {
      const rootfs = join(options.workDir, `rootfs-${platforms.length}`);
      const { descriptor, platform } = await writeRootfs(tarball, rootfs);
      if (version !== undefined && descriptor.lifecycle.version !== version) {
        throw new Error(`building the lifecycle image: ${tarball} is version ${descriptor.lifecycle.version}, the others ${version}; an index holds one version`);
      }
      version = descriptor.lifecycle.version;
      platforms.push(platform);
      images.push({
        rootfs,
        platform: platform.oci,
        created,
        createdBy: `cnb-extender lifecycle:compose: /cnb/lifecycle ${version}`,
        layer: { mtime },
        walk: { xattrs: false },
        config: { WorkingDir: '/layers', Labels: lifecycleImageLabels(descriptor) },
      });
    }
    if (version === undefined) throw new Error('building the lifecycle image: no composed lifecycle tarball given');
    const refName = version.replace(/\+/g, '_');
    const built = await buildImageIndexFromDirectories({ layoutDir: options.layoutDir, refName, images });
    return { ...built, layoutDir: options.layoutDir, version, refName, platforms };
  } finally {
    await rm(options.workDir, { recursive: true, force: true });
  }
}
