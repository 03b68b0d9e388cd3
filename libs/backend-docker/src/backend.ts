/**
 * The Docker Engine API backend (dockerode): the base goes into the daemon as a
 * docker-archive (`/images/load`) unless the daemon has it already, and then only
 * with the layers the daemon lacks; each Dockerfile is built with `/build` — the
 * classic builder or BuildKit (`version=2`) — from a context streamed as a tar,
 * and the result comes back through `/images/{name}/get` (a docker-archive, or
 * from Engine 25 on an OCI layout archive → layers + config; the base's copies
 * are not kept) for the kit to assemble. Build output is streamed as events.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Duplex, Readable } from 'node:stream';
import type Docker from 'dockerode';
import {
  BackendInstructionError,
  serializeImage,
  type ApplyOptions,
  type BackendCapabilities,
  type BackendContext,
  type DockerfileSpec,
  type EventSink,
  type ExtenderBackend,
  type ImageDescription,
} from '@cnb-extender/extender-core';
import {
  ImageBackendError,
  assembleImage,
  defaultBlobDir,
  layerInstructions,
  materializeBaseLayout,
  messageOf,
  readImageArchive,
  stepIndex,
  StepReporter,
  toolStep,
  writeImageArchive,
  type ImageArchiveLayer,
} from '@cnb-extender/image-backend-kit';
import { BuildSession, dialHijack, type Endpoint } from '@cnb-extender/buildkit-session';
import { readDockerignore } from '@cnb-extender/dockerfile';
import { defaultKeychain, parseReference, type RegistryClient } from '@cnb-extender/oci';
import { contextTar } from './archive.ts';
import { decodeStatus } from './buildkit-status.ts';
import { BUILDKIT_API_VERSION_MIN, DEFAULT_DOCKER_HOST, negotiateApiVersion, type DaemonFacts, connect, describeConnectError, describeTls, dockerTlsFromEnv, type DockerConnection, type DockerEnv, type DockerTlsSettings } from './host.ts';

export type DockerBuilder = 'classic' | 'buildkit';

export interface DockerBackendOptions {
  /** Daemon address (default `DOCKER_HOST` from `env`, else `unix:///var/run/docker.sock`). */
  host?: string;
  /**
   * `auto` (default): BuildKit (`/build?version=2`) wherever the daemon has it
   * (Engine API 1.39+ on Linux; the daemons' own default from Engine 23 on), the
   * classic builder only where it has not. `buildkit` or `classic` force one; a
   * daemon without BuildKit then fails the build with a clear message. From
   * `env`: `CNB_DOCKER_BUILDER` (`auto`, `buildkit`, `classic`), else
   * `DOCKER_BUILDKIT` as the Docker CLI reads it (`1`/`true`: buildkit, `0`/`false`: classic).
   */
  builder?: DockerBuilder | 'auto';
  /**
   * Network of RUN steps: `default` (the daemon's default bridge, as `docker build` gives a
   * RUN; a daemon without one, `dockerd --bridge=none`, is refused before the first build),
   * `none`, `host`, or the name of a network of the daemon. Default `host`.
   */
  network?: string;
  /** Where new layer blobs are kept (default `<workDir>/docker-layers`, removed on cleanup); see backend-buildah. */
  layerDir?: string;
  /** Registry client for base layers a sparse layout lacks (and, with `pullBase`, the credentials handed to the daemon). */
  registry?: RegistryClient;
  /**
   * Let the daemon pull the base from its registry (digest reference, first
   * Dockerfile only) instead of loading it from the extend dir's layout; falls back
   * to loading when the pull fails. Default false, or `CNB_DOCKER_PULL_BASE=1`.
   * Needs a daemon that reaches the registry (loopback registries are insecure
   * registries by default in dockerd).
   */
  pullBase?: boolean;
  /**
   * TLS to a `tcp://` daemon; default from `env` as the Docker CLI reads it:
   * `DOCKER_TLS_VERIFY` / `DOCKER_TLS` / `DOCKER_CERT_PATH` (see host.ts). `false`: none.
   */
  tls?: DockerTlsSettings | false;
  env?: DockerEnv;
}

/** An image this backend knows to be in the daemon, by the name it uses for it. */
interface HeldImage {
  name: string;
  diffIds: readonly string[];
}

interface BuildOutcome {
  error?: string;
  /** Last instruction the build reported starting (classic `Step n/m : X`, BuildKit `[n/m] X`). */
  step?: string;
  /** BuildKit: the vertex that failed, and its position after FROM. */
  failedStep?: string;
  failedIndex?: number;
  /** Classic builder: the step said ` ---> Using cache`; the image ID follows. */
  usingCache?: boolean;
}

const DOCKERFILE_NAME = '.cnb-extender.Dockerfile';

/**
 * Whether the daemon's view of an image's runtime config (`inspect().Config`, absent
 * fields as null or empty) agrees with a config's on what a build sees: a guard
 * against a description changed while keeping its manifest digest.
 */
function sameRuntimeConfig(daemon: object | undefined, config: object | undefined): boolean {
  const norm = (value: unknown) => (value === undefined || value === null || value === '' || (typeof value === 'object' && Object.keys(value).length === 0) ? null : JSON.stringify(value));
  const a = (daemon ?? {}) as Record<string, unknown>;
  const b = (config ?? {}) as Record<string, unknown>;
  return ['User', 'Env', 'Entrypoint', 'Cmd', 'WorkingDir', 'Labels', 'Shell', 'OnBuild', 'StopSignal'].every((key) => norm(a[key]) === norm(b[key]));
}

export class DockerBackend implements ExtenderBackend {
  readonly id = 'docker';
  readonly capabilities: BackendCapabilities = {
    inPlace: false,
    kinds: ['build', 'run'],
    cache: false,
    // access to the daemon's socket is what it needs (the daemon does the privileged work)
    privileges: { root: false, capabilities: [], container: false },
  };
  readonly options: DockerBackendOptions;
  readonly host: string;
  /** The builder asked for (`auto` until the daemon has been asked what it has). */
  readonly requestedBuilder: DockerBuilder | 'auto';
  /** What `_ping` told of the daemon, once reached. */
  #facts: DaemonFacts | undefined;
  /** TLS to the daemon (from `DOCKER_TLS_VERIFY`, `DOCKER_TLS`, `DOCKER_CERT_PATH`); undefined for a socket or plain tcp. */
  readonly tls: DockerTlsSettings | undefined;
  readonly #env: DockerEnv;
  #connection: DockerConnection | undefined;
  #reachable: Promise<void> | undefined;
  #networkChecked: Promise<void> | undefined;
  /** Tags this backend made (removed at the latest on cleanup). */
  #tags = new Set<string>();
  /**
   * Images in the daemon whose layers a later base may share (the last base and
   * result, a pulled base): their diff_ids say which layer chains the daemon holds.
   */
  #held: HeldImage[] = [];
  #workDirs = new Set<string>();
  /** In the names of the images this backend tags: `cnb-extender-base-<runId>:<n>`, `cnb-extender-result-<runId>:<n>`. */
  readonly runId = randomBytes(6).toString('hex');
  #count = 0;

  constructor(options: DockerBackendOptions = {}) {
    this.options = options;
    const env = options.env ?? process.env;
    this.#env = env;
    this.host = options.host ?? (env['DOCKER_HOST'] || DEFAULT_DOCKER_HOST);
    // as connect() decides: TLS only for tcp:// (and https://) daemons
    const tcp = /^(tcp|https):\/\//.test(this.host);
    this.tls = options.tls === false || !tcp ? undefined : (options.tls ?? dockerTlsFromEnv(env));
    this.requestedBuilder = options.builder ?? builderFromEnv(env);
    this.pullBase = options.pullBase ?? env['CNB_DOCKER_PULL_BASE'] === '1';
  }

  readonly pullBase: boolean;

  /** Have the daemon pull `reference` (a digest reference); credentials from the registry client's keychain. */
  async #pullBase(reference: string, signal: AbortSignal, events: EventSink): Promise<string | undefined> {
    const ref = parseReference(reference);
    if (!ref.digest) return undefined;
    try {
      const keychain = this.options.registry?.keychain ?? defaultKeychain({ ...(this.options.env ?? process.env) } as NodeJS.ProcessEnv);
      const credential = await keychain.resolve(ref.registry);
      const authconfig = credential?.kind === 'basic' ? { username: credential.username, password: credential.password, serveraddress: ref.registry } : undefined;
      const stream = (await this.#client.pull(reference, authconfig ? { authconfig } : {})) as NodeJS.ReadableStream;
      let failure: string | undefined;
      await this.#follow(stream, (event) => {
        if (typeof event['error'] === 'string') failure = event['error'];
      }, signal);
      if (failure) throw new Error(failure);
      return reference;
    } catch (err) {
      if (signal.aborted) throw err;
      events.emit({ type: 'debug', level: 'debug', message: `docker: pulling ${reference} in the daemon failed (${this.#redact(messageOf(err))}); loading the base instead` });
      return undefined;
    }
  }

  #redact(text: string): string {
    return this.options.registry ? this.options.registry.redact(text) : text;
  }

  get #client(): Docker {
    this.#connection ??= connect(this.host, { env: this.#env, tls: this.tls ?? false });
    return this.#connection.docker;
  }

  /** The builder in use: the one asked for, or with `auto` the daemon's best (BuildKit where it has it). */
  get builder(): DockerBuilder | 'auto' {
    if (this.requestedBuilder !== 'auto') return this.requestedBuilder;
    return this.#facts ? (this.#facts.buildkit ? 'buildkit' : 'classic') : 'auto';
  }

  /** What `_ping` told of the daemon (API version negotiated, BuildKit), once it has been reached. */
  get daemon(): DaemonFacts | undefined {
    return this.#facts;
  }

  async #ping(): Promise<void> {
    const where = `connecting to the Docker daemon at ${this.host}${describeTls(this.tls)}`;
    try {
      // creating the client reads DOCKER_HOST and the TLS files: their errors come first
      void this.#client;
    } catch (err) {
      throw new ImageBackendError(`${where}: ${messageOf(err)}`, { cause: err });
    }
    let facts: DaemonFacts;
    try {
      facts = await negotiateApiVersion(this.#connection!);
    } catch (err) {
      const { message, tlsHandshake } = describeConnectError(err, this.#connection!);
      const reached = /Engine API|Api-Version/.test(message);
      throw new ImageBackendError(`${where}: ${message}${tlsHandshake || reached ? '' : '; start dockerd or set DOCKER_HOST'}`, { cause: err });
    }
    if (this.requestedBuilder === 'buildkit' && !facts.buildkit) {
      throw new ImageBackendError(
        `${where}: the daemon (Engine API ${facts.apiVersion}, ${facts.osType}) has no BuildKit builder, which needs Engine API ${BUILDKIT_API_VERSION_MIN} or later on Linux; ` +
          'leave CNB_DOCKER_BUILDER unset (or auto) to use its classic builder',
      );
    }
    this.#facts = facts;
  }

  async #ensureReachable(): Promise<void> {
    this.#reachable ??= this.#ping();
    try {
      await this.#reachable;
    } catch (err) {
      this.#reachable = undefined;
      throw err;
    }
  }

  /** The network RUN steps get (`networkmode` of the build). */
  get network(): string {
    return this.options.network ?? 'host';
  }

  /**
   * `default` is the daemon's bridge network: a daemon started without one fails every RUN
   * (`network bridge not found`), so that is said before the first build, with the way out.
   */
  async #checkNetwork(): Promise<void> {
    if (this.network !== 'default') return;
    this.#networkChecked ??= (async () => {
      try {
        await this.#client.getNetwork('bridge').inspect();
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode !== 404) return; // only a shortcut: the build says what is wrong
        throw new ImageBackendError(
          `the Docker daemon at ${this.host} has no default bridge network (dockerd --bridge=none), which RUN steps get with -extend-network default; set -extend-network host (the network of the daemon's host) or none`,
        );
      }
    })();
    await this.#networkChecked;
  }

  async #follow(stream: NodeJS.ReadableStream, onEvent: (event: Record<string, unknown>) => void, signal: AbortSignal): Promise<void> {
    const abort = () => (stream as unknown as { destroy?: (e?: Error) => void }).destroy?.(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    signal.addEventListener('abort', abort, { once: true });
    try {
      await new Promise<void>((resolve, reject) => {
        this.#client.modem.followProgress(
          stream,
          (err: Error | null) => (err ? reject(err) : resolve()),
          (event: Record<string, unknown>) => onEvent(event),
        );
      });
    } finally {
      signal.removeEventListener('abort', abort);
    }
    signal.throwIfAborted();
  }

  /**
   * The daemon's image called `name` (an ID, a tag, a digest reference), or undefined
   * when it has none. Only a shortcut: when the lookup itself fails the base is loaded.
   */
  async #lookup(name: string, debug: (message: string) => void): Promise<Docker.ImageInspectInfo | undefined> {
    try {
      return await this.#client.getImage(name).inspect();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) debug(`looking up ${name} in the daemon failed (${messageOf(err)}); loading the base`);
      return undefined;
    }
  }

  async #tag(image: string, tag: string): Promise<void> {
    const [repo, version] = tag.split(':') as [string, string];
    this.#tags.add(tag);
    try {
      await this.#client.getImage(image).tag({ repo, tag: version });
    } catch (err) {
      throw new ImageBackendError(`tagging the base image ${image} as ${tag} in the Docker daemon at ${this.host}: ${messageOf(err)}`, { cause: err });
    }
  }

  /**
   * Make the base an image of the daemon and return the name to build FROM: an image
   * with the same config (hence the same ID) or, for the original base, the same
   * manifest digest is only tagged; with `pullBase` the daemon pulls the first base;
   * else it is loaded, without the layers the daemon already holds.
   */
  async #baseInDaemon(base: ImageDescription, area: string, n: number, signal: AbortSignal, events: EventSink): Promise<string> {
    const { configBytes, manifest } = serializeImage(base);
    const id = manifest.config.digest;
    const diffIds = base.layers.map((l) => l.diffId as string);
    const tag = `cnb-extender-base-${this.runId}:${n}`;
    const debug = (message: string) => events.emit({ type: 'debug', level: 'debug', message: `docker: ${message}` });
    if (await this.#lookup(id, debug)) {
      await this.#tag(id, tag);
      debug(`base ${id} is already in the daemon; not loading it`);
      this.#held.push({ name: tag, diffIds });
      return tag;
    }
    signal.throwIfAborted();
    if (this.pullBase && n === 1 && base.reference) {
      const pulled = await this.#pullBase(base.reference, signal, events);
      if (pulled) {
        this.#held.push({ name: pulled, diffIds });
        return pulled;
      }
    } else if (base.reference && base.manifestDigest && parseReference(base.reference).digest === base.manifestDigest) {
      // The original base, e.g. pulled by a platform that shares this daemon. Its ID is
      // the digest of the config as published, which the description does not keep byte
      // for byte; the manifest digest pins that config (as with pullBase).
      const found = await this.#lookup(base.reference, debug);
      if (found && (found.RootFS?.Layers ?? []).join() === diffIds.join() && sameRuntimeConfig(found.Config, base.config.config)) {
        await this.#tag(found.Id, tag);
        debug(`base ${base.reference} is already in the daemon (${found.Id}); not loading it`);
        this.#held.push({ name: tag, diffIds });
        return tag;
      }
    }
    signal.throwIfAborted();
    const held = this.#sharedLayers(diffIds);
    try {
      await this.#loadBase(base, configBytes, id, tag, held, area, n, signal, debug);
    } catch (err) {
      if (held === 0 || signal.aborted) throw err;
      // an image holding those layers went away meanwhile: send them all
      debug(`loading base ${id} without its first ${held} layers failed (${messageOf(err)}); sending all of them`);
      await this.#loadBase(base, configBytes, id, tag, 0, area, n, signal, debug);
    }
    this.#held.push({ name: tag, diffIds });
    return tag;
  }

  /** How many of the bottom layers `diffIds` names the daemon holds as one chain (through an image this backend holds). */
  #sharedLayers(diffIds: readonly string[]): number {
    let best = 0;
    for (const image of this.#held) {
      let k = 0;
      while (k < diffIds.length && k < image.diffIds.length && image.diffIds[k] === diffIds[k]) k++;
      best = Math.max(best, k);
    }
    return best;
  }

  async #loadBase(base: ImageDescription, configBytes: Buffer, id: string, tag: string, held: number, area: string, n: number, signal: AbortSignal, debug: (message: string) => void): Promise<void> {
    const total = base.layers.length;
    debug(held > 0 ? `loading base ${id}: ${held} of ${total} layers already in the daemon, sending ${total - held}` : `loading base ${id}: sending all ${total} layers`);
    // only the layers sent need a blob on disk (a sparse base's are fetched from its registry)
    const sent = { ...base, layers: base.layers.slice(held) };
    const layout =
      held < total
        ? await materializeBaseLayout(sent, {
            dir: join(area, `base-${n}`),
            fetchedBlobDir: join(area, 'fetched'),
            signal,
            ...(this.options.registry ? { registry: this.options.registry } : {}),
          })
        : undefined;
    const layers: ImageArchiveLayer[] = base.layers.map((l, i) => ({
      digest: l.descriptor.digest,
      size: l.descriptor.size,
      ...(layout && i >= held ? { file: join(layout.layoutDir, 'blobs', ...l.descriptor.digest.split(':')) } : {}),
    }));
    this.#tags.add(tag);
    let failure: string | undefined;
    try {
      const stream = await this.#client.loadImage(writeImageArchive({ config: configBytes, configDigest: id, layers, tags: [tag], signal }), { quiet: true });
      await this.#follow(stream, (event) => {
        if (typeof event['error'] === 'string') failure = event['error'];
      }, signal);
    } catch (err) {
      if (signal.aborted) throw err;
      throw new ImageBackendError(`loading the base image into the Docker daemon at ${this.host}: ${messageOf(err)}`, { cause: err });
    } finally {
      if (layout) await rm(layout.layoutDir, { recursive: true, force: true });
    }
    if (failure) throw new ImageBackendError(`loading the base image into the Docker daemon at ${this.host}: ${failure}`);
  }

  #onBuildEvent(event: Record<string, unknown>, outcome: BuildOutcome, progress: StepReporter, events: EventSink): void {
    if (typeof event['error'] === 'string') outcome.error = event['error'];
    if (typeof event['stream'] === 'string') {
      // the classic builder: `Step 3/5 : RUN x`, then ` ---> Using cache` and ` ---> <image ID>` when cached
      for (const line of event['stream'].split('\n')) {
        const step = toolStep(line);
        if (step !== undefined) {
          outcome.step = step.instruction;
          outcome.usingCache = false;
          const index = stepIndex(step, progress.steps.length);
          if (index !== undefined) progress.started(index);
          continue;
        }
        if (/^\s*---> Using cache\s*$/.test(line)) outcome.usingCache = true;
        const image = /^\s*---> ([0-9a-f]{12,})\s*$/.exec(line);
        if (image && outcome.usingCache && progress.current !== undefined) {
          progress.cached(progress.current, image[1]!);
          outcome.usingCache = false;
        }
        if (line.trim() !== '') events.emit({ type: 'debug', level: 'debug', message: `docker: ${line}` });
      }
    }
    if (event['id'] === 'moby.buildkit.trace' && typeof event['aux'] === 'string') {
      let status;
      try {
        status = decodeStatus(event['aux']);
      } catch {
        return;
      }
      // BuildKit: a vertex per step that has one (`[3/5] RUN x`, variables expanded), cached or run
      const steps = status.vertexes.map((vertex) => toolStep(vertex.name));
      const indexes = progress.vertexIndexes(steps);
      for (const [at, vertex] of status.vertexes.entries()) {
        const step = steps[at];
        if (step === undefined) continue;
        const index = indexes[at];
        if (vertex.error) {
          outcome.failedStep = step.instruction;
          if (index !== undefined) outcome.failedIndex = index;
        }
        if (index === undefined || !(vertex.started || vertex.cached)) continue;
        outcome.step = step.instruction;
        progress.started(index);
        if (vertex.cached) progress.cached(index, vertex.digest);
        else progress.ran(index, vertex.digest);
      }
      for (const log of status.logs) {
        for (const line of log.text.split('\n')) if (line.trim() !== '') events.emit({ type: 'debug', level: 'debug', message: `docker: ${line}` });
      }
    }
  }

  /** The Dockerfile line a BuildKit error names (`process "/bin/sh -c exit 3" did not complete`, `executor failed running [/bin/sh -c exit 3]`). */
  #instructionFromError(error: string, dockerfile: DockerfileSpec): string | undefined {
    for (const instruction of layerInstructions(dockerfile.content)) {
      if (instruction.keyword === 'run' && instruction.command !== '' && error.includes(instruction.command)) return instruction.text;
    }
    return undefined;
  }

  /** `POST /build` with an empty body and these query parameters; resolves with the progress stream. */
  #postBuild(query: Record<string, unknown>): Promise<NodeJS.ReadableStream> {
    return new Promise((resolve, reject) => {
      this.#client.modem.dial(
        { path: '/build?', method: 'POST', options: query, file: Readable.from([]), isStream: true, statusCodes: { 200: true, 400: 'bad parameter', 500: 'server error' } },
        (err: unknown, stream: unknown) => (err ? reject(err) : resolve(stream as NodeJS.ReadableStream)),
      );
    });
  }

  /** The daemon as an endpoint to open a BuildKit session on (`/session`), with the connection's TLS. */
  #sessionEndpoint(): Endpoint {
    const host = this.host;
    if (host.startsWith('unix://') || host.startsWith('/')) return { kind: 'docker', socketPath: host.startsWith('/') ? host : host.slice('unix://'.length), address: host };
    const url = new URL(host.replace(/^tcp:/, 'http:'));
    const port = Number(url.port) || (host.startsWith('https:') ? 2376 : 2375);
    const tls = this.#connection?.tls;
    return {
      kind: 'docker',
      host: url.hostname.replace(/^\[|\]$/g, ''),
      port,
      address: host,
      ...(tls ? { tls: { ...(tls.verify ? { caFile: join(tls.certPath, 'ca.pem') } : { skipVerify: true }), ...(tls.clientCert ? { certFile: join(tls.certPath, 'cert.pem'), keyFile: join(tls.certPath, 'key.pem') } : {}) } } : {}),
    };
  }

  /**
   * BuildKit reads the context and the Dockerfile through a session, as the
   * Docker CLI sends them (`remote=client-session`): the context's `.dockerignore`
   * is applied by BuildKit itself, and the Dockerfile is not part of the context.
   */
  async #openSession(contextDir: string, dockerfileDir: string, signal: AbortSignal): Promise<BuildSession> {
    const session = new BuildSession({ id: randomUUID(), name: 'cnb-extender', sharedKey: contextDir, dirs: { context: contextDir, dockerfile: dockerfileDir }, signal });
    try {
      const version = this.#facts ? `/v${this.#facts.negotiated}` : '';
      const endpoint = this.#sessionEndpoint();
      const socket = await dialHijack(endpoint, `${version}/session`, session.headers(), signal);
      // node's HTTP/2 server reads a plain socket's handle directly; a TLS socket is served through its stream
      session.attach('tls' in endpoint && endpoint.tls ? streamOf(socket) : socket);
    } catch (err) {
      await session.close();
      throw new ImageBackendError(`opening a BuildKit session on the Docker daemon at ${this.host}: ${messageOf(err)}`, { cause: err });
    }
    return session;
  }

  async apply(dockerfile: DockerfileSpec, base: ImageDescription, options: ApplyOptions, context: BackendContext): Promise<ImageDescription> {
    const { signal, events, workDir } = context;
    signal.throwIfAborted();
    await this.#ensureReachable();
    await this.#checkNetwork();
    const builder = this.builder;
    this.#workDirs.add(workDir);
    const area = join(workDir, 'docker');
    const n = ++this.#count;
    const resultTag = `cnb-extender-result-${this.runId}:${n}`;
    const outDir = join(area, `out-${n}`);
    let keep: ReadonlySet<string> = new Set();
    try {
      const baseTag = await this.#baseInDaemon(base, area, n, signal, events);
      const buildargs: Record<string, string> = {};
      for (const arg of dockerfile.args) buildargs[arg.name] = arg.name === 'base_image' ? baseTag : arg.value;
      this.#tags.add(resultTag);
      const outcome: BuildOutcome = {};
      const progress = new StepReporter(events, dockerfile.extensionId, dockerfile.content);
      let session: BuildSession | undefined;
      try {
        const buildOptions = {
          t: resultTag,
          buildargs,
          networkmode: this.network,
          rm: true,
          forcerm: true,
        };
        let stream: NodeJS.ReadableStream;
        // <Dockerfile>.dockerignore beside the Dockerfile, else the context's .dockerignore
        const ignore = await readDockerignore(options.buildContext, dockerfile.path);
        if (builder === 'buildkit') {
          const dockerfileDir = join(area, `dockerfile-${n}`);
          await mkdir(dockerfileDir, { recursive: true });
          await writeFile(join(dockerfileDir, 'Dockerfile'), dockerfile.content);
          // BuildKit reads the context's .dockerignore itself, and <Dockerfile>.dockerignore beside the Dockerfile it is sent
          if (ignore !== undefined && ignore.path === `${dockerfile.path}.dockerignore`) await copyFile(ignore.path, join(dockerfileDir, 'Dockerfile.dockerignore'));
          session = await this.#openSession(options.buildContext, dockerfileDir, signal);
          // no context in the request body: BuildKit asks the session for it. Not through
          // dockerode's buildImage, which opens a session of its own for version 2.
          stream = await this.#postBuild({ ...buildOptions, dockerfile: 'Dockerfile', version: '2', remote: 'client-session', session: session.options.id });
        } else {
          stream = await this.#client.buildImage(contextTar(options.buildContext, DOCKERFILE_NAME, dockerfile.content, ignore) as unknown as NodeJS.ReadableStream, {
            ...buildOptions,
            dockerfile: DOCKERFILE_NAME,
            version: '1',
          } as Docker.ImageBuildOptions);
        }
        await this.#follow(stream, (event) => this.#onBuildEvent(event, outcome, progress, events), signal);
      } catch (err) {
        if (signal.aborted) throw err;
        outcome.error ??= messageOf(err);
      } finally {
        if (session) {
          if (session.error && outcome.error === undefined) outcome.error = `the build's session failed: ${session.error.message}`;
          await session.close();
        }
      }
      if (outcome.error !== undefined) {
        const message = `docker build (${builder === 'buildkit' ? 'BuildKit' : 'classic builder'}) at ${this.host} failed: ${outcome.error.trim()}`;
        const instruction = outcome.failedStep ?? this.#instructionFromError(outcome.error, dockerfile) ?? outcome.step;
        if (instruction !== undefined && !/^FROM\b/i.test(instruction)) {
          const index = outcome.failedIndex ?? (outcome.failedStep === undefined && instruction === outcome.step ? progress.current : undefined);
          throw new BackendInstructionError(progress.instruction(index) ?? instruction, message, index === undefined ? undefined : { index });
        }
        throw new ImageBackendError(message);
      }
      progress.end();
      let built;
      try {
        const archive = await this.#client.getImage(resultTag).get();
        built = await readImageArchive(archive, { dir: outDir, signal, skipLayers: base.layers.length });
      } catch (err) {
        if (signal.aborted) throw err;
        throw new ImageBackendError(`exporting the built image ${resultTag} from the Docker daemon at ${this.host}: ${messageOf(err)}`, { cause: err });
      }
      const result = await assembleImage({
        base,
        built,
        dockerfile,
        ignorePaths: options.ignorePaths,
        blobDir: this.options.layerDir ?? defaultBlobDir(workDir, this.id),
        events,
        signal,
      });
      // the next Dockerfile's base is this result: its base layers, and the new ones
      // when re-packing left them unchanged, are in the daemon through these two images
      this.#held.push({ name: resultTag, diffIds: built.layers.map((l) => l.diffId) });
      keep = new Set([baseTag, resultTag]);
      return result;
    } catch (err) {
      if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : err;
      if (err instanceof BackendInstructionError || err instanceof ImageBackendError) throw err;
      throw new ImageBackendError(`building ${dockerfile.path} through the Docker daemon at ${this.host}: ${messageOf(err)}`, { cause: err });
    } finally {
      await rm(outDir, { recursive: true, force: true });
      // the last base and result stay (until the next apply or cleanup) for the next base's layers
      await this.#removeTags(keep);
    }
  }

  /** Remove this backend's tags but those in `keep`, newest first (a result before its base). */
  async #removeTags(keep: ReadonlySet<string> = new Set()): Promise<string[]> {
    const failed: string[] = [];
    for (const tag of [...this.#tags].reverse()) {
      if (keep.has(tag)) continue;
      try {
        await this.#client.getImage(tag).remove({ force: true });
        this.#tags.delete(tag);
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) this.#tags.delete(tag);
        else failed.push(`${tag}: ${messageOf(err)}`);
      }
    }
    this.#held = this.#held.filter((image) => !image.name.startsWith('cnb-extender-') || this.#tags.has(image.name));
    return failed;
  }

  async cleanup(context: BackendContext): Promise<void> {
    const failed = this.#connection ? await this.#removeTags() : [];
    for (const workDir of new Set([...this.#workDirs, context.workDir])) {
      await rm(join(workDir, 'docker'), { recursive: true, force: true });
      await rm(defaultBlobDir(workDir, this.id), { recursive: true, force: true });
    }
    this.#workDirs.clear();
    if (failed.length > 0) throw new ImageBackendError(`removing images from the Docker daemon at ${this.host}: ${failed.join('; ')}`);
  }
}

/** A duplex over `socket`'s decrypted stream (for a TLS socket handed to an HTTP/2 server). */
function streamOf(socket: Duplex): Duplex {
  const stream = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      socket.write(chunk, callback);
    },
    final(callback) {
      socket.end();
      callback();
    },
    destroy(err, callback) {
      socket.destroy(err ?? undefined);
      callback(err);
    },
  });
  socket.on('data', (chunk: Buffer) => {
    if (!stream.push(chunk)) socket.pause();
  });
  socket.on('end', () => stream.push(null));
  socket.on('error', (err) => stream.destroy(err));
  socket.on('close', () => stream.destroy());
  return stream;
}

/** The builder `env` asks for: `CNB_DOCKER_BUILDER`, else `DOCKER_BUILDKIT` as the Docker CLI reads it, else `auto`. */
export function builderFromEnv(env: DockerEnv): DockerBuilder | 'auto' {
  const named = env['CNB_DOCKER_BUILDER']?.trim().toLowerCase();
  if (named === 'buildkit' || named === 'classic' || named === 'auto') return named;
  if (named) throw new ImageBackendError(`reading CNB_DOCKER_BUILDER=${env['CNB_DOCKER_BUILDER']}: expected auto, buildkit or classic`);
  const legacy = env['DOCKER_BUILDKIT']?.trim().toLowerCase();
  if (legacy === '1' || legacy === 'true') return 'buildkit';
  if (legacy === '0' || legacy === 'false') return 'classic';
  return 'auto';
}

/** Create the Docker Engine API backend. */
export function createDockerBackend(options: DockerBackendOptions = {}): DockerBackend {
  return new DockerBackend(options);
}

/** The backend registry's factory (`{ env }`): `DOCKER_HOST`, `DOCKER_TLS_VERIFY` / `DOCKER_TLS` / `DOCKER_CERT_PATH`, `CNB_DOCKER_BUILDER` / `DOCKER_BUILDKIT`. */
export function createBackend(options: { env?: Readonly<Record<string, string | undefined>> } = {}): DockerBackend {
  return new DockerBackend(options.env && Object.keys(options.env).length > 0 ? { env: { ...process.env, ...options.env } } : {});
}
