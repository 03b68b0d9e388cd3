/**
 * The images the docker backend keeps in the daemon: each Dockerfile's base
 * (only tagged when the daemon has it, pulled with `pullBase`, else loaded
 * without the layers the daemon already holds) and each result, tagged
 * `cnb-extender-base-<runId>:<n>` and `cnb-extender-result-<runId>:<n>`. The
 * last base and result stay until the next apply or cleanup: the next base's
 * layers are in the daemon through them.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { serializeImage, type EventSink, type ImageDescription } from '@cnb-extender/extender-core';
import { ImageBackendError, materializeBaseLayout, messageOf, writeImageArchive, type ImageArchiveLayer } from '@cnb-extender/image-backend-kit';
import { defaultKeychain, parseReference, type RegistryClient } from '@cnb-extender/oci';
import type { DockerEnv } from './host.ts';

type SerializedImage = ReturnType<typeof serializeImage>;

/** An image this backend knows to be in the daemon, by the name it uses for it. */
interface HeldImage {
  name: string;
  diffIds: readonly string[];
}

/** Where a base being loaded is written: `scratch` for this apply, `fetched` for blobs fetched from a registry (kept between applies). */
export interface BaseDirs {
  scratch: string;
  fetched: string;
}

export interface DaemonImagesOptions {
  /** The daemon's client (created on first use). */
  docker: () => Docker;
  /** The daemon's address, for messages. */
  host: string;
  runId: string;
  /** Registry client for base layers a sparse layout lacks; its keychain's credentials go with a pull. */
  registry?: RegistryClient | undefined;
  env?: DockerEnv | undefined;
  /** Let the daemon pull the first base from its registry. */
  pullBase: boolean;
}

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

/** Follow a daemon's progress stream to its end (destroyed on abort). */
export async function followProgress(docker: Docker, stream: NodeJS.ReadableStream, onEvent: (event: Record<string, unknown>) => void, signal: AbortSignal): Promise<void> {
  const abort = () => (stream as unknown as { destroy?: (e?: Error) => void }).destroy?.(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
  signal.addEventListener('abort', abort, { once: true });
  try {
    await new Promise<void>((resolve, reject) => {
      docker.modem.followProgress(
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

export class DaemonImages {
  readonly #options: DaemonImagesOptions;
  /** Tags this backend made (removed at the latest on cleanup). */
  #tags = new Set<string>();
  /**
   * Images in the daemon whose layers a later base may share (the last base and
   * result, a pulled base): their diff_ids say which layer chains the daemon holds.
   */
  #held: HeldImage[] = [];

  constructor(options: DaemonImagesOptions) {
    this.#options = options;
  }

  get #docker(): Docker {
    return this.#options.docker();
  }

  baseTag(n: number): string {
    return `cnb-extender-base-${this.#options.runId}:${n}`;
  }

  resultTag(n: number): string {
    return `cnb-extender-result-${this.#options.runId}:${n}`;
  }

  /** `tag` is one of this backend's (removed at the latest by `removeTags()`). */
  track(tag: string): void {
    this.#tags.add(tag);
  }

  /** The image `name` is in the daemon with these layers. */
  hold(name: string, diffIds: readonly string[]): void {
    this.#held.push({ name, diffIds });
  }

  /** Have the daemon pull `reference` (a digest reference); credentials from the registry client's keychain. */
  async #pull(reference: string, signal: AbortSignal, events: EventSink): Promise<string | undefined> {
    const ref = parseReference(reference);
    if (!ref.digest) return undefined;
    const { registry } = this.#options;
    try {
      const keychain = registry?.keychain ?? defaultKeychain({ ...(this.#options.env ?? process.env) } as NodeJS.ProcessEnv);
      const credential = await keychain.resolve(ref.registry);
      const authconfig = credential?.kind === 'basic' ? { username: credential.username, password: credential.password, serveraddress: ref.registry } : undefined;
      const stream = (await this.#docker.pull(reference, authconfig ? { authconfig } : {})) as NodeJS.ReadableStream;
      let failure: string | undefined;
      await followProgress(this.#docker, stream, (event) => {
        if (typeof event['error'] === 'string') failure = event['error'];
      }, signal);
      if (failure) throw new Error(failure);
      return reference;
    } catch (err) {
      if (signal.aborted) throw err;
      const message = registry ? registry.redact(messageOf(err)) : messageOf(err);
      events.emit({ type: 'debug', level: 'debug', message: `docker: pulling ${reference} in the daemon failed (${message}); loading the base instead` });
      return undefined;
    }
  }

  /**
   * The daemon's image called `name` (an ID, a tag, a digest reference), or undefined
   * when it has none. Only a shortcut: when the lookup itself fails the base is loaded.
   */
  async #lookup(name: string, debug: (message: string) => void): Promise<Docker.ImageInspectInfo | undefined> {
    try {
      return await this.#docker.getImage(name).inspect();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) debug(`looking up ${name} in the daemon failed (${messageOf(err)}); loading the base`);
      return undefined;
    }
  }

  async #tag(image: string, tag: string): Promise<void> {
    const [repo, version] = tag.split(':') as [string, string];
    this.#tags.add(tag);
    try {
      await this.#docker.getImage(image).tag({ repo, tag: version });
    } catch (err) {
      throw new ImageBackendError(`tagging the base image ${image} as ${tag} in the Docker daemon at ${this.#options.host}: ${messageOf(err)}`, { cause: err });
    }
  }

  /**
   * Make the base an image of the daemon and return the name to build FROM: an image
   * with the same config (hence the same ID) or, for the original base, the same
   * manifest digest is only tagged; with `pullBase` the daemon pulls the first base;
   * else it is loaded, without the layers the daemon already holds.
   */
  async baseInDaemon(base: ImageDescription, dirs: BaseDirs, n: number, signal: AbortSignal, events: EventSink): Promise<string> {
    const id = serializeImage(base).manifest.config.digest;
    const diffIds = base.layers.map((l) => l.diffId as string);
    const tag = this.baseTag(n);
    const debug = (message: string) => events.emit({ type: 'debug', level: 'debug', message: `docker: ${message}` });
    if (await this.#lookup(id, debug)) {
      await this.#tag(id, tag);
      debug(`base ${id} is already in the daemon; not loading it`);
      this.hold(tag, diffIds);
      return tag;
    }
    signal.throwIfAborted();
    if (this.#options.pullBase && n === 1 && base.reference) {
      const pulled = await this.#pull(base.reference, signal, events);
      if (pulled) {
        this.hold(pulled, diffIds);
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
        this.hold(tag, diffIds);
        return tag;
      }
    }
    signal.throwIfAborted();
    await this.#loadSharing(base, tag, dirs, signal, debug);
    this.hold(tag, diffIds);
    return tag;
  }

  /** Load the base without the layers the daemon holds; with all of them when that fails. */
  async #loadSharing(base: ImageDescription, tag: string, dirs: BaseDirs, signal: AbortSignal, debug: (message: string) => void): Promise<void> {
    const serialized = serializeImage(base);
    const held = this.#sharedLayers(base.layers.map((l) => l.diffId as string));
    try {
      await this.#load(base, serialized, tag, held, dirs, signal, debug);
    } catch (err) {
      if (held === 0 || signal.aborted) throw err;
      // an image holding those layers went away meanwhile: send them all
      debug(`loading base ${serialized.manifest.config.digest} without its first ${held} layers failed (${messageOf(err)}); sending all of them`);
      await this.#load(base, serialized, tag, 0, dirs, signal, debug);
    }
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

  async #load(base: ImageDescription, { configBytes, manifest }: SerializedImage, tag: string, held: number, dirs: BaseDirs, signal: AbortSignal, debug: (message: string) => void): Promise<void> {
    const id = manifest.config.digest;
    const total = base.layers.length;
    debug(held > 0 ? `loading base ${id}: ${held} of ${total} layers already in the daemon, sending ${total - held}` : `loading base ${id}: sending all ${total} layers`);
    // only the layers sent need a blob on disk (a sparse base's are fetched from its registry)
    const sent = { ...base, layers: base.layers.slice(held) };
    const layout =
      held < total
        ? await materializeBaseLayout(sent, {
            dir: join(dirs.scratch, 'base'),
            fetchedBlobDir: dirs.fetched,
            signal,
            ...(this.#options.registry ? { registry: this.#options.registry } : {}),
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
      const stream = await this.#docker.loadImage(writeImageArchive({ config: configBytes, configDigest: id, layers, tags: [tag], signal }), { quiet: true });
      await followProgress(this.#docker, stream, (event) => {
        if (typeof event['error'] === 'string') failure = event['error'];
      }, signal);
    } catch (err) {
      if (signal.aborted) throw err;
      throw new ImageBackendError(`loading the base image into the Docker daemon at ${this.#options.host}: ${messageOf(err)}`, { cause: err });
    } finally {
      if (layout) await rm(layout.layoutDir, { recursive: true, force: true });
    }
    if (failure) throw new ImageBackendError(`loading the base image into the Docker daemon at ${this.#options.host}: ${failure}`);
  }

  /** Remove this backend's tags but those in `keep`, newest first (a result before its base); what could not be removed. */
  async removeTags(keep: ReadonlySet<string> = new Set()): Promise<string[]> {
    const failed: string[] = [];
    for (const tag of [...this.#tags].reverse()) {
      if (keep.has(tag)) continue;
      try {
        await this.#docker.getImage(tag).remove({ force: true });
        this.#tags.delete(tag);
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) this.#tags.delete(tag);
        else failed.push(`${tag}: ${messageOf(err)}`);
      }
    }
    this.#held = this.#held.filter((image) => !image.name.startsWith('cnb-extender-') || this.#tags.has(image.name));
    return failed;
  }
}
