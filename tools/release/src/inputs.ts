/**
 * What a platform's artifacts are made from: the Node binary the blob is injected into,
 * the `@napi-rs/xattr` addon and glibc's loader and libraries.
 *
 * For the build machine's platform (linux/amd64) they are the ones in `node_modules` and
 * `/lib/x86_64-linux-gnu`. For the others they are downloaded into a cache directory
 * and reused from there by later builds:
 * - Node and the addon with `npm pack` (never installed: npm refuses packages for another
 *   CPU), checked against the `dist.integrity` the registry gives for that version. Node is
 *   the exact version of the build machine's, as a blob only runs in the version that made it.
 * - The libraries from Debian's packages for that architecture, downloaded by apt with a
 *   private state directory (the system's sources and keys, nothing added to the system's
 *   architectures or lists) and unpacked with `dpkg-deb -x`.
 * A download that fails fails the build, naming what could not be fetched.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, readdir, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { defaultCacheRoot } from '@cnb-extender/testenv';
import { REPO_ROOT } from './bundle.ts';
import { nodeBinary, nodeVersion } from './sea.ts';
import { LIBRARY_PACKAGES, sharedLibraryNames, type LibraryPackage, type ReleasePlatform } from './platforms.ts';

const exec = promisify(execFile);

/** `<testenv cache>/release` (`.cache/testenv/release`, or below CNB_TESTENV_CACHE). */
export function defaultReleaseCacheDir(): string {
  return join(defaultCacheRoot(), 'release');
}

export interface PlatformInputs {
  platform: ReleasePlatform;
  /** The Node binary to inject the blob into. */
  node: string;
  /** The xattr addon's `.node` file. */
  xattrAddon: string;
  /** The loader and C libraries to ship: [file name, content]. */
  libraries: [string, Buffer][];
  /** Version of the Node binary (the npm package `platform.nodePackage`). */
  nodeVersion: string;
  /** Version of `@napi-rs/xattr` and of its platform package `platform.xattrPackage`. */
  xattrVersion: string;
  /** The Debian packages the libraries come from, with their versions. */
  libraryPackages: DebianPackage[];
}

/** A Debian package as installed or downloaded: `libc6`, `2.36-9+deb12u14`, `amd64`. */
export interface DebianPackage {
  name: LibraryPackage;
  version: string;
  arch: string;
}

/** `@napi-rs/xattr` as libs/oci resolves it: its directory and version. */
export async function xattrPackage(): Promise<{ dir: string; version: string }> {
  const manifest = createRequire(join(REPO_ROOT, 'libs', 'oci', 'package.json')).resolve('@napi-rs/xattr/package.json');
  return { dir: dirname(manifest), version: (JSON.parse(await readFile(manifest, 'utf8')) as { version: string }).version };
}

export async function platformInputs(platform: ReleasePlatform, cacheDir: string = defaultReleaseCacheDir()): Promise<PlatformInputs> {
  const xattr = await xattrPackage();
  const version = await nodeVersion();
  if (platform.native) {
    return {
      platform,
      node: nodeBinary(),
      xattrAddon: createRequire(join(xattr.dir, 'package.json')).resolve(`${platform.xattrPackage}/${platform.xattrFile}`),
      libraries: await readLibraries(platform, '/'),
      nodeVersion: version,
      xattrVersion: xattr.version,
      libraryPackages: await installedPackages(LIBRARY_PACKAGES, platform.debianArch),
    };
  }
  const node = join(await fetchNpmPackage(platform.nodePackage, version, cacheDir, ['bin/node']), 'bin', 'node');
  const xattrAddon = join(await fetchNpmPackage(platform.xattrPackage, xattr.version, cacheDir, [platform.xattrFile]), platform.xattrFile);
  for (const file of [node, xattrAddon]) {
    const machine = await elfMachine(file);
    if (machine !== platform.elfMachine) throw new Error(`${file} is not an ELF file for ${platform.arch} (e_machine ${machine}, expected ${platform.elfMachine})`);
  }
  const root = await debianRoot(LIBRARY_PACKAGES, platform.debianArch, cacheDir);
  return {
    platform,
    node,
    xattrAddon,
    libraries: await readLibraries(platform, root),
    nodeVersion: version,
    xattrVersion: xattr.version,
    libraryPackages: await downloadedPackages(root, LIBRARY_PACKAGES),
  };
}

/** The versions of Debian packages installed on this machine (`dpkg-query`). */
export async function installedPackages(names: readonly LibraryPackage[], arch: string): Promise<DebianPackage[]> {
  const out = await tool('dpkg-query', ['-W', '-f', '${Package}\t${Version}\n', ...names.map((n) => `${n}:${arch}`)], '/', 'the build machine must be Debian');
  const versions = new Map(out.trim().split('\n').map((line) => line.split('\t') as [string, string]));
  return names.map((name) => {
    const version = versions.get(name);
    if (!version) throw new Error(`reading the version of the Debian package ${name}:${arch}: dpkg-query does not list it`);
    return { name, version, arch };
  });
}

/** The versions of the packages `debianRoot` unpacked into `root`, from the file names its `packages.txt` lists. */
export async function downloadedPackages(root: string, names: readonly LibraryPackage[]): Promise<DebianPackage[]> {
  const listing = join(dirname(root), 'packages.txt');
  const debs = (await readFile(listing, 'utf8')).split('\n').filter(Boolean);
  return names.map((name) => {
    // apt-get download names them <package>_<version with %3a for ':'>_<arch>.deb
    const deb = debs.find((d) => d.startsWith(`${name}_`));
    const m = deb ? /^[^_]+_([^_]+)_([^_]+)\.deb$/.exec(deb) : null;
    if (!m) throw new Error(`reading the version of the Debian package ${name}: ${listing} names no ${name}_<version>_<arch>.deb`);
    return { name, version: decodeURIComponent(m[1]!), arch: m[2]! };
  });
}

/** The `e_machine` of an ELF file (62 x86-64, 183 aarch64), or undefined for anything else. */
export async function elfMachine(path: string): Promise<number | undefined> {
  const handle = await open(path, 'r');
  try {
    const header = Buffer.alloc(20);
    const { bytesRead } = await handle.read(header, 0, 20, 0);
    // 64-bit little-endian ELF only: what both platforms use
    if (bytesRead < 20 || header.readUInt32BE(0) !== 0x7f454c46 || header[4] !== 2 || header[5] !== 1) return undefined;
    return header.readUInt16LE(18);
  } finally {
    await handle.close();
  }
}

/** The loader and libraries of `platform` below `root` (`/` for the build machine's own). */
export async function readLibraries(platform: ReleasePlatform, root: string): Promise<[string, Buffer][]> {
  const dirs = [join(root, 'lib', platform.multiarch), join(root, 'usr', 'lib', platform.multiarch)];
  const out: [string, Buffer][] = [];
  for (const name of sharedLibraryNames(platform)) {
    let found: string | undefined;
    for (const dir of dirs) {
      found = await realpath(join(dir, name)).catch(() => undefined);
      if (found) break;
    }
    if (!found) throw new Error(`reading the ${platform.oci.os}/${platform.arch} C libraries: ${name} is in none of ${dirs.join(', ')}`);
    out.push([name, await readFile(found)]);
  }
  return out;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Move a finished download into the cache; another build may have put it there first. */
async function publish(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    if ((code === 'ENOTEMPTY' || code === 'EEXIST') && (await exists(to))) return;
    throw cause;
  }
}

async function tool(cmd: string, args: string[], cwd: string, hint: string): Promise<string> {
  try {
    return (await exec(cmd, args, { cwd, maxBuffer: 64 << 20 })).stdout;
  } catch (cause) {
    const e = cause as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error(`${cmd} is not installed (${hint})`, { cause });
    // the first lines that say what went wrong: no warnings, stack frames or npm's bookkeeping
    const noise = /^(npm warn|\s*at |npm error\s*$|npm error (code|syscall|errno|\s+at|A complete log) )/i;
    const detail = (e.stderr ?? '').split('\n').filter((l) => l.trim() && !noise.test(l)).slice(0, 2).map((l) => l.replace(/^npm error /, '')).join('; ') || e.message;
    throw new Error(`${cmd} ${args.join(' ')} failed: ${detail}`, { cause });
  }
}

/**
 * `<name>@<version>` from the npm registry, its integrity checked: the directory holding
 * `package.json` and `files` (paths inside the package). Cached in
 * `<cacheDir>/npm/<name>@<version>/`.
 */
export async function fetchNpmPackage(name: string, version: string, cacheDir: string, files: readonly string[]): Promise<string> {
  const spec = `${name}@${version}`;
  const dir = join(cacheDir, 'npm', spec.replace('/', '+'));
  if (await exists(dir)) return dir;
  const npm = (args: string[], cwd: string) => tool('npm', args, cwd, 'it comes with Node.js');
  await mkdir(dirname(dir), { recursive: true });
  const tmp = await mkdtemp(`${dir}.tmp-`);
  try {
    const integrity = (await npm(['view', spec, 'dist.integrity'], tmp)).trim();
    if (!integrity) throw new Error(`the registry has no version ${version} of ${name}`);
    const [algorithm, expected] = [integrity.slice(0, integrity.indexOf('-')), integrity.slice(integrity.indexOf('-') + 1)];
    if (algorithm !== 'sha512') throw new Error(`the registry gives no sha512 integrity for it (${JSON.stringify(integrity)})`);
    await npm(['pack', spec, '--ignore-scripts', '--pack-destination', tmp], tmp);
    const tarballs = (await readdir(tmp)).filter((f) => f.endsWith('.tgz'));
    if (tarballs.length !== 1) throw new Error(`npm pack left ${tarballs.length} tarballs in ${tmp}`);
    const tarball = join(tmp, tarballs[0]!);
    const hash = createHash('sha512');
    await pipeline(createReadStream(tarball), hash);
    const actual = hash.digest('base64');
    if (actual !== expected) throw new Error(`${tarballs[0]} has integrity sha512-${actual}, the registry says ${integrity}`);
    const out = join(tmp, 'package');
    await mkdir(out);
    await tool('tar', ['-xzf', tarball, '-C', out, '--strip-components=1', '--no-same-owner', ...['package.json', ...files].map((f) => `package/${f}`)], tmp, 'apt-get install tar');
    const manifest = JSON.parse(await readFile(join(out, 'package.json'), 'utf8')) as { name?: string; version?: string };
    if (manifest.name !== name || manifest.version !== version) throw new Error(`the tarball holds ${manifest.name}@${manifest.version}`);
    await publish(out, dir);
    return dir;
  } catch (cause) {
    throw new Error(`fetching ${spec} from the npm registry: ${(cause as Error).message}`, { cause });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/**
 * The Debian 12 packages `packages` for architecture `arch`, unpacked into one root
 * directory (returned). Cached in `<cacheDir>/debian/<arch>/`, with `packages.txt`
 * naming the versions.
 */
export async function debianRoot(packages: readonly string[], arch: string, cacheDir: string): Promise<string> {
  const dir = join(cacheDir, 'debian', `${arch}-${[...packages].sort().join('+')}`);
  if (await exists(dir)) return join(dir, 'root');
  await mkdir(dirname(dir), { recursive: true });
  const tmp = await mkdtemp(`${dir}.tmp-`);
  const hint = 'the build machine must be Debian';
  try {
    // apt with its own state: the system's sources and keys, lists for `arch` only, no locks on the system's
    const state = join(tmp, 'apt');
    for (const d of ['lists/partial', 'archives/partial']) await mkdir(join(state, d), { recursive: true });
    await writeFile(join(state, 'status'), '');
    const settings: Record<string, string> = {
      'Dir::State': state,
      'Dir::State::status': join(state, 'status'),
      'Dir::Cache': state,
      'Dir::Cache::pkgcache': '',
      'Dir::Cache::srcpkgcache': '',
      'APT::Architecture': arch,
      'APT::Architectures::': arch,
      'Debug::NoLocking': 'true',
      // downloads into directories of ours, which apt's sandbox user may not write
      'APT::Sandbox::User': 'root',
    };
    const apt = Object.entries(settings).flatMap(([key, value]) => ['-o', `${key}=${value}`]);
    await tool('apt-get', [...apt, '-q', 'update'], tmp, hint);
    const debs = join(tmp, 'debs');
    await mkdir(debs);
    await tool('apt-get', [...apt, '-q', 'download', ...packages.map((p) => `${p}:${arch}`)], debs, hint);
    const out = join(tmp, 'out');
    await mkdir(join(out, 'root'), { recursive: true });
    const names = (await readdir(debs)).filter((f) => f.endsWith('.deb')).sort();
    if (names.length !== packages.length) throw new Error(`apt-get download gave ${names.join(', ') || 'nothing'} for ${packages.join(' ')}`);
    for (const deb of names) await tool('dpkg-deb', ['-x', join(debs, deb), join(out, 'root')], tmp, hint);
    await writeFile(join(out, 'packages.txt'), `${names.join('\n')}\n`);
    await publish(out, dir);
    return join(dir, 'root');
  } catch (cause) {
    throw new Error(`downloading the Debian packages ${packages.map((p) => `${p}:${arch}`).join(' ')}: ${(cause as Error).message}`, { cause });
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
