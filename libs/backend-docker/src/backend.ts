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
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Duplex, Readable } from 'node:stream';
import type Docker from 'dockerode';
import { definedCapabilities, type ApplyOptions, type BackendCapabilities, type BackendContext, type DockerfileSpec, type ExtenderBackend, type ImageDescription } from '@cnb-extender/extender-core';
import { ImageBackendError, ImageBuildTemplate, messageOf, readImageArchive, type BuiltImage, type ImageBuild, type ImageBuildSteps } from '@cnb-extender/image-backend-kit';
import { BuildSession, dialHijack, type Endpoint } from '@cnb-extender/buildkit-session';
import { readDockerignore } from '@cnb-extender/dockerfile';
import type { RegistryClient } from '@cnb-extender/oci';
import { contextTar } from './archive.ts';
import { buildFailure, onBuildEvent, type BuildOutcome } from './build-events.ts';
import { DaemonImages, followProgress } from './daemon-images.ts';
import { dockerDefinition } from './definition.ts';
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

const DOCKERFILE_NAME = '.cnb-extender.Dockerfile';

export class DockerBackend implements ExtenderBackend {
  readonly id = 'docker';
  readonly capabilities: BackendCapabilities = definedCapabilities(dockerDefinition, { cache: false });
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
  /** In the names of the images this backend tags: `cnb-extender-base-<runId>:<n>`, `cnb-extender-result-<runId>:<n>`. */
  readonly runId = randomBytes(6).toString('hex');
  readonly #images: DaemonImages;
  readonly #template: ImageBuildTemplate<string>;

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
    this.#images = new DaemonImages({ docker: () => this.#client, host: this.host, runId: this.runId, registry: options.registry, env: options.env, pullBase: this.pullBase });
    this.#template = new ImageBuildTemplate({ id: this.id, layerDir: options.layerDir }, this.#steps());
  }

  readonly pullBase: boolean;

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

  apply(dockerfile: DockerfileSpec, base: ImageDescription, options: ApplyOptions, context: BackendContext): Promise<ImageDescription> {
    return this.#template.apply(dockerfile, base, options, context);
  }

  cleanup(context: BackendContext): Promise<void> {
    return this.#template.cleanup(context);
  }

  /** The ImageBuildTemplate's steps for the Docker daemon; the base is the name the Dockerfile builds FROM. */
  #steps(): ImageBuildSteps<string> {
    return {
      prepare: async () => {
        await this.#ensureReachable();
        await this.#checkNetwork();
      },
      prepareBase: (build) => this.#images.baseInDaemon(build.base, { scratch: build.scratch, fetched: join(build.area, 'fetched') }, build.n, build.signal, build.events),
      build: (build, baseTag) => this.#build(build, baseTag),
      readBack: (build) => this.#readBack(build),
      // the next Dockerfile's base is this result: its base layers, and the new ones
      // when re-packing left them unchanged, are in the daemon through these two images
      finished: (build, _base, _image, built) => this.#images.hold(this.#images.resultTag(build.n), built.layers.map((l) => l.diffId)),
      // the last base and result stay (until the next apply or cleanup) for the next base's layers
      release: async (build, succeeded) => {
        await this.#images.removeTags(succeeded ? new Set([this.#images.baseTag(build.n), this.#images.resultTag(build.n)]) : new Set());
      },
      failure: (build, err) => new ImageBackendError(`building ${build.dockerfile.path} through the Docker daemon at ${this.host}: ${messageOf(err)}`, { cause: err }),
      cleanup: async () => {
        const failed = this.#connection ? await this.#images.removeTags() : [];
        if (failed.length > 0) throw new ImageBackendError(`removing images from the Docker daemon at ${this.host}: ${failed.join('; ')}`);
      },
    };
  }

  /** `/build` of the Dockerfile FROM `baseTag`, tagged as the apply's result; its progress reported. */
  async #build(build: ImageBuild, baseTag: string): Promise<void> {
    const { dockerfile, signal, progress } = build;
    const builder = this.builder;
    const buildargs: Record<string, string> = {};
    for (const arg of dockerfile.args) buildargs[arg.name] = arg.name === 'base_image' ? baseTag : arg.value;
    const resultTag = this.#images.resultTag(build.n);
    this.#images.track(resultTag);
    const query = { t: resultTag, buildargs, networkmode: this.network, rm: true, forcerm: true };
    const outcome: BuildOutcome = {};
    let session: BuildSession | undefined;
    try {
      // <Dockerfile>.dockerignore beside the Dockerfile, else the context's .dockerignore
      const ignore = await readDockerignore(build.options.buildContext, dockerfile.path);
      let stream: NodeJS.ReadableStream;
      if (builder === 'buildkit') {
        const dockerfileDir = join(build.scratch, 'dockerfile');
        await mkdir(dockerfileDir, { recursive: true });
        await writeFile(join(dockerfileDir, 'Dockerfile'), dockerfile.content);
        // BuildKit reads the context's .dockerignore itself, and <Dockerfile>.dockerignore beside the Dockerfile it is sent
        if (ignore !== undefined && ignore.path === `${dockerfile.path}.dockerignore`) await copyFile(ignore.path, join(dockerfileDir, 'Dockerfile.dockerignore'));
        session = await this.#openSession(build.options.buildContext, dockerfileDir, signal);
        // no context in the request body: BuildKit asks the session for it. Not through
        // dockerode's buildImage, which opens a session of its own for version 2.
        stream = await this.#postBuild({ ...query, dockerfile: 'Dockerfile', version: '2', remote: 'client-session', session: session.options.id });
      } else {
        const context = contextTar(build.options.buildContext, DOCKERFILE_NAME, dockerfile.content, ignore) as unknown as NodeJS.ReadableStream;
        stream = await this.#client.buildImage(context, { ...query, dockerfile: DOCKERFILE_NAME, version: '1' } as Docker.ImageBuildOptions);
      }
      await followProgress(this.#client, stream, (event) => onBuildEvent(event, outcome, progress, build.events), signal);
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
      throw buildFailure({ ...outcome, error: outcome.error }, builder === 'buildkit' ? 'BuildKit' : 'classic builder', this.host, dockerfile, progress);
    }
  }

  /** The built image through `/images/{name}/get`, without the base's copies of its layers. */
  async #readBack(build: ImageBuild): Promise<BuiltImage> {
    const resultTag = this.#images.resultTag(build.n);
    try {
      const archive = await this.#client.getImage(resultTag).get();
      return await readImageArchive(archive, { dir: join(build.scratch, 'out'), signal: build.signal, skipLayers: build.base.layers.length });
    } catch (err) {
      if (build.signal.aborted) throw err;
      throw new ImageBackendError(`exporting the built image ${resultTag} from the Docker daemon at ${this.host}: ${messageOf(err)}`, { cause: err });
    }
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
