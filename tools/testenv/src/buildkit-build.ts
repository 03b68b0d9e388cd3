/**
 * Building buildkitd and buildctl from Debian's packaged BuildKit sources
 * (see `buildkitd.ts`): a throwaway sid root, the seccomp profile package and
 * the vendored BuildKit version from the docker.io orig tarball, a copy of the
 * sources with the unpackaged parts cut out, an offline static `go build`, and
 * a cache entry per set of inputs.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { bootstrapDebianRoot, debianMirror, mmdebstrapVersion } from './engines.ts';
import { defaultCacheRoot, inputsKey, ociArchitecture } from './fixtures.ts';
import { cutUnpackaged, unusedImports } from './go-source-cut.ts';
import { buildAtomically, ensureCachedDir } from './layout.ts';
import { pidAlive, run } from './proc.ts';

/** Bump when the recipe below changes how the binaries are built. */
export const BUILDKIT_RECIPE_VERSION = 1;

/** The suite whose packaged BuildKit sources are built. */
export const BUILDKIT_SOURCE_SUITE = 'sid';

/** BuildKit's sources, the Go toolchain, and the packages buildkitd imports beyond Docker's. */
export const BUILDKIT_BUILD_PACKAGES: readonly string[] = [
  'golang-go',
  'golang-github-docker-docker-dev',
  'golang-github-agext-levenshtein-dev',
  'golang-github-containerd-accelerated-container-image-dev',
  'golang-github-coreos-go-systemd-dev',
  'golang-github-gofrs-flock-dev',
  'golang-github-google-shlex-dev',
  'golang-github-hashicorp-go-immutable-radix-v2-dev',
  'golang-github-mitchellh-hashstructure-dev',
  'golang-github-package-url-packageurl-go-dev',
  'golang-github-pkg-profile-dev',
  'golang-github-spdx-tools-golang-dev',
  'golang-github-tonistiigi-go-archvariant-dev',
];

/** The binary package that installs BuildKit's sources, and the source package it comes from. */
const SOURCES_PACKAGE = 'golang-github-docker-docker-dev';
const SOURCE_PACKAGE = 'docker.io';
const BUILDKIT_IMPORT_PATH = 'github.com/moby/buildkit';
const GOCODE = '/usr/share/gocode/src';

export interface BuildkitBinaries {
  /** The cache entry (`<cacheRoot>/buildkit/<key>`). */
  dir: string;
  buildkitd: string;
  buildctl: string;
  /** BuildKit's version as built in (`v0.25.2`): the one Docker Engine vendors in the packaged sources. */
  version: string;
  /** The Debian source package the sources came from (`docker.io 28.5.2+dfsg4-5`). */
  sourcePackage: string;
  /** `go version` of the toolchain that built them. */
  go: string;
}

interface BuildInfo {
  version: string;
  sourcePackage: string;
  go: string;
}

type Step = (what: string) => void;

// ---------------------------------------------------------------------------
// Finding the docker.io source tarball

interface SourceStanza {
  version: string;
  directory: string;
  files: { name: string; size: number; sha256: string }[];
}

/** Parses `apt-cache showsrc` output into its stanzas (version, directory, sha256 file list). */
export function parseShowsrc(text: string): SourceStanza[] {
  const stanzas: SourceStanza[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const version = /^Version:\s*(\S+)/m.exec(block)?.[1];
    const directory = /^Directory:\s*(\S+)/m.exec(block)?.[1];
    const sums = /^Checksums-Sha256:\s*\n((?:[ \t]+\S.*\n?)+)/m.exec(block)?.[1] ?? '';
    const files = [...sums.matchAll(/^[ \t]+([0-9a-f]{64})\s+(\d+)\s+(\S+)/gm)].map((m) => ({ sha256: m[1]!, size: Number(m[2]), name: m[3]! }));
    if (version && directory) stanzas.push({ version, directory, files });
  }
  return stanzas;
}

/** `28.5.2+dfsg4-5` → `28.5.2+dfsg4` (no epoch, no Debian revision). */
function upstreamVersion(version: string): string {
  return version.replace(/^\d+:/, '').replace(/-[^-]*$/, '');
}

/** The main orig tarball of `version` in the stanzas. */
export function origTarball(stanzas: readonly SourceStanza[], pkg: string, version: string): { url: string; name: string; size: number; sha256: string; directory: string } {
  const stanza = stanzas.find((s) => s.version === version);
  if (!stanza) throw new Error(`the ${pkg} sources of ${version} are not in the index (it has ${stanzas.map((s) => s.version).join(', ') || 'none'})`);
  const prefix = `${pkg}_${upstreamVersion(version)}.orig.tar.`;
  const file = stanza.files.find((f) => f.name.startsWith(prefix));
  if (!file) throw new Error(`${pkg} ${version} lists no ${prefix}* (files: ${stanza.files.map((f) => f.name).join(', ')})`);
  return { ...file, url: `${stanza.directory}/${file.name}`, directory: stanza.directory };
}

async function download(url: string, to: string, expected: { size: number; sha256: string }): Promise<void> {
  const response = await fetch(url);
  if (!response.ok || !response.body) throw new Error(`GET ${url}: HTTP ${response.status}`);
  await pipeline(Readable.fromWeb(response.body as import('node:stream/web').ReadableStream), createWriteStream(to));
  const hash = createHash('sha256');
  hash.update(await readFile(to));
  const sha256 = hash.digest('hex');
  const { size } = await stat(to);
  if (sha256 !== expected.sha256 || size !== expected.size) {
    throw new Error(`GET ${url}: got ${size} bytes with sha256 ${sha256}, the archive's index says ${expected.size} bytes with ${expected.sha256}`);
  }
}

// ---------------------------------------------------------------------------
// Building

/** Runs a command chrooted into `root`, in a private mount namespace with /proc mounted (gone with the process). */
function inRoot(root: string, argv: readonly string[], options: { env?: Record<string, string>; timeoutMs?: number; cwd?: string } = {}): Promise<{ stdout: string; stderr: string }> {
  const env = Object.entries({ PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin', HOME: '/build', LANG: 'C.UTF-8', ...options.env }).map(([k, v]) => `${k}=${v}`);
  return run(
    'unshare',
    [
      '--mount', '--propagation', 'private', '--',
      '/bin/sh', '-c', 'set -e; root=$1; dir=$2; shift 2; mount -t proc proc "$root/proc"; exec chroot "$root" /bin/sh -c \'cd "$0" && exec "$@"\' "$dir" "$@"',
      'in-root', root, options.cwd ?? '/', '/usr/bin/env', '-i', ...env, ...argv,
    ],
    { display: `${argv.join(' ')} (in ${root})`, ...(options.timeoutMs ? { timeoutMs: options.timeoutMs } : {}) },
  );
}

async function buildInputs(mirror: string): Promise<Record<string, unknown>> {
  return { recipe: BUILDKIT_RECIPE_VERSION, suite: BUILDKIT_SOURCE_SUITE, mirror, packages: BUILDKIT_BUILD_PACKAGES, architecture: ociArchitecture(), mmdebstrap: await mmdebstrapVersion() };
}

async function filesUnder(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).map((p) => join(dir, p));
}

async function buildBinaries(tmp: string, mirror: string, log?: (line: string) => void): Promise<void> {
  const root = join(tmp, 'root');
  const started = Date.now();
  const step = (what: string) => log?.(`testenv: buildkit: ${what} (${Math.round((Date.now() - started) / 1000)} s)`);
  await bootstrapDebianRoot(root, { suite: BUILDKIT_SOURCE_SUITE, mirror, packages: BUILDKIT_BUILD_PACKAGES, timeoutMs: 30 * 60_000 });
  step(`bootstrapped the ${BUILDKIT_SOURCE_SUITE} build root`);
  try {
    await buildInRoot(root, tmp, mirror, step);
  } finally {
    await rm(root, { recursive: true, force: true, maxRetries: 3 });
  }
  step('removed the build root; done');
}

async function buildInRoot(root: string, tmp: string, mirror: string, step: Step): Promise<void> {
  const sourceVersion = await sourcePackageVersion(root);
  const buildDir = join(root, 'build');
  await mkdir(join(buildDir, 'apt-parts'), { recursive: true });
  const version = await takeFromOrigTarball(root, buildDir, mirror, sourceVersion, step);
  const copy = await writableSourceCopy(root, buildDir);
  const { stdout: goVersion } = await inRoot(root, ['go', 'version']);
  await goBuild(root, copy, version, step);
  step('built buildkitd and buildctl');
  await installBinaries(buildDir, join(tmp, 'bin'), version);
  const info: BuildInfo = { version, sourcePackage: `${SOURCE_PACKAGE} ${sourceVersion}`, go: goVersion.trim() };
  await writeFile(join(tmp, 'build.json'), `${JSON.stringify(info, null, 2)}\n`);
}

/** The version of the docker.io source package the build root's BuildKit sources come from. */
async function sourcePackageVersion(root: string): Promise<string> {
  const { stdout: queried } = await run('dpkg-query', [`--admindir=${join(root, 'var/lib/dpkg')}`, '-W', '-f=${source:Package}\t${source:Version}\n', SOURCES_PACKAGE]);
  const [sourceName, sourceVersion] = queried.trim().split('\t');
  if (sourceName !== SOURCE_PACKAGE || !sourceVersion) throw new Error(`${SOURCES_PACKAGE} in the build root comes from "${queried.trim()}", expected ${SOURCE_PACKAGE}`);
  return sourceVersion;
}

/**
 * The seccomp profile package (into `<buildDir>/profiles`) and the vendored
 * BuildKit version, from the docker.io orig tarball. The Sources index says
 * where it is and what it hashes to; `apt-get source` is not used because it
 * also wants the .dsc and the other components, which a mirror may lack.
 */
async function takeFromOrigTarball(root: string, buildDir: string, mirror: string, sourceVersion: string, step: Step): Promise<string> {
  await writeFile(join(buildDir, 'deb-src.list'), `deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror} ${BUILDKIT_SOURCE_SUITE} main\n`);
  const aptOptions = ['-o', 'Dir::Etc::SourceList=/build/deb-src.list', '-o', 'Dir::Etc::SourceParts=/build/apt-parts', '-o', 'Acquire::Check-Valid-Until=false'];
  await inRoot(root, ['apt-get', '-q', ...aptOptions, 'update'], { timeoutMs: 10 * 60_000 });
  const { stdout: showsrc } = await inRoot(root, ['apt-cache', ...aptOptions, 'showsrc', '--only-source', SOURCE_PACKAGE]);
  const orig = origTarball(parseShowsrc(showsrc), SOURCE_PACKAGE, sourceVersion);
  const origFile = join(buildDir, orig.name);
  await download(`${mirror}/${orig.url}`, origFile, orig);
  const unpacked = join(buildDir, 'orig');
  await mkdir(unpacked);
  await run('tar', ['-x', '-f', origFile, '-C', unpacked, '--wildcards', '*/engine/vendor/github.com/moby/profiles/seccomp/*', '*/engine/vendor.mod']);
  const unpackedFiles = await filesUnder(unpacked);
  const vendorMod = unpackedFiles.find((f) => f.endsWith('/engine/vendor.mod'));
  const seccompFile = unpackedFiles.find((f) => f.endsWith('/engine/vendor/github.com/moby/profiles/seccomp/seccomp.go'));
  if (!vendorMod || !seccompFile) throw new Error(`${orig.name} has no engine/vendor.mod or engine/vendor/github.com/moby/profiles/seccomp`);
  const version = /^\s*github\.com\/moby\/buildkit\s+(v\d+\.\d+\.\d+\S*)/m.exec(await readFile(vendorMod, 'utf8'))?.[1];
  if (!version) throw new Error(`${orig.name}: engine/vendor.mod names no github.com/moby/buildkit version`);
  const profiles = join(buildDir, 'profiles/src/github.com/moby/profiles');
  await mkdir(profiles, { recursive: true });
  await rename(join(seccompFile, '..'), join(profiles, 'seccomp'));
  await rm(unpacked, { recursive: true });
  await rm(origFile);
  step(`took github.com/moby/profiles/seccomp and BuildKit ${version} from ${orig.name}`);
  return version;
}

/** A writable copy of BuildKit's sources with a one-line go.mod (GOPATH mode resolves /vN imports with it), unpackaged parts cut. */
async function writableSourceCopy(root: string, buildDir: string): Promise<string> {
  const copy = join(buildDir, 'gopath/src', BUILDKIT_IMPORT_PATH);
  await mkdir(join(copy, '..'), { recursive: true });
  await run('cp', ['-a', join(root, GOCODE, BUILDKIT_IMPORT_PATH), copy]);
  await writeFile(join(copy, 'go.mod'), `module ${BUILDKIT_IMPORT_PATH}\n`);
  const cmdDir = join(copy, 'cmd/buildkitd');
  for (const name of (await readdir(cmdDir)).filter((n) => n.endsWith('.go') && !n.endsWith('_test.go'))) {
    const path = join(cmdDir, name);
    const text = await readFile(path, 'utf8');
    const cut = cutUnpackaged(text, `cmd/buildkitd/${name}`);
    if (cut !== text) await writeFile(path, cut);
  }
  return copy;
}

/** An offline, static `go build` of both commands into `/build/bin/` of the root. */
async function goBuild(root: string, copy: string, version: string, step: Step): Promise<void> {
  const env = {
    GO111MODULE: 'off',
    GOPROXY: 'off',
    GOTELEMETRY: 'off',
    CGO_ENABLED: '0',
    GOPATH: `/build/gopath:/usr/share/gocode:/build/profiles`,
    GOCACHE: '/build/go-cache',
  };
  const args = [
    'go', 'build', '-trimpath', '-o', '/build/bin/',
    '-tags', 'osusergo netgo static_build seccomp',
    '-ldflags', `-s -w -X ${BUILDKIT_IMPORT_PATH}/version.Version=${version}`,
    `${BUILDKIT_IMPORT_PATH}/cmd/buildkitd`, `${BUILDKIT_IMPORT_PATH}/cmd/buildctl`,
  ];
  // Cutting code leaves imports only it used: the compiler names them, they go, and the build is repeated.
  for (let attempt = 1; ; attempt++) {
    try {
      await inRoot(root, args, { env, cwd: `/build/gopath/src/${BUILDKIT_IMPORT_PATH}`, timeoutMs: 60 * 60_000 });
      return;
    } catch (error) {
      const output = (error as { stderr?: string }).stderr ?? '';
      const unused = unusedImports(output);
      if (unused.length === 0 || attempt > 5) throw error;
      await removeLines(root, copy, unused);
      step(`removed ${unused.length} import(s) only the cut code used; building again`);
    }
  }
}

/** Remove the lines the compiler named (paths as `go build` prints them: absolute in the root, or in the copy). */
async function removeLines(root: string, copy: string, found: readonly { file: string; line: number }[]): Promise<void> {
  const byFile = new Map<string, number[]>();
  for (const u of found) byFile.set(u.file, [...(byFile.get(u.file) ?? []), u.line]);
  for (const [file, numbers] of byFile) {
    const path = file.startsWith('/') ? join(root, file) : join(copy, file.startsWith(`${BUILDKIT_IMPORT_PATH}/`) ? file.slice(BUILDKIT_IMPORT_PATH.length + 1) : file);
    const lines = (await readFile(path, 'utf8')).split('\n');
    for (const n of [...numbers].sort((a, b) => b - a)) lines.splice(n - 1, 1);
    await writeFile(path, lines.join('\n'));
  }
}

/** Copy the two binaries out of the root and check buildkitd reports the version built in. */
async function installBinaries(buildDir: string, bin: string, version: string): Promise<void> {
  await mkdir(bin);
  for (const name of ['buildkitd', 'buildctl']) {
    await copyFile(join(buildDir, 'bin', name), join(bin, name));
    await chmod(join(bin, name), 0o755);
  }
  const { stdout: reported } = await run(join(bin, 'buildkitd'), ['--version']);
  if (!reported.includes(version)) throw new Error(`the built buildkitd reports "${reported.trim()}", expected ${version}`);
}

/** Removes entries of earlier inputs, and build directories left by processes that are gone. */
async function pruneBuildkitCache(parent: string, keep: string): Promise<void> {
  for (const entry of await readdir(parent).catch(() => [] as string[])) {
    if (entry === keep || entry.endsWith('.lock')) continue;
    const owner = /\.tmp-(\d+)-/.exec(entry)?.[1];
    if (owner !== undefined && pidAlive(Number(owner))) continue;
    await rm(join(parent, entry), { recursive: true, force: true });
  }
}

/**
 * buildkitd and buildctl built from Debian sid's BuildKit sources: from the
 * cache, or built now when it has none for the current inputs (the first time
 * on a machine: about 8 minutes on 2 cores, 430 MB of packages and 3.5 GB of disk
 * while building; only the two binaries, about 70 MB, are kept).
 */
export async function ensureBuildkitBinaries(options: { cacheRoot?: string; log?: (line: string) => void } = {}): Promise<BuildkitBinaries> {
  const parent = join(options.cacheRoot ?? defaultCacheRoot(), 'buildkit');
  const mirror = await debianMirror();
  const key = inputsKey(await buildInputs(mirror));
  const dir = join(parent, key);
  await ensureCachedDir(dir, 'build.json', `building buildkitd from Debian ${BUILDKIT_SOURCE_SUITE}'s BuildKit sources into ${dir}`, async () => {
    await pruneBuildkitCache(parent, key);
    options.log?.(
      `testenv: building buildkitd and buildctl from Debian ${BUILDKIT_SOURCE_SUITE}'s BuildKit sources into ${dir} ` +
        '(once per machine: about 8 minutes on 2 cores, 430 MB of packages and 3.5 GB of disk while building)',
    );
    await buildAtomically(dir, (tmp) => buildBinaries(tmp, mirror, options.log));
  });
  const info = JSON.parse(await readFile(join(dir, 'build.json'), 'utf8')) as BuildInfo;
  return { dir, buildkitd: join(dir, 'bin', 'buildkitd'), buildctl: join(dir, 'bin', 'buildctl'), ...info };
}
