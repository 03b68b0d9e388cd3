/**
 * The buildah backend: each Dockerfile is built with `buildah build` on top of
 * the base given as a local OCI layout (`FROM oci:…`, `--pull-never`), into an
 * OCI layout that the kit reads back (base layers matched by diff_id, new
 * layers filtered and re-encoded), with a layer added for each WORKDIR whose
 * directory buildah did not create (workdirs.ts). Daemonless; `--isolation
 * chroot` by default.
 *
 * Works with buildah 1.23 and later; what differs between versions (RUN's
 * resource limits, history texts, netavark) is handled where it is used.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  BackendInstructionError,
  definedCapabilities,
  type ApplyOptions,
  type BackendCapabilities,
  type BackendContext,
  type DockerfileSpec,
  type ExtenderBackend,
  type ImageDescription,
} from '@cnb-extender/extender-core';
import {
  ImageBackendError,
  ImageBuildTemplate,
  materializeBaseLayout,
  messageOf,
  readBuiltLayout,
  runTool,
  stepIndex,
  toolStep,
  type BuiltImage,
  type ImageBuild,
  type ImageBuildSteps,
  type MaterializedBase,
} from '@cnb-extender/image-backend-kit';
import { NORMALIZED_LAYER_TIME, type RegistryClient } from '@cnb-extender/oci';
import { buildahDefinition } from './definition.ts';
import { detectBuildah } from './detect.ts';
import { withoutBuildMetadata } from './history.ts';
import { pinnedUlimits, readLimitFacts } from './limits.ts';
import { prepareStorage, removeStorage, storageArgs, type BuildahStorage, type StorageDriver } from './storage.ts';
import { WorkdirOwnerError, addWorkdirLayers } from './workdirs.ts';

export type BuildahIsolation = 'chroot' | 'oci' | 'rootless';

export interface BuildahBackendOptions {
  /** The buildah executable (default `buildah`, looked up in `env.PATH`). */
  buildah?: string;
  /** `--isolation` (default `chroot`, or `BUILDAH_ISOLATION` from `env`). */
  isolation?: BuildahIsolation;
  /** Storage driver (default `auto`: overlay when it mounts in the work area, else vfs; or `CNB_BUILDAH_STORAGE_DRIVER`). */
  storageDriver?: StorageDriver | 'auto';
  /**
   * Seconds since the epoch for `--timestamp` (created time and file times in new
   * layers), for reproducible layers. Default: `SOURCE_DATE_EPOCH` from `env`, else unset.
   */
  timestamp?: number;
  /** `--layers` (one layer per instruction; default true). Without it buildah squashes RUNs. */
  layers?: boolean;
  /**
   * RUN's network: `host` (default: the network buildah runs in, as the in-place backend's RUN
   * has the container's) or `none` (a network namespace with only loopback).
   */
  network?: 'host' | 'none';
  /**
   * Where new layer blobs are kept (default `<workDir>/buildah-layers`, removed on
   * cleanup). Build kind: point it outside the work directory so that the result can
   * be published after `extend()` returns; it is then the caller's to remove.
   */
  layerDir?: string;
  /** Registry client for base layers a sparse layout lacks. */
  registry?: RegistryClient;
  /** Environment of the buildah processes (default `process.env`; `SOURCE_DATE_EPOCH` is read by the backend and not passed on). */
  env?: Readonly<Record<string, string | undefined>>;
}

const TOOL_LABELS = ['io.buildah.version'];

/** Run in a fresh network namespace: loopback up (when `ip` is there), then buildah with its arguments. */
const NETNS_SETUP = 'ip link set lo up 2>/dev/null || true; exec "$@"';

export class BuildahBackend implements ExtenderBackend {
  readonly id = 'buildah';
  readonly capabilities: BackendCapabilities = definedCapabilities(buildahDefinition, { cache: false });
  readonly options: BuildahBackendOptions;
  #buildah: string;
  #env: NodeJS.ProcessEnv;
  /** The environment of the buildah processes. */
  #toolEnv: NodeJS.ProcessEnv;
  #checked: Promise<string> | undefined;
  #storage: BuildahStorage | undefined;
  readonly #template: ImageBuildTemplate<MaterializedBase>;

  constructor(options: BuildahBackendOptions = {}) {
    this.options = options;
    this.#buildah = options.buildah ?? 'buildah';
    this.#env = { ...(options.env ?? process.env) } as NodeJS.ProcessEnv;
    // SOURCE_DATE_EPOCH is read here and becomes `--timestamp`. buildah 1.41 and later read it
    // too, as `--source-date-epoch` (created times only; file times stay), and refuse it together
    // with `--timestamp`: buildah does not get it, whatever its version.
    const { SOURCE_DATE_EPOCH: _, ...toolEnv } = this.#env;
    this.#toolEnv = toolEnv;
    this.#template = new ImageBuildTemplate({ id: this.id, layerDir: options.layerDir, toolLabels: TOOL_LABELS }, this.#steps());
  }

  get isolation(): BuildahIsolation {
    const fromEnv = this.#env['BUILDAH_ISOLATION'];
    return this.options.isolation ?? (fromEnv === 'oci' || fromEnv === 'rootless' || fromEnv === 'chroot' ? fromEnv : 'chroot');
  }

  get timestamp(): number | undefined {
    if (this.options.timestamp !== undefined) return this.options.timestamp;
    const epoch = this.#env['SOURCE_DATE_EPOCH'];
    return epoch !== undefined && /^\d+$/.test(epoch) ? Number(epoch) : undefined;
  }

  /** The storage driver in use (after the first apply). */
  get storageDriver(): StorageDriver | undefined {
    return this.#storage?.driver;
  }

  /** Check buildah once; its version. */
  async #check(signal: AbortSignal): Promise<string> {
    this.#checked ??= detectBuildah({ buildah: this.#buildah, env: this.#toolEnv, signal }).then((found) => {
      if (!found.available) throw new ImageBackendError(`checking buildah: ${found.reason}; install buildah (Debian: apt-get install buildah) or choose another backend`);
      return found.version!;
    });
    try {
      return await this.#checked;
    } catch (err) {
      this.#checked = undefined;
      throw err;
    }
  }

  apply(dockerfile: DockerfileSpec, base: ImageDescription, options: ApplyOptions, context: BackendContext): Promise<ImageDescription> {
    return this.#template.apply(dockerfile, base, options, context);
  }

  cleanup(context: BackendContext): Promise<void> {
    return this.#template.cleanup(context);
  }

  /** buildah checked, its storage prepared in the work area (once). */
  async #prepare(context: BackendContext, area: string): Promise<void> {
    await this.#check(context.signal);
    await mkdir(area, { recursive: true });
    if (this.#storage) return;
    const wanted = this.options.storageDriver ?? ((this.#env['CNB_BUILDAH_STORAGE_DRIVER'] as StorageDriver | undefined) || 'auto');
    this.#storage = await prepareStorage(this.#buildah, join(area, 'storage'), wanted, this.#toolEnv, context.signal);
    context.events.emit({ type: 'debug', level: 'debug', message: `buildah: storage driver ${this.#storage.driver} in ${this.#storage.root}` });
  }

  /** `buildah build` of the Dockerfile on the base layout into `oci:out-<n>:result`, in the apply's scratch. */
  async #build(build: ImageBuild, layout: MaterializedBase): Promise<void> {
    const { events, progress } = build;
    const version = await this.#check(build.signal);
    const { command, args, cutOff } = await this.#buildCommand(build, layout, version);
    // the step buildah is on, as it shows it (`FROM oci:…`, `RUN exit 3`)
    let step: string | undefined;
    const result = await runTool(command, args, {
      env: this.#toolEnv,
      cwd: build.scratch,
      signal: build.signal,
      onLine: (line) => {
        const found = toolStep(line);
        if (found !== undefined) {
          step = found.instruction;
          const index = stepIndex(found, progress.steps.length);
          if (index !== undefined) progress.started(index);
          return;
        }
        // `--> Using cache 5e3a…` (buildah --layers): the step came from buildah's cache
        const cached = /\bUsing cache ([0-9a-f]{12,})/.exec(line);
        if (cached && progress.current !== undefined) progress.cached(progress.current, cached[1]!);
        if (line.trim() !== '') events.emit({ type: 'debug', level: 'debug', message: `buildah: ${line}` });
      },
    });
    if (result.code === 0) return;
    const output = result.tail.filter((l) => l.trim() !== '').slice(-8).join('\n');
    let message = `buildah build exited with ${result.code ?? result.signal}: ${output}`;
    if (/could not find "netavark"/.test(output)) message += `; buildah ${version} needs netavark to build, even for RUN on the host network: install it (Debian: apt-get install netavark)`;
    if (cutOff && /^unshare: /m.test(output)) {
      message += '; RUN without the network under chroot isolation runs buildah in a network namespace of its own, which needs util-linux unshare and CAP_SYS_ADMIN: grant them, or use the oci or rootless isolation';
    }
    if (step !== undefined && !/^FROM\b/i.test(step)) throw progress.failed(step, progress.current, message);
    throw new ImageBackendError(message);
  }

  /** The command line of `buildah build` (in a network namespace of its own for RUN without the network under chroot). */
  async #buildCommand(build: ImageBuild, layout: MaterializedBase, version: string): Promise<{ command: string; args: string[]; cutOff: boolean }> {
    const { dockerfile, n } = build;
    const dockerfilePath = join(build.scratch, `Dockerfile-${n}`);
    await writeFile(dockerfilePath, dockerfile.content);
    const args = [...storageArgs(this.#storage!), 'build', '--isolation', this.isolation, '--pull-never', `--layers=${this.options.layers ?? true}`, '-f', dockerfilePath];
    // RUN gets the host's network by default (as with the in-place backend, which runs in the
    // container). It is what chroot isolation gives; said explicitly so that the oci and rootless
    // isolations, whose default is a network of their own, do the same. (buildah 1.4x still wants
    // netavark installed for it.) Without the network: `--network none` with oci and rootless;
    // chroot isolation has only the host's network, so buildah itself runs in a network
    // namespace of its own (util-linux unshare) with loopback alone, and RUN shares it.
    const cutOff = this.options.network === 'none' && this.isolation === 'chroot';
    args.push('--network', this.options.network === 'none' && !cutOff ? 'none' : 'host');
    // buildah 1.35+ raises RUN's open files and processes to 1048576, which fails without
    // CAP_SYS_RESOURCE; pinned to the extender's own limits then (limits.ts).
    const ulimits = pinnedUlimits(version, await readLimitFacts());
    if (ulimits.length > 0 && n === 1) build.events.emit({ type: 'debug', level: 'debug', message: `buildah ${version}: RUN limits pinned (${ulimits.filter((a) => a !== '--ulimit').join(', ')}): raising them to 1048576 needs CAP_SYS_RESOURCE` });
    args.push(...ulimits);
    for (const arg of dockerfile.args) args.push('--build-arg', `${arg.name}=${arg.name === 'base_image' ? `oci:base-${n}:${layout.refName}` : arg.value}`);
    if (this.timestamp !== undefined) args.push('--timestamp', String(this.timestamp));
    // Relative layout paths (run in the scratch directory): buildah up to 1.31 names an `oci:` image
    // after its path (`localhost/base-1`), and a path with upper-case letters is not a valid image
    // name. Later buildah (containers/common's libimage) names it after the ref name instead, the
    // same `docker.io/library/base:latest` for every base: nothing here looks an image up by its name.
    args.push('-t', `oci:out-${n}:result`, build.options.buildContext);
    if (!cutOff) return { command: this.#buildah, args, cutOff };
    return { command: 'unshare', args: ['--net', '--', 'sh', '-c', NETNS_SETUP, 'buildah', this.#buildah, ...args], cutOff };
  }

  /** The OCI layout buildah wrote, with a layer for each WORKDIR whose directory buildah did not create. */
  async #readBack(build: ImageBuild): Promise<BuiltImage> {
    const { dockerfile, events } = build;
    const workdirs = await addWorkdirLayers({
      built: withoutBuildMetadata(await readBuiltLayout(join(build.scratch, `out-${build.n}`), 'result')),
      base: build.base,
      dockerfile,
      dir: join(build.scratch, `workdirs-${build.n}`),
      mtime: this.timestamp !== undefined ? new Date(this.timestamp * 1000) : NORMALIZED_LAYER_TIME,
      signal: build.signal,
    });
    if ('unchecked' in workdirs) {
      events.emit({ type: 'warning', level: 'warn', code: 'workdir-unchecked', extensionId: dockerfile.extensionId, message: `${dockerfile.extensionId}: WORKDIR directories no later instruction uses may be missing (buildah creates none): ${workdirs.unchecked}` });
    }
    for (const a of workdirs.added) {
      events.emit({ type: 'debug', level: 'debug', message: `${dockerfile.extensionId}: ${a.instruction}: a layer with ${a.paths.join(', ')} (${a.uid}:${a.gid}), which buildah did not create` });
    }
    return workdirs.built;
  }

  /** The ImageBuildTemplate's steps for buildah. */
  #steps(): ImageBuildSteps<MaterializedBase> {
    return {
      prepare: (context, area) => this.#prepare(context, area),
      prepareBase: (build) =>
        materializeBaseLayout(build.base, {
          dir: join(build.scratch, `base-${build.n}`),
          fetchedBlobDir: join(build.area, 'fetched'),
          signal: build.signal,
          ...(this.options.registry ? { registry: this.options.registry } : {}),
        }),
      build: (build, layout) => this.#build(build, layout),
      readBack: (build) => this.#readBack(build),
      failure: (build, err) => {
        if (err instanceof WorkdirOwnerError) return new BackendInstructionError(err.instruction, err.message, { cause: err });
        return new ImageBackendError(`building ${build.dockerfile.path} with buildah: ${messageOf(err)}`, { cause: err });
      },
      cleanup: async () => {
        const storage = this.#storage;
        this.#storage = undefined;
        if (storage) await removeStorage(this.#buildah, storage, this.#toolEnv);
      },
    };
  }
}

/** Create the buildah backend. */
export function createBuildahBackend(options: BuildahBackendOptions = {}): BuildahBackend {
  return new BuildahBackend(options);
}
