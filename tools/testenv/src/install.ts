/**
 * Installs the Debian packages the tests need, only when some are missing.
 * The fast path is one `dpkg-query` call.
 */
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { CommandError, run } from './proc.ts';

/** Every Debian package the test environment and the tests use. Never `crun` (see README). */
export const REQUIRED_PACKAGES: readonly string[] = [
  'docker-registry',
  'skopeo',
  'umoci',
  'busybox-static',
  'jq',
  'buildah',
  'runc',
  'docker.io',
  'bubblewrap',
  'oci-image-tool',
  'mmdebstrap',
  'patchelf',
  'apache2-utils',
  'openssl',
];

export interface InstallOptions {
  packages?: readonly string[];
  log?: (line: string) => void;
}

export interface InstallResult {
  /** Packages that were missing and are now installed (empty on the fast path). */
  installed: string[];
}

/** Packages of `packages` that dpkg does not report as installed. */
export async function missingPackages(packages: readonly string[] = REQUIRED_PACKAGES): Promise<string[]> {
  let stdout: string;
  try {
    // dpkg-query exits 1 when some name is unknown to it, but still prints the known ones.
    stdout = await run('dpkg-query', ['-W', '-f=${Package}\t${db:Status-Abbrev}\n', ...packages]).then(
      (r) => r.stdout,
      (error: unknown) => {
        if (error instanceof CommandError && error.code === 1) return error.stdout;
        throw error;
      },
    );
  } catch (error) {
    throw new Error(
      `checking the Debian packages the tests need (${packages.join(' ')}): dpkg-query failed; ` +
        'the test environment needs a Debian 12 machine',
      { cause: error },
    );
  }
  const installed = new Set<string>();
  for (const line of stdout.split('\n')) {
    const [name, status] = line.split('\t');
    if (name && status?.startsWith('ii')) installed.add(name.replace(/:.*$/, ''));
  }
  return packages.filter((p) => !installed.has(p));
}

let updated = false;

/**
 * Makes sure every package is installed: returns at once when they are, otherwise
 * runs `apt-get update` (once per process) and `apt-get install` for the missing ones.
 * Services the packages ship (dockerd, the registry) are kept from starting while
 * installing. Fails naming the missing packages when it cannot install them.
 */
export async function ensurePackages(options: InstallOptions = {}): Promise<InstallResult> {
  const packages = options.packages ?? REQUIRED_PACKAGES;
  const missing = await missingPackages(packages);
  if (missing.length === 0) return { installed: [] };
  const what = `installing the missing Debian packages ${missing.join(' ')}`;
  const uid = process.getuid?.() ?? -1;
  if (uid !== 0) {
    throw new Error(
      `${what}: needs root (running as uid ${uid}); install them with ` +
        `\`apt-get install --no-install-recommends ${missing.join(' ')}\` and run again`,
    );
  }
  if (!existsSync('/usr/bin/apt-get')) throw new Error(`${what}: apt-get is not available on this machine`);
  options.log?.(`testenv: ${what}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const lockWait = ['-o', 'DPkg::Lock::Timeout=600'];
  // Keep package maintainer scripts from starting the system's dockerd or registry.
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = !existsSync(policy);
  if (ownPolicy) await writeFile(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    if (!updated) {
      await run('apt-get', [...lockWait, 'update'], { env }).catch((error: unknown) => {
        throw new Error(`${what}: apt-get update failed`, { cause: error });
      });
      updated = true;
    }
    await run('apt-get', [...lockWait, 'install', '-y', '--no-install-recommends', ...missing], { env }).catch(
      (error: unknown) => {
        throw new Error(`${what}: apt-get install failed`, { cause: error });
      },
    );
  } finally {
    if (ownPolicy) await rm(policy, { force: true });
  }
  const still = await missingPackages(missing);
  if (still.length > 0) throw new Error(`${what}: still not installed afterwards: ${still.join(' ')}`);
  return { installed: missing };
}
