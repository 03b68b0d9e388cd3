/**
 * The extend command shared by `extender` and `lifecycle`: argv + env → inputs
 * (libs/platform) → backend (backend catalog) → `extend()` (extender-core) → rendered
 * events → exit code. It never prints outside the writers it is given and never exits.
 */
import { checkBackendKind, extend, requiredPrivileges, type BackendDefinition, type BackendPrivileges, type ExtenderBackend, type ExtendInputs } from '@cnb-extender/extender-core';
import { accessSync, constants, existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { BACKEND_CATALOG, chooseBackend, createBackend, publishBuildImage, publishRunImage, selectBackend, type BackendCatalog, type BuildImageTarget } from '@cnb-extender/backend-catalog';
import {
  ApiVersion,
  ENV,
  EXIT_CODES,
  EXTEND_PLATFORM_APIS,
  ExtenderError,
  deprecationMessages,
  extenderUsage,
  messageOf,
  deprecationModeSetting,
  parseDeprecationMode,
  parseExtenderCommandLine,
  renderError,
  type ExtenderInputs,
} from '@cnb-extender/platform';
import { builtInSchedule } from './deprecation/builtin.ts';
import { evaluateDeprecation, type DeprecationSchedule, type SurfaceId } from './deprecation/schedule.ts';
import { exitCodeOf } from './exit-codes.ts';
import { colorOff, liveViewWanted, Renderer, type Writer } from './render.ts';
import { ensureOwner, planBuildHandOff, runBuildHandOff } from './build-handoff.ts';
import { IN_CONTAINER_ENV, probeContainer } from './container.ts';
import { PROCESS_STATUS_FILE, missingPrivileges, readProcessPrivileges } from './preflight.ts';

/** How the command was reached; only the lifecycle's entry points are deprecated. */
export type ExtendEntry = 'extender' | 'lifecycle-symlink' | 'lifecycle-subcommand';

export interface ExtendCommandOptions {
  /** Arguments after the program name (and after `extend` for `lifecycle extend`). */
  argv: readonly string[];
  env: Readonly<Record<string, string | undefined>>;
  stdout: Writer;
  stderr: Writer;
  /** The CLI's own version (semver), printed by `-version` and compared with the schedule. */
  version: string;
  /** Name in the usage text. */
  programName?: string;
  entry?: ExtendEntry;
  /** Aborts the run (the apps connect SIGINT/SIGTERM). */
  signal?: AbortSignal;
  cwd?: string;
  /** Default: the built-in catalog (tests add definitions of their own, or replace one to steer `-backend auto`). */
  backends?: BackendCatalog;
  /** Default: the schedule this build carries. */
  schedule?: DeprecationSchedule;
  /** Build kind, in-place backend: the uid the process runs as (default `process.getuid()`). */
  currentUid?: number;
  /** Build kind, in-place backend: where `HOME`/`USER` are looked up (default `/etc/passwd`). */
  passwdFile?: string;
  /** Where the container probe looks for runtime markers (default `/`; tests use a fake tree). */
  containerProbeRoot?: string;
  /** Where the preflight reads the effective uid and capabilities (default `/proc/self/status`; tests use a file of their own). */
  processStatusFile?: string;
  /** The extend dir when neither `-extend-dir` nor `CNB_EXTEND_DIR` names one (default `/kaniko`; tests use a path of their own). */
  implicitExtendDir?: string;
}

/** Exit code when a signal aborted the run: 128 + the signal number, as shells report it. */
export function exitCodeForSignal(signal: string): number {
  return signal === 'SIGINT' ? 130 : signal === 'SIGTERM' ? 143 : signal === 'SIGHUP' ? 129 : EXIT_CODES.extendError;
}

/** Flags that end the command before any input is needed (they work without CNB_PLATFORM_API). */
function earlyAction(argv: readonly string[]): 'version' | 'help' | undefined {
  for (const arg of argv) {
    if (arg === '--') return undefined;
    if (!arg.startsWith('-')) return undefined; // Go stops at the first positional argument
    const name = arg.replace(/^--?/, '').split('=')[0];
    if (name === 'version' && !/=(false|0|f|F|FALSE|False)$/.test(arg)) return 'version';
    if (name === 'h' || name === 'help') return 'help';
  }
  return undefined;
}

function usagePlatformApi(env: Readonly<Record<string, string | undefined>>): ApiVersion {
  const requested = ApiVersion.tryParse(env[ENV.platformApi] ?? '');
  return requested && EXTEND_PLATFORM_APIS.isSupported(requested) ? requested : EXTEND_PLATFORM_APIS.latest();
}

function toCoreInputs(inputs: ExtenderInputs, env: Readonly<Record<string, string | undefined>>, workRoot: string | undefined): ExtendInputs {
  return {
    ...(workRoot ? { workRoot } : {}),
    platformApi: env[ENV.platformApi] ?? '',
    analyzedPath: inputs.analyzedPath,
    groupPath: inputs.groupPath,
    generatedDir: inputs.generatedDir,
    appDir: inputs.appDir,
    layersDir: inputs.layersDir,
    platformDir: inputs.platformDir,
    extendedDir: inputs.extendedDir,
    extendDir: inputs.extendDir,
    cacheTtlMs: inputs.extendCacheTtl,
    deprecationMode: parseDeprecationMode(env[ENV.deprecationMode]),
  };
}

/** What the command line resolved to, with the renderer its events go to. */
interface Invocation {
  parsed: Extract<ReturnType<typeof parseExtenderCommandLine>, { action: 'run' }>;
  inputs: ExtenderInputs;
  /** No `-extend-dir` / `CNB_EXTEND_DIR`: the extend dir is the implicit one. */
  implicitExtendDir: boolean;
  log: Renderer;
  schedule: DeprecationSchedule;
  mode: ReturnType<typeof deprecationModeSetting>;
}

/** Temporary directories of one run, removed when it ends. */
interface RunDirs {
  layerDir?: string;
  privateWorkRoot?: string;
}

/**
 * Run the extend command. Resolves to the exit code; every error is rendered to `stderr`
 * in the lifecycle's format (`ERROR: failed to <action>: <cause>`).
 */
export async function runExtendCommand(options: ExtendCommandOptions): Promise<number> {
  const { env, stdout, stderr } = options;
  const programName = options.programName ?? 'extender';
  const early = earlyAction(options.argv);
  if (early === 'version') {
    stdout.write(`${options.version}\n`);
    return EXIT_CODES.success;
  }
  if (early === 'help') {
    stderr.write(extenderUsage(usagePlatformApi(env), programName));
    return EXIT_CODES.success;
  }

  let renderer: Renderer | undefined;
  const dirs: RunDirs = {};
  try {
    const invocation = parseInvocation(options, programName);
    if (typeof invocation === 'number') return invocation;
    renderer = invocation.log;
    noticeDeprecatedInputs(invocation, options);
    const plan = await planRun(invocation, options, dirs);
    return await extendAndFinish(invocation, plan, options, dirs);
  } catch (err) {
    renderer?.close();
    return reportFailure(err, stderr, renderer, options.signal);
  } finally {
    if (dirs.layerDir) await rm(dirs.layerDir, { recursive: true, force: true }).catch(() => undefined);
    if (dirs.privateWorkRoot) await rm(dirs.privateWorkRoot, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** The command line and environment as inputs, and the renderer; an exit code for `-help` / `-version`. */
function parseInvocation(options: ExtendCommandOptions, programName: string): Invocation | number {
  const { env, stdout, stderr } = options;
  const parsed = parseExtenderCommandLine(options.argv, { env, programName, ...(options.cwd ? { cwd: options.cwd } : {}) });
  if (parsed.action === 'help') {
    stderr.write(parsed.usage);
    return EXIT_CODES.success;
  }
  if (parsed.action === 'version') {
    stdout.write(`${options.version}\n`);
    return EXIT_CODES.success;
  }
  const implicitExtendDir = parsed.origins.extendDir.source === 'default';
  const inputs = implicitExtendDir && options.implicitExtendDir ? { ...parsed.inputs, extendDir: resolve(options.implicitExtendDir) } : parsed.inputs;
  // no escape sequences unless writing to a terminal, and none with -no-color / NO_COLOR
  const color = !inputs.noColor && !colorOff(env) && stdout.isTTY === true;
  const log = new Renderer({
    stdout,
    stderr,
    level: inputs.logLevel,
    format: inputs.logFormat,
    color,
    progress: liveViewWanted(inputs.logFormat, stdout, inputs.noColor, env),
  });
  const schedule = options.schedule ?? builtInSchedule();
  return { parsed, inputs, implicitExtendDir, log, schedule, mode: deprecationModeSetting(env[ENV.deprecationMode]) };
}

/** A deprecated surface this run uses: its notice once, or its error when the schedule says it is gone. */
function noticeDeprecation(invocation: Invocation, id: SurfaceId, version: string): void {
  const outcome = evaluateDeprecation(invocation.schedule, id, version, invocation.mode);
  if (outcome.error) throw outcome.error;
  if (outcome.notice) invocation.log.warn(outcome.notice, { deprecation: id });
}

/** Deprecated entry points, flags and variables: each evaluated against the schedule once. */
function noticeDeprecatedInputs(invocation: Invocation, options: ExtendCommandOptions): void {
  const { parsed, log } = invocation;
  const used: SurfaceId[] = [];
  if ((options.entry ?? 'extender') !== 'extender') used.push('lifecycle-extender-entry');
  for (const d of parsed.deprecations) {
    if (d.kind === 'flag' && d.used === '-kaniko-cache-ttl') used.push('kaniko-cache-ttl-flag');
    if (d.kind === 'env' && d.used === ENV.kanikoCacheTtl) used.push('kaniko-cache-ttl-env');
  }
  const aliasMessages = new Set(deprecationMessages(parsed.deprecations));
  for (const warning of parsed.warnings) if (!aliasMessages.has(warning)) log.warn(warning);
  for (const id of used) noticeDeprecation(invocation, id, options.version);
  for (const d of parsed.deprecations) {
    // an alias that lost to its replacement still deserves a word
    if (!d.effective && d.overriddenBy) log.debug(`${d.used} is ignored: ${d.overriddenBy} is set`);
  }
}

/** What the run does besides extending: where it works, where the result goes, whether the build phase follows. */
interface RunPlan {
  backend: ExtenderBackend;
  publishTarget: BuildImageTarget | undefined;
  runReference: string | undefined;
  /** Build kind in place: the build phase runs in this container after the extension. */
  chainBuild: boolean;
}

/**
 * The backend chosen and checked against this process from what its definition declares, then
 * created once; every refusal comes before anything is read, created or changed.
 */
async function planRun(invocation: Invocation, options: ExtendCommandOptions, dirs: RunDirs): Promise<RunPlan> {
  const { inputs, parsed, log } = invocation;
  const { env } = options;
  const catalog = options.backends ?? BACKEND_CATALOG;
  const choice = await chooseBackend(inputs.backend, { env, catalog });
  if (choice.auto) log.info(`Backend auto: using ${choice.id} (${choice.reason})`);
  // -backend-opt settings are checked against the backend's definition here (exit 3)
  const selected = await selectBackend(choice.id, {
    catalog,
    backendOpts: inputs.backendOpts,
    ...(parsed.origins.backendOpts.name ? { backendOptsSource: parsed.origins.backendOpts.name } : {}),
    ...(options.cwd ? { cwd: options.cwd } : {}),
  });
  const { definition } = selected;
  // Preflight, from the definition: nothing of the backend is created yet
  checkBackendKind(inputs.extendKind, definition);
  checkPrivileges({ id: definition.id, privileges: requiredPrivileges(definition, inputs.extendNetwork) }, inputs.extendKind, env, options, log);
  const needsPrivateWorkRoot = invocation.implicitExtendDir && implicitExtendDirUnusable(invocation, definition, options.version);
  const publishTarget = inputs.extendKind === 'build' && !definition.inPlace ? buildImageTarget(inputs, definition.id) : undefined;
  const runReference = runImageReference(inputs, parsed.origins.extendedRunImage?.name, definition, log);
  // the image-producing backend keeps its new layer blobs here, outside the core's work
  // directory (removed before extend() returns), until they are published; an in-place
  // backend never gets one (it would land in the filesystem being extended)
  if (publishTarget || runReference) dirs.layerDir = await mkdtemp(join(tmpdir(), 'cnb-extend-layers-'));
  const backend = await createBackend(selected, {
    env,
    network: inputs.extendNetwork,
    layerCompression: inputs.extendLayerCompression,
    ...(dirs.layerDir ? { layerDir: dirs.layerDir } : {}),
  });
  const ttl = parsed.origins.extendCacheTtl;
  if (!backend.capabilities.cache && ttl.source !== 'default') {
    // said once for the run, not per Dockerfile
    log.warn(`${ttl.name} is ignored: the ${backend.id} backend keeps no layer cache of its own, so the time-to-live of cached layers does not apply`);
  }
  const chainBuild = inputs.extendKind === 'build' && definition.inPlace;
  if (chainBuild) {
    noticeDeprecation(invocation, 'inplace-build-chaining', options.version);
    // refused before anything changes: the build phase never runs as root
    if (inputs.uid === 0) {
      throw new ExtenderError('BUILD_HANDOFF_FAILED', 'failed to build: refusing to run the build phase as root; set -uid / CNB_USER_ID to the CNB user', { action: 'build' });
    }
  }
  if (needsPrivateWorkRoot) dirs.privateWorkRoot = await mkdtemp(join(tmpdir(), 'cnb-extend-work-'));
  return { backend, publishTarget, runReference, chainBuild };
}

/**
 * The implicit /kaniko is used only when it is: an in-place backend keeps its layer cache
 * there (and creates it), an image-producing backend reads a restorer's base layout from it
 * when it exists. Otherwise it is not created, and the notice is not printed. True when the
 * backend must work in a private temporary directory instead.
 */
function implicitExtendDirUnusable(invocation: Invocation, definition: BackendDefinition, version: string): boolean {
  const { extendDir } = invocation.inputs;
  const present = existsSync(extendDir);
  if (definition.inPlace || present) noticeDeprecation(invocation, 'implicit-kaniko-dir', version);
  if (definition.inPlace || (present && writable(extendDir))) return false;
  invocation.log.debug(`${extendDir} ${present ? 'is not writable' : 'does not exist'} and no -extend-dir is given: the ${definition.id} backend works in a temporary directory`);
  return true;
}

/** Extend, then finish the kind: publish the image, or hand over to the build phase. */
async function extendAndFinish(invocation: Invocation, plan: RunPlan, options: ExtendCommandOptions, dirs: RunDirs): Promise<number> {
  const { inputs, log } = invocation;
  const signal = options.signal ? { signal: options.signal } : {};
  const result = await extend({
    kind: inputs.extendKind,
    inputs: toCoreInputs(inputs, options.env, dirs.privateWorkRoot),
    backend: plan.backend,
    events: log,
    ...signal,
    ...(plan.runReference ? { runOutput: 'none' as const } : {}),
  });
  log.debug(`Extended image user: ${result.user === '' ? '(unset)' : result.user}`);
  if (plan.runReference) {
    // the run-image reference mode: the extended run image goes to a registry, not <extended>/run
    const published = await publishRunImage({ image: result.image, reference: plan.runReference, analyzedPath: inputs.analyzedPath, ...signal }).catch((err: unknown) => {
      throw afterExtension('run', err);
    });
    return finishWith(log, published.message);
  }
  if (plan.publishTarget) {
    // an image-producing backend cannot change this container: the platform runs the
    // build phase in the published image instead
    const published = await publishBuildImage({ image: result.image, target: plan.publishTarget, analyzedPath: inputs.analyzedPath, ...signal }).catch((err: unknown) => {
      throw afterExtension('build', err);
    });
    return finishWith(log, published.message);
  }
  if (!plan.chainBuild) {
    log.close();
    return EXIT_CODES.success;
  }
  return handOffToBuild(inputs, result.env, options, log);
}

function finishWith(log: Renderer, message: string): number {
  log.info(message.charAt(0).toUpperCase() + message.slice(1));
  log.close();
  return EXIT_CODES.success;
}

/** Build kind in place: `<layers>` to the CNB user, then the build phase as that user. */
async function handOffToBuild(inputs: ExtenderInputs, imageEnv: string[], options: ExtendCommandOptions, log: Renderer): Promise<number> {
  const { env, stdout, stderr } = options;
  const plan = await planBuildHandOff({ inputs, env, imageEnv, ...(options.passwdFile ? { passwdFile: options.passwdFile } : {}) });
  const currentUid = options.currentUid ?? process.getuid?.() ?? 0;
  if (currentUid === 0) {
    const changed = await ensureOwner(inputs.layersDir, plan.uid, plan.gid).catch((err: unknown) => {
      throw afterExtension('build', new Error(`handing ${inputs.layersDir} to ${plan.uid}:${plan.gid} for the build phase: ${messageOf(err)}`, { cause: err }));
    });
    if (changed) log.debug(`Changed the owner of ${inputs.layersDir} to ${plan.uid}:${plan.gid}`);
  }
  log.info(`Running the build phase (${plan.builder}) as ${plan.uid}:${plan.gid}`);
  log.close();
  return await runBuildHandOff(plan, { stdout, stderr, currentUid, ...(options.signal ? { signal: options.signal } : {}) });
}

/**
 * A failure after the Dockerfiles were applied (publishing the extended build image,
 * recording it in analyzed.toml, handing `<layers>` to the build phase) is an extend
 * failure (`FINISH_FAILED`, exit 102): `failed to extend <kind> image: <cause>`.
 */
function afterExtension(kind: string, err: unknown): ExtenderError {
  const action = `extend ${kind} image`;
  return new ExtenderError('FINISH_FAILED', `failed to ${action}: ${messageOf(err)}`, { cause: err, action });
}

function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * What the backend's definition declares it needs (`privileges`, with what the RUN network
 * adds) against this process: a container (an in-place backend on a host would rewrite the
 * host), root, Linux capabilities. Each missing one is named; the run stops with
 * `PRIVILEGES_MISSING` (the extend phase's exit code, 102) before anything is read, created or changed.
 */
function checkPrivileges(backend: { id: string; privileges: BackendPrivileges }, kind: string, env: Readonly<Record<string, string | undefined>>, options: ExtendCommandOptions, log: Renderer): void {
  const { privileges } = backend;
  const action = `extend ${kind} image`;
  if (privileges.container) {
    const probe = probeContainer(env, options.containerProbeRoot);
    if (!probe.inContainer) {
      throw new ExtenderError(
        'PRIVILEGES_MISSING',
        `failed to ${action}: the ${backend.id} backend changes the root filesystem it runs on and runs only inside a container of the image to extend (${probe.evidence}); run it in such a container, choose an image-producing -backend, or set ${IN_CONTAINER_ENV}=true if this is a container we do not recognise`,
        { action },
      );
    }
    log.debug(`Running in a container: ${probe.evidence}`);
  }
  if (!privileges.root && privileges.capabilities.length === 0) return;
  const statusFile = options.processStatusFile ?? PROCESS_STATUS_FILE;
  const have = readProcessPrivileges(statusFile);
  if (have.capabilities === undefined && privileges.capabilities.length > 0) log.debug(`Capabilities unknown (${statusFile} has no CapEff): not checked`);
  const missing = missingPrivileges(privileges, have);
  if (missing.length === 0) return;
  const needs = [...(privileges.root ? ['root'] : []), ...privileges.capabilities.map((name) => `CAP_${name.replace(/^CAP_/, '')}`)].join(', ');
  throw new ExtenderError(
    'PRIVILEGES_MISSING',
    `failed to ${action}: the ${backend.id} backend cannot run with the privileges of this process: ${missing.join('; ')}; run it with ${needs} (docker run --user 0 --cap-add …, a pod's securityContext), or choose an image-producing -backend, which needs none of them`,
    { action },
  );
}

/**
 * Build kind with an image-producing backend: where the extended build image goes. Exactly
 * one of `-extended-build-image` / `-extended-build-layout` is required (`INVALID_INPUT` otherwise),
 * checked before anything is extended.
 */
function buildImageTarget(inputs: ExtenderInputs, backendId: string): BuildImageTarget {
  const reference = inputs.extendedBuildImage ?? '';
  const dir = inputs.extendedBuildLayout ?? '';
  const action = 'extend build image';
  const names = `-extended-build-image / ${ENV.extendedBuildImage} (a registry reference to push it to) or -extended-build-layout / ${ENV.extendedBuildLayout} (a directory to write it to as an OCI layout)`;
  if (reference !== '' && dir !== '') {
    throw new ExtenderError('INVALID_INPUT', `failed to ${action}: set only one of ${names}`, { action });
  }
  if (reference === '' && dir === '') {
    throw new ExtenderError(
      'INVALID_INPUT',
      `failed to ${action}: the ${backendId} backend produces an image and does not change this container, so the extended build image must be published; set ${names}`,
      { action },
    );
  }
  return reference !== '' ? { kind: 'registry', reference } : { kind: 'layout', dir };
}

/**
 * The run-image reference mode (`-extended-run-image`): run kind with an image-producing
 * backend pushes the extended run image instead of writing `<extended>/run`. An in-place
 * backend is refused (`INVALID_INPUT`) before anything runs; for the build kind the input does not
 * apply and is ignored with a warning (platforms may set the variable for both kinds).
 */
function runImageReference(inputs: ExtenderInputs, name: string | undefined, backend: BackendDefinition, log: Renderer): string | undefined {
  const reference = inputs.extendedRunImage ?? '';
  if (reference === '') return undefined;
  const given = name ?? `-extended-run-image / ${ENV.extendedRunImage}`;
  if (inputs.extendKind !== 'run') {
    log.warn(`${given} is ignored: it applies to the run kind only`);
    return undefined;
  }
  if (backend.inPlace) {
    const action = 'extend run image';
    throw new ExtenderError(
      'INVALID_INPUT',
      `failed to ${action}: ${given} asks for the extended run image to be pushed, which needs an image-producing backend; the ${backend.id} backend changes the container it runs in: choose -backend buildah, docker or buildkit, or leave ${given} unset to write <extended>/run`,
      { action },
    );
  }
  return reference;
}

function reportFailure(err: unknown, stderr: Writer, renderer: Renderer | undefined, signal: AbortSignal | undefined): number {
  if (signal?.aborted) {
    const reason: unknown = signal.reason;
    const name = reason instanceof Error && /^SIG[A-Z]+$/.test(reason.message) ? reason.message : undefined;
    stderr.write(renderError(err));
    return name ? exitCodeForSignal(name) : exitCodeOf(err);
  }
  for (const line of err instanceof ExtenderError ? err.details : []) {
    if (renderer) renderer.error(line);
    else stderr.write(`ERROR: ${line}\n`);
  }
  if (renderer?.format === 'json') renderer.error(err instanceof Error ? err.message : String(err));
  else stderr.write(renderError(err));
  return exitCodeOf(err);
}
