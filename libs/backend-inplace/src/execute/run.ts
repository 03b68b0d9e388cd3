import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { accessSync, constants, lstatSync, mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { ResolvedUser } from '@cnb-extender/oci';

/** A process to run against a root filesystem. */
export interface RunSpec {
  /** Root filesystem; `/` runs in place, anything else runs chrooted into it. */
  root: string;
  /** argv; argv[0] is looked up in the RUN's own PATH inside the root. */
  argv: string[];
  /** `KEY=value` pairs: the whole environment of the process. */
  env: string[];
  user: ResolvedUser;
  /** Working directory inside the root (must exist). */
  cwd: string;
  /** Give the process the network (default false: a fresh network namespace with only loopback). */
  network?: boolean;
  signal?: AbortSignal;
  /** Output as it comes, in chunks (not split into lines). */
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
}

export interface RunResult {
  exitCode: number;
}

export class RunError extends Error {
  override name = 'RunError';
  readonly exitCode: number | undefined;
  constructor(message: string, exitCode: number | undefined, options?: { cause?: unknown }) {
    super(message, options);
    this.exitCode = exitCode;
  }
}

const HOST_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function findHostTool(name: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? HOST_PATH).split(delimiter).concat(HOST_PATH.split(':'))) {
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}

function hostTool(name: string): string {
  const found = findHostTool(name);
  if (found === undefined) throw new RunError(`looking up ${name} on this machine: not found in PATH (util-linux and coreutils are needed to run RUN instructions)`, undefined);
  return found;
}

let utilLinuxCache: boolean | undefined;

/**
 * Whether this machine (in place: the image being extended) has util-linux's
 * `unshare` and `setpriv`. busybox ships applets of the same names without the
 * options used here, and distroless images have neither.
 */
export function hasUtilLinux(): boolean {
  if (utilLinuxCache !== undefined) return utilLinuxCache;
  utilLinuxCache = ['unshare', 'setpriv'].every((name) => {
    const path = findHostTool(name);
    if (path === undefined) return false;
    try {
      return execFileSync(path, ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 }).includes('util-linux');
    } catch {
      return false;
    }
  });
  return utilLinuxCache;
}

/**
 * What sets up the container-like view inside the private mount namespace:
 * /proc of the new pid namespace, a tmpfs /dev with the usual device nodes
 * bound from the host, /dev/pts, /dev/shm, read-only /sys when the image has
 * the directory; loopback up in a network namespace of its own, or the host's
 * resolv.conf and hosts bound read-only over the image's when the RUN has the
 * network (those paths are never snapshotted). The namespace (and every mount in it) goes away with its
 * last process, so nothing stays mounted afterwards.
 */
const SETUP = `set -e
root=$1; net=$2; shift 2
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount -t tmpfs -o nosuid,mode=0755,size=65536k tmpfs "$root/dev"
for d in null zero full random urandom tty; do : > "$root/dev/$d"; mount --bind "/dev/$d" "$root/dev/$d"; done
mkdir "$root/dev/pts" "$root/dev/shm" "$root/dev/mqueue"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,nosuid,noexec devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
mount -t tmpfs -o nosuid,nodev,noexec,mode=1777,size=65536k shm "$root/dev/shm"
ln -s /proc/self/fd "$root/dev/fd"; ln -s /proc/self/fd/0 "$root/dev/stdin"; ln -s /proc/self/fd/1 "$root/dev/stdout"; ln -s /proc/self/fd/2 "$root/dev/stderr"
if [ -d "$root/sys" ] && [ ! -L "$root/sys" ]; then mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys" || true; fi
if [ "$net" = none ]; then ip link set lo up 2>/dev/null || true; fi
if [ "$net" = host ]; then
  for f in resolv.conf hosts; do
    if [ -f "/etc/$f" ] && [ -f "$root/etc/$f" ] && [ ! -L "$root/etc/$f" ]; then mount --bind -o ro "/etc/$f" "$root/etc/$f" || true; fi
  done
fi
exec "$@"
`;

/** Whether this process has CAP_SYS_ADMIN (bit 21 of CapEff). */
export function hasSysAdmin(): boolean {
  try {
    const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('CapEff:'));
    return line !== undefined && (BigInt(`0x${line.slice(7).trim()}`) & (1n << 21n)) !== 0n;
  } catch {
    return false;
  }
}

/** Whether `/` is a mount point in this process's view (true in a container, false in a plain chroot). */
export function rootIsMountPoint(): boolean {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .some((l) => l.split(' ')[4] === '/');
  } catch {
    return false;
  }
}

/** Makes sure `<root>/<name>` is a real directory; returns true when it had to be created. */
function ensureMountPoint(root: string, name: string): boolean {
  const p = join(root, name);
  try {
    const st = lstatSync(p);
    if (!st.isDirectory()) throw new RunError(`preparing ${p} as a mount point: it is not a directory (a symlink or file there is refused)`, undefined);
    return false;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    mkdirSync(p, { mode: 0o755 });
    return true;
  }
}

/**
 * Runs one process as `spec.user` in `spec.cwd` against `spec.root`, with
 * exactly `spec.env`. The chain is: [unshare (namespaces) → sh (mounts) →]
 * env -i (environment) → setpriv (gid and supplementary groups) → unshare
 * --root/--wd/--setuid (chroot, working directory, uid; capabilities go with
 * the uid) → argv. Everything is one process group; aborting SIGKILLs the
 * group, and with a pid namespace the kernel kills whatever escaped it.
 */
export async function runProcess(spec: RunSpec): Promise<RunResult> {
  spec.signal?.throwIfAborted();
  const inPlace = spec.root === '/';
  if (inPlace && !hasUtilLinux()) return runWithoutUtilLinux(spec);
  const envTool = hostTool('env');
  const unshare = hostTool('unshare');
  const setpriv = hostTool('setpriv');
  const groups = spec.user.groups.length > 0 ? spec.user.groups : [spec.user.gid];
  const final = [
    envTool,
    '-i',
    ...spec.env,
    setpriv,
    '--regid',
    String(spec.user.gid),
    '--groups',
    groups.join(','),
    '--',
    unshare,
    `--root=${spec.root}`,
    `--wd=${spec.cwd}`,
    ...(spec.user.uid === 0 ? [] : ['--setuid', String(spec.user.uid)]),
    '--',
    ...spec.argv,
  ];
  const created: string[] = [];
  let command: string;
  let args: string[];
  if (inPlace) {
    // With CAP_SYS_ADMIN (Tekton grants it) the RUN gets a pid namespace and its
    // own /proc, so nothing it starts outlives it; without, its process group.
    // (`--mount-proc` needs `/` to be a mount point, as it is in a container, to make its mounts private.)
    const pidns = hasSysAdmin() && rootIsMountPoint();
    const namespaces = [...(pidns ? ['--pid', '--fork', '--kill-child', '--mount-proc'] : []), ...(spec.network ? [] : ['--net'])];
    command = namespaces.length > 0 ? unshare : final[0]!;
    args = namespaces.length > 0 ? [...namespaces, '--', ...final] : final.slice(1);
  } else {
    for (const name of ['proc', 'dev']) if (ensureMountPoint(spec.root, name)) created.push(join(spec.root, name));
    command = unshare;
    args = [
      '--mount',
      '--propagation',
      'private',
      '--pid',
      '--fork',
      '--kill-child',
      ...(spec.network ? [] : ['--net']),
      '--',
      hostTool('sh'),
      '-c',
      SETUP,
      'setup',
      spec.root,
      spec.network ? 'host' : 'none',
      ...final,
    ];
  }
  try {
    return await supervise(spawnWithContainerUmask(command, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: HOST_PATH } }), command, spec);
  } finally {
    for (const dir of created) {
      try {
        if (readdirSync(dir).length === 0) rmdirSync(dir);
      } catch {
        // left for the snapshot's ignore list
      }
    }
  }
}

/** What a container runtime starts processes with, and so what Docker's RUN sees. */
const CONTAINER_UMASK = 0o022;

/**
 * spawn with the umask a RUN gets from Docker, whatever the extender's own is:
 * the child inherits it at fork, which happens synchronously inside spawn.
 */
function spawnWithContainerUmask(command: string, args: string[], options: SpawnOptions): ChildProcess {
  const previous = process.umask(CONTAINER_UMASK);
  try {
    return spawn(command, args, options);
  } finally {
    process.umask(previous);
  }
}

/**
 * Waits for a RUN's process (started as the leader of its own process group)
 * and streams its output; on abort, and once it has exited, SIGKILLs the group
 * so that nothing it started outlives it.
 */
function supervise(child: ChildProcess, command: string, spec: RunSpec): Promise<RunResult> {
  return new Promise<RunResult>((resolvePromise, reject) => {
    const kill = (): void => {
      if (child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    };
    const onAbort = (): void => kill();
    spec.signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout?.on('data', (chunk: Buffer) => spec.onOutput?.('stdout', chunk));
    child.stderr?.on('data', (chunk: Buffer) => spec.onOutput?.('stderr', chunk));
    child.on('error', (cause) => {
      spec.signal?.removeEventListener('abort', onAbort);
      reject(new RunError(`starting ${command}: ${cause.message}`, undefined, { cause }));
    });
    child.on('close', (code, sig) => {
      spec.signal?.removeEventListener('abort', onAbort);
      // Whatever is left in the group (in-place runs without a pid namespace) goes too.
      kill();
      if (spec.signal?.aborted) reject(spec.signal.reason);
      else if (code === null) reject(new RunError(`killed by ${sig}`, undefined));
      else resolvePromise({ exitCode: code });
    });
  });
}

/**
 * In place in an image without util-linux (busybox, distroless): Node starts
 * the process itself with setgid/setuid, the working directory and exactly
 * `spec.env`, as kaniko does from Go. What needs util-linux is not available
 * here: supplementary groups (the kernel gets none, so only the primary group
 * applies), a pid namespace (the process group is killed instead), and a RUN
 * without the network, which is refused rather than given the network.
 */
export function runWithoutUtilLinux(spec: RunSpec): Promise<RunResult> {
  if (!spec.network) {
    return Promise.reject(new RunError('running without the network needs a network namespace, and this image has no util-linux unshare to make one (allow the network, or extend an image with util-linux)', undefined));
  }
  const env: Record<string, string> = {};
  for (const pair of spec.env) {
    const eq = pair.indexOf('=');
    if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  const [file, ...rest] = spec.argv;
  if (file === undefined) return Promise.reject(new RunError('an empty command', undefined));
  // Node looks argv[0] up in options.env.PATH, the RUN's own PATH, as a shell in the image would.
  const child = spawnWithContainerUmask(file, rest, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env, cwd: spec.cwd, uid: spec.user.uid, gid: spec.user.gid });
  return supervise(child, file, spec);
}
