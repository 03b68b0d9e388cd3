/**
 * What the test environment hands to tests (through vitest's `inject('testenv')`).
 * Every address is on loopback; every path is inside the environment's own
 * temporary directory or the fixture cache.
 */
export interface TestEnv {
  /** `process.version` of the Node that runs the tests. */
  nodeVersion: string;
  /** Root of this environment's temporary state; removed on teardown. */
  stateDir: string;
  /** Plain-HTTP registry on 127.0.0.1. */
  registry: RegistryEndpoint;
  /** TLS (self-signed CA) + htpasswd basic auth registry on 127.0.0.1. */
  secureRegistry: SecureRegistryEndpoint;
  /** A dockerd with its own data-root, exec-root and socket: Debian 12's (the same as `engines[0].docker`). */
  docker: DockerEndpoint;
  /**
   * Every engine set the image backends are tested on: Debian 12's own
   * (`debian12`: Docker 20.10 with BuildKit 0.8, buildah 1.28) and the current
   * ones from a bootstrapped Debian root (`current`: Docker 28 with BuildKit
   * 0.25, buildah 1.43). Each dockerd holds the fixture images.
   */
  engines: EngineSet[];
  /**
   * A standalone buildkitd (BuildKit as Docker Engine 28 vendors it, built from
   * Debian sid's sources): OCI worker with runc, GC off, on a unix socket and on
   * a loopback TCP port with mutual TLS. It starts in the background (its
   * binaries are built once per machine, for minutes): tests get its endpoint
   * with `await waitForBuildkitd(env)`, which fails clearly when it could not be
   * started. Absent only where the environment was started with `buildkitd: false`.
   */
  buildkitd?: BuildkitdHandle;
  /** Reproducible busybox-static images with a `cnb` user (1000:1000). */
  fixtures: {
    build: FixtureImage;
    run: FixtureImage;
  };
}

export interface RegistryEndpoint {
  /** `127.0.0.1:<port>` */
  host: string;
  /** `http://127.0.0.1:<port>` or `https://…` */
  url: string;
}

export interface SecureRegistryEndpoint extends RegistryEndpoint {
  /** PEM file of the CA that signed the registry's certificate. */
  caFile: string;
  /** Directory in the layout `certs.d` tools expect (`<dir>/<host>/ca.crt`). */
  certsDir: string;
  username: string;
  password: string;
}

export interface DockerEndpoint {
  /** `unix:///…/docker.sock`, the value for DOCKER_HOST. */
  host: string;
  socketPath: string;
  /** The docker CLI that matches the daemon (Debian's, not a newer one first in PATH). */
  cli: string;
}

export type EngineSetId = 'debian12' | 'current';

export interface EngineSet {
  id: EngineSetId;
  /** `Docker 28.5.2+dfsg4 (API 1.51), buildah 1.43.2 (Debian sid root)`. */
  description: string;
  /** Where the engines come from: `bookworm` (the machine's packages), `sid` or `trixie` (a bootstrapped root). */
  suite: string;
  docker: EngineDocker;
  buildah: {
    /** The buildah to run: `/usr/bin/buildah`, or the root's through a wrapper script. */
    executable: string;
    /** `1.28.2`, `1.43.2`. */
    version: string;
  };
  /** Directory whose `docker` and `buildah` are this set's (put it first in PATH to use them by hand). */
  binDir?: string;
}

export interface EngineDocker extends DockerEndpoint {
  /** Engine version (`20.10.24+dfsg1`, `28.5.2+dfsg4`). */
  version: string;
  /** Newest Engine API version the daemon speaks (`1.41`, `1.51`). */
  apiVersion: string;
  /** `_ping`'s `Builder-Version`: `2` where BuildKit is the daemon's default builder. */
  builderVersion: string;
}

export interface BuildkitdHandle {
  /** Written once the daemon answers (`{ "endpoint": … }`) or could not be started (`{ "error": "…" }`). */
  statusFile: string;
  /** The endpoint, where the environment has waited for it (the `up` command does). */
  endpoint?: BuildkitdEndpoint;
}

export interface BuildkitdEndpoint {
  /** BuildKit version (`v0.25.2`). */
  version: string;
  /** `unix://…/buildkitd.sock`: no TLS (the socket is root's). */
  unixAddress: string;
  socketPath: string;
  /** `tcp://127.0.0.1:<port>`: mutual TLS only, with `tls`. */
  tcpAddress: string;
  /** What a client needs for `tcpAddress`: the test CA and a client certificate it signed. */
  tls: {
    caFile: string;
    certFile: string;
    keyFile: string;
    /** The name the daemon's certificate is for (`localhost`; it also holds `IP:127.0.0.1`). */
    serverName: string;
  };
  /** The buildctl built with it (`buildctl --addr … debug workers`). */
  buildctl: string;
}

export interface FixtureImage {
  /** OCI image layout directory (read-only: copy it before changing anything). */
  layoutDir: string;
  /** `org.opencontainers.image.ref.name` of the image inside the layout. */
  layoutTag: string;
  /** `sha256:…` of the image manifest; stable across runs. */
  manifestDigest: string;
  /** `127.0.0.1:<port>/fixtures/<name>@sha256:…` in the plain registry. */
  registryRef: string;
  /** `127.0.0.1:<port>/fixtures/<name>:latest`, also present in dockerd's image store. */
  dockerRef: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    testenv: TestEnv;
  }
}

/**
 * The environment's standalone buildkitd, once it answers (waiting while its
 * binaries are built). Throws, never skips, when it was not started or failed.
 */
export async function waitForBuildkitd(env: TestEnv, timeoutMs = 30 * 60_000): Promise<BuildkitdEndpoint> {
  const handle = env.buildkitd;
  if (!handle) throw new Error('the test environment has no standalone buildkitd (it was started with buildkitd: false)');
  if (handle.endpoint) return handle.endpoint;
  const { readFile } = await import('node:fs/promises');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await readFile(handle.statusFile, 'utf8').catch(() => undefined);
    if (text !== undefined) {
      const status = JSON.parse(text) as { endpoint?: BuildkitdEndpoint; error?: string };
      if (status.endpoint) return status.endpoint;
      throw new Error(`the test environment's standalone buildkitd is not available: ${status.error ?? 'no reason given'}`);
    }
    if (Date.now() > deadline) throw new Error(`the test environment's standalone buildkitd did not start within ${Math.round(timeoutMs / 60_000)} minutes (${handle.statusFile})`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
