/**
 * The container engines platforms run today (Docker Engine 28 with BuildKit
 * 0.25, buildah 1.43), next to Debian 12's own (docker.io 20.10, buildah 1.28).
 *
 * Debian 12 cannot install them, but Debian's newer suites carry them: a
 * minbase root of sid (or trixie) is bootstrapped once with mmdebstrap and
 * cached under `.cache/testenv/engines/`. Its programs run on this machine in a
 * private mount namespace where the root's `/usr`, `/etc/ld.so.cache` and
 * `/etc/containers` are bound over the machine's (both are merged-/usr), so
 * every path of the machine stays where it is: the engines read and write the
 * same work directories, sockets and layouts as Debian 12's do. The `enter`
 * script does that; `bin/docker` and `bin/buildah` are wrappers a person can
 * put first in PATH or hand to the extender.
 */
import { chmod, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { defaultCacheRoot, inputsKey, ociArchitecture } from './fixtures.ts';
import { buildAtomically, ensureCachedDir } from './layout.ts';
import { run } from './proc.ts';

/** Bump when the recipe below changes what the root contains. */
export const ENGINE_ROOT_RECIPE_VERSION = 1;

/** Suites whose engines are current; sid first, trixie the fallback (`CNB_TESTENV_ENGINE_SUITE=trixie`). */
export const ENGINE_SUITES = ['sid', 'trixie'] as const;
export type EngineSuite = (typeof ENGINE_SUITES)[number];

/** What the root holds: dockerd with its CLI and buildx, buildah with what 1.43 needs at run time (netavark). */
export const ENGINE_PACKAGES: readonly string[] = [
  'docker.io',
  'docker-cli',
  'docker-buildx',
  'ca-certificates',
  'iptables',
  'buildah',
  'netavark',
  'uidmap',
];

/** Packages whose versions the root reports (`versions.json`). */
const REPORTED_PACKAGES = ['docker.io', 'buildah', 'containerd', 'runc'];

export interface EngineRoot {
  suite: EngineSuite;
  /** The bootstrapped root (read-only for its users). */
  root: string;
  /** Debian package versions in the root (`docker.io`, `buildah`, `containerd`, `runc`). */
  packages: Record<string, string>;
}

/** The suite chosen by `CNB_TESTENV_ENGINE_SUITE` (default sid); anything else is refused. */
export function engineSuiteFromEnv(env: NodeJS.ProcessEnv = process.env): EngineSuite {
  const value = env['CNB_TESTENV_ENGINE_SUITE'];
  if (value === undefined || value === '') return 'sid';
  return checkedSuite(value);
}

function checkedSuite(value: string): EngineSuite {
  if ((ENGINE_SUITES as readonly string[]).includes(value)) return value as EngineSuite;
  throw new Error(`CNB_TESTENV_ENGINE_SUITE=${value}: expected one of ${ENGINE_SUITES.join(', ')}`);
}

/** The machine's Debian archive (from its apt sources), so the root comes from the same mirror as its packages. */
export async function debianMirror(): Promise<string> {
  const files: string[] = [];
  if (existsSync('/etc/apt/sources.list')) files.push('/etc/apt/sources.list');
  const dir = '/etc/apt/sources.list.d';
  if (existsSync(dir)) for (const name of (await readdir(dir)).sort()) if (name.endsWith('.list') || name.endsWith('.sources')) files.push(join(dir, name));
  for (const file of files) {
    for (const line of (await readFile(file, 'utf8')).split('\n')) {
      if (line.trimStart().startsWith('#')) continue;
      const uris = /^\s*URIs:\s*(.+)$/.exec(line)?.[1]?.split(/\s+/) ?? /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)/.exec(line)?.slice(1) ?? [];
      const found = uris.find((u) => /\/debian\/?$/.test(u));
      if (found) return found.replace(/\/$/, '');
    }
  }
  return 'http://deb.debian.org/debian';
}

/** `mmdebstrap --version`, part of a cached root's inputs. */
export async function mmdebstrapVersion(): Promise<string> {
  return (await run('mmdebstrap', ['--version']).then((r) => r.stdout, () => '')).trim();
}

/** A minbase root of `suite` from `mirror` with `packages` (no recommends) in `root`. */
export async function bootstrapDebianRoot(root: string, options: { suite: string; mirror: string; packages: readonly string[]; timeoutMs: number }): Promise<void> {
  await run(
    'mmdebstrap',
    [
      '--quiet',
      '--variant=minbase',
      // mmdebstrap does not read the machine's apt.conf.d; the archive's Release files look expired to some clocks
      '--aptopt=Apt::Install-Recommends "false"',
      '--aptopt=Acquire::Check-Valid-Until "false"',
      `--include=${options.packages.join(',')}`,
      options.suite,
      root,
      `deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${options.mirror} ${options.suite} main`,
    ],
    { timeoutMs: options.timeoutMs },
  );
}

async function rootInputs(suite: EngineSuite, mirror: string): Promise<Record<string, unknown>> {
  return { recipe: ENGINE_ROOT_RECIPE_VERSION, suite, mirror, packages: ENGINE_PACKAGES, architecture: ociArchitecture(), mmdebstrap: await mmdebstrapVersion() };
}

async function bootstrap(tmp: string, suite: EngineSuite, mirror: string): Promise<void> {
  const root = join(tmp, 'root');
  await bootstrapDebianRoot(root, { suite, mirror, packages: ENGINE_PACKAGES, timeoutMs: 15 * 60_000 });
  const { stdout } = await run('dpkg-query', [`--admindir=${join(root, 'var/lib/dpkg')}`, '-W', '-f=${Package}\t${Version}\n', ...REPORTED_PACKAGES]);
  const packages: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const [name, version] = line.split('\t');
    if (name && version) packages[name] = version;
  }
  for (const wanted of ['docker.io', 'buildah']) if (!packages[wanted]) throw new Error(`the ${suite} root has no ${wanted}`);
  await writeFile(join(tmp, 'versions.json'), `${JSON.stringify(packages, null, 2)}\n`);
}

/** Removes roots of earlier inputs of the same suite (each is a few hundred MB). */
async function pruneOthers(parent: string, keep: string, suite: EngineSuite): Promise<void> {
  for (const entry of await readdir(parent).catch(() => [] as string[])) {
    if (entry.startsWith(`${suite}-`) && entry !== keep && !entry.includes('.tmp-') && !entry.endsWith('.lock')) await rm(join(parent, entry), { recursive: true, force: true });
  }
}

/**
 * The engine root of the suite `CNB_TESTENV_ENGINE_SUITE` names, or by default
 * sid's, falling back to trixie's when sid's cannot be bootstrapped (sid is
 * unstable: a transition can leave it uninstallable for a day). The fallback is
 * logged; a suite named explicitly has none.
 */
export async function ensureCurrentEngineRoot(options: { cacheRoot?: string; log?: (line: string) => void; env?: NodeJS.ProcessEnv } = {}): Promise<EngineRoot> {
  const named = (options.env ?? process.env)['CNB_TESTENV_ENGINE_SUITE'];
  const base = { ...(options.cacheRoot ? { cacheRoot: options.cacheRoot } : {}), ...(options.log ? { log: options.log } : {}) };
  if (named) return ensureEngineRoot({ ...base, suite: checkedSuite(named) });
  try {
    return await ensureEngineRoot({ ...base, suite: 'sid' });
  } catch (error) {
    options.log?.(`testenv: ${(error as Error).message}; falling back to Debian trixie's engines (set CNB_TESTENV_ENGINE_SUITE=sid to insist)`);
    return ensureEngineRoot({ ...base, suite: 'trixie' });
  }
}

/**
 * The engine root for `suite`, bootstrapped when the cache has none for the
 * current inputs (about 50 s and 180 MB of packages), else reused.
 */
export async function ensureEngineRoot(options: { suite?: EngineSuite; cacheRoot?: string; log?: (line: string) => void } = {}): Promise<EngineRoot> {
  const suite = options.suite ?? engineSuiteFromEnv();
  const parent = join(options.cacheRoot ?? defaultCacheRoot(), 'engines');
  const mirror = await debianMirror();
  const key = `${suite}-${inputsKey(await rootInputs(suite, mirror))}`;
  const dir = join(parent, key);
  await ensureCachedDir(dir, 'versions.json', `bootstrapping the Debian ${suite} engine root into ${dir}`, async () => {
    options.log?.(`testenv: bootstrapping a Debian ${suite} root with the current container engines into ${dir} (mmdebstrap, about a minute)`);
    await buildAtomically(dir, (tmp) => bootstrap(tmp, suite, mirror));
    await pruneOthers(parent, key, suite);
  });
  const packages = JSON.parse(await readFile(join(dir, 'versions.json'), 'utf8')) as Record<string, string>;
  return { suite, root: join(dir, 'root'), packages };
}

/**
 * The script that runs a command with the root's engines: a private mount
 * namespace (every mount in it goes with its last process), the root's
 * ld.so.cache, /etc/containers and /usr bound over the machine's, then exec.
 * Quoted for sh: the root path is the only value written into it.
 */
export function enterScript(root: string): string {
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  return `#!/bin/sh
# Runs "$@" with the container engines of ${root}:
# its /usr, /etc/ld.so.cache and /etc/containers bound over this machine's in a
# private mount namespace; every other path stays as it is.
exec unshare --mount --propagation private -- /bin/sh -c '
set -e
root=$1; shift
mount --bind "$root/etc/ld.so.cache" /etc/ld.so.cache
[ -d /etc/containers ] || mkdir -p /etc/containers
mount --rbind "$root/etc/containers" /etc/containers
mount --rbind "$root/usr" /usr
exec "$@"' enter ${q(root)} "$@"
`;
}

export interface EngineTools {
  /** `<dir>/enter`: runs its arguments with the root's engines. */
  enter: string;
  /** `<dir>/bin/docker`: the root's docker CLI (with buildx). */
  docker: string;
  /** `<dir>/bin/buildah`. */
  buildah: string;
  /** `<dir>/bin`, to put first in PATH. */
  binDir: string;
}

/** Writes `enter` and the `bin/` wrappers for `root` into `dir`. */
export async function writeEngineTools(root: string, dir: string): Promise<EngineTools> {
  const binDir = join(dir, 'bin');
  await mkdir(binDir, { recursive: true });
  const enter = join(dir, 'enter');
  await writeFile(enter, enterScript(root));
  await chmod(enter, 0o755);
  const wrapper = async (name: string, program: string): Promise<string> => {
    const path = join(binDir, name);
    await writeFile(path, `#!/bin/sh\nexec '${enter}' ${program} "$@"\n`);
    await chmod(path, 0o755);
    return path;
  };
  return { enter, binDir, docker: await wrapper('docker', '/usr/bin/docker'), buildah: await wrapper('buildah', '/usr/bin/buildah') };
}

/** `buildah --version` → `1.43.2`. */
export async function buildahVersion(buildah: string): Promise<string> {
  const { stdout } = await run(buildah, ['--version']);
  const version = /version (\d+\.\d+(?:\.\d+)?)/.exec(stdout)?.[1];
  if (!version) throw new Error(`${buildah} --version printed no version: ${stdout.trim()}`);
  return version;
}
