/**
 * The core's extend phase with this backend: two extensions chained (the second
 * builds on the first's intermediate image), the <extended>/run layout written
 * by the core, and a failing RUN reported as APPLY_FAILED.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ExtenderError, MemorySink, extend, readLayoutImage } from '@cnb-extender/extender-core';
import { createWorkspace, readLayerFiles, type Workspace } from '@cnb-extender/extender-core/testing';
import type { Digest } from '@cnb-extender/oci';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { BuildKitBackend } from './index.ts';

const env = inject('testenv');
const workspaces: Workspace[] = [];
afterEach(async () => {
  for (const ws of workspaces.splice(0)) await ws.remove();
});

async function workspace(extensions: Parameters<typeof createWorkspace>[0] extends infer O ? (O extends { extensions?: infer E } ? E : never) : never): Promise<Workspace> {
  const run = env.fixtures.run;
  const ws = await createWorkspace({
    platformApi: '0.13',
    runImage: run.registryRef,
    baseLayout: { from: run.layoutDir, digest: run.manifestDigest as Digest, mode: 'sparse' },
    ...(extensions ? { extensions } : {}),
  });
  workspaces.push(ws);
  return ws;
}

describe('core extend phase with the BuildKit backend (dockerd)', () => {
  it('chains two extensions and writes the run layout with the base layers untouched', async () => {
    const ws = await workspace([
      {
        id: 'first/a',
        run: 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN mkdir -p /opt/a && echo a > /opt/a/file\nCOPY a.txt /opt/a/a.txt\nUSER 1000:1000\n',
        context: { 'a.txt': 'from a\n' },
      },
      {
        id: 'second',
        run: 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN cat /opt/a/file /opt/a/a.txt > /opt/b-saw-a\nLABEL io.buildpacks.rebasable=true\nUSER 1000:1000\n',
      },
    ]);
    const events = new MemorySink();
    const backend = new BuildKitBackend({ address: `docker://${env.docker.socketPath}` });
    const result = await extend({ kind: 'run', inputs: ws.inputs, backend, events });

    const created = (result.image.config.history ?? []).map((h) => h.created_by ?? '').filter((c) => c.includes('Created by extension'));
    expect(created).toEqual([
      "Layer: 'RUN mkdir -p /opt/a && echo a > /opt/a/file', Created by extension: first/a",
      "Layer: 'COPY a.txt /opt/a/a.txt', Created by extension: first/a",
      "Layer: 'RUN cat /opt/a/file /opt/a/a.txt > /opt/b-saw-a', Created by extension: second",
    ]);
    expect(result.user).toBe('1000:1000');
    const outDirs = readdirSync(join(ws.extendedDir, 'run'));
    expect(outDirs).toHaveLength(1);
    const out = (await readLayoutImage(join(ws.extendedDir, 'run', outDirs[0]!), 'out')).image;
    const run = env.fixtures.run;
    const base = (await readLayoutImage(run.layoutDir, run.registryRef, run.manifestDigest as Digest)).image;
    expect(out.layers.slice(0, base.layers.length).map((l) => l.descriptor)).toEqual(base.layers.map((l) => l.descriptor));
    const added = out.layers.slice(base.layers.length);
    expect(added).toHaveLength(3);
    expect((await readLayerFiles(added[2]!.blob!)).get('opt/b-saw-a')?.toString()).toBe('a\nfrom a\n');
    expect(out.config.rootfs.diff_ids).toHaveLength(out.layers.length);
    // The extend dir holds only cache/ afterwards (the core removed its work dir after our cleanup).
    for (const entry of readdirSync(ws.extendDir)) expect(entry).toBe('cache');
  });

  it('reports a failing RUN as APPLY_FAILED (exit 102) with the instruction in the message', async () => {
    const ws = await workspace([{ id: 'broken', run: 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo before && exit 7\nUSER 1000:1000\n' }]);
    const backend = new BuildKitBackend({ address: `docker://${env.docker.socketPath}` });
    const failure = await extend({ kind: 'run', inputs: ws.inputs, backend, events: new MemorySink() }).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(ExtenderError);
    const err = failure as ExtenderError;
    expect(err.code).toBe('APPLY_FAILED');
    expect(err.message).toMatch(/applying Dockerfile for broken: RUN echo before && exit 7: .*exit code: 7/);
    expect(readdirSync(ws.extendDir).filter((e) => e !== 'cache')).toEqual([]);
  });
});
