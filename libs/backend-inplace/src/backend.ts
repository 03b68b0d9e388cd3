/**
 * The in-place backend: applies a Dockerfile by executing it against a root
 * filesystem (the running container's `/` in production), snapshotting after
 * every instruction that may change files and writing one layer per change.
 */
import { randomUUID } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  BackendInstructionError,
  definedCapabilities,
  requiredPrivileges,
  type ApplyOptions,
  type BackendCapabilities,
  type BackendContext,
  type BlobSource,
  type DockerfileSpec,
  type ExtenderBackend,
  type ImageDescription,
  type LayerDescription,
} from '@cnb-extender/extender-core';
import { applyLayer, defaultLayerTime, familyOf, writeLayer, type ContainerConfig, type Descriptor, type Digest, type HistoryEntry, type LayerCompression, type LayerSource, type LayerWriteResult, type WriteLayerOptions } from '@cnb-extender/oci';
import { evaluate, readDockerignore, type ImageConfig as DockerfileImageConfig, type StagePlan, type Step } from '@cnb-extender/dockerfile';
import { contextDigest, LayerCache, layerFormatKey, sha256, type LayerFormat } from './cache.ts';
import { inplaceDefinition } from './definition.ts';
import { executeStep, type StepResult } from './execute/steps.ts';
import { writeChangeLayer } from './layer.ts';
import { diffSnapshots, settleHashes, takeSnapshot, type ChangeSet, type Snapshot } from './snapshot/index.ts';
import type { SnapshotOptions } from './snapshot/walk.ts';

export interface InplaceBackendOptions {
  /**
   * Root filesystem the Dockerfiles run against: `/` (default) is the running
   * container, which must already be the base image; `'unpack'` unpacks the
   * base image's layers into the work directory first (tests, or a run image
   * extended outside its own container); any other path is a directory that
   * already holds the base image.
   */
  root?: string;
  /** RUN gets the network (default true, as kaniko; `RUN --network=none` still runs without). */
  network?: boolean;
  /** ADD may fetch URLs (default false). */
  allowRemote?: boolean;
  /**
   * Image paths never captured besides the core's ignore paths. The core hands
   * host paths, which are the image's paths when the root is `/`; with another
   * root the platform's conventional mount points stand in for them. Default:
   * none for `/`, `CNB_MOUNT_POINTS` otherwise.
   */
  extraIgnorePaths?: string[];
  /**
   * Keep a layer cache in `<extend-dir>/cache/inplace` (default true): a step
   * whose inputs match a cached one within the TTL is not executed, its layer
   * is applied to the root instead.
   */
  cache?: boolean;
  /**
   * Layer compression (default gzip). zstd layers are smaller and faster to write and read,
   * but only newer runtimes and registries take them (docs/backends.md).
   */
  compression?: LayerCompression;
  /** Blocks compressed at once (default: the machine's cores, at least 2); the bytes do not depend on it. */
  compressionWorkers?: number;
}

function layerSource(blob: BlobSource): LayerSource {
  if (blob.kind === 'file') return blob.path;
  return () =>
    (async function* () {
      for await (const chunk of await blob.open()) yield chunk as Uint8Array;
    })();
}

/** Where a platform mounts the app, layers, platform and extend dirs in a CNB container. */
export const CNB_MOUNT_POINTS: readonly string[] = ['/workspace', '/layers', '/platform', '/kaniko'];

/**
 * What the definition declares for `/`. Another root is not the system it runs on: not in
 * place, nothing a host could lose, and its chrooted runs need SYS_ADMIN for their mounts
 * (as a RUN without the network does for its namespace).
 */
function capabilitiesFor(options: InplaceBackendOptions): BackendCapabilities {
  const defined = definedCapabilities(inplaceDefinition, { cache: options.cache !== false, network: options.network === false ? 'none' : 'default' });
  if ((options.root ?? '/') === '/') return defined;
  return { ...defined, inPlace: false, privileges: { ...requiredPrivileges(inplaceDefinition, 'none'), container: false } };
}

export function createInplaceBackend(options: InplaceBackendOptions = {}): ExtenderBackend {
  const created: string[] = [];
  return {
    id: inplaceDefinition.id,
    capabilities: capabilitiesFor(options),

    async apply(dockerfile: DockerfileSpec, base: ImageDescription, applyOptions: ApplyOptions, context: BackendContext): Promise<ImageDescription> {
      context.signal.throwIfAborted();
      const work = await mkdtemp(join(context.workDir, 'inplace-'));
      created.push(work);
      const run = new InplaceApply(await prepareApply(options, { dockerfile, base, applyOptions, context, work }));
      for (const [index, step] of run.stage.steps.entries()) await run.step(index, step);
      return run.image();
    },

    async cleanup(): Promise<void> {
      for (const dir of created.splice(0)) await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    },
  };
}

/** What one apply is called with, and its private work directory. */
interface ApplyInput {
  dockerfile: DockerfileSpec;
  base: ImageDescription;
  applyOptions: ApplyOptions;
  context: BackendContext;
  work: string;
}

/** Everything one apply works with, fixed before its first step. */
interface ApplyPlan extends ApplyInput {
  options: InplaceBackendOptions;
  root: string;
  stage: StagePlan;
  ignore: Awaited<ReturnType<typeof readDockerignore>>;
  snapshotOptions: SnapshotOptions;
  /**
   * Everything besides the files that decides a new layer's bytes, fixed once per apply: the
   * layers are written with it and every cache key includes it.
   */
  layerFormat: LayerFormat;
  cache: LayerCache | undefined;
  /**
   * Whether changes become layers. Build kind without the layer cache: no, the build phase
   * reads the root itself and nothing would read the layers, so no walk and no layer.
   */
  recordsLayers: boolean;
}

/** Prepares an apply: the root (unpacked when asked), the Dockerfile's one stage, what COPY sees, the snapshot options and the cache. */
async function prepareApply(options: InplaceBackendOptions, input: ApplyInput): Promise<ApplyPlan> {
  const { dockerfile, base, applyOptions, context } = input;
  const rootOption = options.root ?? '/';
  const root = rootOption === 'unpack' ? await unpackBase(input) : rootOption;
  const stage = planStage(dockerfile, base);

  // What COPY/ADD see of the context: <Dockerfile>.dockerignore, else the context's .dockerignore.
  const ignore = await readDockerignore(applyOptions.buildContext, dockerfile.path);

  // The extend dir (cache and work areas) is never part of an image either.
  const extra = options.extraIgnorePaths ?? (root === '/' ? [] : CNB_MOUNT_POINTS);
  // Racy files are hashed by the layer writer's read of them, the others just before the next RUN.
  const snapshotOptions = { ignorePaths: [...applyOptions.ignorePaths, applyOptions.extendDir, ...extra], deferHashes: true, signal: context.signal };
  const layerFormat: LayerFormat = { mtime: defaultLayerTime(), compression: options.compression ?? 'gzip', family: familyOf(base.manifestMediaType) };

  const cache =
    options.cache === false
      ? undefined
      : new LayerCache(join(applyOptions.extendDir, 'cache', 'inplace'), applyOptions.cacheTtlMs, (key, reason) =>
          context.events.emit({ type: 'warning', level: 'warn', code: 'cache-entry-damaged', extensionId: dockerfile.extensionId, message: `removed damaged layer cache entry ${key} (${reason}); the step runs again` }),
        );
  cache?.prune();
  const recordsLayers = dockerfile.kind === 'run' || cache !== undefined;
  return { ...input, options, root, stage, ignore, snapshotOptions, layerFormat, cache, recordsLayers };
}

/** Unpacks the base image's layers into `<work>/rootfs` and returns that root. */
async function unpackBase({ dockerfile, base, context, work }: ApplyInput): Promise<string> {
  const unpackStart = performance.now();
  const root = join(work, 'rootfs');
  await mkdir(root);
  await chmod(root, 0o755);
  for (const [i, layer] of base.layers.entries()) {
    context.signal.throwIfAborted();
    if (!layer.blob) throw new Error(`unpacking base layer ${i} (${layer.descriptor.digest}) into ${root}: the base image description has no blob for it`);
    await applyLayer(root, layerSource(layer.blob), { absolutePaths: 'root' });
  }
  context.events.emit({ type: 'timing', level: 'debug', name: `unpack-base:${dockerfile.extensionId}`, durationMs: performance.now() - unpackStart });
  return root;
}

/** The Dockerfile's one stage, evaluated with its build args over the base's config; its FROM must be the base. */
function planStage(dockerfile: DockerfileSpec, base: ImageDescription): StagePlan {
  const buildArgs = new Map(dockerfile.args.map((a) => [a.name, a.value]));
  let stage: StagePlan;
  try {
    const plan = evaluate(dockerfile.content, { buildArgs, baseConfig: (base.config.config ?? {}) as DockerfileImageConfig, file: dockerfile.path });
    if (plan.stages.length !== 1) throw new Error(`${plan.stages.length} stages: an extension's Dockerfile has exactly one`);
    stage = plan.stages[0]!;
  } catch (cause) {
    throw new Error(`evaluating ${dockerfile.path}: ${(cause as Error).message}`, { cause });
  }
  const expectedBase = buildArgs.get('base_image');
  const from = stage.base.kind === 'image' ? stage.base.ref : stage.base.kind;
  if (expectedBase !== undefined && from !== expectedBase) {
    throw new Error(`applying ${dockerfile.path}: FROM ${from} switches the base image, which the in-place backend cannot do (it extends ${expectedBase})`);
  }
  return stage;
}

/** The outcome of looking a step up in the layer cache: applied from it, or to run (with the key to store it under, if any). */
type CacheLookup = { hit: true } | { hit: false; key: string | undefined };

/**
 * One apply's steps, each: look up in the cache → (baseline snapshot) → execute →
 * snapshot and diff → write the layer → commit it to the cache → add it to the image.
 */
class InplaceApply {
  readonly plan: ApplyPlan;
  readonly stage: StagePlan;
  /**
   * Taken before the first instruction that may change files: a Dockerfile of config
   * instructions only (ENV, LABEL, USER, …) never walks the root.
   */
  previous: Snapshot | undefined;
  /** A cached layer was applied to the root since `previous` was taken. */
  baselineStale = false;
  readonly newLayers: LayerDescription[] = [];
  readonly history: HistoryEntry[] = [];
  /** The cache key chain: the base, the layer format, and every earlier step's key and result. */
  chain: string;
  contextHash: string | undefined;

  constructor(plan: ApplyPlan) {
    this.plan = plan;
    this.stage = plan.stage;
    const { base, options, layerFormat } = plan;
    this.chain = sha256({ version: 1, base: base.config.rootfs.diff_ids, root: (options.root ?? '/') === '/' ? 'in-place' : 'unpacked', layer: layerFormatKey(layerFormat) });
  }

  async step(index: number, step: Step): Promise<void> {
    const text = step.original;
    const extensionId = this.plan.dockerfile.extensionId;
    const { events } = this.plan.context;
    events.emit({ type: 'instruction-started', level: 'info', extensionId, instruction: text, index });
    const lookup: CacheLookup = step.changesFilesystem ? await this.lookUp(index, step) : { hit: false, key: undefined };
    if (!lookup.hit) {
      const { recordsLayers } = this.plan;
      if (step.changesFilesystem && recordsLayers) this.settleBaseline();
      const result = await this.execute(index, step);
      if (result.changesFilesystem && recordsLayers) await this.recordChanges(index, text, lookup.key);
    }
    events.emit({ type: 'instruction-finished', level: 'debug', extensionId, instruction: text, index });
  }

  image(): ImageDescription {
    const { base, stage } = this.plan;
    const config = {
      ...base.config,
      config: stage.config as ContainerConfig,
      ...(stage.author === undefined ? {} : { author: stage.author }),
      rootfs: { type: 'layers' as const, diff_ids: [...base.config.rootfs.diff_ids, ...this.newLayers.map((l) => l.diffId)] },
      history: [...(base.config.history ?? []), ...this.history],
    };
    return { ...base, config, layers: [...base.layers, ...this.newLayers] };
  }

  /** Looks a filesystem-changing step up in the cache; a hit's layer is applied to the root and added to the image. */
  async lookUp(index: number, step: Step): Promise<CacheLookup> {
    const { cache, context, dockerfile, options, root } = this.plan;
    const text = step.original;
    const extensionId = dockerfile.extensionId;
    let key: string | undefined;
    if (cache) {
      const inputs = cacheInputs(step, options.network ?? true, () => this.contextOf());
      if (inputs === undefined) this.chain = sha256({ chain: this.chain, uncacheable: randomUUID() });
      else {
        key = sha256({ chain: this.chain, inputs });
        const hit = cache.get(key);
        if (hit) {
          context.events.emit({ type: 'cache-hit', level: 'info', extensionId, instruction: text, index, key });
          if (!hit.empty) {
            try {
              await applyLayer(root, hit.blobPath!, { absolutePaths: 'root' });
            } catch (error) {
              throw new BackendInstructionError(text, `applying the cached layer ${hit.diffId} to ${root}: ${(error as Error).message}`, { cause: error, line: step.location.start.line, index });
            }
            this.addLayer(index, text, hit.descriptor!, hit.diffId!, hit.blobPath!);
            this.baselineStale = true;
          }
          this.chain = sha256({ key, result: hit.diffId ?? 'empty' });
          return { hit: true };
        }
        context.events.emit({ type: 'cache-miss', level: 'debug', extensionId, instruction: text, index, key });
      }
    }
    // run, not cached: without a cache, or one it cannot be looked up in (ADD of a URL)
    if (key === undefined) context.events.emit({ type: 'cache-miss', level: 'debug', extensionId, instruction: text, index });
    return { hit: false, key };
  }

  /** The context's files and the ignore patterns (which may live outside the context) decide what COPY sees. */
  contextOf(): string {
    const { applyOptions, ignore } = this.plan;
    this.contextHash ??= sha256({ files: contextDigest(applyOptions.buildContext), ignore: ignore?.patterns ?? [] });
    return this.contextHash;
  }

  /** Before a step that may change files: a snapshot to diff against, with its racy files hashed. */
  settleBaseline(): void {
    if (this.baselineStale || !this.previous) {
      const snapshotStart = performance.now();
      this.previous = takeSnapshot(this.plan.root, this.plan.snapshotOptions);
      this.baselineStale = false;
      this.timed('snapshot', snapshotStart);
    }
    if (this.previous.unhashed) {
      const hashStart = performance.now();
      settleHashes(this.previous);
      this.timed('snapshot-hashes', hashStart);
    }
  }

  async execute(index: number, step: Step): Promise<StepResult> {
    const { root, applyOptions, ignore, options, context } = this.plan;
    const { signal, events } = context;
    let result: StepResult;
    const lines = lineSplitter((line) => events.emit({ type: 'debug', level: 'info', message: line }));
    const executeStart = performance.now();
    try {
      result = await executeStep(step, {
        root,
        contextDir: applyOptions.buildContext,
        ...(ignore ? { ignore } : {}),
        network: options.network ?? true,
        allowRemote: options.allowRemote ?? false,
        signal,
        onOutput: lines.push,
      });
      lines.flush();
    } catch (error) {
      lines.flush();
      if (signal.aborted) throw signal.reason;
      const e = error as Error & { exitCode?: number };
      // the core names the instruction; the message says what went wrong in it
      throw new BackendInstructionError(step.original, e.message, { cause: error, line: step.location.start.line, index });
    }
    this.timed(`execute-step-${index}`, executeStart);
    return result;
  }

  /** After a step that changed files: snapshot, diff against the previous snapshot, and store the changes. */
  async recordChanges(index: number, text: string, key: string | undefined): Promise<void> {
    const snapshotStart = performance.now();
    const next = takeSnapshot(this.plan.root, this.plan.snapshotOptions);
    if (!this.previous) throw new Error(`applying ${this.plan.dockerfile.path}: ${text} changed files but was not expected to (no snapshot before it)`);
    const changes = diffSnapshots(this.previous, next);
    this.previous = next;
    this.timed('snapshot', snapshotStart);
    await this.storeChanges(index, text, changes, next, key);
  }

  /** A step's changes as a layer (written into the cache's staging when the step has a key), committed and added to the image. */
  async storeChanges(index: number, text: string, changes: ChangeSet, next: Snapshot, key: string | undefined): Promise<void> {
    const { cache, layerFormat } = this.plan;
    const staging = key !== undefined ? cache!.staging() : undefined;
    if (changes.entries.length === 0) {
      if (staging) {
        cache!.commit(staging, key!, { empty: true });
        this.chain = sha256({ key, result: 'empty' });
      }
      return;
    }
    const { compression } = layerFormat;
    const blob = `layer.tar${compression === 'gzip' ? '.gz' : compression === 'zstd' ? '.zst' : ''}`;
    let path = staging ? join(staging, blob) : this.workLayerPath(blob);
    const layerStart = performance.now();
    const written = await writeChangeLayer(changes, next, path, this.writeOptions());
    this.timed('write-layer', layerStart);
    if (staging) path = await this.commitLayer(index, text, { staging, key: key!, blob, changes, written });
    this.addLayer(index, text, written.descriptor, written.diffId, path);
    if (key !== undefined) this.chain = sha256({ key, result: written.diffId });
  }

  /** Commits a layer written into the cache's staging; returns where the image's copy of the layer is. */
  async commitLayer(index: number, text: string, layer: { staging: string; key: string; blob: string; changes: ChangeSet; written: LayerWriteResult }): Promise<string> {
    const { staging, key, blob, changes, written } = layer;
    const entry = this.plan.cache!.commit(staging, key, { empty: false, blob, diffId: written.diffId, descriptor: written.descriptor });
    if (entry.diffId === written.diffId) return entry.blobPath!;
    // Another extender committed this key first with different content (a RUN that is
    // not reproducible): the root holds ours, so the image gets ours, written again
    // from the same entries outside the cache.
    const path = this.workLayerPath(blob);
    const again = await writeLayer(changes.entries, path, this.writeOptions());
    if (again.diffId !== written.diffId) throw new BackendInstructionError(text, `rewriting the layer gave ${again.diffId}, not ${written.diffId}: the root changed while the layer was written`, { index });
    return path;
  }

  workLayerPath(blob: string): string {
    return join(this.plan.work, `layer-${this.newLayers.length + 1}-${blob}`);
  }

  writeOptions(): Omit<WriteLayerOptions, 'hashContent'> {
    const { compression, family, mtime } = this.plan.layerFormat;
    const { compressionWorkers } = this.plan.options;
    return { compression, family, mtime, ...(compressionWorkers ? { workers: compressionWorkers } : {}), signal: this.plan.context.signal };
  }

  addLayer(index: number, text: string, descriptor: Descriptor, diffId: Digest, path: string): void {
    this.newLayers.push({ descriptor, diffId, blob: { kind: 'file', path } });
    this.history.push({ created_by: text });
    this.plan.context.events.emit({ type: 'layer-written', level: 'info', extensionId: this.plan.dockerfile.extensionId, instruction: text, index, digest: descriptor.digest, diffId, size: descriptor.size });
  }

  timed(name: string, start: number): void {
    this.plan.context.events.emit({ type: 'timing', level: 'debug', name: `${name}:${this.plan.dockerfile.extensionId}`, durationMs: performance.now() - start });
  }
}

/**
 * What decides a filesystem step's result besides the state before it, or
 * undefined when it cannot be cached (ADD of a URL: the remote may change).
 */
function cacheInputs(step: Step, network: boolean, context: () => string): unknown {
  switch (step.kind) {
    case 'run':
      return { kind: 'run', argv: step.argv, env: step.env, user: step.user, workdir: step.workdir, network: network && step.network !== 'none' };
    case 'copy':
    case 'add':
      if (step.sources.some((s) => /^[a-z][a-z0-9+.-]*:\/\//i.test(s))) return undefined;
      return { kind: step.kind, sources: step.sources, dest: step.dest, chown: step.chown, chmod: step.chmod, workdir: step.workdir, context: context() };
    case 'workdir':
      return { kind: 'workdir', workdir: step.workdir, user: step.user };
    default:
      return { kind: step.kind, original: step.original };
  }
}

/** Turns a RUN's output chunks into whole lines, per stream (a line may span chunks). */
function lineSplitter(emit: (line: string) => void): { push: (stream: 'stdout' | 'stderr', chunk: Buffer) => void; flush: () => void } {
  const rest = { stdout: '', stderr: '' };
  return {
    push(stream, chunk) {
      const text = rest[stream] + chunk.toString('utf8');
      const parts = text.split('\n');
      rest[stream] = parts.pop() ?? '';
      for (const line of parts) emit(line);
    },
    flush() {
      for (const stream of ['stdout', 'stderr'] as const) {
        if (rest[stream] !== '') emit(rest[stream]);
        rest[stream] = '';
      }
    },
  };
}
