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
  /** A dockerd with its own data-root, exec-root and socket. */
  docker: DockerEndpoint;
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
