// The core's extend phase driving this backend: the lifecycle's extender
// fixtures (curl then tree) with the apt-get lines replaced by busybox
// commands, applied to the fixture run image; the run-kind output layout is
// read back and its new layers applied on the base.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { extend, MemorySink, readLayoutImage } from '@cnb-extender/extender-core';
import { createWorkspace, readLayerFiles, readLayerPaths, type Workspace } from '@cnb-extender/extender-core/testing';
import type { Digest } from '@cnb-extender/oci';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createInplaceBackend } from './backend.ts';

const fixtureDir = join(import.meta.dirname, '..', '..', '..', '..', 'shared', 'conformance', 'lifecycle', 'extender', 'container', 'layers', 'generated-with-contexts');

function adapted(kind: 'run', id: 'curl' | 'tree'): string {
  let text: string;
  try {
    text = readFileSync(join(fixtureDir, id, `${kind}.Dockerfile`), 'utf8');
  } catch (cause) {
    throw new Error(`conformance fixtures missing: expected ${fixtureDir} (peer data beside the repository)`, { cause });
  }
  // busybox has no apt-get: install a stand-in "package" the same way a package manager would.
  return text.replace(`RUN apt-get update && apt-get install -y ${id}`, `RUN mkdir -p /usr/share/${id} && echo ${id} > /usr/share/${id}/installed && ln -s /bin/busybox /usr/bin/${id}`);
}

const workspaces: Workspace[] = [];
afterEach(async () => {
  for (const ws of workspaces.splice(0)) await ws.remove();
});

describe('core extend phase with the inplace backend', () => {
  it('run kind: one layer per changing instruction, /workspace never captured, extend dir left with cache/ only', async () => {
    const run = inject('testenv').fixtures.run;
    const ws = await createWorkspace({
      platformApi: '0.13',
      runImage: run.registryRef,
      baseLayout: { from: run.layoutDir, digest: run.manifestDigest as Digest, mode: 'full' },
      extensions: [
        { id: 'curl', run: adapted('run', 'curl'), contextRun: { 'run-file': 'run-file from curl\n' } },
        { id: 'tree', run: adapted('run', 'tree'), context: { 'shared-file': 'shared\n' } },
      ],
    });
    workspaces.push(ws);
    const events = new MemorySink();
    const backend = createInplaceBackend({ root: 'unpack', network: false });
    const result = await extend({ kind: 'run', inputs: ws.inputs, backend, events });

    const created = (result.image.config.history ?? []).map((h) => h.created_by ?? '').filter((c) => c.includes('Created by extension'));
    expect(created).toEqual([
      "Layer: 'RUN mkdir -p /usr/share/curl && echo curl > /usr/share/curl/installed && ln -s /bin/busybox /usr/bin/curl', Created by extension: curl",
      "Layer: 'COPY run-file /', Created by extension: curl",
      "Layer: 'RUN mkdir -p /usr/share/tree && echo tree > /usr/share/tree/installed && ln -s /bin/busybox /usr/bin/tree', Created by extension: tree",
      "Layer: 'COPY shared-file /shared-run', Created by extension: tree",
    ]);
    expect(result.rebasable).toBe(false);
    expect(result.user).toBe('1000');
    expect(result.envMap['CNB_STACK_ID']).toBe('stack-id-from-ext-tree');

    // The written layout, read back: base layers untouched, then the new ones.
    const outDirs = readdirSync(join(ws.extendedDir, 'run'));
    expect(outDirs).toHaveLength(1);
    const out = (await readLayoutImage(join(ws.extendedDir, 'run', outDirs[0]!), 'out')).image;
    const base = (await readLayoutImage(run.layoutDir, run.registryRef, run.manifestDigest as Digest)).image;
    expect(out.layers.slice(0, base.layers.length).map((l) => l.descriptor.digest)).toEqual(base.layers.map((l) => l.descriptor.digest));
    const added = out.layers.slice(base.layers.length);
    expect(added).toHaveLength(4);
    const all = [];
    for (const layer of added) all.push(...(await readLayerPaths(layer.blob!)));
    expect(all.filter((p) => p.startsWith('workspace'))).toEqual([]);
    expect((await readLayerFiles(added[1]!.blob!)).get('run-file')?.toString()).toBe('run-file from curl\n');
    expect(readdirSync(ws.extendDir).filter((e) => e !== 'cache')).toEqual([]);
  });
});
