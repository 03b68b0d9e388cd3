/**
 * The Docker Engine API backend (dockerode): the base goes into the daemon as a
 * docker-archive (`/images/load`), each Dockerfile is built with `/build` — the
 * classic builder or BuildKit (`version=2`) — from a context streamed as a tar,
 * and the result comes back through `/images/{name}/get` (docker-archive → layers
 * + config) for the kit to assemble. Build output is streamed as events.
 */
import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type Docker from 'dockerode';
import {
  BackendInstructionError,
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
  stepInstruction,
} from '@cnb-extender/image-backend-kit';
import { defaultKeychain, parseReference, type ImageManifest, type RegistryClient } from '@cnb-extender/oci';
import { contextTar, dockerArchive, readDockerArchive } from './archive.ts';
import { decodeStatus } from './buildkit-status.ts';
import { DEFAULT_DOCKER_HOST, connect } from './host.ts';

export type DockerBuilder = 'classic' | 'buildkit';

export interface DockerBackendOptions {
  /** Daemon address (default `DOCKER_HOST` from `env`, else `unix:///var/run/docker.sock`). */
  host?: string;
  /** `classic` (default) or `buildkit` (`/build?version=2`); from `env`: `CNB_DOCKER_BUILDER`, or `DOCKER_BUILDKIT=1`. */
  builder?: DockerBuilder;
  /** Network of RUN steps (default `host`; a daemon without a bridge needs `host` or `none`). */
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
  env?: Readonly<Record<string, string | undefined>>;
}

interface BuildOutcome {
  error?: string;
  /** Last instruction the build reported starting (classic `Step n/m : X`, BuildKit `[n/m] X`). */
  step?: string;
  /** BuildKit: the vertex that failed. */
  failedStep?: string;
}

const DOCKERFILE_NAME = '.cnb-extender.Dockerfile';

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
  readonly builder: DockerBuilder;
  #docker: Docker | undefined;
  #reachable: Promise<void> | undefined;
  #tags = new Set<string>();
  #workDirs = new Set<string>();
  #run = randomBytes(6).toString('hex');
  #count = 0;

  constructor(options: DockerBackendOptions = {}) {
    this.options = options;
    const env = options.env ?? process.env;
    this.host = options.host ?? (env['DOCKER_HOST'] || DEFAULT_DOCKER_HOST);
    const fromEnv = env['CNB_DOCKER_BUILDER'] ?? (env['DOCKER_BUILDKIT'] === '1' ? 'buildkit' : undefined);
    this.builder = options.builder ?? (fromEnv === 'buildkit' ? 'buildkit' : 'classic');
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
    this.#docker ??= connect(this.host).docker;
    return this.#docker;
  }

  async #ensureReachable(): Promise<void> {
    this.#reachable ??= this.#client.ping().then(
      () => undefined,
      (err: unknown) => {
        throw new ImageBackendError(`connecting to the Docker daemon at ${this.host}: ${messageOf(err)}; start dockerd or set DOCKER_HOST`, { cause: err });
      },
    );
    try {
      await this.#reachable;
    } catch (err) {
      this.#reachable = undefined;
      throw err;
    }
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

  async #loadBase(base: ImageDescription, area: string, n: number, signal: AbortSignal): Promise<string> {
    const layout = await materializeBaseLayout(base, {
      dir: join(area, `base-${n}`),
      fetchedBlobDir: join(area, 'fetched'),
      signal,
      ...(this.options.registry ? { registry: this.options.registry } : {}),
    });
    const tag = `cnb-extender-base-${this.#run}:${n}`;
    const manifest = JSON.parse(layout.manifestBytes.toString('utf8')) as ImageManifest;
    this.#tags.add(tag);
    let failure: string | undefined;
    try {
      const stream = await this.#client.loadImage(dockerArchive(layout.layoutDir, manifest, layout.configBytes, tag), { quiet: true });
      await this.#follow(stream, (event) => {
        if (typeof event['error'] === 'string') failure = event['error'];
      }, signal);
    } catch (err) {
      if (signal.aborted) throw err;
      throw new ImageBackendError(`loading the base image into the Docker daemon at ${this.host}: ${messageOf(err)}`, { cause: err });
    } finally {
      await rm(layout.layoutDir, { recursive: true, force: true });
    }
    if (failure) throw new ImageBackendError(`loading the base image into the Docker daemon at ${this.host}: ${failure}`);
    return tag;
  }

  #onBuildEvent(event: Record<string, unknown>, outcome: BuildOutcome, dockerfile: DockerfileSpec, events: EventSink, seen: Set<string>): void {
    const extensionId = dockerfile.extensionId;
    if (typeof event['error'] === 'string') outcome.error = event['error'];
    if (typeof event['stream'] === 'string') {
      for (const line of event['stream'].split('\n')) {
        const instruction = stepInstruction(line);
        if (instruction !== undefined) {
          outcome.step = instruction;
          events.emit({ type: 'instruction-started', level: 'info', extensionId, instruction, index: seen.size });
          seen.add(instruction + seen.size);
        } else if (line.trim() !== '') {
          events.emit({ type: 'debug', level: 'debug', message: `docker: ${line}` });
        }
      }
    }
    if (event['id'] === 'moby.buildkit.trace' && typeof event['aux'] === 'string') {
      let status;
      try {
        status = decodeStatus(event['aux']);
      } catch {
        return;
      }
      for (const vertex of status.vertexes) {
        const instruction = stepInstruction(vertex.name);
        if (vertex.error && instruction !== undefined) outcome.failedStep = instruction;
        if (instruction === undefined || !vertex.started || seen.has(vertex.digest)) continue;
        seen.add(vertex.digest);
        outcome.step = instruction;
        events.emit({ type: 'instruction-started', level: 'info', extensionId, instruction, index: seen.size - 1 });
        if (vertex.cached) events.emit({ type: 'cache-hit', level: 'debug', extensionId, instruction } as never);
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

  async apply(dockerfile: DockerfileSpec, base: ImageDescription, options: ApplyOptions, context: BackendContext): Promise<ImageDescription> {
    const { signal, events, workDir } = context;
    signal.throwIfAborted();
    await this.#ensureReachable();
    this.#workDirs.add(workDir);
    const area = join(workDir, 'docker');
    const n = ++this.#count;
    const resultTag = `cnb-extender-result-${this.#run}:${n}`;
    const outDir = join(area, `out-${n}`);
    try {
      const pulled = this.pullBase && n === 1 && base.reference ? await this.#pullBase(base.reference, signal, events) : undefined;
      const baseTag = pulled ?? (await this.#loadBase(base, area, n, signal));
      const buildargs: Record<string, string> = {};
      for (const arg of dockerfile.args) buildargs[arg.name] = arg.name === 'base_image' ? baseTag : arg.value;
      this.#tags.add(resultTag);
      const outcome: BuildOutcome = {};
      const seen = new Set<string>();
      try {
        const stream = await this.#client.buildImage(contextTar(options.buildContext, DOCKERFILE_NAME, dockerfile.content) as unknown as NodeJS.ReadableStream, {
          t: resultTag,
          dockerfile: DOCKERFILE_NAME,
          buildargs,
          networkmode: this.options.network ?? 'host',
          rm: true,
          forcerm: true,
          version: this.builder === 'buildkit' ? '2' : '1',
        } as Docker.ImageBuildOptions);
        await this.#follow(stream, (event) => this.#onBuildEvent(event, outcome, dockerfile, events, seen), signal);
      } catch (err) {
        if (signal.aborted) throw err;
        outcome.error ??= messageOf(err);
      }
      if (outcome.error !== undefined) {
        const message = `docker build (${this.builder === 'buildkit' ? 'BuildKit' : 'classic builder'}) at ${this.host} failed: ${outcome.error.trim()}`;
        const instruction = outcome.failedStep ?? this.#instructionFromError(outcome.error, dockerfile) ?? outcome.step;
        if (instruction !== undefined && !/^FROM\b/i.test(instruction)) throw new BackendInstructionError(instruction, message);
        throw new ImageBackendError(message);
      }
      let built;
      try {
        const archive = await this.#client.getImage(resultTag).get();
        built = await readDockerArchive(archive, outDir);
      } catch (err) {
        if (signal.aborted) throw err;
        throw new ImageBackendError(`exporting the built image ${resultTag} from the Docker daemon at ${this.host}: ${messageOf(err)}`, { cause: err });
      }
      return await assembleImage({
        base,
        built,
        dockerfile,
        ignorePaths: options.ignorePaths,
        blobDir: this.options.layerDir ?? defaultBlobDir(workDir, this.id),
        events,
        signal,
      });
    } catch (err) {
      if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : err;
      if (err instanceof BackendInstructionError || err instanceof ImageBackendError) throw err;
      throw new ImageBackendError(`building ${dockerfile.path} through the Docker daemon at ${this.host}: ${messageOf(err)}`, { cause: err });
    } finally {
      await rm(outDir, { recursive: true, force: true });
      await this.#removeTags();
    }
  }

  async #removeTags(): Promise<string[]> {
    const failed: string[] = [];
    for (const tag of [...this.#tags].reverse()) {
      try {
        await this.#client.getImage(tag).remove({ force: true });
        this.#tags.delete(tag);
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) this.#tags.delete(tag);
        else failed.push(`${tag}: ${messageOf(err)}`);
      }
    }
    return failed;
  }

  async cleanup(context: BackendContext): Promise<void> {
    const failed = this.#docker ? await this.#removeTags() : [];
    for (const workDir of new Set([...this.#workDirs, context.workDir])) {
      await rm(join(workDir, 'docker'), { recursive: true, force: true });
      await rm(defaultBlobDir(workDir, this.id), { recursive: true, force: true });
    }
    this.#workDirs.clear();
    if (failed.length > 0) throw new ImageBackendError(`removing images from the Docker daemon at ${this.host}: ${failed.join('; ')}`);
  }
}

/** Create the Docker Engine API backend. */
export function createDockerBackend(options: DockerBackendOptions = {}): DockerBackend {
  return new DockerBackend(options);
}

/** The backend registry's factory (`{ env }`): `DOCKER_HOST`, `CNB_DOCKER_BUILDER` / `DOCKER_BUILDKIT`. */
export function createBackend(options: { env?: Readonly<Record<string, string | undefined>> } = {}): DockerBackend {
  return new DockerBackend(options.env && Object.keys(options.env).length > 0 ? { env: { ...process.env, ...options.env } } : {});
}
