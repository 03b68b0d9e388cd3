// Build kind on an in-place root: the build phase reads the root itself, so layers are
// written only when the layer cache keeps them.
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemorySink, readLayoutImage, type ImageDescription } from '@cnb-extender/extender-core';
import { applyLayer, type Digest } from '@cnb-extender/oci';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createInplaceBackend } from './backend.ts';
import { removeTree } from './test/support.ts';

const scratch = mkdtempSync(join(tmpdir(), 'inplace-build-kind-'));
afterAll(() => removeTree(scratch));

const DOCKERFILE = ['ARG base_image', 'FROM ${base_image}', 'USER root', 'RUN mkdir -p /opt/tool && echo v1 > /opt/tool/version', 'ENV TOOL_HOME=/opt/tool', 'RUN echo v2 >> /opt/tool/version', 'USER 1000:1000', ''].join('\n');

/** The fixture run image, and a root directory holding its unpacked layers. */
async function unpackedBase(name: string): Promise<{ base: ImageDescription; root: string }> {
  const f = inject('testenv').fixtures.run;
  const base = (await readLayoutImage(f.layoutDir, f.registryRef, f.manifestDigest as Digest)).image;
  const root = join(scratch, name);
  mkdirSync(root);
  for (const layer of base.layers) {
    const blob = layer.blob!;
    if (blob.kind !== 'file') throw new Error('the fixture layout gives file blobs');
    await applyLayer(root, blob.path, { absolutePaths: 'root' });
  }
  return { base, root };
}

async function applyBuildKind(name: string, cache: boolean): Promise<{ root: string; base: ImageDescription; result: ImageDescription; events: MemorySink }> {
  const { base, root } = await unpackedBase(name);
  const backend = createInplaceBackend({ root, network: false, cache });
  const workDir = mkdtempSync(join(scratch, `work-${name}-`));
  const extendDir = mkdtempSync(join(scratch, `extend-${name}-`));
  const context = mkdtempSync(join(scratch, `ctx-${name}-`));
  const events = new MemorySink();
  const backendContext = { signal: new AbortController().signal, events, workDir };
  try {
    const result = await backend.apply(
      { extensionId: 'test/ext', kind: 'build', path: join(context, 'build.Dockerfile'), content: DOCKERFILE, args: [{ name: 'base_image', value: base.reference ?? 'x' }], contextDir: context },
      base,
      { buildContext: context, ignorePaths: [workDir, extendDir], cacheTtlMs: 60_000, extendDir },
      backendContext,
    );
    return { root, base, result, events };
  } finally {
    await backend.cleanup(backendContext);
  }
}

const timings = (events: MemorySink, prefix: string) => events.ofType('timing').filter((e) => e.name.startsWith(prefix));

describe('inplace backend, build kind', () => {
  it('without the layer cache: runs every step on the root, walks nothing and writes no layer', async () => {
    const { root, base, result, events } = await applyBuildKind('uncached', false);
    expect(readFileSync(join(root, 'opt', 'tool', 'version'), 'utf8')).toBe('v1\nv2\n');
    expect(result.layers).toEqual(base.layers);
    expect(result.config.rootfs.diff_ids).toEqual(base.config.rootfs.diff_ids);
    expect(result.config.config).toMatchObject({ User: '1000:1000', Env: expect.arrayContaining(['TOOL_HOME=/opt/tool']) });
    expect(events.ofType('layer-written')).toEqual([]);
    expect(timings(events, 'snapshot')).toEqual([]);
    expect(timings(events, 'write-layer')).toEqual([]);
    expect(timings(events, 'execute-step-')).toHaveLength(5);
  });

  it('with the layer cache: a layer per RUN, kept in the cache for the next build', async () => {
    const { root, base, result, events } = await applyBuildKind('cached', true);
    expect(readFileSync(join(root, 'opt', 'tool', 'version'), 'utf8')).toBe('v1\nv2\n');
    const added = result.layers.slice(base.layers.length);
    expect(added).toHaveLength(2);
    expect(events.ofType('layer-written')).toHaveLength(2);
    for (const layer of added) {
      const blob = layer.blob!;
      expect(blob.kind === 'file' && existsSync(blob.path) && blob.path.includes(join('cache', 'inplace'))).toBe(true);
    }
  });
});
