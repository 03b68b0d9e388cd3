/**
 * Test support: writers that collect output, an extend workspace with a real base image
 * (one reproducible layer in an OCI layout, copied into the extend dir as the restorer
 * does), and a catalog holding definitions of the core's FakeBackend next to the real entries.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImageFromDirectory } from '@cnb-extender/oci';
import { BACKEND_CATALOG, catalogEntry, type BackendCatalog } from '@cnb-extender/backend-catalog';
import { definedCapabilities, type BackendDefinition, type BackendDetection, type BackendFactoryOptions, type ExtenderBackend } from '@cnb-extender/extender-core';
import { FakeBackend, createWorkspace, type Workspace, type WorkspaceExtension } from '@cnb-extender/extender-core/testing';
import type { Writer } from '../render.ts';

export class Collect implements Writer {
  text = '';
  isTTY: boolean;
  constructor(isTTY = false) {
    this.isTTY = isTTY;
  }
  write(chunk: string): boolean {
    this.text += chunk;
    return true;
  }
  lines(): string[] {
    return this.text.split('\n').filter((l) => l !== '');
  }
}

/** Every `BackendFactoryOptions` a fake definition's `create` was called with (settings, network, layerDir), in order. */
export const fakeFactoryCalls: BackendFactoryOptions[] = [];

/**
 * A FakeBackend that declares what `definition` declares (kinds, inPlace, privileges for the
 * network). Given a `layerDir`, it writes its layer blobs there instead of the core's work
 * directory, as the real image backends do, so they can be published after `extend()`. The
 * setting `cache=true` makes it report a layer cache (it keeps none).
 */
function fakeBackend(definition: BackendDefinition, options: BackendFactoryOptions, instructionDelayMs: number): ExtenderBackend {
  fakeFactoryCalls.push(options);
  const fake = new FakeBackend({ id: definition.id, kinds: [...definition.kinds], instructionDelayMs });
  const { layerDir } = options;
  return {
    id: fake.id,
    capabilities: definedCapabilities(definition, { cache: options.settings?.['cache'] === true, ...(options.network ? { network: options.network } : {}) }),
    apply: (dockerfile, base, applyOptions, context) => fake.apply(dockerfile, base, applyOptions, layerDir ? { ...context, workDir: layerDir } : context),
    cleanup: fake.cleanup.bind(fake),
  };
}

/** A definition of the core's FakeBackend (`fake`, image-producing, no privileges), with `overrides`. */
export function fakeDefinition(overrides: Partial<BackendDefinition> = {}, instructionDelayMs = 0): BackendDefinition {
  const definition: BackendDefinition = {
    id: 'fake',
    description: 'the core test kit backend',
    kinds: ['build', 'run'],
    inPlace: false,
    privileges: { root: false, capabilities: [], container: false },
    settings: [],
    networks: { default: 'not used', none: 'not used', host: 'not used' },
    create: async (options) => fakeBackend(definition, options, instructionDelayMs),
    ...overrides,
  };
  return definition;
}

/**
 * The real catalog plus `fake`. Its settings: `cache=true` makes it report a layer cache,
 * `label` is repeatable and only recorded.
 */
export function catalogWithFake(kinds: ('build' | 'run')[] = ['build', 'run'], instructionDelayMs = 0): BackendCatalog {
  const settings: BackendDefinition['settings'] = [
    { name: 'cache', option: 'cache', kind: 'bool', description: 'report a layer cache' },
    { name: 'label', option: 'labels', kind: 'string', repeatable: true, description: 'recorded only' },
  ];
  return [...BACKEND_CATALOG, catalogEntry(fakeDefinition({ kinds, settings }, instructionDelayMs), '@cnb-extender/extender-core/testing')];
}

/** `catalog` with the entries named in `answers` replaced by fake definitions whose `-backend auto` detection answers as given. */
export function withDetections(catalog: BackendCatalog, answers: Readonly<Record<string, BackendDetection>>): BackendCatalog {
  return catalog.map((entry) => {
    const answer = answers[entry.id];
    return answer ? catalogEntry(fakeDefinition({ id: entry.id, detect: async () => answer })) : entry;
  });
}

export interface Fixture {
  ws: Workspace;
  /** env for a run: CNB_PLATFORM_API, layers, app, platform, extend dir, fake backend. */
  env: Record<string, string>;
  remove(): Promise<void>;
}

const REPO = 'registry.example.test/run';

/** A workspace whose analyzed.toml points at a one-layer image available in the extend dir. */
export async function createFixture(extensions: WorkspaceExtension[], options: { platformApi?: string; user?: string } = {}): Promise<Fixture> {
  const scratch = await mkdtemp(join(tmpdir(), 'extender-cli-base-'));
  const rootfs = join(scratch, 'rootfs');
  await mkdir(join(rootfs, 'etc'), { recursive: true });
  await writeFile(join(rootfs, 'etc', 'os-release'), 'ID=test\n');
  const layoutDir = join(scratch, 'layout');
  const built = await buildImageFromDirectory({ rootfs, layoutDir, config: { User: options.user ?? '1000:1000', Env: ['PATH=/usr/bin:/bin'] } });
  const digest = built.manifestDescriptor.digest;
  const ws = await createWorkspace({
    platformApi: options.platformApi ?? '0.13',
    extensions,
    buildImage: `${REPO}@${digest}`,
    runImage: `${REPO}@${digest}`,
    baseLayout: { from: layoutDir, digest, mode: 'full' },
  });
  const env = {
    CNB_PLATFORM_API: options.platformApi ?? '0.13',
    CNB_LAYERS_DIR: ws.layersDir,
    CNB_APP_DIR: ws.appDir,
    CNB_PLATFORM_DIR: ws.platformDir,
    CNB_EXTEND_DIR: ws.extendDir,
    CNB_EXTEND_BACKEND: 'fake',
  };
  return {
    ws,
    env,
    remove: async () => {
      await ws.remove();
      await rm(scratch, { recursive: true, force: true });
    },
  };
}

export interface ChildResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `uid:gid` the child switches to after loading its code (test/extend-child.ts). */
export const CHILD_USER_VARIABLE = 'EXTEND_CHILD_USER';

export interface ChildOptions {
  /** Run as this user (and group); default the test's own. */
  uid?: number;
  gid?: number;
  /** Capabilities taken away (util-linux `setpriv --bounding-set -<cap>`), e.g. `['chown']`. */
  dropCapabilities?: string[];
}

/**
 * The extend command in a child process (`test/extend-child.ts`, as `apps/extender` runs
 * it), with `argv` and exactly the environment `env` (plus PATH).
 */
export function extendInChild(argv: string[], env: Record<string, string | undefined>, options: ChildOptions = {}): Promise<ChildResult> {
  const script = join(import.meta.dirname, 'extend-child.ts');
  const node = [process.execPath, script, ...argv];
  const command = options.dropCapabilities?.length
    ? ['setpriv', '--bounding-set', options.dropCapabilities.map((c) => `-${c}`).join(','), '--inh-caps', options.dropCapabilities.map((c) => `-${c}`).join(','), '--', ...node]
    : node;
  return new Promise((resolve, reject) => {
    // The child starts as this process's user and becomes `uid` itself once it has loaded its code: the
    // checkout may be under a home that other users cannot enter (/root), as on CI.
    const child = spawn(command[0]!, command.slice(1), {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', ...env, ...(options.uid !== undefined ? { [CHILD_USER_VARIABLE]: `${options.uid}:${options.gid ?? options.uid}` } : {}) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', (err) => reject(new Error(`starting ${command[0]} (${command.join(' ')}): ${err.message}`, { cause: err })));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The fake catalog plus a FakeBackend declared in-place (`fake-inplace`), as backend-inplace is. */
export function catalogWithFakeInPlace(): BackendCatalog {
  return [...catalogWithFake(), catalogEntry(fakeDefinition({ id: 'fake-inplace', description: 'FakeBackend declared in-place', inPlace: true }), '@cnb-extender/extender-core/testing')];
}
