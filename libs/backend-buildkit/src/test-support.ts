/**
 * Test helpers (imported by tests only): apply a Dockerfile with a backend on
 * the test environment's busybox run image, and flatten new layers into the
 * filesystem they produce.
 */
import type {} from '@cnb-extender/testenv'; // types inject('testenv')
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { MemorySink, openBlob, readLayoutImage, type BackendContext, type DockerfileSpec, type ExtenderBackend, type ImageDescription, type LayerDescription } from '@cnb-extender/extender-core';
import { decompressLayer, readTar } from '@cnb-extender/oci';
import { testEnv } from '@cnb-extender/extender-core/testing';

export interface FsNode {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  linkTarget: string;
  content: Buffer;
}

export async function runBase(): Promise<ImageDescription> {
  const fixture = testEnv().fixtures.run;
  const { image } = await readLayoutImage(fixture.layoutDir, fixture.registryRef, fixture.manifestDigest as `sha256:${string}`);
  return image;
}

/** Applies the layers in order (whiteouts and opaque dirs honoured) → path → node. */
export async function flatten(layers: readonly LayerDescription[]): Promise<Map<string, FsNode>> {
  const fs = new Map<string, FsNode>();
  const removeTree = (path: string, keepSelf = false) => {
    for (const key of [...fs.keys()]) if ((key === path && !keepSelf) || key.startsWith(`${path}/`)) fs.delete(key);
  };
  for (const layer of layers) {
    const { tar } = await decompressLayer(await openBlob(layer.blob!));
    for await (const entry of readTar(tar)) {
      const chunks: Buffer[] = [];
      for await (const c of entry.body()) chunks.push(c);
      const path = posix.normalize(entry.name.replace(/^\.?\//, '')).replace(/\/$/, '');
      const base = posix.basename(path);
      const dir = posix.dirname(path);
      if (base === '.wh..wh..opq') {
        removeTree(dir, true);
        continue;
      }
      if (base.startsWith('.wh.')) {
        removeTree(dir === '.' ? base.slice(4) : `${dir}/${base.slice(4)}`);
        continue;
      }
      if (entry.type !== 'directory') removeTree(path, true);
      fs.set(path, { type: entry.type, mode: entry.mode, uid: entry.uid, gid: entry.gid, linkTarget: entry.linkTarget, content: Buffer.concat(chunks) });
    }
  }
  return fs;
}

export interface Applied {
  result: ImageDescription;
  base: ImageDescription;
  events: MemorySink;
  workDir: string;
  newLayers: LayerDescription[];
  dispose(): Promise<void>;
}

/** One `apply` with a fresh work dir; `dispose` runs the backend's cleanup and removes the dirs. */
export async function applyDockerfile(
  backend: ExtenderBackend,
  content: string,
  contextDir: string,
  options: { signal?: AbortSignal; args?: { name: string; value: string }[]; events?: MemorySink; workDir?: string; base?: ImageDescription; extendDir?: string } = {},
): Promise<Applied> {
  const base = options.base ?? (await runBase());
  const workDir = options.workDir ?? (await mkdtemp(join(tmpdir(), 'bk-work-')));
  const extendDir = options.extendDir ?? (await mkdtemp(join(tmpdir(), 'bk-extend-')));
  const events = options.events ?? new MemorySink();
  const context: BackendContext = { signal: options.signal ?? new AbortController().signal, events, workDir };
  const spec: DockerfileSpec = {
    extensionId: 'test/ext',
    kind: 'run',
    path: join(contextDir, 'run.Dockerfile'),
    content,
    args: [
      { name: 'build_id', value: 'b-1' },
      { name: 'user_id', value: '1000' },
      { name: 'group_id', value: '1000' },
      ...(options.args ?? []),
      { name: 'base_image', value: base.reference ?? '' },
    ],
    contextDir,
  };
  const dispose = async () => {
    await backend.cleanup({ ...context, signal: new AbortController().signal });
    await rm(workDir, { recursive: true, force: true });
    if (!options.extendDir) await rm(extendDir, { recursive: true, force: true });
  };
  try {
    const result = await backend.apply(spec, base, { buildContext: contextDir, ignorePaths: ['/workspace', workDir], cacheTtlMs: 60_000, extendDir }, context);
    return { result, base, events, workDir, newLayers: result.layers.slice(base.layers.length), dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}
