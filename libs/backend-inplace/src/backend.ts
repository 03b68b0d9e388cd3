/**
 * The in-place backend: applies a Dockerfile by executing it against a root
 * filesystem (the running container's `/` in production), snapshotting after
 * every instruction that may change files and writing one layer per change.
 */
import { randomUUID } from 'node:crypto';
import { chmod, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BackendInstructionError, type ApplyOptions, type BackendContext, type BlobSource, type DockerfileSpec, type ExtenderBackend, type ImageDescription, type LayerDescription } from '@cnb-extender/extender-core';
import { applyLayer, defaultLayerTime, familyOf, writeLayer, type ContainerConfig, type Descriptor, type Digest, type HistoryEntry, type LayerCompression, type LayerSource } from '@cnb-extender/oci';
import { evaluate, readDockerignore, type ImageConfig as DockerfileImageConfig, type StagePlan, type Step } from '@cnb-extender/dockerfile';
import { contextDigest, LayerCache, layerFormatKey, sha256, type LayerFormat } from './cache.ts';
import { executeStep } from './execute/steps.ts';
import { writeChangeLayer } from './layer.ts';
import { diffSnapshots, settleHashes, takeSnapshot, type Snapshot } from './snapshot/index.ts';

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

export function createInplaceBackend(options: InplaceBackendOptions = {}): ExtenderBackend {
  const rootOption = options.root ?? '/';
  const created: string[] = [];
  return {
    id: 'inplace',
    capabilities: {
      inPlace: rootOption === '/',
      kinds: ['build', 'run'],
      cache: options.cache !== false,
      // In place: setpriv/unshare --root need SETUID, SETGID and SYS_CHROOT (a default container has them);
      // RUN without the network needs SYS_ADMIN for its network namespace, and so do the mounts of chrooted runs.
      privileges: {
        root: true,
        capabilities: rootOption === '/' && options.network !== false ? ['SETUID', 'SETGID', 'SYS_CHROOT'] : ['SETUID', 'SETGID', 'SYS_CHROOT', 'SYS_ADMIN'],
        container: rootOption === '/',
      },
    },

    async apply(dockerfile: DockerfileSpec, base: ImageDescription, applyOptions: ApplyOptions, context: BackendContext): Promise<ImageDescription> {
      const { signal, events } = context;
      signal.throwIfAborted();
      const work = await mkdtemp(join(context.workDir, 'inplace-'));
      created.push(work);
      let root = rootOption;
      const timed = (name: string, start: number): void => events.emit({ type: 'timing', level: 'debug', name: `${name}:${dockerfile.extensionId}`, durationMs: performance.now() - start });
      if (rootOption === 'unpack') {
        const unpackStart = performance.now();
        root = join(work, 'rootfs');
        await mkdir(root);
        await chmod(root, 0o755);
        for (const [i, layer] of base.layers.entries()) {
          signal.throwIfAborted();
          if (!layer.blob) throw new Error(`unpacking base layer ${i} (${layer.descriptor.digest}) into ${root}: the base image description has no blob for it`);
          await applyLayer(root, layerSource(layer.blob), { absolutePaths: 'root' });
        }
        timed('unpack-base', unpackStart);
      }

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

      // What COPY/ADD see of the context: <Dockerfile>.dockerignore, else the context's .dockerignore.
      const ignore = await readDockerignore(applyOptions.buildContext, dockerfile.path);

      // The extend dir (cache and work areas) is never part of an image either.
      const extra = options.extraIgnorePaths ?? (root === '/' ? [] : CNB_MOUNT_POINTS);
      // Racy files are hashed by the layer writer's read of them, the others just before the next RUN.
      const snapshotOptions = { ignorePaths: [...applyOptions.ignorePaths, applyOptions.extendDir, ...extra], deferHashes: true, signal };
      // Taken before the first instruction that may change files: a Dockerfile of config
      // instructions only (ENV, LABEL, USER, …) never walks the root.
      let previous: Snapshot | undefined;
      const newLayers: LayerDescription[] = [];
      const history: HistoryEntry[] = [];
      // Everything besides the files that decides a new layer's bytes, fixed once per apply: the
      // layers are written with it and every cache key includes it.
      const layerFormat: LayerFormat = { mtime: defaultLayerTime(), compression: options.compression ?? 'gzip', family: familyOf(base.manifestMediaType) };
      const { compression, family, mtime } = layerFormat;

      const cache =
        options.cache === false
          ? undefined
          : new LayerCache(join(applyOptions.extendDir, 'cache', 'inplace'), applyOptions.cacheTtlMs, (key, reason) =>
              events.emit({ type: 'warning', level: 'warn', code: 'cache-entry-damaged', extensionId: dockerfile.extensionId, message: `removed damaged layer cache entry ${key} (${reason}); the step runs again` }),
            );
      cache?.prune();
      let chain = sha256({ version: 1, base: base.config.rootfs.diff_ids, root: rootOption === '/' ? 'in-place' : 'unpacked', layer: layerFormatKey(layerFormat) });
      let contextHash: string | undefined;
      // The context's files and the ignore patterns (which may live outside the context) decide what COPY sees.
      const contextOf = (): string => (contextHash ??= sha256({ files: contextDigest(applyOptions.buildContext), ignore: ignore?.patterns ?? [] }));
      let baselineStale = false;
      const addLayer = (index: number, text: string, descriptor: Descriptor, diffId: Digest, path: string): void => {
        newLayers.push({ descriptor, diffId, blob: { kind: 'file', path } });
        history.push({ created_by: text });
        events.emit({ type: 'layer-written', level: 'info', extensionId: dockerfile.extensionId, instruction: text, index, digest: descriptor.digest, diffId, size: descriptor.size });
      };

      for (const [index, step] of stage.steps.entries()) {
        const text = step.original;
        events.emit({ type: 'instruction-started', level: 'info', extensionId: dockerfile.extensionId, instruction: text, index });
        let key: string | undefined;
        if (cache && step.changesFilesystem) {
          const inputs = cacheInputs(step, options.network ?? true, contextOf);
          if (inputs === undefined) chain = sha256({ chain, uncacheable: randomUUID() });
          else {
            key = sha256({ chain, inputs });
            const hit = cache.get(key);
            if (hit) {
              events.emit({ type: 'cache-hit', level: 'info', extensionId: dockerfile.extensionId, instruction: text, index, key });
              if (!hit.empty) {
                try {
                  await applyLayer(root, hit.blobPath!, { absolutePaths: 'root' });
                } catch (error) {
                  throw new BackendInstructionError(text, `applying the cached layer ${hit.diffId} to ${root}: ${(error as Error).message}`, { cause: error, line: step.location.start.line, index });
                }
                addLayer(index, text, hit.descriptor!, hit.diffId!, hit.blobPath!);
                baselineStale = true;
              }
              chain = sha256({ key, result: hit.diffId ?? 'empty' });
              events.emit({ type: 'instruction-finished', level: 'debug', extensionId: dockerfile.extensionId, instruction: text, index });
              continue;
            }
            events.emit({ type: 'cache-miss', level: 'debug', extensionId: dockerfile.extensionId, instruction: text, index, key });
          }
        }
        // run, not cached: without a cache, or one it cannot be looked up in (ADD of a URL)
        if (step.changesFilesystem && key === undefined) events.emit({ type: 'cache-miss', level: 'debug', extensionId: dockerfile.extensionId, instruction: text, index });
        if ((baselineStale || !previous) && step.changesFilesystem) {
          const snapshotStart = performance.now();
          previous = takeSnapshot(root, snapshotOptions);
          baselineStale = false;
          timed('snapshot', snapshotStart);
        }
        if (step.changesFilesystem && previous?.unhashed) {
          const hashStart = performance.now();
          settleHashes(previous);
          timed('snapshot-hashes', hashStart);
        }
        let result;
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
          throw new BackendInstructionError(text, e.message, { cause: error, line: step.location.start.line, index });
        }
        timed(`execute-step-${index}`, executeStart);
        if (result.changesFilesystem) {
          const snapshotStart = performance.now();
          const next = takeSnapshot(root, snapshotOptions);
          if (!previous) throw new Error(`applying ${dockerfile.path}: ${text} changed files but was not expected to (no snapshot before it)`);
          const changes = diffSnapshots(previous, next);
          previous = next;
          timed('snapshot', snapshotStart);
          const staging = key !== undefined ? cache!.staging() : undefined;
          if (changes.entries.length > 0) {
            const blob = `layer.tar${compression === 'gzip' ? '.gz' : compression === 'zstd' ? '.zst' : ''}`;
            let path = staging ? join(staging, blob) : join(work, `layer-${newLayers.length + 1}-${blob}`);
            const layerStart = performance.now();
            const written = await writeChangeLayer(changes, next, path, { compression, family, mtime, ...(options.compressionWorkers ? { workers: options.compressionWorkers } : {}), signal });
            timed('write-layer', layerStart);
            if (staging) {
              const entry = cache!.commit(staging, key!, { empty: false, blob, diffId: written.diffId, descriptor: written.descriptor });
              if (entry.diffId === written.diffId) path = entry.blobPath!;
              else {
                // Another extender committed this key first with different content (a RUN that is
                // not reproducible): the root holds ours, so the image gets ours, written again
                // from the same entries outside the cache.
                path = join(work, `layer-${newLayers.length + 1}-${blob}`);
                const again = await writeLayer(changes.entries, path, { compression, family, mtime, ...(options.compressionWorkers ? { workers: options.compressionWorkers } : {}), signal });
                if (again.diffId !== written.diffId) throw new BackendInstructionError(text, `rewriting the layer gave ${again.diffId}, not ${written.diffId}: the root changed while the layer was written`, { index });
              }
            }
            addLayer(index, text, written.descriptor, written.diffId, path);
            if (key !== undefined) chain = sha256({ key, result: written.diffId });
          } else if (staging) {
            cache!.commit(staging, key!, { empty: true });
            chain = sha256({ key, result: 'empty' });
          }
        }
        events.emit({ type: 'instruction-finished', level: 'debug', extensionId: dockerfile.extensionId, instruction: text, index });
      }

      const config = {
        ...base.config,
        config: stage.config as ContainerConfig,
        ...(stage.author === undefined ? {} : { author: stage.author }),
        rootfs: { type: 'layers' as const, diff_ids: [...base.config.rootfs.diff_ids, ...newLayers.map((l) => l.diffId)] },
        history: [...(base.config.history ?? []), ...history],
      };
      return { ...base, config, layers: [...base.layers, ...newLayers] };
    },

    async cleanup(): Promise<void> {
      for (const dir of created.splice(0)) await rm(dir, { recursive: true, force: true, maxRetries: 3 });
    },
  };
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
