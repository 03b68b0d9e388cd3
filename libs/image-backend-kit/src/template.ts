/**
 * The sequence every image-producing backend applies a Dockerfile with, once:
 * the tool checked, a scratch directory for the apply, the base made something
 * the tool builds `FROM`, the build (its steps reported through a `StepReporter`),
 * the tool's image read back, `assembleImage`, and the clean-up — the apply's own
 * state and scratch when it ends, succeeded or not; the backend's work area
 * (`<workDir>/<id>`) and default blob directory (`<workDir>/<id>-layers`) in
 * `cleanup`. A backend supplies only what differs (`ImageBuildSteps`).
 */
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BackendInstructionError, type ApplyOptions, type BackendContext, type DockerfileSpec, type EventSink, type ImageDescription } from '@cnb-extender/extender-core';
import { assembleImage, defaultBlobDir, type BuiltImage } from './assemble.ts';
import { ImageBackendError } from './errors.ts';
import { StepReporter } from './progress.ts';

/** One apply, as the steps see it. */
export interface ImageBuild {
  readonly dockerfile: DockerfileSpec;
  readonly base: ImageDescription;
  readonly options: ApplyOptions;
  readonly signal: AbortSignal;
  readonly events: EventSink;
  readonly workDir: string;
  /** This apply's number for the backend: 1 for its first. */
  readonly n: number;
  /** `<workDir>/<id>`: kept until `cleanup` (blobs fetched for sparse bases, a tool's storage). */
  readonly area: string;
  /** `<area>/apply-<n>`: this apply's scratch directory, removed when the apply ends. */
  readonly scratch: string;
  /** Reports the tool's steps; the template ends it once the build succeeded. */
  readonly progress: StepReporter;
}

/**
 * What one image-producing backend does differently. `Base` is what `prepareBase`
 * gives the build (a layout, a daemon tag, …); `Output` what `build` gives `readBack`.
 */
export interface ImageBuildSteps<Base, Output = void> {
  /** Before the apply's scratch exists: reach or check the tool (its errors are passed on as they are). */
  prepare?(context: BackendContext, area: string): Promise<void>;
  /** Make the base something the tool builds `FROM`. */
  prepareBase(build: ImageBuild): Promise<Base>;
  /** Build; a failed instruction rejects with a `BackendInstructionError` (see `StepReporter.failed`). */
  build(build: ImageBuild, base: Base): Promise<Output>;
  /** The tool's image as a `BuiltImage`. */
  readBack(build: ImageBuild, base: Base, output: Output): Promise<BuiltImage>;
  /** After the image was assembled: what the backend keeps for later applies. */
  finished?(build: ImageBuild, base: Base, image: ImageDescription, built: BuiltImage): void;
  /** When the apply ends, before its scratch is removed: release its state in the tool. */
  release?(build: ImageBuild, succeeded: boolean): Promise<void>;
  /** An error the steps threw that is neither an instruction's nor an `ImageBackendError`, as the backend reports it (default: as it is). */
  failure?(build: ImageBuild, err: unknown): unknown;
  /** At `cleanup`, before the work areas are removed: remove what the backend made in the tool; throws what it could not. */
  cleanup?(context: BackendContext): Promise<void>;
}

export interface ImageBuildTemplateOptions {
  /** The backend's id: names its work area and default blob directory. */
  id: string;
  /** Where new layer blobs go (default `<workDir>/<id>-layers`, removed on cleanup); the caller's to remove. */
  layerDir?: string | undefined;
  /** Labels the tool adds on its own (see `assembleImage`). */
  toolLabels?: readonly string[];
}

/** See module doc. A backend holds one and hands `apply` and `cleanup` to it. */
export class ImageBuildTemplate<Base, Output = void> {
  readonly #options: ImageBuildTemplateOptions;
  readonly #steps: ImageBuildSteps<Base, Output>;
  readonly #workDirs = new Set<string>();
  #count = 0;

  constructor(options: ImageBuildTemplateOptions, steps: ImageBuildSteps<Base, Output>) {
    this.#options = options;
    this.#steps = steps;
  }

  async apply(dockerfile: DockerfileSpec, base: ImageDescription, options: ApplyOptions, context: BackendContext): Promise<ImageDescription> {
    const { signal, events, workDir } = context;
    signal.throwIfAborted();
    const area = join(workDir, this.#options.id);
    this.#workDirs.add(workDir);
    await this.#steps.prepare?.(context, area);
    const n = ++this.#count;
    const scratch = join(area, `apply-${n}`);
    const progress = new StepReporter(events, dockerfile.extensionId, dockerfile.content);
    const build: ImageBuild = { dockerfile, base, options, signal, events, workDir, n, area, scratch, progress };
    let succeeded = false;
    try {
      await mkdir(scratch, { recursive: true });
      const image = await this.#run(build);
      succeeded = true;
      return image;
    } catch (err) {
      if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : err;
      if (err instanceof BackendInstructionError || err instanceof ImageBackendError) throw err;
      throw this.#steps.failure ? this.#steps.failure(build, err) : err;
    } finally {
      try {
        await this.#steps.release?.(build, succeeded);
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    }
  }

  async #run(build: ImageBuild): Promise<ImageDescription> {
    const steps = this.#steps;
    const prepared = await steps.prepareBase(build);
    const output = await steps.build(build, prepared);
    build.progress.end();
    const built = await steps.readBack(build, prepared, output);
    const image = await assembleImage({
      base: build.base,
      built,
      dockerfile: build.dockerfile,
      ignorePaths: build.options.ignorePaths,
      blobDir: this.#options.layerDir ?? defaultBlobDir(build.workDir, this.#options.id),
      events: build.events,
      signal: build.signal,
      ...(this.#options.toolLabels ? { toolLabels: this.#options.toolLabels } : {}),
    });
    steps.finished?.(build, prepared, image, built);
    return image;
  }

  /** The backend's `cleanup`: its own step, then every work area it used and its default blob directory. */
  async cleanup(context: BackendContext): Promise<void> {
    try {
      await this.#steps.cleanup?.(context);
    } finally {
      for (const workDir of new Set([...this.#workDirs, context.workDir])) {
        await rm(join(workDir, this.#options.id), { recursive: true, force: true });
        if (this.#options.layerDir === undefined) await rm(defaultBlobDir(workDir, this.#options.id), { recursive: true, force: true });
      }
      this.#workDirs.clear();
    }
  }
}
