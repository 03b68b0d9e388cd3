import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemorySink, readLayoutImage, type ImageDescription } from '@cnb-extender/extender-core';
import { readLayerFiles, readLayerPaths } from '@cnb-extender/extender-core/testing';
import { decompressLayer, MediaType, openLayerSource, readTar, type Digest, type LayerCompression } from '@cnb-extender/oci';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createInplaceBackend } from './backend.ts';
import { removeTree } from './test/support.ts';

const scratch = mkdtempSync(join(tmpdir(), 'inplace-backend-test-'));
afterAll(() => removeTree(scratch));

async function runFixture(): Promise<ImageDescription> {
  const f = inject('testenv').fixtures.run;
  return (await readLayoutImage(f.layoutDir, f.registryRef, f.manifestDigest as Digest)).image;
}

/** The distinct file times (seconds) in a layer blob. */
async function entryTimes(path: string): Promise<number[]> {
  const { tar } = await decompressLayer(openLayerSource(path));
  const times = new Set<number>();
  for await (const entry of readTar(tar)) {
    for await (const _chunk of entry.body()) {
      // drain
    }
    times.add(entry.mtime);
  }
  return [...times];
}

describe('inplace backend on the fixture run image', () => {
  it('writes one layer per filesystem-changing instruction with whiteouts, and the config of the others', async () => {
    const backend = createInplaceBackend({ root: 'unpack', network: false });
    const base = await runFixture();
    const workDir = mkdtempSync(join(scratch, 'work-'));
    const context = mkdtempSync(join(scratch, 'ctx-'));
    const events = new MemorySink();
    writeFileSync(join(context, 'run-file'), 'from context\n');
    const content = [
      'ARG base_image',
      'FROM ${base_image}',
      'USER root',
      'RUN rm /etc/cnb-fixture && mkdir -p /opt/tool && echo v1 > /opt/tool/version',
      'ENV TOOL_HOME=/opt/tool',
      'COPY --chown=1000:1000 run-file /opt/tool/',
      'WORKDIR /opt/tool/work',
      'RUN echo "$TOOL_HOME $(pwd)" > /opt/tool/where && echo ignored > /workspace/x',
      'RUN true',
      'LABEL io.buildpacks.rebasable=true',
      'USER 1000:1000',
      '',
    ].join('\n');
    const result = await backend.apply(
      { extensionId: 'test/ext', kind: 'run', path: join(context, 'run.Dockerfile'), content, args: [{ name: 'base_image', value: base.reference ?? 'x' }], contextDir: context },
      base,
      { buildContext: context, ignorePaths: ['/workspace', workDir], cacheTtlMs: 0, extendDir: scratch },
      { signal: new AbortController().signal, events, workDir },
    );
    const added = result.layers.slice(base.layers.length);
    expect(result.config.history?.slice(-added.length).map((h) => h.created_by)).toEqual([
      'RUN rm /etc/cnb-fixture && mkdir -p /opt/tool && echo v1 > /opt/tool/version',
      'COPY --chown=1000:1000 run-file /opt/tool/',
      'WORKDIR /opt/tool/work',
      'RUN echo "$TOOL_HOME $(pwd)" > /opt/tool/where && echo ignored > /workspace/x',
    ]);
    expect(result.config.rootfs.diff_ids).toEqual(result.layers.map((l) => l.diffId));
    const [first, copy, , last] = added;
    expect(await readLayerPaths(first!.blob!)).toEqual(expect.arrayContaining(['etc/.wh.cnb-fixture', 'opt/tool/version']));
    expect((await readLayerFiles(copy!.blob!)).get('opt/tool/run-file')?.toString()).toBe('from context\n');
    const lastFiles = await readLayerFiles(last!.blob!);
    expect(lastFiles.get('opt/tool/where')?.toString()).toBe('/opt/tool /opt/tool/work\n');
    expect([...lastFiles.keys()].some((p) => p.startsWith('workspace'))).toBe(false);
    expect(result.config.config).toMatchObject({ User: '1000:1000', WorkingDir: '/opt/tool/work', Labels: expect.objectContaining({ 'io.buildpacks.rebasable': 'true' }) });
    expect(result.config.config?.Env).toContain('TOOL_HOME=/opt/tool');
    expect(events.ofType('layer-written')).toHaveLength(4);
    await backend.cleanup({ signal: new AbortController().signal, events, workDir });
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(workDir);
    expect(readdirSync(workDir)).toEqual([]);
  });

  it('refuses what it cannot do with an error naming the instruction, and a second stage', async () => {
    const backend = createInplaceBackend({ root: 'unpack', network: false });
    const base = await runFixture();
    const workDir = mkdtempSync(join(scratch, 'work-'));
    const context = mkdtempSync(join(scratch, 'ctx-'));
    const ctx = { signal: new AbortController().signal, events: new MemorySink(), workDir };
    const apply = (content: string) =>
      backend.apply(
        { extensionId: 'test/ext', kind: 'run', path: join(context, 'run.Dockerfile'), content, args: [{ name: 'base_image', value: 'base' }], contextDir: context },
        base,
        { buildContext: context, ignorePaths: [], cacheTtlMs: 0, extendDir: scratch },
        ctx,
      );
    await expect(apply('ARG base_image\nFROM ${base_image}\nRUN --mount=type=cache,target=/c true\n')).rejects.toMatchObject({
      instruction: 'RUN --mount=type=cache,target=/c true',
      message: expect.stringContaining('RUN --mount is not supported'),
    });
    await expect(apply('ARG base_image\nFROM ${base_image}\nCOPY --from=other /x /y\n')).rejects.toMatchObject({ instruction: 'COPY --from=other /x /y' });
    await expect(apply('ARG base_image\nFROM ${base_image} AS a\nFROM a\n')).rejects.toThrow(/exactly one/);
    await expect(apply('FROM other-image\n')).rejects.toThrow(/switches the base image/);
    await backend.cleanup(ctx);
  });

  it('serves a second run with the same inputs from the layer cache, re-runs from the first changed step, and re-runs all after the TTL', async () => {
    const base = await runFixture();
    const extendDir = mkdtempSync(join(scratch, 'extend-'));
    const context = mkdtempSync(join(scratch, 'ctx-'));
    writeFileSync(join(context, 'f'), 'one\n');
    const content = 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo executed && echo a > /a\nCOPY f /f\nARG build_id\nRUN echo executed-late && echo ${build_id} > /id\nUSER 1000:1000\n';
    const apply = async (buildId: string, cacheTtlMs = 3_600_000) => {
      const backend = createInplaceBackend({ root: 'unpack', network: false });
      const events = new MemorySink();
      const ctx = { signal: new AbortController().signal, events, workDir: mkdtempSync(join(scratch, 'work-')) };
      const result = await backend.apply(
        { extensionId: 'test/ext', kind: 'run', path: join(context, 'run.Dockerfile'), content, args: [{ name: 'build_id', value: buildId }, { name: 'base_image', value: 'base' }], contextDir: context },
        base,
        { buildContext: context, ignorePaths: [], cacheTtlMs, extendDir },
        ctx,
      );
      const output = events.ofType('debug').map((e) => e.message);
      const hits = events.events.flatMap((e) => (e.type === 'cache-hit' ? [e.instruction] : []));
      const damaged = events.ofType('warning').filter((w) => w.code === 'cache-entry-damaged').map((w) => w.message);
      const layers = result.layers.slice(base.layers.length).map((l) => l.diffId);
      const files = new Map<string, string>();
      for (const l of result.layers.slice(base.layers.length)) for (const [k, v] of await readLayerFiles(l.blob!)) files.set(k, v.toString());
      await backend.cleanup(ctx);
      return { output, hits, damaged, layers, files, history: result.config.history?.slice(-layers.length).map((h) => h.created_by) };
    };
    const first = await apply('1');
    expect(first.output).toEqual(['executed', 'executed-late']);
    expect(first.hits).toEqual([]);
    const second = await apply('1');
    expect(second.output).toEqual([]);
    expect(second.hits).toEqual(['RUN echo executed && echo a > /a', 'COPY f /f', 'RUN echo executed-late && echo ${build_id} > /id']);
    expect(second.layers).toEqual(first.layers);
    expect(second.history).toEqual(first.history);
    // a damaged entry (here: the first RUN's blob, one byte changed) is removed and its step runs again
    const cacheDir = join(extendDir, 'cache', 'inplace');
    const firstRun = readdirSync(cacheDir)
      .map((key) => ({ key, meta: JSON.parse(readFileSync(join(cacheDir, key, 'meta.json'), 'utf8')) as { diffId?: string; blob?: string } }))
      .find((e) => e.meta.diffId === first.layers[0]);
    const blobPath = join(cacheDir, firstRun!.key, firstRun!.meta.blob!);
    const bytes = readFileSync(blobPath);
    bytes[bytes.length - 5]! ^= 0xff;
    writeFileSync(blobPath, bytes);
    const repaired = await apply('1');
    expect(repaired.damaged).toEqual([expect.stringContaining(`removed damaged layer cache entry ${firstRun!.key} (the layer blob's digest is`)]);
    expect(repaired.output).toEqual(['executed']);
    expect(repaired.hits).toEqual(['COPY f /f', 'RUN echo executed-late && echo ${build_id} > /id']);
    expect(repaired.layers).toEqual(first.layers);
    expect((await apply('1')).hits).toHaveLength(3);
    // a new build_id re-runs only the RUN that sees it
    const third = await apply('2');
    expect(third.output).toEqual(['executed-late']);
    expect(third.files.get('id')).toBe('2\n');
    expect(third.layers.slice(0, 2)).toEqual(first.layers.slice(0, 2));
    // a changed build context re-runs the COPY and everything after it
    writeFileSync(join(context, 'f'), 'two\n');
    const fourth = await apply('1');
    expect(fourth.output).toEqual(['executed-late']);
    expect(fourth.hits).toEqual(['RUN echo executed && echo a > /a']);
    expect(fourth.files.get('f')).toBe('two\n');
    // entries older than the TTL are not used: everything runs again, with the same layers
    await new Promise((r) => setTimeout(r, 20));
    const expired = await apply('1', 10);
    expect(expired.hits).toEqual([]);
    expect(expired.output).toEqual(['executed', 'executed-late']);
    expect(expired.layers).toEqual(fourth.layers);
    // only the cache is left in the extend dir
    expect(readdirSync(extendDir)).toEqual(['cache']);
    expect(readdirSync(join(extendDir, 'cache', 'inplace')).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
  });
});

describe('inplace backend sharing one layer cache', () => {
  it('serves a cached layer only to a run with the same SOURCE_DATE_EPOCH, compression and media type', async () => {
    const fixture = await runFixture();
    const extendDir = mkdtempSync(join(scratch, 'extend-format-'));
    const context = mkdtempSync(join(scratch, 'ctx-format-'));
    const content = 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo a > /a\nUSER 1000:1000\n';
    const saved = process.env['SOURCE_DATE_EPOCH'];
    const apply = async (settings: { epoch?: string; compression?: LayerCompression; manifestMediaType?: string }) => {
      if (settings.epoch === undefined) delete process.env['SOURCE_DATE_EPOCH'];
      else process.env['SOURCE_DATE_EPOCH'] = settings.epoch;
      const base = settings.manifestMediaType === undefined ? fixture : { ...fixture, manifestMediaType: settings.manifestMediaType };
      const backend = createInplaceBackend({ root: 'unpack', network: false, ...(settings.compression ? { compression: settings.compression } : {}) });
      const events = new MemorySink();
      const ctx = { signal: new AbortController().signal, events, workDir: mkdtempSync(join(scratch, 'work-format-')) };
      try {
        const result = await backend.apply(
          { extensionId: 'test/format', kind: 'run', path: join(context, 'run.Dockerfile'), content, args: [{ name: 'base_image', value: 'base' }], contextDir: context },
          base,
          { buildContext: context, ignorePaths: [], cacheTtlMs: 3_600_000, extendDir },
          ctx,
        );
        const layer = result.layers.at(-1)!;
        return { hit: events.ofType('cache-hit').length === 1, diffId: layer.diffId, mediaType: layer.descriptor.mediaType, mtimes: await entryTimes((layer.blob as { path: string }).path) };
      } finally {
        await backend.cleanup(ctx);
        if (saved === undefined) delete process.env['SOURCE_DATE_EPOCH'];
        else process.env['SOURCE_DATE_EPOCH'] = saved;
      }
    };
    const plain = await apply({});
    expect(plain).toMatchObject({ hit: false, mediaType: MediaType.ociLayerGzip, mtimes: [315532801] });
    expect(await apply({})).toEqual({ ...plain, hit: true });
    // another SOURCE_DATE_EPOCH: the files get its time, so the layer is another one
    const epoch = await apply({ epoch: '1700000000' });
    expect(epoch).toMatchObject({ hit: false, mtimes: [1700000000] });
    expect(epoch.diffId).not.toBe(plain.diffId);
    expect(await apply({ epoch: '1700000000' })).toEqual({ ...epoch, hit: true });
    // another compression, or a base of the Docker family: the same files in another blob
    const zstd = await apply({ compression: 'zstd' });
    expect(zstd).toMatchObject({ hit: false, diffId: plain.diffId, mediaType: MediaType.ociLayerZstd });
    expect(await apply({ manifestMediaType: MediaType.dockerManifest })).toMatchObject({ hit: false, diffId: plain.diffId, mediaType: MediaType.dockerLayerGzip });
  }, 60_000);

  it('gives each of two concurrent extenders its own layer when a RUN is not reproducible and both write the same cache key', async () => {
    const base = await runFixture();
    const extendDir = mkdtempSync(join(scratch, 'extend-race-'));
    const context = mkdtempSync(join(scratch, 'ctx-race-'));
    // both miss (neither has committed when the other looks), then race to publish the key
    const content = 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN sleep 1 && head -c 32 /dev/urandom | od -x > /random\nUSER 1000:1000\n';
    const apply = async () => {
      const backend = createInplaceBackend({ root: 'unpack', network: false });
      const events = new MemorySink();
      const ctx = { signal: new AbortController().signal, events, workDir: mkdtempSync(join(scratch, 'work-race-')) };
      const result = await backend.apply(
        { extensionId: 'test/race', kind: 'run', path: join(context, 'run.Dockerfile'), content, args: [{ name: 'base_image', value: 'base' }], contextDir: context },
        base,
        { buildContext: context, ignorePaths: [], cacheTtlMs: 3_600_000, extendDir },
        ctx,
      );
      const layer = result.layers.at(-1)!;
      const blob = readFileSync((layer.blob as { path: string }).path);
      const random = (await readLayerFiles(layer.blob!)).get('random')?.toString();
      await backend.cleanup(ctx);
      return { digest: layer.descriptor.digest, size: layer.descriptor.size, actual: `sha256:${createHash('sha256').update(blob).digest('hex')}`, blobSize: blob.length, random, hits: events.ofType('cache-hit').length };
    };
    const [a, b] = await Promise.all([apply(), apply()]);
    expect([a.hits, b.hits]).toEqual([0, 0]);
    expect(a.random).not.toBe(b.random);
    for (const r of [a, b]) {
      expect(r.actual).toBe(r.digest);
      expect(r.blobSize).toBe(r.size);
    }
  });
});
