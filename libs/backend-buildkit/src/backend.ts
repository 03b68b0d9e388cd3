/**
 * `BuildKitBackend`: the extender backend that applies each Dockerfile with
 * BuildKit's own control API. Run kind on a Docker endpoint: the result is
 * exported into dockerd's image store (`moby` exporter), read back through the
 * Engine API (`GET /images/{name}/get`), and described to the core as the
 * base's layers unchanged plus the new layers (entries under the ignore paths
 * dropped), the extended config and one history entry per new layer.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readlink, rm, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import {
  BackendInstructionError,
  type ApplyOptions,
  type BackendCapabilities,
  type BackendContext,
  type DockerfileSpec,
  type ExtenderBackend,
  type ImageDescription,
  type LayerDescription,
} from '@cnb-extender/extender-core';
import { familyOf, layerMediaType, readTar, type Digest, type ImageConfig, type Keychain } from '@cnb-extender/oci';
import { BuildKitClient, type DaemonInfo, type NetworkMode, type SessionTransport } from './client.ts';
import { GrpcError } from './grpc.ts';
import type { CacheEntry, StatusResponse } from './messages.ts';
import { filterTar } from './tarfilter.ts';
import { defaultAddress, engineRequest, parseAddress, readBody, type Endpoint, type TlsOptions } from './transport.ts';

export interface BuildKitBackendOptions {
  /** BuildKit address (`docker://…`, `unix://…`, `tcp://…`); default `BUILDKIT_HOST`, else `docker://`. */
  address?: string;
  tls?: TlsOptions;
  /**
   * The Docker Engine the daemon's `moby` exporter writes into, when `address`
   * is not itself a `docker://` address (e.g. dockerd reached through a proxy).
   */
  engine?: string;
  /** For `docker://`: the session through `/session` (default) or `Control/Session`. */
  sessionTransport?: SessionTransport;
  /** Network for RUN: `none` unless the operator allows more. */
  network?: NetworkMode;
  platform?: string;
  noCache?: boolean;
  cacheImports?: CacheEntry[];
  cacheExports?: CacheEntry[];
  /** Registry credentials served to the daemon (the session's Auth service). */
  keychain?: Keychain;
  env?: NodeJS.ProcessEnv;
}

interface Intermediate {
  /** Name in dockerd's image store. */
  name: string;
  /** Number of history entries of that image as dockerd holds it. */
  historyLength: number;
}

const DOCKER_LAYER_TAR = 'application/vnd.docker.image.rootfs.diff.tar';

/** The instruction as it reads in the Dockerfile, from BuildKit's history `created_by`. */
export function instructionFromHistory(createdBy: string): string {
  let text = createdBy.replace(/ # buildkit$/, '');
  const run = /^RUN (?:\|(\d+) )?(.*)$/s.exec(text);
  if (run) {
    let rest = run[2]!;
    const count = Number(run[1] ?? 0);
    // `|N k=v …` lists the build args in scope; values have no spaces in this format.
    for (let i = 0; i < count; i++) rest = rest.replace(/^\S+=\S* ?/, '');
    text = `RUN ${rest.replace(/^\/bin\/sh -c /, '')}`;
  }
  return text;
}

/** The failing instruction from a Status vertex name (`[2/3] RUN exit 3` → `RUN exit 3`). */
export function instructionFromVertex(name: string): string {
  return name.replace(/^\[[^\]]*\]\s*/, '');
}

/** The RUN named by an executor error (`executor failed running [/bin/sh -c X]`, `process "/bin/sh -c X" did not complete`). */
export function instructionFromError(message: string): string | undefined {
  const old = /executor failed running \[\/bin\/sh -c (.*)\]: /s.exec(message);
  if (old) return `RUN ${old[1]}`;
  const current = /process "\/bin\/sh -c (.*)" did not complete successfully/s.exec(message);
  if (current) return `RUN ${current[1]}`;
  return undefined;
}

export class BuildKitBackend implements ExtenderBackend {
  readonly id = 'buildkit';
  readonly capabilities: BackendCapabilities = {
    inPlace: false,
    kinds: ['run'],
    cache: false,
    privileges: { root: false, capabilities: [], container: false },
  };
  readonly options: BuildKitBackendOptions;
  readonly address: string;
  private client: BuildKitClient | undefined;
  private info: DaemonInfo | undefined;
  private readonly runId = randomBytes(6).toString('hex');
  private counter = 0;
  private readonly intermediates = new Map<string, Intermediate>();
  private readonly createdImages: string[] = [];
  private readonly scratchDirs: string[] = [];

  constructor(options: BuildKitBackendOptions = {}) {
    this.options = options;
    this.address = options.address ?? defaultAddress(options.env ?? process.env);
  }

  private engine(): Endpoint | undefined {
    if (this.options.engine) return parseAddress(this.options.engine, this.options.env ?? process.env);
    const endpoint = parseAddress(this.address, this.options.env ?? process.env, this.options.tls);
    return endpoint.kind === 'docker' ? endpoint : undefined;
  }

  private async connect(signal: AbortSignal): Promise<{ client: BuildKitClient; info: DaemonInfo }> {
    this.client ??= new BuildKitClient(this.address, {
      ...(this.options.tls ? { tls: this.options.tls } : {}),
      ...(this.options.sessionTransport ? { sessionTransport: this.options.sessionTransport } : {}),
      ...(this.options.env ? { env: this.options.env } : {}),
    });
    try {
      this.info ??= await this.client.probe(signal);
    } catch (err) {
      if (signal.aborted) throw err;
      throw new Error(`connecting to BuildKit at ${this.address}: ${(err as Error).message}`, { cause: err });
    }
    return { client: this.client, info: this.info };
  }

  async apply(dockerfile: DockerfileSpec, base: ImageDescription, options: ApplyOptions, context: BackendContext): Promise<ImageDescription> {
    const { signal, events } = context;
    signal.throwIfAborted();
    const { client, info } = await this.connect(signal);
    const engine = this.engine();
    if (!info.exporters.includes('moby') || engine === undefined) {
      throw new Error(
        `applying ${dockerfile.path} with BuildKit at ${this.address}: run kind needs a daemon with the moby exporter and its Docker Engine (set the engine option); exporters here: ${info.exporters.join(', ')}`,
      );
    }
    const scratch = await mkdtemp(join(context.workDir, 'buildkit-'));
    this.scratchDirs.push(scratch);
    const dockerfileDir = join(scratch, 'dockerfile');
    await mkdir(dockerfileDir);
    await writeFile(join(dockerfileDir, 'Dockerfile'), dockerfile.content);

    const baseKey = base.config.rootfs.diff_ids.join(',');
    const intermediate = this.intermediates.get(baseKey);
    const args = dockerfile.args.map((a) => (a.name === 'base_image' && intermediate ? { name: a.name, value: intermediate.name } : a));
    const name = `cnb-extender-buildkit/${this.runId}:${++this.counter}`;

    const vertexes = new Map<string, { name: string; started: boolean; done: boolean; error: string }>();
    let failed: string | undefined;
    const onStatus = (status: StatusResponse) => {
      for (const v of status.vertexes) {
        const known = vertexes.get(v.digest) ?? { name: v.name, started: false, done: false, error: '' };
        vertexes.set(v.digest, known);
        const step = /^\[\s*(\d+)\/\s*\d+\]\s*(.*)$/s.exec(v.name);
        const instruction = instructionFromVertex(v.name);
        const index = step ? Number(step[1]) - 1 : -1;
        if (v.error) {
          known.error = v.error;
          if (step) failed = instruction;
        }
        if (!step) continue;
        if (v.cached && !known.done) {
          events.emit({ type: 'cache-hit', level: 'info', extensionId: dockerfile.extensionId, instruction, key: v.digest });
        }
        if (v.started && !known.started && !v.cached) {
          known.started = true;
          events.emit({ type: 'instruction-started', level: 'info', extensionId: dockerfile.extensionId, instruction, index });
        }
        if (v.completed && !known.done) {
          known.done = true;
          if (!v.error) events.emit({ type: 'instruction-finished', level: 'info', extensionId: dockerfile.extensionId, instruction, index });
        }
      }
      for (const log of status.logs) {
        const vertex = vertexes.get(log.vertex);
        for (const line of log.msg.toString('utf8').split('\n')) {
          if (line !== '') events.emit({ type: 'debug', level: 'info', message: `${vertex ? instructionFromVertex(vertex.name) : log.vertex}: ${line}` });
        }
      }
    };

    try {
      await client.solve({
        dockerfileDir,
        contextDir: dockerfile.contextDir,
        buildArgs: args,
        network: this.options.network ?? 'none',
        ...(this.options.platform ? { platform: this.options.platform } : {}),
        ...(this.options.noCache ? { noCache: true } : {}),
        ...(this.options.cacheImports ? { cacheImports: this.options.cacheImports } : {}),
        ...(this.options.cacheExports ? { cacheExports: this.options.cacheExports } : {}),
        ...(this.options.keychain ? { keychain: this.options.keychain } : {}),
        exporters: [{ type: 'moby', attrs: { name } }],
        signal,
        onStatus,
      });
    } catch (err) {
      if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : err;
      const message = err instanceof GrpcError ? err.details || err.message : (err as Error).message;
      const instruction = failed ?? instructionFromError(message);
      if (instruction !== undefined) throw new BackendInstructionError(instruction, message, { cause: err });
      throw new Error(`building ${dockerfile.path} with BuildKit at ${this.address}: ${message}`, { cause: err });
    }
    this.createdImages.push(name);
    const result = await this.readBack(engine, name, base, options.ignorePaths, scratch, intermediate, signal);
    this.intermediates.set(result.config.rootfs.diff_ids.join(','), { name, historyLength: result.dockerHistoryLength });
    for (const layer of result.image.layers.slice(base.layers.length)) {
      events.emit({
        type: 'layer-written',
        level: 'debug',
        extensionId: dockerfile.extensionId,
        instruction: '',
        digest: layer.descriptor.digest as Digest,
        diffId: layer.diffId,
        size: layer.descriptor.size,
      });
    }
    return result.image;
  }

  /** Reads the exported image back through the Engine API and describes it on top of `base`. */
  private async readBack(
    engine: Endpoint,
    name: string,
    base: ImageDescription,
    ignorePaths: readonly string[],
    scratch: string,
    intermediate: Intermediate | undefined,
    signal: AbortSignal,
  ): Promise<{ image: ImageDescription; config: ImageConfig; dockerHistoryLength: number }> {
    const res = await engineRequest(engine, 'GET', `/images/${encodeURIComponent(name)}/get`, { signal });
    if (res.statusCode !== 200) {
      throw new Error(`reading back ${name} from the Docker Engine: HTTP ${res.statusCode}: ${(await readBody(res)).toString('utf8').trim()}`);
    }
    const layersDir = join(scratch, 'layers');
    await mkdir(layersDir);
    const layerFiles = new Map<string, { path: string; digest: Digest; size: number }>();
    const links = new Map<string, string>();
    const jsonFiles = new Map<string, Buffer>();
    let n = 0;
    for await (const entry of readTar(res)) {
      if (entry.name.endsWith('/layer.tar') && entry.type === 'file') {
        const path = join(layersDir, `${n++}.tar`);
        const filtered = await filterTar(entry.body(), path, ignorePaths);
        layerFiles.set(entry.name, { path, digest: filtered.digest, size: filtered.size });
      } else if (entry.name.endsWith('/layer.tar') && entry.type === 'symlink') {
        links.set(entry.name, posix.normalize(posix.join(posix.dirname(entry.name), entry.linkTarget)));
      } else if (entry.name.endsWith('.json') && !entry.name.includes('/')) {
        const chunks: Buffer[] = [];
        for await (const c of entry.body()) chunks.push(c);
        jsonFiles.set(entry.name, Buffer.concat(chunks));
      }
    }
    const manifestBytes = jsonFiles.get('manifest.json');
    if (!manifestBytes) throw new Error(`reading back ${name} from the Docker Engine: the archive has no manifest.json`);
    const manifest = JSON.parse(manifestBytes.toString('utf8')) as { Config: string; Layers: string[] }[];
    const entry = manifest[0];
    const configBytes = entry ? jsonFiles.get(entry.Config) : undefined;
    if (!entry || !configBytes) throw new Error(`reading back ${name} from the Docker Engine: the archive has no image config`);
    const config = JSON.parse(configBytes.toString('utf8')) as ImageConfig;
    const baseCount = base.layers.length;
    if (entry.Layers.length < baseCount) {
      throw new Error(`reading back ${name}: the image has ${entry.Layers.length} layers, fewer than its base's ${baseCount}`);
    }
    const dockerDiffIds = config.rootfs.diff_ids;
    if (!intermediate) {
      // The base came from a registry: its layers must be the very same.
      for (let i = 0; i < baseCount; i++) {
        if (dockerDiffIds[i] !== base.layers[i]!.diffId) {
          throw new Error(`reading back ${name}: layer ${i} is ${dockerDiffIds[i]}, not the base's ${base.layers[i]!.diffId}`);
        }
      }
    }
    const family = familyOf(base.manifestMediaType);
    const mediaType = family === 'docker' ? DOCKER_LAYER_TAR : layerMediaType(family, 'none');
    const newLayers: LayerDescription[] = [];
    for (const layerName of entry.Layers.slice(baseCount)) {
      let file = layerFiles.get(layerName);
      const target = links.get(layerName);
      if (!file && target) file = layerFiles.get(target);
      if (!file) throw new Error(`reading back ${name}: ${layerName} is missing from the archive`);
      newLayers.push({ descriptor: { mediaType, digest: file.digest, size: file.size }, diffId: file.digest, blob: { kind: 'file', path: file.path } });
    }
    // Base layer copies are not needed: the core keeps the base's own blobs.
    const keep = new Set(newLayers.map((l) => (l.blob as { path: string }).path));
    for (const f of layerFiles.values()) if (!keep.has(f.path)) await rm(f.path, { force: true });

    const dockerHistory = config.history ?? [];
    const baseHistoryLength = intermediate ? intermediate.historyLength : (base.config.history ?? []).length;
    const newHistory = dockerHistory.slice(baseHistoryLength).map((h) => (h.created_by ? { ...h, created_by: instructionFromHistory(h.created_by) } : h));
    const resultConfig: ImageConfig = {
      ...config,
      rootfs: { type: 'layers', diff_ids: [...base.config.rootfs.diff_ids, ...newLayers.map((l) => l.diffId)] },
      history: [...(base.config.history ?? []), ...newHistory],
    };
    const image: ImageDescription = {
      manifestMediaType: base.manifestMediaType,
      config: resultConfig,
      layers: [...base.layers, ...newLayers],
      ...(base.annotations ? { annotations: base.annotations } : {}),
    };
    return { image, config: resultConfig, dockerHistoryLength: dockerHistory.length };
  }

  /** Sessions still open towards the daemon (0 whenever no apply is running). */
  get openSessions(): number {
    return this.client?.openSessions ?? 0;
  }

  async cleanup(context: BackendContext): Promise<void> {
    const errors: string[] = [];
    const engine = this.engine();
    for (const name of this.createdImages.splice(0)) {
      if (!engine) break;
      try {
        const res = await engineRequest(engine, 'DELETE', `/images/${encodeURIComponent(name)}`);
        const body = await readBody(res);
        if (res.statusCode !== 200 && res.statusCode !== 404) errors.push(`removing image ${name}: HTTP ${res.statusCode}: ${body.toString('utf8').trim()}`);
      } catch (err) {
        errors.push(`removing image ${name}: ${(err as Error).message}`);
      }
    }
    for (const dir of this.scratchDirs.splice(0)) await rm(dir, { recursive: true, force: true });
    this.intermediates.clear();
    await this.client?.close();
    this.client = undefined;
    this.info = undefined;
    void context;
    if (errors.length > 0) throw new Error(`cleaning up after BuildKit: ${errors.join('; ')}`);
  }
}
