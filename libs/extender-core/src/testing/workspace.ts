/**
 * A throwaway extend-phase workspace shaped like the container the lifecycle
 * runs in: `<layers>/{analyzed.toml,group.toml,generated/…}`, `<app>`,
 * `<platform>`, `<extended>` and an extend dir with an optional base layout in
 * `cache/base/<digest>` (sparse or full), copied from an OCI layout.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Digest, ImageIndex, ImageManifest } from '@cnb-extender/oci';
import type { ExtendKind } from '../backend.ts';
import { baseLayoutDir, blobPath } from '../base.ts';
import { escapeId } from '../discovery.ts';
import type { ExtendInputs } from '../extend.ts';

export interface WorkspaceExtension {
  id: string;
  version?: string;
  api?: string;
  /** build.Dockerfile text. */
  build?: string;
  /** run.Dockerfile text. */
  run?: string;
  /** extend-config.toml text. */
  config?: string;
  /** Files of `context/`, `context.build/`, `context.run/` (≥ 0.13 only). */
  context?: Record<string, string>;
  contextBuild?: Record<string, string>;
  contextRun?: Record<string, string>;
}

export interface WorkspaceOptions {
  platformApi?: string;
  extensions?: WorkspaceExtension[];
  /** `[build-image].reference` */
  buildImage?: string;
  /** `[run-image].reference` */
  runImage?: string;
  /** Replace analyzed.toml's text. */
  analyzedToml?: string;
  /** Replace group.toml's text. */
  groupToml?: string;
  /** Files in `<app>`. */
  app?: Record<string, string>;
  /** Copy a base image into `<extendDir>/cache/base/<digest>`. */
  baseLayout?: { from: string; digest: Digest; mode: 'sparse' | 'full' };
  /** Parent of the workspace (default the OS temp dir). */
  tempRoot?: string;
}

export interface Workspace {
  root: string;
  layersDir: string;
  generatedDir: string;
  appDir: string;
  platformDir: string;
  extendedDir: string;
  extendDir: string;
  inputs: ExtendInputs;
  remove(): Promise<void>;
}

async function writeFiles(dir: string, files: Record<string, string>): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) {
    await mkdir(dirname(join(dir, name)), { recursive: true });
    await writeFile(join(dir, name), content);
  }
}

/** Copy one image of an OCI layout into `dest` (sparse: manifest + config only). */
export async function copyLayoutImage(from: string, digest: Digest, dest: string, mode: 'sparse' | 'full'): Promise<void> {
  const index = JSON.parse(await readFile(join(from, 'index.json'), 'utf8')) as ImageIndex;
  const descriptor = index.manifests.find((m) => m.digest === digest);
  if (!descriptor) throw new Error(`${from} has no manifest ${digest}`);
  await mkdir(join(dest, 'blobs', 'sha256'), { recursive: true });
  await writeFile(join(dest, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(join(dest, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: index.mediaType, manifests: [descriptor] }));
  const manifest = JSON.parse(await readFile(blobPath(from, digest), 'utf8')) as ImageManifest;
  const blobs = [digest, manifest.config.digest, ...(mode === 'full' ? manifest.layers.map((l) => l.digest) : [])];
  for (const blob of blobs) await copyFile(blobPath(from, blob), blobPath(dest, blob));
}

export async function createWorkspace(options: WorkspaceOptions = {}): Promise<Workspace> {
  const root = await mkdtemp(join(options.tempRoot ?? tmpdir(), 'extend-ws-'));
  const platformApi = options.platformApi ?? '0.13';
  const layersDir = join(root, 'layers');
  const generatedDir = join(layersDir, 'generated');
  const appDir = join(root, 'workspace');
  const platformDir = join(root, 'platform');
  const extendedDir = join(layersDir, 'extended');
  const extendDir = join(root, 'extend');
  for (const dir of [layersDir, appDir, platformDir, extendDir]) await mkdir(dir, { recursive: true });
  await writeFiles(appDir, options.app ?? {});
  const extensions = options.extensions ?? [];
  const perExtension = !['0.10', '0.11', '0.12'].includes(platformApi);
  if (extensions.length > 0) await mkdir(generatedDir, { recursive: true });
  for (const ext of extensions) {
    const escaped = escapeId(ext.id);
    for (const kind of ['build', 'run'] as ExtendKind[]) {
      const text = ext[kind];
      if (text === undefined) continue;
      const dir = perExtension ? join(generatedDir, escaped) : join(generatedDir, kind, escaped);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, perExtension ? `${kind}.Dockerfile` : 'Dockerfile'), text);
      if (ext.config !== undefined) await writeFile(join(dir, 'extend-config.toml'), ext.config);
    }
    if (perExtension) {
      const dir = join(generatedDir, escaped);
      if (ext.context) await writeFiles(join(dir, 'context'), ext.context);
      if (ext.contextBuild) await writeFiles(join(dir, 'context.build'), ext.contextBuild);
      if (ext.contextRun) await writeFiles(join(dir, 'context.run'), ext.contextRun);
    }
  }
  const group =
    options.groupToml ??
    extensions.map((e) => `[[group-extensions]]\nid = "${e.id}"\nversion = "${e.version ?? '0.0.1'}"\napi = "${e.api ?? '0.10'}"\n`).join('\n');
  await writeFile(join(layersDir, 'group.toml'), group);
  const analyzed =
    options.analyzedToml ??
    [
      options.buildImage ? `[build-image]\n  reference = "${options.buildImage}"\n` : '',
      options.runImage ? `[run-image]\n  reference = "${options.runImage}"\n  extend = true\n` : '',
    ].join('\n');
  await writeFile(join(layersDir, 'analyzed.toml'), analyzed);
  if (options.baseLayout) {
    await copyLayoutImage(options.baseLayout.from, options.baseLayout.digest, baseLayoutDir(extendDir, options.baseLayout.digest), options.baseLayout.mode);
  }
  const inputs: ExtendInputs = {
    platformApi,
    analyzedPath: join(layersDir, 'analyzed.toml'),
    groupPath: join(layersDir, 'group.toml'),
    generatedDir,
    appDir,
    layersDir,
    platformDir,
    extendedDir,
    extendDir,
  };
  return { root, layersDir, generatedDir, appDir, platformDir, extendedDir, extendDir, inputs, remove: () => rm(root, { recursive: true, force: true }) };
}
