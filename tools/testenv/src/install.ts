/**
 * Installs the Debian packages the tests need, only when some are missing.
 * The fast path is one `dpkg-query` call.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { chainError, CommandError, run } from './proc.ts';

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
  // a real terminal for the live view's tests (tmux capture-pane reads its screen)
  'tmux',
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

/**
 * Runs under an exclusive lock, so that test processes starting at the same time
 * install one after the other; re-checks what is missing once it holds the lock.
 * A policy-rc.d keeps maintainer scripts from starting the system's dockerd or
 * registry while installing.
 */
const INSTALL_SCRIPT = `
set -e
missing=""
for p in "$@"; do
  dpkg-query -W -f='\${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing="$missing $p"
done
[ -n "$missing" ] || exit 0
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\\nexit 101\\n' > "$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update
apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends $missing
`;

export const INSTALL_LOCK = '/run/lock/cnb-testenv-install.lock';

/**
 * Makes sure every package is installed: returns at once when they are, otherwise
 * runs `apt-get update` and `apt-get install` for the missing ones. Fails naming
 * the missing packages when it cannot install them.
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
  const lockDir = dirname(INSTALL_LOCK);
  await mkdir(lockDir, { recursive: true });
  try {
    await run('flock', ['--wait', '1200', INSTALL_LOCK, 'sh', '-c', INSTALL_SCRIPT, 'sh', ...missing], {
      display: `apt-get update && apt-get install -y --no-install-recommends ${missing.join(' ')}`,
      timeoutMs: 30 * 60_000,
    });
  } catch (error) {
    throw chainError(what, error);
  }
  const still = await missingPackages(missing);
  if (still.length > 0) throw new Error(`${what}: still not installed afterwards: ${still.join(' ')}`);
  return { installed: missing };
}
