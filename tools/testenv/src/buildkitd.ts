/**
 * A standalone buildkitd for the tests, next to dockerd's embedded BuildKit.
 *
 * Debian ships no buildkitd or buildctl, but sid's `golang-github-docker-docker-dev`
 * carries BuildKit's Go sources (the version Docker Engine vendors), with
 * `cmd/buildkitd` and `cmd/buildctl`. `ensureBuildkitBinaries` builds both once,
 * offline and static, in a throwaway sid root bootstrapped with mmdebstrap, and
 * keeps only the two binaries in `.cache/testenv/buildkit/<key>/bin/`. What
 * Debian does not package (the gha and azblob cache backends, the
 * fuse-overlayfs and stargz snapshotters) is cut out of `cmd/buildkitd` in the
 * build root's copy; `github.com/moby/profiles/seccomp` comes from the
 * docker.io source tarball in the archive's pool.
 *
 * `startBuildkitd` runs it as root in a private mount namespace with the OCI
 * worker (the machine's runc), GC off, on a unix socket and on a loopback TCP
 * port with mutual TLS.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, copyFile, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import { bootstrapDebianRoot, debianMirror, mmdebstrapVersion } from './engines.ts';
import { defaultCacheRoot, inputsKey, ociArchitecture } from './fixtures.ts';
import { buildAtomically, withLock } from './layout.ts';
import { unmountAll } from './mounts.ts';
import {
  chainError,
  freePort,
  killPid,
  listeningPorts,
  logTail,
  pidAlive,
  processesUsing,
  run,
  startDaemon,
  stopDaemon,
  waitUntil,
  type Daemon,
} from './proc.ts';
import type { TestPki } from './tls.ts';

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

/** What `cmd/buildkitd` imports that Debian does not package: cut out before building. */
export const UNPACKAGED_IMPORTS: readonly RegExp[] = [
  /\/cache\/remotecache\/(?:gha|azblob)$/,
  /^github\.com\/containerd\/fuse-overlayfs-snapshotter(?:\/|$)/,
  /^github\.com\/containerd\/stargz-snapshotter(?:\/|$)/,
];
/** Snapshotter names whose `case` goes with them. */
export const UNPACKAGED_SNAPSHOTTERS: readonly string[] = ['fuse-overlayfs', 'stargz'];

/** The runtime the OCI worker runs RUN steps with: Debian 12's runc, installed by the test environment. */
export const RUNC = '/usr/sbin/runc';

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

// ---------------------------------------------------------------------------
// Cutting what Debian cannot provide out of cmd/buildkitd

/** The name a Go import is referred to by: its alias, else its last path element without a `/vN` suffix or `go-` prefix. */
function importName(alias: string | undefined, path: string): string {
  if (alias) return alias;
  const parts = path.split('/');
  let last = parts.pop() ?? path;
  if (/^v\d+$/.test(last) && parts.length > 0) last = parts.pop() ?? last;
  return last.replace(/^go-/, '').replace(/[-.]/g, '_');
}

function indentOf(line: string): string {
  return /^\s*/.exec(line)?.[0] ?? '';
}

/** Index of the line holding the `}` that closes the block opened at the end of line `start` (counting braces outside strings). */
function blockEnd(lines: readonly string[], start: number): number {
  let depth = 0;
  for (let i = start; i < lines.length; i++) {
    const code = (lines[i] ?? '').replace(/"(?:[^"\\]|\\.)*"|`[^`]*`|'(?:[^'\\]|\\.)*'/g, '""').replace(/\/\/.*$/, '');
    for (const ch of code) {
      if (ch === '{') depth++;
      else if (ch === '}') {
        depth--;
        if (depth === 0) return i;
      }
    }
  }
  throw new Error(`no closing brace for the block at line ${start + 1}`);
}

/**
 * Cuts the parts of a `cmd/buildkitd` Go file that need packages Debian does
 * not have: their imports, map entries naming them, the `case`s of the
 * snapshotters they provide, `if` statements that test them (the `else`
 * branch stays), and top-level declarations whose signature names them. Imports that only
 * the cut code used are left for the compiler to name (see `buildkitd.ts`'s
 * build loop). Throws when anything still refers to a removed import.
 */
export function cutUnpackaged(source: string, file = 'source'): string {
  let lines = source.split('\n');
  const removed = new Set<string>();
  // imports (grouped or single)
  let inImports = false;
  lines = lines.filter((line) => {
    if (/^import \($/.test(line)) inImports = true;
    else if (inImports && /^\)$/.test(line)) inImports = false;
    const m = inImports ? /^\s*(?:([A-Za-z_]\w*)\s+)?"([^"]+)"\s*$/.exec(line) : /^import\s+(?:([A-Za-z_]\w*)\s+)?"([^"]+)"\s*$/.exec(line);
    if (!m || !UNPACKAGED_IMPORTS.some((re) => re.test(m[2]!))) return true;
    removed.add(importName(m[1], m[2]!));
    return false;
  });
  if (removed.size === 0) return source;
  const names = [...removed].map((n) => n.replace(/[$()*+.?[\\\]^{|}]/g, '\\$&')).join('|');
  const uses = new RegExp(`(?<![\\w.])(?:${names})\\.`);

  // single-line map entries: `"name": pkg.Func(),`
  lines = lines.filter((line) => !(uses.test(line) && /^\s*"[^"]*":\s.*,\s*$/.test(line) && !/[{(]\s*,?\s*$/.test(line)));

  // `case "stargz":` … up to the next case/default at the same indentation
  for (const name of UNPACKAGED_SNAPSHOTTERS) {
    const at = lines.findIndex((l) => l.trim() === `case "${name}":`);
    if (at < 0) continue;
    const indent = indentOf(lines[at]!);
    let end = at + 1;
    while (end < lines.length && !(indentOf(lines[end]!) === indent && /^\s*(?:case\b|default:|\})/.test(lines[end]!))) end++;
    lines.splice(at, end - at);
  }

  // `if … pkg.X … {` [`} else {` …] `}`: keep only the else branch
  for (let guard = 0; guard < 100; guard++) {
    const at = lines.findIndex((l) => /^\s*if\s.*\{\s*$/.test(l) && uses.test(l));
    if (at < 0) break;
    const indent = indentOf(lines[at]!);
    const thenEnd = blockEnd(lines, at);
    const closing = lines[thenEnd]!;
    if (/^\s*\}\s*else\s*\{\s*$/.test(closing)) {
      const elseEnd = blockEnd([`${indent}{`, ...lines.slice(thenEnd + 1)], 0) + thenEnd;
      // variables the if statement declared (`if err2 := pkg.X(); err2 == nil {`) are gone with it:
      // statements of the else branch that use them go too
      const init = /^\s*if\s+(.*?)\s*:=[^;]*;/.exec(lines[at]!)?.[1];
      const declared = init ? init.split(',').map((v) => v.trim()).filter((v) => v !== '_') : [];
      const usesDeclared = declared.length > 0 ? new RegExp(`\\b(?:${declared.join('|')})\\b`) : undefined;
      const body = lines.slice(thenEnd + 1, elseEnd).filter((l) => {
        if (!usesDeclared?.test(l)) return true;
        if (/[{(]\s*$/.test(l)) throw new Error(`${file}:${at + 1}: the else branch uses ${declared.join(', ')} in a block: ${l.trim()}`);
        return false;
      });
      lines.splice(at, elseEnd - at + 1, ...body.map((l) => (l.startsWith(`${indent}\t`) ? `${indent}${l.slice(indent.length + 1)}` : l)));
    } else if (/^\s*\}\s*$/.test(closing)) {
      lines.splice(at, thenEnd - at + 1);
    } else {
      throw new Error(`${file}:${at + 1}: cannot cut an if statement ending in "${closing.trim()}"`);
    }
  }

  // top-level declarations typed with a removed import, with their doc comments
  for (let guard = 0; guard < 100; guard++) {
    let cut = false;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      let end: number;
      if (/^(?:func|type|var|const)\s.*\{\s*$/.test(line)) end = blockEnd(lines, i);
      else if (/^(?:var|const)\s+\($/.test(line)) end = lines.indexOf(')', i);
      else continue;
      if (end < 0) throw new Error(`${file}:${i + 1}: no end to the declaration "${line.trim()}"`);
      // only declarations whose header names a removed package (a type in a signature): a use
      // deeper inside a body is left for the final check to report
      if (!uses.test(line)) {
        i = end;
        continue;
      }
      let start = i;
      while (start > 0 && lines[start - 1]!.startsWith('//') && !lines[start - 1]!.startsWith('//go:')) start--;
      lines.splice(start, end - start + 1);
      cut = true;
      break;
    }
    if (!cut) break;
  }

  const left = lines.findIndex((l) => uses.test(l.replace(/\/\/.*$/, '').replace(/"(?:[^"\\]|\\.)*"/g, '""')));
  if (left >= 0) throw new Error(`${file}:${left + 1}: still uses a package Debian does not provide (${[...removed].join(', ')}): ${lines[left]!.trim()}`);
  return lines.join('\n');
}

/** `path:line:col: "pkg" imported and not used` (also `imported as x and not used`) → file and line. */
export function unusedImports(output: string): { file: string; line: number }[] {
  const found: { file: string; line: number }[] = [];
  for (const m of output.matchAll(/^(?:\.\/)?(\S+\.go):(\d+):\d+: "[^"]+" imported (?:as \w+ )?and not used/gm)) found.push({ file: m[1]!, line: Number(m[2]) });
  return found;
}

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

async function buildInRoot(root: string, tmp: string, mirror: string, step: (what: string) => void): Promise<void> {
  const { stdout: queried } = await run('dpkg-query', [`--admindir=${join(root, 'var/lib/dpkg')}`, '-W', '-f=${source:Package}\t${source:Version}\n', SOURCES_PACKAGE]);
  const [sourceName, sourceVersion] = queried.trim().split('\t');
  if (sourceName !== SOURCE_PACKAGE || !sourceVersion) throw new Error(`${SOURCES_PACKAGE} in the build root comes from "${queried.trim()}", expected ${SOURCE_PACKAGE}`);
  const buildDir = join(root, 'build');
  await mkdir(join(buildDir, 'apt-parts'), { recursive: true });

  // The seccomp profile package and the vendored BuildKit version: from the docker.io orig tarball.
  // The Sources index says where it is and what it hashes to; `apt-get source` is not used
  // because it also wants the .dsc and the other components, which a mirror may lack.
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

  // A writable copy of BuildKit's sources with a one-line go.mod (GOPATH mode resolves /vN imports with it).
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

  const { stdout: goVersion } = await inRoot(root, ['go', 'version']);
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
      break;
    } catch (error) {
      const output = (error as { stderr?: string }).stderr ?? '';
      const unused = unusedImports(output);
      if (unused.length === 0 || attempt > 5) throw error;
      const byFile = new Map<string, number[]>();
      for (const u of unused) byFile.set(u.file, [...(byFile.get(u.file) ?? []), u.line]);
      for (const [file, numbers] of byFile) {
        const path = file.startsWith('/') ? join(root, file) : join(copy, file.startsWith(`${BUILDKIT_IMPORT_PATH}/`) ? file.slice(BUILDKIT_IMPORT_PATH.length + 1) : file);
        const lines = (await readFile(path, 'utf8')).split('\n');
        for (const n of [...numbers].sort((a, b) => b - a)) lines.splice(n - 1, 1);
        await writeFile(path, lines.join('\n'));
      }
      step(`removed ${unused.length} import(s) only the cut code used; building again`);
    }
  }
  step('built buildkitd and buildctl');

  const bin = join(tmp, 'bin');
  await mkdir(bin);
  for (const name of ['buildkitd', 'buildctl']) {
    await copyFile(join(buildDir, 'bin', name), join(bin, name));
    await chmod(join(bin, name), 0o755);
  }
  const { stdout: reported } = await run(join(bin, 'buildkitd'), ['--version']);
  if (!reported.includes(version)) throw new Error(`the built buildkitd reports "${reported.trim()}", expected ${version}`);
  const info: BuildInfo = { version, sourcePackage: `${SOURCE_PACKAGE} ${sourceVersion}`, go: goVersion.trim() };
  await writeFile(join(tmp, 'build.json'), `${JSON.stringify(info, null, 2)}\n`);
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
  const present = async (): Promise<boolean> => (await stat(join(dir, 'build.json')).catch(() => undefined))?.isFile() === true;
  if (!(await present())) {
    await mkdir(parent, { recursive: true });
    await withLock(`${dir}.lock`, async () => {
      if (await present()) return;
      await pruneBuildkitCache(parent, key);
      options.log?.(
        `testenv: building buildkitd and buildctl from Debian ${BUILDKIT_SOURCE_SUITE}'s BuildKit sources into ${dir} ` +
          '(once per machine: about 8 minutes on 2 cores, 430 MB of packages and 3.5 GB of disk while building)',
      );
      await buildAtomically(dir, (tmp) => buildBinaries(tmp, mirror, options.log));
    }).catch((error: unknown) => {
      throw chainError(`building buildkitd from Debian ${BUILDKIT_SOURCE_SUITE}'s BuildKit sources into ${dir}`, error);
    });
  }
  const info = JSON.parse(await readFile(join(dir, 'build.json'), 'utf8')) as BuildInfo;
  return { dir, buildkitd: join(dir, 'bin', 'buildkitd'), buildctl: join(dir, 'bin', 'buildctl'), ...info };
}

// ---------------------------------------------------------------------------
// Running

export interface BuildkitdTls {
  /** The test CA: it signed the daemon's certificate and the client's. */
  caFile: string;
  /** Client certificate and key the daemon accepts. */
  certFile: string;
  keyFile: string;
  /** The name the daemon's certificate is for (`localhost`; it also holds `IP:127.0.0.1`). */
  serverName: string;
}

export interface RunningBuildkitd {
  /** BuildKit version (`v0.25.2`). */
  version: string;
  /** `unix://<dir>/buildkitd.sock` (no TLS). */
  unixAddress: string;
  socketPath: string;
  /** `tcp://127.0.0.1:<port>`: mutual TLS only. */
  tcpAddress: string;
  port: number;
  tls: BuildkitdTls;
  buildctl: string;
  daemon: Daemon;
  /** SIGTERM (it prints "forcing shutdown" and a stack trace: normal), then whatever is left under its directory. */
  stop(): Promise<void>;
}

/** buildctl's arguments for the TCP address with the client certificate. */
export function buildctlTlsArgs(tls: BuildkitdTls): string[] {
  return ['--tlscacert', tls.caFile, '--tlscert', tls.certFile, '--tlskey', tls.keyFile, '--tlsservername', tls.serverName];
}

async function workersAnswer(buildctl: string, address: string, extra: readonly string[] = []): Promise<boolean> {
  const { stdout } = await run(buildctl, ['--addr', address, ...extra, 'debug', 'workers'], { timeoutMs: 10_000 });
  return /\bID\b/.test(stdout) && stdout.trim().split('\n').length > 1;
}

/**
 * Starts buildkitd under `dir` (state, socket, config, log): rootful, in a
 * private mount namespace (its overlay mounts go with it), OCI worker with the
 * machine's runc, containerd worker off, GC off, on a unix socket and on a free
 * port of 127.0.0.1 with mutual TLS from `pki`. Resolves once both answer
 * `buildctl debug workers`.
 */
export async function startBuildkitd(
  dir: string,
  options: {
    pki: TestPki;
    binaries?: BuildkitBinaries;
    cacheRoot?: string;
    log?: (line: string) => void;
    /** buildkitd.toml text added to the daemon's own config (e.g. an example's worker and GC settings). */
    config?: string;
  },
): Promise<RunningBuildkitd> {
  const binaries = options.binaries ?? (await ensureBuildkitBinaries({ ...(options.cacheRoot ? { cacheRoot: options.cacheRoot } : {}), ...(options.log ? { log: options.log } : {}) }));
  const stateRoot = join(dir, 'root');
  const socketPath = join(dir, 'buildkitd.sock');
  const configFile = join(dir, 'buildkitd.toml');
  await mkdir(stateRoot, { recursive: true });
  // A config of its own (never /etc/buildkit/buildkitd.toml) that keeps it inside `dir`: its trace
  // socket would be /run/buildkit/otel-grpc.sock, shared by every buildkitd; no CDI device specs.
  await writeFile(configFile, `[otel]\n  socketPath = ${JSON.stringify(join(dir, 'otel-grpc.sock'))}\n\n[cdi]\n  disabled = true\n${options.config ? `\n${options.config}` : ''}`);
  const tls: BuildkitdTls = { caFile: options.pki.caFile, certFile: options.pki.clientCertFile, keyFile: options.pki.clientKeyFile, serverName: 'localhost' };
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const tcpAddress = `tcp://127.0.0.1:${port}`;
    const daemon = startDaemon(
      'buildkitd',
      'unshare',
      [
        '--mount', '--propagation', 'private', '--',
        binaries.buildkitd,
        '--config', configFile,
        '--root', stateRoot,
        '--addr', `unix://${socketPath}`,
        '--addr', tcpAddress,
        '--tlscert', options.pki.serverCertFile,
        '--tlskey', options.pki.serverKeyFile,
        '--tlscacert', options.pki.caFile,
        '--oci-worker=true',
        '--oci-worker-binary', RUNC,
        '--oci-worker-gc=false',
        '--containerd-worker=false',
      ],
      {
        logFile: join(dir, 'buildkitd.log'),
        cwd: dir,
        // runc from /usr/sbin; nothing of the caller's (BUILDKIT_HOST, proxies) leaks in
        env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: dir, XDG_RUNTIME_DIR: dir },
      },
    );
    const stop = async (): Promise<void> => {
      await stopDaemon(daemon, 10_000);
      for (const pid of processesUsing(dir)) await killPid(pid);
      await unmountAll(dir);
    };
    try {
      await waitUntil(
        `buildkitd on ${socketPath} and ${tcpAddress} (pid ${daemon.pid})`,
        async () =>
          listeningPorts(daemon.pid).includes(port) &&
          (await workersAnswer(binaries.buildctl, `unix://${socketPath}`)) &&
          (await workersAnswer(binaries.buildctl, tcpAddress, buildctlTlsArgs(tls))),
        { alive: daemon.alive, timeoutMs: 30_000, intervalMs: 100, onFail: () => logTail(daemon) },
      );
      return { version: binaries.version, unixAddress: `unix://${socketPath}`, socketPath, tcpAddress, port, tls, buildctl: binaries.buildctl, daemon, stop };
    } catch (error) {
      lastError = error;
      const tail = await logTail(daemon);
      await stop();
      // Another process took the port between picking and binding: try another one.
      if (!tail.includes('address already in use')) break;
    }
  }
  throw chainError(`starting buildkitd in ${dir}`, lastError);
}
