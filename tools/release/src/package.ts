/**
 * Release tarballs, written with tar-stream (npm pack drops symlinks), per platform
 * (`<suffix>`: `linux.x86-64`, `linux.arm64`, see platforms.ts):
 *
 *   extender-v<version>+<suffix>.tgz                lifecycle-extender-v<version>+<suffix>.tgz
 *     extender.toml                                   lifecycle.toml
 *     extender/extender                               lifecycle/lifecycle
 *     extender/node_modules/@napi-rs/xattr/…          lifecycle/extender -> lifecycle   (symlink)
 *                                                     lifecycle/lib/{ld-linux-x86-64.so.2,libc.so.6,…}
 *                                                     lifecycle/node_modules/@napi-rs/xattr/…
 *
 * The extender executable uses the image's glibc and runs from anywhere. The lifecycle
 * overlay is installed at a known place (`/cnb/lifecycle`) and runs in images it does not
 * choose (pack grafts it onto the run image for run-image extension), so it carries its
 * own dynamic loader and libraries: its interpreter is `/cnb/lifecycle/lib/<loader>`
 * (`ld-linux-x86-64.so.2`, `ld-linux-aarch64.so.1`) and its rpath `/cnb/lifecycle/lib`
 * (patched with patchelf after the blob is injected; patching first breaks the
 * executable). It then runs in images without any libc.
 *
 * Reproducible: entries in a fixed order, uid/gid 0 with no user or group names, one fixed
 * mtime (SOURCE_DATE_EPOCH, else 1980-01-01T00:00:01Z), gzip without a timestamp. Each
 * tarball gets a `<name>.sha256` file in `sha256sum` format.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { gzip } from 'node:zlib';
import { stringify as stringifyToml } from 'smol-toml';
import tarStream from 'tar-stream';
import { BUILDPACK_APIS, EXTEND_PLATFORM_APIS, createLifecycleDescriptor, stringifyLifecycleDescriptor } from '@cnb-extender/platform';
import { appVersion, bundleApp, bundledPackages, nativeAddonFiles, REPO_ROOT, type AppName, type BundledPackage } from './bundle.ts';
import { buildSea } from './sea.ts';
import { buildExtenderImage, type ImagePlatform } from './image.ts';
import { defaultReleaseCacheDir, platformInputs, type PlatformInputs } from './inputs.ts';
import { PLATFORMS, RELEASE_ARCHES, type ReleaseArch, type ReleasePlatform } from './platforms.ts';

/** 1980-01-01T00:00:01Z, the time the lifecycle gives files in its layers. */
export const DEFAULT_MTIME = new Date('1980-01-01T00:00:01Z');

/** Where the lifecycle overlay is installed; its executable's loader and libraries live below it. */
export const LIFECYCLE_PREFIX = '/cnb/lifecycle';

const exec = promisify(execFile);
const gzipAsync = promisify(gzip);

/** Copy `executable` to `output` and point its loader (`loader`, a file name) and library path at `<prefix>/lib`. */
export async function makeSelfContained(executable: string, output: string, prefix: string, loader: string): Promise<void> {
  await copyFile(executable, output);
  try {
    await exec('patchelf', ['--set-interpreter', `${prefix}/lib/${loader}`, '--set-rpath', `${prefix}/lib`, output]);
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new Error(`patching ${output} to load its libraries from ${prefix}/lib: ${missing ? 'patchelf is not installed (apt-get install patchelf)' : (err as Error).message}`, { cause: err });
  }
}

export type TarEntry =
  | { type: 'directory'; name: string; mode?: number }
  | { type: 'file'; name: string; mode?: number; content: Buffer }
  | { type: 'symlink'; name: string; target: string };

export function releaseMtime(env: Readonly<Record<string, string | undefined>> = process.env): Date {
  const epoch = env['SOURCE_DATE_EPOCH'];
  if (epoch !== undefined && /^\d+$/.test(epoch)) return new Date(Number(epoch) * 1000);
  return DEFAULT_MTIME;
}

/** A gzipped tar of `entries`, in the order given, byte-identical for the same input. */
export async function writeTarGz(entries: readonly TarEntry[], mtime: Date): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const collected = new Promise<Buffer>((resolve, reject) => {
    pack.on('data', (chunk: unknown) => chunks.push(chunk as Buffer));
    pack.on('end', () => resolve(Buffer.concat(chunks)));
    pack.on('error', reject);
  });
  const common = { uid: 0, gid: 0, uname: '', gname: '', mtime };
  for (const entry of entries) {
    await new Promise<void>((resolve, reject) => {
      const done = (err?: Error | null) => (err ? reject(err) : resolve());
      if (entry.type === 'directory') pack.entry({ ...common, name: `${entry.name.replace(/\/$/, '')}/`, type: 'directory', mode: entry.mode ?? 0o755 }, done);
      else if (entry.type === 'symlink') pack.entry({ ...common, name: entry.name, type: 'symlink', linkname: entry.target, mode: 0o777 }, done);
      else pack.entry({ ...common, name: entry.name, type: 'file', mode: entry.mode ?? 0o644, size: entry.content.length }, entry.content, done);
    });
  }
  pack.finalize();
  // gzip's header has no timestamp (mtime 0) and a fixed OS byte: the same tar gives the same bytes
  return gzipAsync(await collected, { level: 6 });
}

export function sha256Line(bytes: Buffer, name: string): string {
  return `${createHash('sha256').update(bytes).digest('hex')}  ${name}\n`;
}

/**
 * `SHA256SUMS` in `dir`, in `sha256sum` format (`sha256sum -c SHA256SUMS` checks it there):
 * one line per file of `files` (paths relative to `dir`), sorted by path. Returns its path.
 */
export async function writeSha256Sums(dir: string, files: readonly string[]): Promise<string> {
  const lines: string[] = [];
  for (const file of [...files].sort()) lines.push(sha256Line(await readFile(join(dir, file)), file));
  const path = join(dir, 'SHA256SUMS');
  await writeFile(path, lines.join(''));
  return path;
}

/** `extender.toml`: the extender's version, the APIs it accepts and the backends in this build. */
export function extenderDescriptor(version: string, backends: readonly string[]): string {
  return stringifyToml({
    apis: {
      buildpack: { supported: BUILDPACK_APIS.supportedStrings(), deprecated: BUILDPACK_APIS.deprecatedStrings() },
      platform: { supported: EXTEND_PLATFORM_APIS.supportedStrings(), deprecated: EXTEND_PLATFORM_APIS.deprecatedStrings() },
    },
    extender: { version, backends: [...backends] },
  }) + '\n';
}

export interface ReleaseOptions {
  /** Output directory (default `out/release` at the repository root). */
  outDir?: string;
  /** Default: the apps' version (they are released together). */
  version?: string;
  scheduleFile?: string;
  mtime?: Date;
  /**
   * Bundles already built with `bundleApps` (and the backends and packages they contain):
   * package these instead of bundling the sources again.
   */
  bundles?: AppBundles;
  /** Also write the extender's OCI image layout (default true). */
  image?: boolean;
  /**
   * Platforms to build (default all: linux/amd64 and linux/arm64). linux/arm64 needs the npm
   * registry and Debian's archive, or the downloads an earlier build left in `cacheDir`.
   */
  platforms?: readonly ReleaseArch[];
  /** Where downloads for linux/arm64 are kept for later builds (default `defaultReleaseCacheDir()`). */
  cacheDir?: string;
}

/** What one platform's build wrote. */
export interface PlatformArtifacts {
  platform: ReleasePlatform;
  /** `extender-v<version>+<suffix>.tgz` (with a `.sha256` file beside it). */
  extenderTarball: string;
  /** `lifecycle-extender-v<version>+<suffix>.tgz` (with a `.sha256` file beside it). */
  lifecycleTarball: string;
  /** The single executables, before packaging. */
  executables: Record<AppName, string>;
  /** The image manifest of this platform, listed in the image index (when the image is built). */
  imageManifestDigest?: string;
  /** What the executables and the self-contained forms were made from: Node, the xattr addon, the C libraries. */
  inputs: PlatformInputs;
  /** The xattr addon's files shipped next to each executable: [source, path relative to the executable's directory]. */
  addon: [string, string][];
}

/** Both apps' bundles: files, the backends they contain and the packages their code comes from. */
export interface AppBundles {
  files: Record<AppName, string>;
  backends: string[];
  packages: Record<AppName, BundledPackage[]>;
}

export interface ReleaseArtifacts {
  version: string;
  /** The bundles the executables were made from. */
  bundles: AppBundles;
  /** The mtime of every file in the tarballs and the image. */
  mtime: Date;
  /** The platforms built. */
  platforms: Partial<Record<ReleaseArch, PlatformArtifacts>>;
  /** OCI image layout of the extender (`extender-v<version>.oci/`, an index of one image per platform under the tag `<version>`), when asked for. */
  imageLayout?: string;
  /** Digest of that image index. */
  imageDigest?: string;
  /** Backends bundled into the executables. */
  backends: string[];
}

/** Bundle both apps into `dir` (`extender.cjs`, `lifecycle.cjs`). */
export async function bundleApps(dir: string, options: { version?: string; scheduleFile?: string } = {}): Promise<AppBundles> {
  const files = {} as Record<AppName, string>;
  const packages = {} as Record<AppName, BundledPackage[]>;
  let backends: string[] = [];
  for (const app of ['extender', 'lifecycle'] as const) {
    files[app] = join(dir, `${app}.cjs`);
    const meta = await bundleApp({ app, outFile: files[app], ...(options.version ? { version: options.version } : {}), ...(options.scheduleFile ? { scheduleFile: options.scheduleFile } : {}) });
    backends = bundledBackends(meta.inputs);
    // esbuild gives the inputs relative to its working directory, this process's
    packages[app] = await bundledPackages(meta.inputs, process.cwd());
  }
  return { files, backends, packages };
}

/** Backends the bundle contains (the others were left out as missing packages). */
function bundledBackends(inputs: Record<string, unknown>): string[] {
  const ids = new Set<string>();
  for (const path of Object.keys(inputs)) {
    const m = /libs\/backend-(?!catalog)([a-z0-9-]+)\//.exec(path);
    if (m) ids.add(m[1]!);
  }
  return [...ids].sort();
}

async function addonEntries(dir: string, files: [string, string][]): Promise<TarEntry[]> {
  const entries: TarEntry[] = [];
  const dirs = new Set<string>();
  for (const [, rel] of files) {
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  for (const d of [...dirs].sort()) entries.push({ type: 'directory', name: `${dir}/${d}` });
  for (const [source, rel] of [...files].sort((a, b) => a[1].localeCompare(b[1]))) {
    entries.push({ type: 'file', name: `${dir}/${rel}`, mode: rel.endsWith('.node') ? 0o755 : 0o644, content: await readFile(source) });
  }
  return entries;
}

interface PlatformBuild {
  platform: ReleasePlatform;
  outDir: string;
  /** Scratch directory of this platform. */
  work: string;
  version: string;
  mtime: Date;
  bundles: { files: Record<AppName, string>; backends: string[] };
  lifecycleDescriptor: string;
  cacheDir: string;
}

/** One platform's executables and tarballs; what its image needs. */
async function buildPlatform(build: PlatformBuild): Promise<{ artifacts: PlatformArtifacts; image: ImagePlatform }> {
  const { platform, work, version, bundles, mtime } = build;
  const inputs = await platformInputs(platform, build.cacheDir);
  const executables = {} as Record<AppName, string>;
  for (const app of ['extender', 'lifecycle'] as const) {
    executables[app] = join(work, 'bin', app);
    await buildSea({ bundle: bundles.files[app], output: executables[app], workDir: join(work, `sea-${app}`), base: inputs.node });
  }
  const selfContainedLifecycle = join(work, 'bin', 'lifecycle.self-contained');
  await makeSelfContained(executables.lifecycle, selfContainedLifecycle, LIFECYCLE_PREFIX, platform.loader);
  const addon = nativeAddonFiles(inputs.xattrAddon, platform.xattrFile);

  const extenderTarball = join(build.outDir, `extender-v${version}+${platform.suffix}.tgz`);
  const extenderBytes = await writeTarGz(
    [
      { type: 'file', name: 'extender.toml', content: Buffer.from(extenderDescriptor(version, bundles.backends)) },
      { type: 'directory', name: 'extender' },
      { type: 'file', name: 'extender/extender', mode: 0o755, content: await readFile(executables.extender) },
      ...(await addonEntries('extender', addon)),
    ],
    mtime,
  );
  const lifecycleTarball = join(build.outDir, `lifecycle-extender-v${version}+${platform.suffix}.tgz`);
  const lifecycleBytes = await writeTarGz(
    [
      { type: 'file', name: 'lifecycle.toml', content: Buffer.from(build.lifecycleDescriptor) },
      { type: 'directory', name: 'lifecycle' },
      { type: 'file', name: 'lifecycle/lifecycle', mode: 0o755, content: await readFile(selfContainedLifecycle) },
      { type: 'symlink', name: 'lifecycle/extender', target: 'lifecycle' },
      { type: 'directory', name: 'lifecycle/lib' },
      ...inputs.libraries.map(([name, content]): TarEntry => ({ type: 'file', name: `lifecycle/lib/${name}`, mode: 0o755, content })),
      ...(await addonEntries('lifecycle', addon)),
    ],
    mtime,
  );
  for (const [path, bytes] of [
    [extenderTarball, extenderBytes],
    [lifecycleTarball, lifecycleBytes],
  ] as const) {
    await writeFile(path, bytes);
    await writeFile(`${path}.sha256`, sha256Line(bytes, path.split('/').at(-1)!));
  }
  return {
    artifacts: { platform, extenderTarball, lifecycleTarball, executables, inputs, addon },
    image: { platform, executable: executables.extender, lifecycleExecutable: selfContainedLifecycle, libraries: inputs.libraries, addon },
  };
}

/**
 * Bundle both apps, build their executables for each platform, write the tarballs with
 * their checksums and the multi-platform image.
 */
export async function buildRelease(options: ReleaseOptions = {}): Promise<ReleaseArtifacts> {
  const outDir = options.outDir ?? join(REPO_ROOT, 'out', 'release');
  const version = options.version ?? (await appVersion('extender'));
  const lifecycleVersion = options.version ?? (await appVersion('lifecycle'));
  if (version !== lifecycleVersion) throw new Error(`the apps are released together but have different versions: extender ${version}, lifecycle ${lifecycleVersion}`);
  const arches = RELEASE_ARCHES.filter((arch) => (options.platforms ?? RELEASE_ARCHES).includes(arch));
  if (arches.length === 0) throw new Error(`building the release: no platform to build (options.platforms is empty)`);
  const mtime = options.mtime ?? releaseMtime();
  const work = join(outDir, 'work');
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });

  const bundles = options.bundles ?? (await bundleApps(work, { version, ...(options.scheduleFile ? { scheduleFile: options.scheduleFile } : {}) }));
  const { backends } = bundles;
  const lifecycleDescriptor = stringifyLifecycleDescriptor(createLifecycleDescriptor({ version, platformApis: EXTEND_PLATFORM_APIS }));
  // The platforms are built side by side: postject runs in child processes and gzip in
  // libuv's threads, so a second core shortens the build. Each writes only its own files.
  const settled = await Promise.allSettled(
    arches.map((arch) =>
      buildPlatform({ platform: PLATFORMS[arch], outDir, work: join(work, arch), version, mtime, bundles, lifecycleDescriptor, cacheDir: options.cacheDir ?? defaultReleaseCacheDir() }),
    ),
  );
  const platforms: Partial<Record<ReleaseArch, PlatformArtifacts>> = {};
  const imagePlatforms: ImagePlatform[] = [];
  for (const [i, result] of settled.entries()) {
    const platform = PLATFORMS[arches[i]!];
    if (result.status === 'rejected') {
      const cause = result.reason as Error;
      throw new Error(`building the ${platform.oci.os}/${platform.arch} artifacts: ${cause.message}`, { cause });
    }
    platforms[platform.arch] = result.value.artifacts;
    imagePlatforms.push(result.value.image);
  }
  if (options.image === false) return { version, bundles, mtime, platforms, backends };
  const imageLayout = join(outDir, `extender-v${version}.oci`);
  const image = await buildExtenderImage({
    platforms: imagePlatforms,
    descriptor: extenderDescriptor(version, backends),
    lifecycleDescriptor,
    version,
    layoutDir: imageLayout,
    workDir: join(work, 'image'),
    mtime,
  });
  image.images.forEach((built, i) => (platforms[imagePlatforms[i]!.platform.arch]!.imageManifestDigest = built.manifestDescriptor.digest));
  return { version, bundles, mtime, platforms, backends, imageLayout, imageDigest: image.indexDescriptor.digest };
}
