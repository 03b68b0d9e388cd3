/**
 * The backend interface: what a Dockerfile applier must do for the extend phase.
 *
 * The core (this package) owns every backend-neutral rule of the phase (which
 * Dockerfiles, in which order, with which build args; rebasable, history, user
 * checks, run-kind output). A backend only turns "this Dockerfile on top of that
 * image" into "this new image". Kaniko-style in-place execution is one backend;
 * daemon or builder based backends are others.
 *
 * Shape mirrors the Go lifecycle's `phase.DockerfileApplier`
 * (`ImageFor` / `Apply` / `Cleanup`), made async, cancellable and free of
 * backend-specific image handles.
 */
import type { Readable } from 'node:stream';
import type { Descriptor, Digest, ImageConfig } from '@cnb-extender/oci';
import type { EventSink } from './events.ts';

/** Which image an extension modifies. */
export type ExtendKind = 'build' | 'run';

/** Privileges a backend needs to do its work; the CLI checks them before calling the core. */
export interface BackendPrivileges {
  /** Needs to run as uid 0. */
  root: boolean;
  /** Linux capabilities it needs beyond a default container (`SYS_ADMIN`, `SETFCAP`, …). */
  capabilities: readonly string[];
  /** Refuses to run outside a container (it would modify the host's root filesystem). */
  container: boolean;
}

/** What a backend declares about itself, so the CLI and the core can choose and check. */
export interface BackendCapabilities {
  /**
   * True when applying a Dockerfile mutates the running root filesystem (kaniko
   * style: RUN executes against `/`). The build phase then runs on that filesystem.
   * False when the backend produces a new image elsewhere and leaves `/` alone.
   */
  inPlace: boolean;
  /** Kinds this backend can extend; the core refuses other kinds before doing anything. */
  kinds: readonly ExtendKind[];
  /** Whether the backend keeps a layer cache (honours `cacheTtlMs`, emits cache events). */
  cache: boolean;
  privileges: BackendPrivileges;
}

/**
 * Where a layer blob can be read: a file on disk, or a function opening a fresh
 * stream each time it is called (the core may read a blob more than once).
 */
export type BlobSource =
  | { kind: 'file'; path: string }
  | { kind: 'stream'; open(): Promise<Readable> | Readable };

/** One layer of an image description. */
export interface LayerDescription {
  /** The manifest descriptor (media type, digest of the blob as stored, size). */
  descriptor: Descriptor;
  /** Digest of the uncompressed tar (the config's `rootfs.diff_ids` entry). */
  diffId: Digest;
  /**
   * Where the blob can be read. Required for layers a backend adds; optional for
   * base layers (a sparse base layout has none).
   */
  blob?: BlobSource;
}

/**
 * A backend-neutral image: what the core needs to reason about an image and to
 * write it out. Base layers keep their original descriptors byte for byte.
 */
export interface ImageDescription {
  /** The reference it was resolved from (digest reference when known). */
  reference?: string;
  /** Manifest media type of the original image (the output keeps the family). */
  manifestMediaType: string;
  /** The full image config, including `rootfs.diff_ids` and `history`. */
  config: ImageConfig;
  /** All layers, bottom to top; `layers.length === config.rootfs.diff_ids.length`. */
  layers: LayerDescription[];
  /** Manifest digest when the image exists as a manifest somewhere. */
  manifestDigest?: Digest;
  /** Manifest annotations of the original, kept on output. */
  annotations?: Record<string, string>;
}

/** A build arg as given to `docker build --build-arg name=value`. */
export interface BuildArg {
  name: string;
  value: string;
}

/** One Dockerfile to apply, with everything discovered for it by the core. */
export interface DockerfileSpec {
  /** Extension id as written in group.toml (with `/`, not escaped). */
  extensionId: string;
  kind: ExtendKind;
  /** Absolute path of the Dockerfile. */
  path: string;
  /** The Dockerfile's text (already read and validated by the core). */
  content: string;
  /** Build args in the order the core defines (build_id, user_id, group_id, config args, base_image). */
  args: BuildArg[];
  /** Build context directory (COPY/ADD sources are relative to it). */
  contextDir: string;
}

/** Context handed to every backend call. */
export interface BackendContext {
  /** Cancellation: a backend stops as soon as it can and rejects with the signal's reason. */
  signal: AbortSignal;
  /** Where the backend reports what it does (instructions, layers, cache). */
  events: EventSink;
  /**
   * A directory private to this extender run (unique per process; removed by the
   * core after `cleanup`). Backends put scratch files and new layer blobs here.
   */
  workDir: string;
}

export interface ApplyOptions {
  /** Build context directory (same as `dockerfile.contextDir`). */
  buildContext: string;
  /**
   * Absolute paths whose changes must never end up in a layer (`<app>`,
   * `<layers>`, `<platform>`, `/var/run`, the extend dir's work area).
   */
  ignorePaths: string[];
  /** How long cached layers stay valid, in milliseconds (`-kaniko-cache-ttl`). */
  cacheTtlMs: number;
  /** The extend dir (`/kaniko` by default): backends keep their cache under `<extendDir>/cache`. */
  extendDir: string;
}

/** What a backend gets asked to resolve when it offers its own base resolution. */
export interface ResolveBaseRequest {
  kind: ExtendKind;
  /** The reference from analyzed.toml (digest reference in normal use). */
  reference: string;
  extendDir: string;
}

/** A Dockerfile applier. Implementations live in `backend-*` packages. */
export interface ExtenderBackend {
  /** Short stable name (`inplace`, `buildah`, `fake`, …). */
  readonly id: string;
  readonly capabilities: BackendCapabilities;
  /**
   * Optional: resolve the base image itself (e.g. from a daemon's image store).
   * The core asks after looking in the extend dir's `cache/base/<digest>` layout
   * and before going to the registry; return `undefined` to let it go on.
   */
  resolveBase?(request: ResolveBaseRequest, context: BackendContext): Promise<ImageDescription | undefined>;
  /**
   * Apply one Dockerfile on top of `base`. Resolves to the resulting image:
   * `base.layers` unchanged first, then one entry per new layer (with `blob`),
   * and the resulting config (Env, User, Labels, WorkingDir…, `rootfs.diff_ids`
   * and `history` covering every layer; a new layer's history `created_by` reads
   * like its Dockerfile line, e.g. `RUN echo hi`).
   *
   * Rejects with a `BackendInstructionError` (or any error whose `instruction`
   * property names the failing line) when an instruction fails.
   */
  apply(dockerfile: DockerfileSpec, base: ImageDescription, options: ApplyOptions, context: BackendContext): Promise<ImageDescription>;
  /** Remove everything the backend created outside its cache. Called once, also after failures. */
  cleanup(context: BackendContext): Promise<void>;
}

/**
 * The error a backend throws when one Dockerfile instruction fails. The core
 * wraps it into an `ExtenderError` whose message names the instruction.
 */
export class BackendInstructionError extends Error {
  override name = 'BackendInstructionError';
  /** The failing instruction as written (`RUN exit 3`). */
  readonly instruction: string;
  /** 1-based line number in the Dockerfile when known. */
  readonly line: number | undefined;
  /** Position of the instruction after `FROM` (as in events) when known. */
  readonly index: number | undefined;
  constructor(instruction: string, message: string, options?: { cause?: unknown; line?: number; index?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.instruction = instruction;
    this.line = options?.line;
    this.index = options?.index;
  }
}
