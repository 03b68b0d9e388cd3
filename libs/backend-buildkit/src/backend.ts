/**
 * `BuildKitBackend`: the extender backend that applies each Dockerfile with
 * BuildKit's own control API.
 *
 * - dockerd (worker `moby`): the core's base is loaded into the Docker image
 *   store (`POST /images/load`, a docker-archive of the base layout that
 *   image-backend-kit materialises), the Dockerfile builds `FROM` it, the result
 *   is exported with `moby` and read back through `GET /images/{name}/get`.
 * - standalone buildkitd (v0.11+): the base is an OCI-layout named context whose
 *   blobs the session serves (the daemon needs no route or credentials to its
 *   registry), and the `oci` export is written into the same session store, so
 *   only the new blobs come back;
 * - older standalone daemons, or `baseFrom: 'registry'`: the daemon pulls
 *   `base_image` itself and streams the result back as an `oci` tarball.
 *
 * The kit's `assembleImage` then gives the core what every image-producing
 * backend gives: base descriptors unchanged, new layers filtered and gzip
 * re-encoded, history per Dockerfile line.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  BackendInstructionError,
  type ApplyOptions,
  type BackendCapabilities,
  type BackendContext,
  type DockerfileSpec,
  type ExtenderBackend,
  type ImageDescription,
} from '@cnb-extender/extender-core';
import { assembleImage, defaultBlobDir, materializeBaseLayout, readBuiltLayout, readImageArchive, StepReporter, toolStep, writeImageArchive, type BuiltImage } from '@cnb-extender/image-backend-kit';
import { MediaType, canonicalJson, defaultKeychain, type Descriptor, type Digest, type ImageManifest, type Keychain, type RegistryClient } from '@cnb-extender/oci';
import { BuildKitClient, type DaemonInfo, type NetworkMode, type SessionTransport } from './client.ts';
import { EndpointError, GrpcError, GrpcStatus, LayoutContentStore } from '@cnb-extender/buildkit-session';
import { planLocalCache, tagLocalCache } from './local-cache.ts';
import { BASE_STORE, LAYOUT_CONTEXT_MIN_VERSION, layoutContext, namedContextKeys, registryOf, scopedKeychain, takesLayoutContexts } from './base-context.ts';
import type { CacheEntry, ExporterEntry, StatusResponse } from '@cnb-extender/buildkit-session';
import { defaultAddress, engineRequest, parseAddress, readBody, type Endpoint, type TlsOptions } from '@cnb-extender/buildkit-session';

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
   * Standalone buildkitd only: a repository each Dockerfile's result is also
   * pushed to (`registry.example/cnb-extender/intermediate`). Not needed for a
   * group of Dockerfiles: each builds on the previous result through the
   * session; only the `baseFrom: 'registry'` path (and daemons older than
   * v0.11) pull the previous result from here.
   */
  intermediateRepository?: string;
  /** For `docker://`: the session through `/session` (default) or `Control/Session`. */
  sessionTransport?: SessionTransport;
  /**
   * Where a standalone buildkitd gets the base: `session` (default) serves it from the extender as an OCI-layout
   * named context, so the daemon needs no route or credentials to the base's registry (BuildKit v0.11+; older
   * daemons fall back to `registry` with a warning); `registry` lets the daemon pull it itself.
   */
  baseFrom?: 'session' | 'registry';
  /** Network for RUN: `none` unless the operator allows more. */
  network?: NetworkMode;
  /** `os/arch[/variant]` to build for (default: the daemon's). */
  platform?: string;
  /** Labels added to every result (`label:*` frontend attrs). */
  labels?: Record<string, string>;
  /** Ignore the daemon's cache for every step. */
  noCache?: boolean;
  cacheImports?: CacheEntry[];
  cacheExports?: CacheEntry[];
  /**
   * Registry credentials served to the daemon (the session's Auth service).
   * Default: libs/oci's `defaultKeychain()` (CNB_REGISTRY_AUTH, then Docker's
   * config and credential helpers); `false` serves none.
   */
  keychain?: Keychain | false;
  /** Registry client for base layers missing from a sparse layout (default: the lifecycle's credential sources). */
  registry?: RegistryClient;
  /**
   * Where new layer blobs are written (default `<workDir>/buildkit-layers`).
   * Build kind: a directory outside the core's work directory, so the blobs
   * outlive `extend()` for publishing; the caller removes it.
   */
  layerDir?: string;
  env?: NodeJS.ProcessEnv;
}

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

export type ExportMode = 'moby' | 'store' | 'tar';

/**
 * How this daemon gets the base and gives the result back:
 * - `moby`: dockerd's BuildKit; the base is loaded into the Docker image store, the result read back through the Engine API;
 * - `store`: BuildKit v0.11+; the base is an OCI-layout named context served by the session, the `oci` export written
 *   into the same session store (only new blobs cross);
 * - `tar`: older daemons, or `baseFrom: 'registry'`; the daemon pulls `base_image` from its registry and streams an
 *   `oci` tarball back.
 */
export function chooseExportMode(info: DaemonInfo, haveEngine: boolean, baseFrom: 'session' | 'registry'): { mode: ExportMode; warning?: string } | { error: string } {
  if (info.exporters.includes('moby') && haveEngine) return { mode: 'moby' };
  if (!info.exporters.includes('oci')) {
    return { error: `this daemon has neither the oci exporter nor a Docker Engine to read the moby export back (set the engine option); exporters here: ${info.exporters.join(', ')}` };
  }
  if (baseFrom === 'registry') return { mode: 'tar' };
  if (takesLayoutContexts(info.version)) return { mode: 'store' };
  return {
    mode: 'tar',
    warning: `this BuildKit is older than v${LAYOUT_CONTEXT_MIN_VERSION} (it has no Control/Info), so it cannot take the base from the extender: it pulls the base image from its registry itself, and needs a route and credentials to it`,
  };
}

/**
 * The image an `oci` export (tar=false) wrote into the session store: the
 * exporter names its descriptor in the solve response; an index.json naming it
 * makes the store an ordinary layout to read.
 */
async function readStoreExport(dir: string, exporterResponse: Record<string, string>, name: string): Promise<BuiltImage> {
  const encoded = exporterResponse['containerimage.descriptor'];
  const digest = exporterResponse['containerimage.digest'];
  let descriptor: Descriptor;
  if (encoded) {
    descriptor = JSON.parse(Buffer.from(encoded, 'base64').toString('utf8')) as Descriptor;
  } else if (digest) {
    const bytes = await readFile(join(dir, 'blobs', ...digest.split(':')));
    const mediaType = (JSON.parse(bytes.toString('utf8')) as { mediaType?: string }).mediaType ?? MediaType.ociManifest;
    descriptor = { mediaType, digest: digest as Digest, size: bytes.length };
  } else {
    throw new Error(`reading the oci export of ${name}: the daemon named no image in its response (keys: ${Object.keys(exporterResponse).join(', ') || 'none'})`);
  }
  const index = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [{ ...descriptor, annotations: { 'org.opencontainers.image.ref.name': 'result' } }] };
  await writeFile(join(dir, 'index.json'), canonicalJson(index));
  return readBuiltLayout(dir, 'result');
}

export class BuildKitBackend implements ExtenderBackend {
  readonly id = 'buildkit';
  readonly capabilities: BackendCapabilities = {
    inPlace: false,
    kinds: ['build', 'run'],
    cache: false,
    privileges: { root: false, capabilities: [], container: false },
  };
  readonly options: BuildKitBackendOptions;
  readonly address: string;
  private client: BuildKitClient | undefined;
  private info: DaemonInfo | undefined;
  private readonly runId = randomBytes(6).toString('hex');
  private counter = 0;
  private warnedRegistryBase = false;
  /** Standalone buildkitd: pushed intermediates by the diff_ids of the image they hold. */
  private readonly intermediates = new Map<string, string>();
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
      if (err instanceof EndpointError) throw err; // already names the address
      throw new Error(`connecting to BuildKit at ${this.address}: ${(err as Error).message}`, { cause: err });
    }
    return { client: this.client, info: this.info };
  }

  async apply(dockerfile: DockerfileSpec, base: ImageDescription, options: ApplyOptions, context: BackendContext): Promise<ImageDescription> {
    const { signal, events } = context;
    signal.throwIfAborted();
    const { client, info } = await this.connect(signal);
    const engine = this.engine();
    const mode = this.exportMode(info, engine !== undefined, dockerfile, context);
    const scratch = await mkdtemp(join(context.workDir, 'buildkit-'));
    this.scratchDirs.push(scratch);
    const dockerfileDir = join(scratch, 'dockerfile');
    await mkdir(dockerfileDir);
    await writeFile(join(dockerfileDir, 'Dockerfile'), dockerfile.content);
    // <Dockerfile>.dockerignore beside the Dockerfile wins over the context's .dockerignore; the frontend reads it from here
    await copyFile(`${dockerfile.path}.dockerignore`, join(dockerfileDir, 'Dockerfile.dockerignore')).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });

    const counter = ++this.counter;
    const fetchedBlobDir = join(context.workDir, 'buildkit-fetched');
    const baseArg = dockerfile.args.find((a) => a.name === 'base_image')?.value;
    let baseName: string | undefined;
    let store: { dir: string; contexts: Record<string, string>; stores: Record<string, LayoutContentStore> } | undefined;
    if (mode === 'moby' && engine) {
      baseName = await this.loadBase(engine, base, scratch, fetchedBlobDir, counter, signal);
    } else if (mode === 'store') {
      // The base as a layout the session serves: read as `oci:<store>`, and the export lands in the same blobs,
      // so the base's layers are never sent back.
      const dir = join(scratch, 'store');
      const materialized = await materializeBaseLayout(base, { dir, fetchedBlobDir, ...(this.options.registry ? { registry: this.options.registry } : {}), signal });
      const contexts: Record<string, string> = {};
      for (const key of namedContextKeys(baseArg ?? '')) contexts[key] = layoutContext(materialized.manifestDigest);
      store = {
        dir,
        contexts,
        stores: {
          [`oci:${BASE_STORE}`]: new LayoutContentStore({ dirs: [dir] }),
          export: new LayoutContentStore({ dirs: [dir], writable: true }),
        },
      };
    } else {
      baseName = this.intermediates.get(base.config.rootfs.diff_ids.join(','));
    }
    const args = dockerfile.args.map((a) => (a.name === 'base_image' && baseName !== undefined ? { name: a.name, value: baseName } : a));
    const name =
      mode !== 'moby' && this.options.intermediateRepository
        ? `${this.options.intermediateRepository}:${this.runId}-${counter}`
        : `cnb-extender-buildkit/${this.runId}:${counter}`;
    const exportFile = join(scratch, 'export.tar');
    const push = mode !== 'moby' && this.options.intermediateRepository ? [{ type: 'image', attrs: { name, push: 'true' } }] : [];
    const exporters: ExporterEntry[] =
      mode === 'moby'
        ? [{ type: 'moby', attrs: { name } }]
        : mode === 'store'
          ? [{ type: 'oci', attrs: { name, tar: 'false' } }, ...push]
          : [{ type: 'oci', attrs: { name, tar: 'true' } }, ...push];

    // dockerd 20.10's BuildKit (no Control/Info) exports only the inline cache; other cache types are left out with a warning.
    const supportedCache = (entries: CacheEntry[] | undefined, direction: 'export' | 'import'): CacheEntry[] | undefined => {
      if (!entries || !info.dockerWorker || info.version !== '') return entries;
      const allowed = direction === 'export' ? ['inline'] : ['registry'];
      for (const e of entries.filter((c) => !allowed.includes(c.type))) {
        events.emit({
          type: 'warning',
          level: 'warn',
          code: 'buildkit-cache-unsupported',
          message: `cache ${direction} type ${e.type} is not supported by the BuildKit in this Docker Engine; left out`,
          extensionId: dockerfile.extensionId,
        });
      }
      return entries.filter((c) => allowed.includes(c.type));
    };
    const localCache = await planLocalCache(supportedCache(this.options.cacheImports, 'import') ?? [], supportedCache(this.options.cacheExports, 'export') ?? [], options.extendDir);
    for (const dir of localCache.missing) {
      events.emit({ type: 'debug', level: 'debug', message: `BuildKit cache import from ${dir}: no cache there yet` });
    }
    const cacheImports = localCache.imports;
    const cacheExports = localCache.exports;

    // a vertex per step that has one (`[3/5] RUN x`, variables expanded), by its position after FROM
    const progress = new StepReporter(events, dockerfile.extensionId, dockerfile.content);
    const vertexes = new Map<string, { name: string; index: number | undefined }>();
    let failed: string | undefined;
    let failedIndex: number | undefined;
    const onStatus = (status: StatusResponse) => {
      const steps = status.vertexes.map((v) => toolStep(v.name));
      const indexes = progress.vertexIndexes(steps);
      for (const [at, v] of status.vertexes.entries()) {
        const step = steps[at];
        const index = indexes[at];
        vertexes.set(v.digest, { name: v.name, index });
        if (step === undefined) continue;
        if (v.error) {
          failed = instructionFromVertex(v.name);
          failedIndex = index;
        }
        if (index === undefined || !(v.started || v.cached)) continue;
        progress.started(index);
        if (v.cached) progress.cached(index, v.digest);
        else progress.ran(index, v.digest);
      }
      for (const log of status.logs) {
        const vertex = vertexes.get(log.vertex);
        const name = vertex?.index !== undefined ? progress.instruction(vertex.index) : vertex ? instructionFromVertex(vertex.name) : log.vertex;
        for (const line of log.msg.toString('utf8').split('\n')) {
          if (line !== '') events.emit({ type: 'debug', level: 'info', message: `${name}: ${line}` });
        }
      }
    };

    let exporterResponse: Record<string, string> = {};
    try {
      ({ exporterResponse } = await client.solve({
        dockerfileDir,
        contextDir: dockerfile.contextDir,
        buildArgs: args,
        network: this.options.network ?? 'none',
        ...(this.options.platform ? { platform: this.options.platform } : {}),
        ...(this.options.labels ? { labels: this.options.labels } : {}),
        ...(this.options.noCache ? { noCache: true } : {}),
        cacheImports,
        cacheExports,
        ...this.sessionKeychain(mode, baseArg, cacheImports, cacheExports),
        exporters,
        ...(mode === 'tar' ? { exportFile } : {}),
        ...(store ? { contexts: store.contexts } : {}),
        contentStores: { ...localCache.stores, ...store?.stores },
        signal,
        onStatus,
      }));
    } catch (err) {
      if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : err;
      if (err instanceof GrpcError && err.code === GrpcStatus.unavailable) {
        // the daemon went away mid-build (stopped, restarted, or the connection broke)
        throw new Error(`building ${dockerfile.path} with BuildKit at ${this.address}: lost the connection to the daemon during the build (${err.details})`, { cause: err });
      }
      const message = err instanceof GrpcError ? err.details || err.message : (err as Error).message;
      const instruction = failed ?? instructionFromError(message);
      if (instruction !== undefined) {
        const index = failed !== undefined ? failedIndex : undefined;
        throw new BackendInstructionError(progress.instruction(index) ?? instruction, message, { cause: err, ...(index === undefined ? {} : { index }) });
      }
      throw new Error(`building ${dockerfile.path} with BuildKit at ${this.address}: ${message}`, { cause: err });
    }
    progress.end();
    await tagLocalCache(localCache, exporterResponse);
    let built: BuiltImage;
    if (mode === 'moby' && engine) {
      this.createdImages.push(name);
      built = await this.readBack(engine, name, base.layers.length, scratch, signal);
    } else if (store) {
      const exported = store.stores['export']!.stats;
      events.emit({
        type: 'debug',
        level: 'debug',
        message: `BuildKit export of ${dockerfile.extensionId}: ${exported.written.length} blobs (${exported.written.reduce((n, b) => n + b.size, 0)} bytes) written into the session store, ${exported.skipped.length} already there`,
      });
      built = await readStoreExport(store.dir, exporterResponse, name);
    } else {
      try {
        built = await readImageArchive(createReadStream(exportFile), { dir: join(scratch, 'blobs'), signal });
      } catch (err) {
        if (signal.aborted) throw err;
        throw new Error(`reading the oci export of ${name}: ${(err as Error).message}`, { cause: err });
      } finally {
        await rm(exportFile, { force: true });
      }
    }
    const image = await assembleImage({
      base,
      built,
      dockerfile,
      ignorePaths: options.ignorePaths,
      blobDir: this.options.layerDir ?? defaultBlobDir(context.workDir, this.id),
      events,
      signal,
    });
    if (mode === 'tar' && this.options.intermediateRepository) this.intermediates.set(image.config.rootfs.diff_ids.join(','), name);
    return image;
  }

  /**
   * How this daemon gets the base and gives the result back:
   * - `moby`: dockerd's BuildKit; the base is loaded into the Docker image store, the result read back through the Engine API;
   * - `store`: BuildKit v0.11+; the base is an OCI-layout named context served by the session, the `oci` export written
   *   into the same session store (only new blobs cross);
   * - `tar`: older daemons; the daemon pulls `base_image` from its registry and streams an `oci` tarball back.
   */
  private exportMode(info: DaemonInfo, haveEngine: boolean, dockerfile: DockerfileSpec, context: BackendContext): ExportMode {
    const choice = chooseExportMode(info, haveEngine, this.options.baseFrom ?? 'session');
    if ('error' in choice) throw new Error(`applying ${dockerfile.path} with BuildKit at ${this.address}: ${choice.error}`);
    if (choice.warning && !this.warnedRegistryBase) {
      this.warnedRegistryBase = true;
      context.events.emit({ type: 'warning', level: 'warn', code: 'buildkit-base-from-registry', message: choice.warning, extensionId: dockerfile.extensionId });
    }
    return choice.mode;
  }

  /**
   * Credentials the session may hand the daemon: only for the registries this build talks to (the intermediate
   * repository, registry caches, and the base's registry when the daemon pulls it), never the whole keychain.
   */
  private sessionKeychain(mode: ExportMode, baseImage: string | undefined, imports: readonly CacheEntry[], exports: readonly CacheEntry[]): { keychain?: Keychain } {
    if (this.options.keychain === false) return {};
    const registries = new Set<string>();
    const add = (reference: string | undefined) => {
      const host = reference === undefined ? undefined : registryOf(reference);
      if (host) registries.add(host);
    };
    if (mode !== 'store') add(baseImage);
    if (mode !== 'moby') add(this.options.intermediateRepository);
    for (const entry of [...imports, ...exports]) if (entry.type === 'registry') add(entry.attrs['ref']);
    if (registries.size === 0) return {};
    return { keychain: scopedKeychain(this.options.keychain ?? defaultKeychain(this.options.env ?? process.env), registries) };
  }

  /**
   * The core's base as a docker-archive into dockerd's image store, tagged so
   * the Dockerfile's `FROM ${base_image}` finds it locally: sparse layouts get
   * their blobs from the registry (the kit), intermediate results are exactly
   * what the core holds.
   */
  private async loadBase(engine: Endpoint, base: ImageDescription, scratch: string, fetchedBlobDir: string, counter: number, signal: AbortSignal): Promise<string> {
    const layoutDir = join(scratch, 'base');
    const materialized = await materializeBaseLayout(base, {
      dir: layoutDir,
      fetchedBlobDir,
      ...(this.options.registry ? { registry: this.options.registry } : {}),
      signal,
    });
    const manifest = JSON.parse(materialized.manifestBytes.toString('utf8')) as ImageManifest;
    const tag = `cnb-extender-buildkit/${this.runId}:base-${counter}`;
    const archive = writeImageArchive({
      config: materialized.configBytes,
      configDigest: manifest.config.digest,
      layers: manifest.layers.map((l) => ({ digest: l.digest, size: l.size, file: join(layoutDir, 'blobs', ...l.digest.split(':')) })),
      tags: [tag],
      signal,
    });
    const res = await engineRequest(engine, 'POST', '/images/load?quiet=1', { headers: { 'Content-Type': 'application/x-tar' }, body: archive, signal });
    const text = (await readBody(res)).toString('utf8');
    const failure = /"(?:errorDetail|error)"\s*:\s*(?:\{\s*"message"\s*:\s*)?"([^"]*)"/.exec(text)?.[1];
    if (res.statusCode !== 200 || failure !== undefined) {
      throw new Error(`loading the base image into the Docker Engine at ${engine.address}: ${failure ?? `HTTP ${res.statusCode}: ${text.trim()}`}`);
    }
    this.createdImages.push(tag);
    await rm(layoutDir, { recursive: true, force: true });
    return tag;
  }

  /**
   * Reads the exported image back through the Engine API (`docker save`: a
   * docker-archive, or an OCI layout archive from Engine 25 on). The base's
   * copies of its layers are not kept: the core keeps the base's own blobs.
   */
  private async readBack(engine: Endpoint, name: string, baseCount: number, scratch: string, signal: AbortSignal): Promise<BuiltImage> {
    const res = await engineRequest(engine, 'GET', `/images/${encodeURIComponent(name)}/get`, { signal });
    if (res.statusCode !== 200) {
      throw new Error(`reading back ${name} from the Docker Engine: HTTP ${res.statusCode}: ${(await readBody(res)).toString('utf8').trim()}`);
    }
    try {
      return await readImageArchive(res, { dir: join(scratch, 'layers'), signal, skipLayers: baseCount });
    } catch (err) {
      if (signal.aborted) throw err;
      throw new Error(`reading back ${name} from the Docker Engine: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Sessions still open towards the daemon (0 whenever no apply is running). */
  get openSessions(): number {
    return this.client?.openSessions ?? 0;
  }

  async cleanup(context: BackendContext): Promise<void> {
    const errors: string[] = [];
    const engine = this.engine();
    for (const name of this.createdImages.splice(0).reverse()) {
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
    await rm(join(context.workDir, 'buildkit-fetched'), { recursive: true, force: true });
    if (!this.options.layerDir) await rm(defaultBlobDir(context.workDir, this.id), { recursive: true, force: true });
    this.intermediates.clear();
    await this.client?.close();
    this.client = undefined;
    this.info = undefined;
    if (errors.length > 0) throw new Error(`cleaning up after BuildKit: ${errors.join('; ')}`);
  }
}
