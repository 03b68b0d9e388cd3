/**
 * `BuildKitBackend`: the extender backend that applies each Dockerfile with
 * BuildKit's own control API. Run kind on a Docker endpoint: the result is
 * exported into dockerd's image store (`moby` exporter), read back through the
 * Engine API (`GET /images/{name}/get`), and described to the core as the
 * base's layers unchanged plus the new layers (entries under the ignore paths
 * dropped), the extended config and one history entry per new layer.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
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
import { decompressLayer, familyOf, layerMediaType, readTar, type Digest, type ImageConfig, type Keychain } from '@cnb-extender/oci';
import { BuildKitClient, type DaemonInfo, type NetworkMode, type SessionTransport } from './client.ts';
import { GrpcError } from './grpc.ts';
import type { CacheEntry, ExporterEntry, StatusResponse } from './messages.ts';
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
  /**
   * Standalone buildkitd only: a repository the daemon can push to and pull
   * from, for the intermediate image a later Dockerfile builds on
   * (`registry.example/cnb-extender/intermediate`). Without it, a group with
   * more than one Dockerfile cannot be applied on a standalone buildkitd.
   */
  intermediateRepository?: string;
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

/**
 * The result as the core wants it: the base's layers unchanged, then the new
 * layers (uncompressed, filtered), the daemon's config with diff_ids and
 * history rebuilt on top of the base's.
 */
function describe(
  config: ImageConfig,
  files: readonly { path: string; digest: Digest; size: number }[],
  base: ImageDescription,
  intermediate: Intermediate | undefined,
): { image: ImageDescription; config: ImageConfig; dockerHistoryLength: number } {
  const family = familyOf(base.manifestMediaType);
  const mediaType = family === 'docker' ? DOCKER_LAYER_TAR : layerMediaType(family, 'none');
  const newLayers: LayerDescription[] = files.map((file) => ({
    descriptor: { mediaType, digest: file.digest, size: file.size },
    diffId: file.digest,
    blob: { kind: 'file', path: file.path },
  }));
  const daemonHistory = config.history ?? [];
  const baseHistoryLength = intermediate ? intermediate.historyLength : (base.config.history ?? []).length;
  const newHistory = daemonHistory.slice(baseHistoryLength).map((h) => (h.created_by ? { ...h, created_by: instructionFromHistory(h.created_by) } : h));
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
  return { image, config: resultConfig, dockerHistoryLength: daemonHistory.length };
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
    // dockerd's BuildKit: `moby` export + Engine API read-back. A standalone buildkitd: `oci` tar over FileSend.
    const mode: 'moby' | 'oci' = info.exporters.includes('moby') && engine !== undefined ? 'moby' : 'oci';
    if (mode === 'oci' && !info.exporters.includes('oci')) {
      throw new Error(
        `applying ${dockerfile.path} with BuildKit at ${this.address}: this daemon has neither the oci exporter nor a Docker Engine to read the moby export back (set the engine option); exporters here: ${info.exporters.join(', ')}`,
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
    const counter = ++this.counter;
    const name =
      mode === 'oci' && this.options.intermediateRepository
        ? `${this.options.intermediateRepository}:${this.runId}-${counter}`
        : `cnb-extender-buildkit/${this.runId}:${counter}`;
    const exportFile = join(scratch, 'export.tar');
    const exporters: ExporterEntry[] =
      mode === 'moby'
        ? [{ type: 'moby', attrs: { name } }]
        : [
            { type: 'oci', attrs: { name, tar: 'true' } },
            ...(this.options.intermediateRepository ? [{ type: 'image', attrs: { name, push: 'true' } }] : []),
          ];

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
        exporters,
        ...(mode === 'oci' ? { exportFile } : {}),
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
    let result: { image: ImageDescription; config: ImageConfig; dockerHistoryLength: number };
    if (mode === 'moby' && engine) {
      this.createdImages.push(name);
      result = await this.readBack(engine, name, base, options.ignorePaths, scratch, intermediate, signal);
    } else {
      result = await this.readOciExport(exportFile, name, base, options.ignorePaths, scratch, intermediate);
    }
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
    const files: { path: string; digest: Digest; size: number }[] = [];
    for (const layerName of entry.Layers.slice(baseCount)) {
      let file = layerFiles.get(layerName);
      const target = links.get(layerName);
      if (!file && target) file = layerFiles.get(target);
      if (!file) throw new Error(`reading back ${name}: ${layerName} is missing from the archive`);
      files.push(file);
    }
    // Base layer copies are not needed: the core keeps the base's own blobs.
    const keep = new Set(files.map((f) => f.path));
    for (const f of layerFiles.values()) if (!keep.has(f.path)) await rm(f.path, { force: true });
    return describe(config, files, base, intermediate);
  }

  /** Reads an `oci` exporter tarball (streamed over FileSend) and describes it on top of `base`. */
  private async readOciExport(
    exportFile: string,
    name: string,
    base: ImageDescription,
    ignorePaths: readonly string[],
    scratch: string,
    intermediate: Intermediate | undefined,
  ): Promise<{ image: ImageDescription; config: ImageConfig; dockerHistoryLength: number }> {
    const blobsDir = join(scratch, 'blobs');
    await mkdir(blobsDir);
    const small = new Map<string, Buffer>();
    for await (const entry of readTar(createReadStream(exportFile))) {
      const path = entry.name.replace(/^\.?\//, '');
      if (entry.type !== 'file') continue;
      if (path.startsWith('blobs/') && entry.size > 1 << 20) {
        await pipeline(Readable.from(entry.body()), createWriteStream(join(blobsDir, path.split('/').pop()!)));
      } else {
        const chunks: Buffer[] = [];
        for await (const c of entry.body()) chunks.push(c);
        small.set(path, Buffer.concat(chunks));
      }
    }
    await rm(exportFile, { force: true });
    const blob = (digest: string): Buffer => {
      const found = small.get(`blobs/${digest.replace(':', '/')}`);
      if (!found) throw new Error(`reading the oci export of ${name}: blob ${digest} is missing`);
      return found;
    };
    async function* open(digest: string): AsyncGenerator<Uint8Array> {
      const inMemory = small.get(`blobs/${digest.replace(':', '/')}`);
      if (inMemory) yield inMemory;
      else for await (const chunk of createReadStream(join(blobsDir, digest.split(':')[1]!))) yield chunk as Buffer;
    }
    interface OciIndex {
      manifests?: { digest: string; platform?: { os?: string } }[];
    }
    interface OciManifest extends OciIndex {
      config?: { digest: string };
      layers?: { digest: string }[];
    }
    const index = JSON.parse((small.get('index.json') ?? Buffer.from('{}')).toString('utf8')) as OciIndex;
    let manifestDigest = index.manifests?.[0]?.digest;
    let manifest = manifestDigest ? (JSON.parse(blob(manifestDigest).toString('utf8')) as OciManifest) : undefined;
    if (manifest?.manifests) {
      // An index (with attestations): the image manifest is the one with a real platform.
      manifestDigest = manifest.manifests.find((m) => m.platform?.os !== 'unknown')?.digest;
      manifest = manifestDigest ? (JSON.parse(blob(manifestDigest).toString('utf8')) as OciManifest) : undefined;
    }
    if (!manifest?.config || !manifest.layers) throw new Error(`reading the oci export of ${name}: no image manifest in index.json`);
    const config = JSON.parse(blob(manifest.config.digest).toString('utf8')) as ImageConfig;
    const baseCount = base.layers.length;
    if (!intermediate) {
      for (let i = 0; i < baseCount; i++) {
        if (config.rootfs.diff_ids[i] !== base.layers[i]!.diffId) throw new Error(`reading the oci export of ${name}: layer ${i} is not the base's`);
      }
    }
    const files: { path: string; digest: Digest; size: number }[] = [];
    for (const [i, layer] of manifest.layers.slice(baseCount).entries()) {
      const { tar } = await decompressLayer(open(layer.digest));
      const path = join(blobsDir, `new-${i}.tar`);
      const filtered = await filterTar(tar, path, ignorePaths);
      files.push({ path, digest: filtered.digest, size: filtered.size });
    }
    for (const entry of await readdir(blobsDir)) if (!entry.startsWith('new-')) await rm(join(blobsDir, entry), { force: true });
    return describe(config, files, base, intermediate);
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
