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
 * Building lives in `buildkit-build.ts`, the cutting in `go-source-cut.ts`.
 *
 * `startBuildkitd` runs it as root in a private mount namespace with the OCI
 * worker (the machine's runc), GC off, on a unix socket and on a loopback TCP
 * port with mutual TLS.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureBuildkitBinaries, type BuildkitBinaries } from './buildkit-build.ts';
import { unmountAll } from './mounts.ts';
import { chainError, freePort, killPid, listeningPorts, logTail, processesUsing, run, startDaemon, stopDaemon, waitUntil, type Daemon } from './proc.ts';
import type { TestPki } from './tls.ts';

export { ensureBuildkitBinaries, origTarball, parseShowsrc, type BuildkitBinaries } from './buildkit-build.ts';
export { cutUnpackaged, unusedImports } from './go-source-cut.ts';

/** The runtime the OCI worker runs RUN steps with: Debian 12's runc, installed by the test environment. */
export const RUNC = '/usr/sbin/runc';

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
