/**
 * Starting and stopping a whole test environment: packages, the two loopback
 * registries, dockerd and the fixture images in both, the current engines and
 * a standalone buildkitd. Usable from vitest's
 * global setup, benchmarks and scripts alike.
 */
import { mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DOCKER_CLI, startDockerd, type RunningDockerd } from './dockerd.ts';
import { buildahVersion, ensureCurrentEngineRoot, writeEngineTools } from './engines.ts';
import { ensureBuildkitBinaries, startBuildkitd, type RunningBuildkitd } from './buildkitd.ts';
import { makeTestPki } from './tls.ts';
import { buildFixtureLayouts } from './fixtures.ts';
import { publishImage } from './publish.ts';
import { ensurePackages } from './install.ts';
import { mountsUnder, unmountAll } from './mounts.ts';
import { chainError, killPid, pidAlive, processesUsing, stopDaemon } from './proc.ts';
import { createSecureMaterial, startRegistry, type RunningRegistry } from './registry.ts';
import { pullIntoDocker } from './publish.ts';
import type { BuildkitdEndpoint, BuildkitdHandle, EngineSet, EngineSetId, FixtureImage, TestEnv } from './types.ts';

export const STATE_DIR_PREFIX = 'cnb-testenv-';

export interface StartTestEnvOptions {
  /** Where the state directory is created (default: the OS temp dir). Keep it short: dockerd's sockets live below it. */
  tmpRoot?: string;
  /** Fixture cache root (default: `<repo>/.cache/testenv`, or CNB_TESTENV_CACHE). */
  cacheRoot?: string;
  /** Install missing Debian packages first (default true). */
  install?: boolean;
  /** Progress lines (installing packages, cleaning up stale environments). */
  log?: (line: string) => void;
  /**
   * Engine sets to start (default both): `debian12` is always started (its
   * dockerd is `env.docker`); `current` adds Docker 28 and buildah 1.43 from a
   * bootstrapped Debian root (about a minute the first time on a machine).
   */
  engines?: readonly EngineSetId[];
  /**
   * Start the standalone buildkitd (default true). Its binaries are built once
   * per machine (about 8 minutes the first time); the example job leaves it out.
   */
  buildkitd?: boolean;
}

export interface TestEnvHandle {
  env: TestEnv;
  /** Pids of the daemons this environment started (registries, dockerd). */
  pids: number[];
  /** Loopback TCP ports this environment listens on. */
  ports: number[];
}

interface Internals {
  stateDir: string;
  registries: RunningRegistry[];
  dockerd?: RunningDockerd;
  /** The current engines' dockerd. */
  currentDockerd?: RunningDockerd;
  /** The standalone buildkitd, once it answers. */
  buildkitd?: RunningBuildkitd;
  /** Its start (building the binaries first when the cache has none), running in the background. */
  buildkitdStarting?: Promise<void>;
  stopped?: Promise<void>;
}

// Symbol.for: the handle may be stopped by another evaluation of this module
// (vitest evaluates a global setup once per project).
const STATE = Symbol.for('@cnb-extender/testenv/state');
type WithState = TestEnvHandle & { [STATE]?: Internals };
const live = new Set<Internals>();
let exitHookInstalled = false;

/** If the process exits without stopping an environment, at least ask its daemons to go. */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const state of live) {
      for (const daemon of [state.dockerd?.daemon, state.currentDockerd?.daemon, state.buildkitd?.daemon, ...state.registries.map((r) => r.daemon)]) {
        if (daemon?.alive()) daemon.child.kill('SIGTERM');
      }
    }
  });
}

/** Takes down what a state directory holds: its processes, its mounts, then the directory. */
async function cleanStateDir(dir: string): Promise<void> {
  for (const pid of processesUsing(dir)) await killPid(pid);
  await unmountAll(dir);
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** Removes environments whose owning process died without stopping them (a killed test run). */
async function reapStale(tmpRoot: string, log?: (line: string) => void): Promise<void> {
  let entries: string[];
  try {
    entries = await readdir(tmpRoot);
  } catch {
    return;
  }
  for (const entry of entries) {
    if (!entry.startsWith(STATE_DIR_PREFIX)) continue;
    const dir = join(tmpRoot, entry);
    let owner: number | undefined;
    try {
      owner = (JSON.parse(await readFile(join(dir, 'owner.json'), 'utf8')) as { pid?: number }).pid;
    } catch {
      continue; // being created right now, or not ours
    }
    if (typeof owner !== 'number' || pidAlive(owner)) continue;
    log?.(`testenv: removing the stale environment ${dir} (its process ${owner} is gone)`);
    await cleanStateDir(dir).catch(() => undefined);
  }
}

/**
 * Like Promise.all, but waits for every part before failing, so that nothing is
 * still starting while a failed start is being cleaned up.
 */
async function allSettledOrThrow<T extends readonly unknown[]>(parts: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const settled = await Promise.allSettled(parts);
  const failures = settled.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
  if (failures.length === 1) throw failures[0];
  if (failures.length > 1) {
    const messages = failures.map((f) => (f instanceof Error ? f.message : String(f)));
    throw new AggregateError(failures, messages.join('; '));
  }
  return settled.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

/**
 * Starts the standalone buildkitd in the background: building its binaries takes
 * minutes on a new machine, and only the tests that use it wait for it. Its
 * outcome lands in a status file the tests read.
 */
function startBuildkitdInBackground(stateDir: string, state: Internals, options: StartTestEnvOptions): BuildkitdHandle {
  const statusFile = join(stateDir, 'buildkitd-status.json');
  state.buildkitdStarting = startStandaloneBuildkitd(stateDir, state, options).then(
    async (running) => {
      const endpoint: BuildkitdEndpoint = { version: running.version, unixAddress: running.unixAddress, socketPath: running.socketPath, tcpAddress: running.tcpAddress, tls: running.tls, buildctl: running.buildctl };
      await writeFile(`${statusFile}.tmp`, `${JSON.stringify({ endpoint })}\n`);
      await rename(`${statusFile}.tmp`, statusFile);
    },
    async (error: unknown) => {
      const message = chainError('starting the standalone buildkitd', error).message;
      options.log?.(`testenv: ${message}`);
      await writeFile(`${statusFile}.tmp`, `${JSON.stringify({ error: message })}\n`).catch(() => undefined);
      await rename(`${statusFile}.tmp`, statusFile).catch(() => undefined);
    },
  );
  return { statusFile };
}

/** The registries, dockerd, the fixture layouts and the current engines, started side by side. */
function startServices(stateDir: string, state: Internals, options: StartTestEnvOptions) {
  const secureDir = join(stateDir, 'secure-registry');
  const wantCurrent = (options.engines ?? ['debian12', 'current']).includes('current');
  return allSettledOrThrow([
    startRegistry({ dir: join(stateDir, 'registry') }).then((r) => {
      state.registries.push(r);
      return r;
    }),
    (async () => {
      const material = await createSecureMaterial(join(secureDir, 'certs'));
      const r = await startRegistry({ dir: secureDir, tls: material.tls, htpasswdFile: material.htpasswdFile });
      state.registries.push(r);
      return { registry: r, material };
    })(),
    startDockerd(join(stateDir, 'docker')).then((d) => {
      state.dockerd = d;
      return d;
    }),
    buildFixtureLayouts({ cacheRoot: options.cacheRoot }),
    wantCurrent ? startCurrentEngines(stateDir, state, options) : Promise.resolve(undefined),
  ]);
}

type Services = Awaited<ReturnType<typeof startServices>>;

/** A Docker-style `certs.d` directory trusting the secure registry's CA. */
async function writeCertsDir(stateDir: string, secure: Services[1]): Promise<string> {
  const certsDir = join(stateDir, 'certs.d');
  await mkdir(join(certsDir, secure.registry.host), { recursive: true });
  await copyFile(secure.material.tls.caFile, join(certsDir, secure.registry.host, 'ca.crt'));
  return certsDir;
}

/** Debian 12's engines, and the current ones (with the fixture images pulled into their dockerd) when started. */
async function engineSets(stateDir: string, dockerd: RunningDockerd, docker: TestEnv['docker'], current: EngineSet | undefined, fixtures: FixtureImage[]): Promise<EngineSet[]> {
  const systemBuildah = await buildahVersion('buildah');
  const engines: EngineSet[] = [
    {
      id: 'debian12',
      description: `Docker ${dockerd.version} (API ${dockerd.apiVersion}), buildah ${systemBuildah} (Debian 12)`,
      suite: 'bookworm',
      docker: { ...docker, version: dockerd.version, apiVersion: dockerd.apiVersion, builderVersion: dockerd.builderVersion },
      buildah: { executable: 'buildah', version: systemBuildah },
    },
  ];
  if (current) {
    // the same fixture images in the current dockerd, pulled from the plain registry
    const configDir = join(stateDir, 'docker-config-current');
    await Promise.all(fixtures.map((f) => pullIntoDocker(current.docker, f.dockerRef.replace(/:latest$/, ''), f.manifestDigest, configDir)));
    engines.push(current);
  }
  return engines;
}

/**
 * Starts a complete test environment. On failure everything already started is
 * stopped again and the error names what could not be provided.
 */
export async function startTestEnv(options: StartTestEnvOptions = {}): Promise<TestEnvHandle> {
  if (options.install !== false) await ensurePackages({ log: options.log });
  const tmpRoot = options.tmpRoot ?? tmpdir();
  await reapStale(tmpRoot, options.log);
  const stateDir = await mkdtemp(join(tmpRoot, STATE_DIR_PREFIX));
  await writeFile(join(stateDir, 'owner.json'), `${JSON.stringify({ pid: process.pid })}\n`);
  const state: Internals = { stateDir, registries: [] };
  live.add(state);
  installExitHook();
  try {
    const buildkitdHandle = options.buildkitd !== false ? startBuildkitdInBackground(stateDir, state, options) : undefined;
    const [registry, secure, dockerd, layouts, current] = await startServices(stateDir, state, options);
    const certsDir = await writeCertsDir(stateDir, secure);
    const target = { registryHost: registry.host, docker: { host: dockerd.host, socketPath: dockerd.socketPath, cli: DOCKER_CLI }, stateDir };
    const fixture = (name: 'build' | 'run'): Promise<FixtureImage> => publishImage(layouts[name], `fixtures/${name}`, target);
    const [build, runImage] = await Promise.all([fixture('build'), fixture('run')]);
    const engines = await engineSets(stateDir, dockerd, target.docker, current, [build, runImage]);
    const env: TestEnv = {
      nodeVersion: process.version,
      stateDir,
      registry: { host: registry.host, url: registry.url },
      secureRegistry: {
        host: secure.registry.host,
        url: secure.registry.url,
        caFile: secure.material.tls.caFile,
        certsDir,
        username: secure.material.username,
        password: secure.material.password,
      },
      docker: target.docker,
      engines,
      ...(buildkitdHandle ? { buildkitd: buildkitdHandle } : {}),
      fixtures: { build, run: runImage },
    };
    const handle: TestEnvHandle = {
      env,
      pids: [registry.daemon.pid, secure.registry.daemon.pid, dockerd.daemon.pid, ...(state.currentDockerd ? [state.currentDockerd.daemon.pid] : [])],
      ports: [registry.port, secure.registry.port],
    };
    Object.defineProperty(handle, STATE, { value: state, enumerable: false });
    return handle;
  } catch (error) {
    await stopState(state).catch(() => undefined);
    throw chainError(`starting the test environment in ${stateDir}`, error);
  }
}

/**
 * The current engine set: the engine root (bootstrapped or from the cache), its
 * wrappers in the state directory, and its dockerd on a socket of its own.
 */
async function startCurrentEngines(stateDir: string, state: Internals, options: StartTestEnvOptions): Promise<EngineSet> {
  const root = await ensureCurrentEngineRoot({ ...(options.cacheRoot ? { cacheRoot: options.cacheRoot } : {}), ...(options.log ? { log: options.log } : {}) });
  const tools = await writeEngineTools(root.root, join(stateDir, 'engines', 'current'));
  const dockerd = await startDockerd(join(stateDir, 'docker-current'), { enter: tools.enter, label: `Debian ${root.suite}` });
  state.currentDockerd = dockerd;
  const buildah = await buildahVersion(tools.buildah);
  return {
    id: 'current',
    description: `Docker ${dockerd.version} (API ${dockerd.apiVersion}), buildah ${buildah} (Debian ${root.suite} root)`,
    suite: root.suite,
    docker: { host: dockerd.host, socketPath: dockerd.socketPath, cli: tools.docker, version: dockerd.version, apiVersion: dockerd.apiVersion, builderVersion: dockerd.builderVersion },
    buildah: { executable: tools.buildah, version: buildah },
    binDir: tools.binDir,
  };
}

/**
 * The standalone buildkitd: its binaries (built once from Debian sid's BuildKit
 * sources, then cached), a test PKI for its TCP port, and the daemon.
 */
async function startStandaloneBuildkitd(stateDir: string, state: Internals, options: StartTestEnvOptions): Promise<RunningBuildkitd> {
  const dir = join(stateDir, 'buildkitd');
  const pkiDir = join(dir, 'pki');
  await mkdir(pkiDir, { recursive: true });
  const [binaries, pki] = await Promise.all([
    ensureBuildkitBinaries({ ...(options.cacheRoot ? { cacheRoot: options.cacheRoot } : {}), ...(options.log ? { log: options.log } : {}) }),
    makeTestPki(pkiDir),
  ]);
  state.buildkitd = await startBuildkitd(dir, { pki, binaries });
  return state.buildkitd;
}

async function stopState(state: Internals): Promise<void> {
  state.stopped ??= (async () => {
    const problems: string[] = [];
    await Promise.all([
      ...state.registries.map((r) => stopDaemon(r.daemon, 5_000)),
      state.dockerd?.stop().catch((error: unknown) => {
        problems.push(`stopping dockerd: ${(error as Error).message}`);
      }),
      state.currentDockerd?.stop().catch((error: unknown) => {
        problems.push(`stopping the current dockerd: ${(error as Error).message}`);
      }),
      // a buildkitd still being built is waited for (its binaries land in the cache), then stopped
      (state.buildkitdStarting ?? Promise.resolve()).then(() => state.buildkitd?.stop()).catch((error: unknown) => {
        problems.push(`stopping buildkitd: ${(error as Error).message}`);
      }),
    ]);
    // Whatever is left (a dockerd that was still starting, containerd, shims, mounts) goes with the directory.
    await cleanStateDir(state.stateDir).catch((error: unknown) => {
      problems.push(`removing ${state.stateDir}: ${(error as Error).message}`);
    });
    live.delete(state);
    const leftMounts = mountsUnder(state.stateDir);
    if (leftMounts.length > 0) problems.push(`mounts left: ${leftMounts.join(', ')}`);
    if (problems.length > 0) throw new Error(`stopping the test environment in ${state.stateDir}: ${problems.join('; ')}`);
  })();
  return state.stopped;
}

/** Stops everything the environment started, unmounts what dockerd left and removes the state directory. Idempotent. */
export async function stopTestEnv(handle: TestEnvHandle): Promise<void> {
  const state = (handle as WithState)[STATE];
  if (!state) throw new Error('stopping the test environment: this handle did not come from startTestEnv()');
  await stopState(state);
}
