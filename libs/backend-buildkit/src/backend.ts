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
 * The kit's `ImageBuildTemplate` runs the steps and its `assembleImage` then
 * gives the core what every image-producing backend gives: base descriptors
 * unchanged, new layers filtered and gzip re-encoded, history per Dockerfile line.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { definedCapabilities, type ApplyOptions, type BackendCapabilities, type BackendContext, type DockerfileSpec, type EventSink, type ExtenderBackend, type ImageDescription } from '@cnb-extender/extender-core';
import { ImageBuildTemplate, materializeBaseLayout, readImageArchive, writeImageArchive, type BuiltImage, type ImageBuild, type ImageBuildSteps } from '@cnb-extender/image-backend-kit';
import { defaultKeychain, type ImageManifest, type Keychain, type RegistryClient } from '@cnb-extender/oci';
import { EndpointError, LayoutContentStore, defaultAddress, engineRequest, parseAddress, readBody, type CacheEntry, type Endpoint, type TlsOptions } from '@cnb-extender/buildkit-session';
import { BASE_STORE, layoutContext, namedContextKeys, registryOf, scopedKeychain } from './base-context.ts';
import { BuildKitClient, type DaemonInfo, type NetworkMode, type SessionTransport } from './client.ts';
import { buildkitDefinition } from './definition.ts';
import { chooseExportMode, exportersFor, readStoreExport, type ExportMode } from './export-mode.ts';
import { planLocalCache, tagLocalCache, type LocalCachePlan } from './local-cache.ts';
import { SolveStatus } from './solve-status.ts';

export { instructionFromHistory, instructionFromVertex } from './solve-status.ts';

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

/** What a build needs of its base: the daemon, how it exports, where `base_image` points, and the result's name. */
interface PreparedBase {
  client: BuildKitClient;
  info: DaemonInfo;
  mode: ExportMode;
  engine: Endpoint | undefined;
  dockerfileDir: string;
  /** `base_image` as the core gave it. */
  baseArg: string | undefined;
  /** What `base_image` becomes: a tag in dockerd, or a pushed intermediate; undefined: as given. */
  baseName: string | undefined;
  /** `store` mode: the base layout the session serves, and where the export lands. */
  store: { dir: string; contexts: Record<string, string>; stores: Record<string, LayoutContentStore> } | undefined;
  /** The result's name (a tag in dockerd, or in the intermediate repository). */
  name: string;
}

export class BuildKitBackend implements ExtenderBackend {
  readonly id = 'buildkit';
  readonly capabilities: BackendCapabilities = definedCapabilities(buildkitDefinition, { cache: false });
  readonly options: BuildKitBackendOptions;
  readonly address: string;
  private client: BuildKitClient | undefined;
  private info: DaemonInfo | undefined;
  private readonly runId = randomBytes(6).toString('hex');
  private warnedRegistryBase = false;
  /** Standalone buildkitd: pushed intermediates by the diff_ids of the image they hold. */
  private readonly intermediates = new Map<string, string>();
  private readonly createdImages: string[] = [];
  private readonly template: ImageBuildTemplate<PreparedBase, Record<string, string>>;

  constructor(options: BuildKitBackendOptions = {}) {
    this.options = options;
    this.address = options.address ?? defaultAddress(options.env ?? process.env);
    this.template = new ImageBuildTemplate({ id: this.id, layerDir: options.layerDir }, this.steps());
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

  apply(dockerfile: DockerfileSpec, base: ImageDescription, options: ApplyOptions, context: BackendContext): Promise<ImageDescription> {
    return this.template.apply(dockerfile, base, options, context);
  }

  /** The ImageBuildTemplate's steps for BuildKit. */
  private steps(): ImageBuildSteps<PreparedBase, Record<string, string>> {
    return {
      prepareBase: (build) => this.prepareBase(build),
      build: (build, prepared) => this.solve(build, prepared),
      readBack: (build, prepared, exporterResponse) => this.readResult(build, prepared, exporterResponse),
      finished: (_build, prepared, image) => {
        if (prepared.mode === 'tar' && this.options.intermediateRepository) this.intermediates.set(image.config.rootfs.diff_ids.join(','), prepared.name);
      },
      cleanup: () => this.release(),
    };
  }

  /** The daemon reached; the base loaded into dockerd, served from a layout, or a pushed intermediate; the Dockerfile written. */
  private async prepareBase(build: ImageBuild): Promise<PreparedBase> {
    const { dockerfile, base, signal, n } = build;
    const { client, info } = await this.connect(signal);
    const engine = this.engine();
    const mode = this.exportMode(info, engine !== undefined, dockerfile, build.events);
    const dockerfileDir = join(build.scratch, 'dockerfile');
    await mkdir(dockerfileDir);
    await writeFile(join(dockerfileDir, 'Dockerfile'), dockerfile.content);
    // <Dockerfile>.dockerignore beside the Dockerfile wins over the context's .dockerignore; the frontend reads it from here
    await copyFile(`${dockerfile.path}.dockerignore`, join(dockerfileDir, 'Dockerfile.dockerignore')).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    const fetchedBlobDir = join(build.area, 'fetched');
    const baseArg = dockerfile.args.find((a) => a.name === 'base_image')?.value;
    let baseName: string | undefined;
    let store: PreparedBase['store'];
    if (mode === 'moby' && engine) baseName = await this.loadBase(engine, base, build.scratch, fetchedBlobDir, n, signal);
    else if (mode === 'store') store = await this.sessionStore(build, fetchedBlobDir, baseArg);
    else baseName = this.intermediates.get(base.config.rootfs.diff_ids.join(','));
    const intermediate = mode !== 'moby' && this.options.intermediateRepository;
    const name = intermediate ? `${intermediate}:${this.runId}-${n}` : `cnb-extender-buildkit/${this.runId}:${n}`;
    return { client, info, mode, engine, dockerfileDir, baseArg, baseName, store, name };
  }

  /**
   * The base as a layout the session serves: read as `oci:<store>`, and the export lands in the same blobs,
   * so the base's layers are never sent back.
   */
  private async sessionStore(build: ImageBuild, fetchedBlobDir: string, baseArg: string | undefined): Promise<PreparedBase['store']> {
    const dir = join(build.scratch, 'store');
    const materialized = await materializeBaseLayout(build.base, { dir, fetchedBlobDir, ...(this.options.registry ? { registry: this.options.registry } : {}), signal: build.signal });
    const contexts: Record<string, string> = {};
    for (const key of namedContextKeys(baseArg ?? '')) contexts[key] = layoutContext(materialized.manifestDigest);
    const stores = {
      [`oci:${BASE_STORE}`]: new LayoutContentStore({ dirs: [dir] }),
      export: new LayoutContentStore({ dirs: [dir], writable: true }),
    };
    return { dir, contexts, stores };
  }

  /** Solve the Dockerfile with the daemon; its exporter response. */
  private async solve(build: ImageBuild, prepared: PreparedBase): Promise<Record<string, string>> {
    const { dockerfile, signal } = build;
    const { mode, baseName, store } = prepared;
    const args = dockerfile.args.map((a) => (a.name === 'base_image' && baseName !== undefined ? { name: a.name, value: baseName } : a));
    const localCache = await this.cachePlan(build, prepared.info);
    // a vertex per step that has one (`[3/5] RUN x`, variables expanded), by its position after FROM
    const status = new SolveStatus(build.progress, build.events);
    let exporterResponse: Record<string, string>;
    try {
      ({ exporterResponse } = await prepared.client.solve({
        dockerfileDir: prepared.dockerfileDir,
        contextDir: dockerfile.contextDir,
        buildArgs: args,
        network: this.options.network ?? 'none',
        ...(this.options.platform ? { platform: this.options.platform } : {}),
        ...(this.options.labels ? { labels: this.options.labels } : {}),
        ...(this.options.noCache ? { noCache: true } : {}),
        cacheImports: localCache.imports,
        cacheExports: localCache.exports,
        ...this.sessionKeychain(mode, prepared.baseArg, localCache.imports, localCache.exports),
        exporters: exportersFor(mode, prepared.name, Boolean(this.options.intermediateRepository)),
        ...(mode === 'tar' ? { exportFile: join(build.scratch, 'export.tar') } : {}),
        ...(store ? { contexts: store.contexts } : {}),
        contentStores: { ...localCache.stores, ...store?.stores },
        signal,
        onStatus: status.onStatus,
      }));
    } catch (err) {
      throw status.failure(err, `building ${dockerfile.path} with BuildKit at ${this.address}`);
    }
    await tagLocalCache(localCache, exporterResponse);
    return exporterResponse;
  }

  /** The cache imports and exports this daemon takes, local directories planned (dockerd 20.10's BuildKit, with no Control/Info, exports only the inline cache). */
  private async cachePlan(build: ImageBuild, info: DaemonInfo): Promise<LocalCachePlan> {
    const supported = (entries: CacheEntry[] | undefined, direction: 'export' | 'import'): CacheEntry[] => {
      if (!entries || !info.dockerWorker || info.version !== '') return entries ?? [];
      const allowed = direction === 'export' ? ['inline'] : ['registry'];
      for (const e of entries.filter((c) => !allowed.includes(c.type))) {
        build.events.emit({
          type: 'warning',
          level: 'warn',
          code: 'buildkit-cache-unsupported',
          message: `cache ${direction} type ${e.type} is not supported by the BuildKit in this Docker Engine; left out`,
          extensionId: build.dockerfile.extensionId,
        });
      }
      return entries.filter((c) => allowed.includes(c.type));
    };
    const localCache = await planLocalCache(supported(this.options.cacheImports, 'import'), supported(this.options.cacheExports, 'export'), build.options.extendDir);
    for (const dir of localCache.missing) {
      build.events.emit({ type: 'debug', level: 'debug', message: `BuildKit cache import from ${dir}: no cache there yet` });
    }
    return localCache;
  }

  /** The result as the mode gives it back: through the Engine API, from the session store, or from the exported tarball. */
  private async readResult(build: ImageBuild, prepared: PreparedBase, exporterResponse: Record<string, string>): Promise<BuiltImage> {
    const { signal, scratch } = build;
    const { name, store } = prepared;
    if (prepared.mode === 'moby' && prepared.engine) {
      this.createdImages.push(name);
      return this.readFromEngine(prepared.engine, name, build.base.layers.length, scratch, signal);
    }
    if (store) {
      const exported = store.stores['export']!.stats;
      build.events.emit({
        type: 'debug',
        level: 'debug',
        message: `BuildKit export of ${build.dockerfile.extensionId}: ${exported.written.length} blobs (${exported.written.reduce((n, b) => n + b.size, 0)} bytes) written into the session store, ${exported.skipped.length} already there`,
      });
      return readStoreExport(store.dir, exporterResponse, name);
    }
    const exportFile = join(scratch, 'export.tar');
    try {
      return await readImageArchive(createReadStream(exportFile), { dir: join(scratch, 'blobs'), signal });
    } catch (err) {
      if (signal.aborted) throw err;
      throw new Error(`reading the oci export of ${name}: ${(err as Error).message}`, { cause: err });
    } finally {
      await rm(exportFile, { force: true });
    }
  }

  /** How this daemon gets the base and gives the result back (see `chooseExportMode`); its warning given once. */
  private exportMode(info: DaemonInfo, haveEngine: boolean, dockerfile: DockerfileSpec, events: EventSink): ExportMode {
    const choice = chooseExportMode(info, haveEngine, this.options.baseFrom ?? 'session');
    if ('error' in choice) throw new Error(`applying ${dockerfile.path} with BuildKit at ${this.address}: ${choice.error}`);
    if (choice.warning && !this.warnedRegistryBase) {
      this.warnedRegistryBase = true;
      events.emit({ type: 'warning', level: 'warn', code: 'buildkit-base-from-registry', message: choice.warning, extensionId: dockerfile.extensionId });
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
  private async readFromEngine(engine: Endpoint, name: string, baseCount: number, scratch: string, signal: AbortSignal): Promise<BuiltImage> {
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

  cleanup(context: BackendContext): Promise<void> {
    return this.template.cleanup(context);
  }

  /** At cleanup: the images made in dockerd removed, the intermediates forgotten, the connection closed. */
  private async release(): Promise<void> {
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
    this.intermediates.clear();
    await this.client?.close();
    this.client = undefined;
    this.info = undefined;
    if (errors.length > 0) throw new Error(`cleaning up after BuildKit: ${errors.join('; ')}`);
  }
}
