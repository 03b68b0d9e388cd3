import { execFile } from 'node:child_process';
import { copyFile, cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { MediaType, OciLayout, sha256, writeLayer, type Digest, type ImageConfig, type ImageIndex, type ImageManifest } from '@cnb-extender/oci';
import { extend, type ExtendResult } from './extend.ts';
import { readLayoutImage } from './base.ts';
import { writeRunOutput } from './output.ts';
import { Readable, PassThrough } from 'node:stream';
import { FakeBackend } from './testing/fake-backend.ts';
import { readLayerFiles } from './testing/tar.ts';
import { testEnv } from './testing/testenv.ts';
import { createWorkspace, type Workspace } from './testing/workspace.ts';

const run = promisify(execFile);
const header = 'ARG base_image\nFROM ${base_image}\n';
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function extendRun(): Promise<{ ws: Workspace; result: ExtendResult }> {
  const fixture = testEnv().fixtures.run;
  const ws = await createWorkspace({
    runImage: fixture.registryRef,
    baseLayout: { from: fixture.layoutDir, digest: fixture.manifestDigest as Digest, mode: 'sparse' },
    extensions: [
      { id: 'curl', run: `${header}USER root\nRUN echo curl > /opt/curl\nCOPY run-file /\nARG user_id\nUSER \${user_id}\n`, contextRun: { 'run-file': 'from the run context\n' } },
      { id: 'samples/tree', run: `${header}ENV CNB_STACK_ID=stack-id-from-ext-tree\nRUN echo tree > /opt/tree\nLABEL io.buildpacks.rebasable=true\n` },
    ],
  });
  cleanups.push(() => ws.remove());
  const result = await extend({ kind: 'run', inputs: ws.inputs, backend: new FakeBackend() });
  return { ws, result };
}

async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

describe('run-kind output as consumers read it', () => {
  it('reads back the way the Go exporter reads it: one entry, one manifest, blobs only for new layers, diff_ids consistent', async () => {
    const { ws, result } = await extendRun();
    const fixture = testEnv().fixtures.run;
    const runDir = join(ws.extendedDir, 'run');
    const entries = await readdir(runDir);
    expect(entries).toHaveLength(1);
    const layout = join(runDir, entries[0]!);
    const index = await readJson<ImageIndex>(join(layout, 'index.json'));
    expect(index.manifests).toHaveLength(1);
    const manifestBytes = await readFile(join(layout, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)));
    expect(sha256(manifestBytes)).toBe(index.manifests[0]!.digest);
    expect(entries[0]).toBe(index.manifests[0]!.digest);
    const manifest = JSON.parse(manifestBytes.toString()) as ImageManifest;
    const configBytes = await readFile(join(layout, 'blobs', 'sha256', manifest.config.digest.slice(7)));
    expect(sha256(configBytes)).toBe(manifest.config.digest);
    const config = JSON.parse(configBytes.toString()) as ImageConfig;

    const baseManifest = await readJson<ImageManifest>(join(fixture.layoutDir, 'blobs', 'sha256', fixture.manifestDigest.slice(7)));
    // Base layer descriptors byte-identical, in order; their blobs absent.
    expect(JSON.stringify(manifest.layers.slice(0, baseManifest.layers.length))).toBe(JSON.stringify(baseManifest.layers));
    const appended: { digest: string; extension: string }[] = [];
    for (const [i, layer] of manifest.layers.entries()) {
      const present = await exists(join(layout, 'blobs', 'sha256', layer.digest.slice(7)));
      expect(present, `blob of layer ${i}`).toBe(i >= baseManifest.layers.length);
      if (!present) continue;
      // The exporter takes the extension id from the history string.
      const createdBy = config.history?.[i]?.created_by ?? '';
      const match = /Created by extension: (.+)$/.exec(createdBy);
      appended.push({ digest: layer.digest, extension: match?.[1] ?? '' });
      const files = await readLayerFiles({ kind: 'file', path: join(layout, 'blobs', 'sha256', layer.digest.slice(7)) });
      expect(files.size).toBeGreaterThan(0);
    }
    expect(appended.map((a) => a.extension)).toEqual(['curl', 'curl', 'samples/tree']);
    expect(config.rootfs.diff_ids).toHaveLength(manifest.layers.length);
    expect(config.history).toHaveLength(manifest.layers.length);
    expect(config.config?.Env).toContain('CNB_STACK_ID=stack-id-from-ext-tree');
    expect(config.config?.User).toBe('1000');
    expect(config.config?.Labels?.['io.buildpacks.rebasable']).toBe('false');
    expect(config.created).toBe('0001-01-01T00:00:00Z');
    expect(result.image.manifestDigest).toBe(index.manifests[0]!.digest);
  });

  it("reads back with libs/oci's layout reader: the only image, new layers present, base layers absent", async () => {
    const { ws, result } = await extendRun();
    const fixture = testEnv().fixtures.run;
    const [entry, ...others] = await readdir(join(ws.extendedDir, 'run'));
    expect(others).toEqual([]);
    const layout = await OciLayout.open(join(ws.extendedDir, 'run', entry!), { strictSizes: true });
    expect(layout.index.manifests).toHaveLength(1);
    const image = await layout.image();
    expect(image.descriptor.digest).toBe(entry);
    const baseManifest = await readJson<ImageManifest>(join(fixture.layoutDir, 'blobs', 'sha256', fixture.manifestDigest.slice(7)));
    expect(image.layers.map((l) => l.present)).toEqual(image.layers.map((_, i) => i >= baseManifest.layers.length));
    expect(image.config.rootfs.diff_ids).toEqual(result.image.layers.map((l) => l.diffId));
    expect(image.config.rootfs.diff_ids.slice(0, baseManifest.layers.length)).toEqual(
      (await readJson<ImageConfig>(join(fixture.layoutDir, 'blobs', 'sha256', baseManifest.config.digest.slice(7)))).rootfs.diff_ids,
    );
    for (const layer of image.layers.filter((l) => l.present)) expect((await layout.readBlob(layer.descriptor)).length).toBe(layer.descriptor.size);
  });

  it('is a valid image for umoci and skopeo once the base blobs are copied alongside (scratch copy)', async () => {
    const { result } = await extendRun();
    const fixture = testEnv().fixtures.run;
    const scratch = await mkdtemp(join(tmpdir(), 'extended-scratch-'));
    cleanups.push(() => rm(scratch, { recursive: true, force: true }));
    const image = join(scratch, 'image');
    await cp(result.outputDir!, image, { recursive: true });
    const baseManifest = await readJson<ImageManifest>(join(fixture.layoutDir, 'blobs', 'sha256', fixture.manifestDigest.slice(7)));
    for (const layer of baseManifest.layers) {
      await copyFile(join(fixture.layoutDir, 'blobs', 'sha256', layer.digest.slice(7)), join(image, 'blobs', 'sha256', layer.digest.slice(7)));
    }
    // umoci addresses images by ref name; name the one manifest in the scratch copy.
    const index = await readJson<ImageIndex>(join(image, 'index.json'));
    index.manifests[0]!.annotations = { 'org.opencontainers.image.ref.name': 'extended' };
    await writeFile(join(image, 'index.json'), JSON.stringify(index));

    const inspected = JSON.parse((await run('skopeo', ['inspect', '--raw', `oci:${image}:extended`])).stdout) as ImageManifest;
    expect(inspected.mediaType ?? MediaType.ociManifest).toBe(index.manifests[0]!.mediaType);
    const copied = join(scratch, 'copied');
    await run('skopeo', ['copy', '--quiet', `oci:${image}:extended`, `oci:${copied}:extended`]);

    const bundle = join(scratch, 'bundle');
    await run('umoci', ['unpack', '--image', `${image}:extended`, bundle]);
    expect(await readFile(join(bundle, 'rootfs', 'opt', 'curl'), 'utf8')).toBe('curl\n');
    expect(await readFile(join(bundle, 'rootfs', 'opt', 'tree'), 'utf8')).toBe('tree\n');
    expect(await readFile(join(bundle, 'rootfs', 'run-file'), 'utf8')).toBe('from the run context\n');
    expect(await exists(join(bundle, 'rootfs', 'bin', 'busybox'))).toBe(true);
    const runtime = await readJson<{ process: { env: string[]; user: { uid: number } } }>(join(bundle, 'config.json'));
    expect(runtime.process.env).toContain('CNB_STACK_ID=stack-id-from-ext-tree');
    expect(runtime.process.user.uid).toBe(1000);
  });

  it('keeps the Docker media type family of a Docker v2 base (manifest, config and new layers)', async () => {
    const fixture = testEnv().fixtures.run;
    const baseManifest = await readJson<ImageManifest>(join(fixture.layoutDir, 'blobs', 'sha256', fixture.manifestDigest.slice(7)));
    const dockerManifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.dockerManifest,
      config: { mediaType: MediaType.dockerConfig, digest: baseManifest.config.digest, size: baseManifest.config.size },
      layers: baseManifest.layers.map((l) => ({ mediaType: MediaType.dockerLayerGzip, digest: l.digest, size: l.size })),
    };
    const bytes = Buffer.from(JSON.stringify(dockerManifest));
    const digest = sha256(bytes);
    const ws = await createWorkspace({
      runImage: `${fixture.registryRef.slice(0, fixture.registryRef.indexOf('@'))}@${digest}`,
      extensions: [{ id: 'A', run: `${header}RUN echo a > /a\n` }],
    });
    cleanups.push(() => ws.remove());
    const layout = join(ws.extendDir, 'cache', 'base', digest);
    await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true });
    await writeFile(join(layout, 'blobs', 'sha256', digest.slice(7)), bytes);
    await copyFile(join(fixture.layoutDir, 'blobs', 'sha256', baseManifest.config.digest.slice(7)), join(layout, 'blobs', 'sha256', baseManifest.config.digest.slice(7)));
    await writeFile(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: MediaType.dockerManifest, digest, size: bytes.length }] }));
    await writeFile(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');

    const result = await extend({ kind: 'run', inputs: ws.inputs, backend: new FakeBackend() });
    const index = await readJson<ImageIndex>(join(result.outputDir!, 'index.json'));
    expect(index.manifests[0]!.mediaType).toBe(MediaType.dockerManifest);
    const manifest = await readJson<ImageManifest>(join(result.outputDir!, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)));
    expect(manifest.mediaType).toBe(MediaType.dockerManifest);
    expect(manifest.config.mediaType).toBe(MediaType.dockerConfig);
    expect(manifest.layers.map((l) => l.mediaType)).toEqual([...dockerManifest.layers.map((l) => l.mediaType), MediaType.dockerLayerGzip]);
    expect(JSON.stringify(manifest.layers.slice(0, dockerManifest.layers.length))).toBe(JSON.stringify(dockerManifest.layers));
  });

  it('writes new layers from stream blob sources, checking digest and size', async () => {
    const fixture = testEnv().fixtures.run;
    const { image: base } = await readLayoutImage(fixture.layoutDir, fixture.registryRef, fixture.manifestDigest as Digest);
    const chunks: Buffer[] = [];
    const sink = new PassThrough();
    sink.on('data', (c: Buffer) => chunks.push(c));
    const written = await writeLayer([{ path: 'streamed', type: 'file', mode: 0o644, uid: 0, gid: 0, size: 3, content: Buffer.from('hi\n') }], sink);
    const bytes = Buffer.concat(chunks);
    let opened = 0;
    const layer = { descriptor: written.descriptor, diffId: written.diffId, blob: { kind: 'stream' as const, open: () => (opened++, Readable.from([bytes])) } };
    const image = {
      ...base,
      config: { ...base.config, rootfs: { type: 'layers' as const, diff_ids: [...base.config.rootfs.diff_ids, written.diffId] } },
      layers: [...base.layers, layer],
    };
    const extended = await mkdtemp(join(tmpdir(), 'extended-'));
    cleanups.push(() => rm(extended, { recursive: true, force: true }));
    const out = await writeRunOutput({ extendedDir: extended, image, baseLayerCount: base.layers.length });
    expect(opened).toBe(1);
    expect((await readFile(join(out.dir, 'blobs', 'sha256', written.digest.slice(7)))).equals(bytes)).toBe(true);

    const wrongSize = { ...image, layers: [...base.layers, { ...layer, descriptor: { ...layer.descriptor, size: layer.descriptor.size + 1 } }] };
    await expect(writeRunOutput({ extendedDir: extended, image: wrongSize, baseLayerCount: base.layers.length })).rejects.toThrow(/bytes, descriptor says/);
    expect(await readdir(join(extended, 'run'))).toEqual([out.manifestDigest]);
    expect((await readdir(extended)).sort()).toEqual(['run']);
  });
});
