import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type {} from '@cnb-extender/testenv'; // types inject('testenv')
import { sha256 } from '../digest.ts';
import { buildImageFromDirectory, buildImageIndexFromDirectories, extendImage } from '../image.ts';
import { applyLayer } from '../layer/apply.ts';
import { opaqueEntry, whiteoutEntry, type LayerEntry } from '../layer/entry.ts';
import { MediaType } from '../media-types.ts';
import { REF_NAME_ANNOTATION } from '../model.ts';
import { makeRichTree } from '../testing/rich-tree.ts';
import { describeTree } from '../testing/tree.ts';
import { digestFromLayoutDirName, LayoutError, type LayoutWarning, OciLayout } from './layout.ts';
import { OciLayoutWriter } from './writer.ts';

const exec = promisify(execFile);
async function tool(cmd: string, args: string[]): Promise<string> {
  try {
    return (await exec(cmd, args, { maxBuffer: 64 << 20 })).stdout;
  } catch (cause) {
    const e = cause as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')}: ${e.stderr || e.message}`, { cause });
  }
}

const EXPORTER_LAYOUT = new URL(
  '../../../../../shared/conformance/lifecycle/exporter/container/layers/some-extended-dir/run/sha256_c72eda1cc5b6c41360b95d73f881eff9d0655e56c693a2bc6cc9312c9e70aa24',
  import.meta.url,
).pathname;

let work: string;
let rich: string;
beforeAll(async () => {
  if (!(await stat(EXPORTER_LAYOUT).catch(() => undefined))) {
    throw new Error(`the lifecycle exporter fixture is missing: expected ${EXPORTER_LAYOUT} (../shared/conformance beside the repository)`);
  }
  work = await mkdtemp(join(tmpdir(), 'oci-layout-'));
  rich = join(work, 'rich');
  await mkdir(rich);
  await makeRichTree(rich);
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Apply every layer of an image from a layout to a new directory. */
async function unpackWithUs(layout: OciLayout, refName: string | undefined, into: string, options: { absolutePaths?: 'root' } = {}): Promise<void> {
  const image = await layout.image(refName === undefined ? {} : { refName });
  await mkdir(into, { recursive: true });
  for (const [i, { descriptor }] of image.layers.entries()) {
    await applyLayer(into, () => layout.openBlob(descriptor), { ...options, expectedDiffId: image.config.rootfs.diff_ids[i]! });
  }
}

async function umociUnpack(layoutDir: string, ref: string, bundle: string): Promise<string> {
  await tool('umoci', ['unpack', '--image', `${layoutDir}:${ref}`, bundle]);
  return join(bundle, 'rootfs');
}

describe('layouts we write, read by other tools', () => {
  let layoutDir: string;
  beforeAll(async () => {
    layoutDir = join(work, 'ours');
    await buildImageFromDirectory({ rootfs: rich, layoutDir, refName: 'rich', config: { Env: ['PATH=/bin'], User: '1000:1000' } });
  });

  it('oci-image-tool validates the layout', async () => {
    const out = await tool('oci-image-tool', ['validate', '--type', 'image', '--ref', 'name=rich', layoutDir]);
    expect(out).toMatch(/validation succeeded/i);
  });

  it('umoci unpacks it to the same tree (content, modes, owners, links, xattrs)', async () => {
    const rootfs = await umociUnpack(layoutDir, 'rich', join(work, 'umoci-bundle'));
    expect(await describeTree(rootfs)).toEqual(await describeTree(rich));
  });

  it('skopeo inspects it and copies it; we read the copy', async () => {
    const inspect = JSON.parse(await tool('skopeo', ['inspect', `oci:${layoutDir}:rich`])) as { Layers: string[]; Env: string[] };
    const ours = await (await OciLayout.open(layoutDir)).image({ refName: 'rich' });
    expect(inspect.Layers).toEqual(ours.manifest.layers.map((l) => l.digest));
    expect(inspect.Env).toEqual(['PATH=/bin']);
    const copy = join(work, 'skopeo-copy');
    await tool('skopeo', ['copy', `oci:${layoutDir}:rich`, `oci:${copy}:copied`]);
    const copied = await (await OciLayout.open(copy)).image({ refName: 'copied' });
    expect(copied.manifest.layers.map((l) => l.digest)).toEqual(ours.manifest.layers.map((l) => l.digest));
    expect(copied.config.rootfs.diff_ids).toEqual(ours.config.rootfs.diff_ids);
  });

  it('builds the same manifest digest from the same directory twice', async () => {
    const again = await buildImageFromDirectory({ rootfs: rich, layoutDir: join(work, 'ours-again'), refName: 'rich', config: { Env: ['PATH=/bin'], User: '1000:1000' } });
    const first = await (await OciLayout.open(layoutDir)).image({ refName: 'rich' });
    expect(again.manifestDescriptor.digest).toBe(first.descriptor.digest);
  });

  it('writes a reproducible multi-platform image index that skopeo and oci-image-tool read, resolved per platform', async () => {
    const arches = ['amd64', 'arm64'] as const;
    const images = arches.map((architecture) => ({
      rootfs: rich,
      platform: { os: 'linux', architecture, ...(architecture === 'arm64' ? { variant: 'v8' } : {}) },
      config: { Env: [`ARCH=${architecture}`] },
    }));
    const dir = join(work, 'index');
    const built = await buildImageIndexFromDirectories({ layoutDir: dir, refName: 'multi', images });
    const raw = await tool('skopeo', ['inspect', '--raw', `oci:${dir}:multi`]);
    expect(sha256(raw)).toBe(built.indexDescriptor.digest);
    expect((JSON.parse(raw) as { manifests: { platform: object }[] }).manifests.map((m) => m.platform)).toEqual([
      { architecture: 'amd64', os: 'linux' },
      { architecture: 'arm64', os: 'linux', variant: 'v8' },
    ]);
    expect(await tool('oci-image-tool', ['validate', '--type', 'imageIndex', join(dir, 'blobs', 'sha256', built.indexDescriptor.digest.slice(7))])).toMatch(/validation succeeded/i);
    const layout = await OciLayout.open(dir);
    expect(layout.refs().map((r) => [r.refName, r.descriptor.mediaType])).toEqual([['multi', MediaType.ociIndex]]);
    for (const [i, architecture] of arches.entries()) {
      const image = await layout.image({ refName: 'multi', platform: { os: 'linux', architecture } });
      expect(image.descriptor.digest).toBe(built.images[i]!.manifestDescriptor.digest);
      expect(image.config).toMatchObject({ architecture, config: { Env: [`ARCH=${architecture}`] } });
      const inspected = JSON.parse(await tool('skopeo', ['inspect', '--config', '--override-arch', architecture, `oci:${dir}:multi`])) as { architecture: string };
      expect(inspected.architecture).toBe(architecture);
    }
    const again = await buildImageIndexFromDirectories({ layoutDir: join(work, 'index-again'), refName: 'multi', images });
    expect(again.indexDescriptor.digest).toBe(built.indexDescriptor.digest);
    await expect(buildImageIndexFromDirectories({ layoutDir: join(work, 'index-twice'), images: [images[0]!, images[0]!] })).rejects.toThrow(/two images for platform linux\/amd64/);
  });

  it('writes whiteouts and opaque directories that umoci applies as we do', async () => {
    const e = (path: string, type: LayerEntry['type'], content?: string): LayerEntry => ({
      path,
      type,
      mode: type === 'directory' ? 0o755 : 0o644,
      uid: 0,
      gid: 0,
      ...(content === undefined ? {} : { content: Buffer.from(content) }),
    });
    const dir = join(work, 'whiteouts');
    const writer = await OciLayoutWriter.create(dir);
    const base = await writer.writeLayer([e('a', 'directory'), e('a/keep', 'file', 'k'), e('a/gone', 'file', 'g'), e('d', 'directory'), e('d/old', 'file', 'o'), e('d/sub', 'directory'), e('d/sub/x', 'file', 'x')]);
    const top = await writer.writeLayer([whiteoutEntry('a/gone'), e('d', 'directory'), opaqueEntry('d'), e('d/new', 'file', 'n'), e('a/added', 'file', 'a')]);
    const docs = extendImage(
      {
        manifest: { schemaVersion: 2, mediaType: MediaType.ociManifest, config: { mediaType: MediaType.ociConfig, digest: sha256(''), size: 0 }, layers: [base.descriptor] },
        config: { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [base.diffId] }, config: {} },
      },
      [{ diffId: top.diffId, descriptor: top.descriptor, history: { created_by: 'top' } }],
    );
    await writer.putBytes(docs.configBytes, docs.configDescriptor.mediaType);
    await writer.putBytes(docs.manifestBytes, docs.manifestDescriptor.mediaType);
    writer.addManifest(docs.manifestDescriptor, 'two-layers');
    await writer.commit();

    await tool('oci-image-tool', ['validate', '--type', 'image', '--ref', 'name=two-layers', dir]);
    const byUmoci = await umociUnpack(dir, 'two-layers', join(work, 'whiteouts-umoci'));
    const byUs = join(work, 'whiteouts-us');
    await unpackWithUs(await OciLayout.open(dir), 'two-layers', byUs);
    const paths = (await describeTree(byUs)).map((l) => l.split(' ')[0]);
    expect(paths).toEqual(['a', 'a/added', 'a/keep', 'd', 'd/new']);
    expect(await describeTree(byUmoci)).toEqual(await describeTree(byUs));
  });
});

describe('layouts other tools write, read by us', () => {
  const fixtures = () => inject('testenv').fixtures;

  it('reads the fixture layouts and applies their layers with verified diffIDs', async () => {
    const { build } = fixtures();
    const layout = await OciLayout.open(build.layoutDir);
    const image = await layout.image({ refName: build.layoutTag });
    expect(image.descriptor.digest).toBe(build.manifestDigest);
    const ours = join(work, 'fixture-us');
    await unpackWithUs(layout, build.layoutTag, ours);
    const byUmoci = await umociUnpack(build.layoutDir, build.layoutTag, join(work, 'fixture-umoci'));
    expect(await describeTree(ours)).toEqual(await describeTree(byUmoci));
  });

  it('reads what skopeo copy writes', async () => {
    const { run } = fixtures();
    const dir = join(work, 'by-skopeo');
    await tool('skopeo', ['copy', `oci:${run.layoutDir}:${run.layoutTag}`, `oci:${dir}:from-skopeo`]);
    const layout = await OciLayout.open(dir);
    expect(layout.refs().map((r) => r.refName)).toEqual(['from-skopeo']);
    const image = await layout.image({ refName: 'from-skopeo' });
    expect(image.layers.every((l) => l.present)).toBe(true);
    await unpackWithUs(layout, 'from-skopeo', join(work, 'by-skopeo-rootfs'));
  });

  it('reads what umoci repack writes', async () => {
    const { build } = fixtures();
    const dir = join(work, 'by-umoci');
    await cp(build.layoutDir, dir, { recursive: true });
    const bundle = join(work, 'umoci-repack-bundle');
    await umociUnpack(dir, build.layoutTag, bundle);
    await writeFile(join(bundle, 'rootfs', 'added-by-umoci'), 'hello\n');
    await rm(join(bundle, 'rootfs', 'etc', 'group'));
    await tool('umoci', ['repack', '--image', `${dir}:repacked`, bundle]);
    const layout = await OciLayout.open(dir);
    expect(layout.refs().map((r) => r.refName)).toContain('repacked');
    const ours = join(work, 'by-umoci-us');
    await unpackWithUs(layout, 'repacked', ours);
    expect(await readFile(join(ours, 'added-by-umoci'), 'utf8')).toBe('hello\n');
    await expect(stat(join(ours, 'etc', 'group'))).rejects.toThrow();
    expect(await describeTree(ours)).toEqual(await describeTree(join(bundle, 'rootfs')));
  });

  it('reads what buildah commit writes', async () => {
    const { run } = fixtures();
    // buildah names the image after the layout path: keep it a valid (lower-case, no dot-dirs) name.
    const storage = join(tmpdir(), `oci-buildah-${randomBytes(4).toString('hex')}`);
    const source = join(storage, 'source');
    await cp(run.layoutDir, source, { recursive: true });
    const common = ['--root', join(storage, 'root'), '--runroot', join(storage, 'runroot'), '--storage-driver', 'vfs'];
    const container = (await tool('buildah', [...common, 'from', '--name', 'oci-test', `oci:${source}:${run.layoutTag}`])).trim();
    try {
      await writeFile(join(work, 'from-buildah.txt'), 'buildah was here\n');
      await tool('buildah', [...common, 'copy', container, join(work, 'from-buildah.txt'), '/srv/from-buildah.txt']);
      await tool('buildah', [...common, 'config', '--env', 'ADDED=1', container]);
      const dir = join(work, 'by-buildah');
      await mkdir(dir);
      await tool('buildah', [...common, 'commit', container, `oci:${dir}:from-buildah`]);
      const layout = await OciLayout.open(dir);
      const image = await layout.image({ refName: 'from-buildah' });
      expect(image.config.config?.Env).toContain('ADDED=1');
      const ours = join(work, 'by-buildah-us');
      await unpackWithUs(layout, 'from-buildah', ours);
      expect(await readFile(join(ours, 'srv/from-buildah.txt'), 'utf8')).toBe('buildah was here\n');
    } finally {
      await tool('buildah', [...common, 'rm', container]).catch(() => undefined);
      await tool('buildah', [...common, 'rmi', '--all', '--force']).catch(() => undefined);
      await rm(storage, { recursive: true, force: true }).catch(() => undefined);
    }
  });

  it("reads the restorer's /kaniko/cache/base/sha256:<hex> layout, full and sparse", async () => {
    const { build } = fixtures();
    const cache = join(work, 'kaniko', 'cache', 'base');
    const full = join(cache, build.manifestDigest);
    await mkdir(cache, { recursive: true });
    // The restorer writes a plain layout named after the manifest digest, without ref names
    // (skopeo reads ':' in a path as the tag separator, hence the rename).
    await tool('skopeo', ['copy', `oci:${build.layoutDir}:${build.layoutTag}`, `oci:${join(cache, 'incoming')}`]);
    await rename(join(cache, 'incoming'), full);
    const fullLayout = await OciLayout.open(full);
    const fullImage = await fullLayout.image();
    expect(digestFromLayoutDirName(full)).toBe(fullImage.descriptor.digest);
    expect(fullImage.layers.every((l) => l.present)).toBe(true);

    const sparse = join(cache, `sparse-${build.manifestDigest}`);
    await cp(full, sparse, { recursive: true });
    for (const layer of fullImage.layers) await rm(fullLayout.blobPath(layer.descriptor.digest).replace(full, sparse));
    const sparseImage = await (await OciLayout.open(sparse)).image();
    expect(sparseImage.descriptor.digest).toBe(fullImage.descriptor.digest);
    expect(sparseImage.layers.map((l) => l.present)).toEqual(fullImage.layers.map(() => false));
    await expect((await OciLayout.open(sparse)).readBlob(sparseImage.layers[0]!.descriptor)).rejects.toThrow(/not in the layout/);
  });

  it('reads the exporter fixture: sha256_ directory name, wrong descriptor sizes, absent base layer', async () => {
    const warnings: LayoutWarning[] = [];
    const layout = await OciLayout.open(EXPORTER_LAYOUT, { onWarning: (w) => warnings.push(w) });
    const image = await layout.image();
    expect(digestFromLayoutDirName(EXPORTER_LAYOUT)).toBe('sha256:c72eda1cc5b6c41360b95d73f881eff9d0655e56c693a2bc6cc9312c9e70aa24');
    expect(image.manifest.mediaType).toBe(MediaType.dockerManifest);
    expect(image.config.rootfs.diff_ids).toHaveLength(3);
    expect(image.layers.map((l) => l.present)).toEqual([false, true, true]);
    expect(warnings.map((w) => w.kind)).toEqual(['size-mismatch', 'size-mismatch']);
    // The extension layers are there and match their diffIDs; kaniko named the entries /some-dir/...
    const target = join(work, 'exporter-layers');
    await mkdir(target);
    for (const i of [1, 2]) {
      await applyLayer(target, () => layout.openBlob(image.layers[i]!.descriptor), { absolutePaths: 'root', expectedDiffId: image.config.rootfs.diff_ids[i]! });
    }
    expect((await describeTree(target)).map((l) => l.split(' ')[0])).toEqual(['some-dir', 'some-dir/some-file', 'some-file', 'some-other-dir', 'some-other-dir/some-file', 'some-other-file']);
    await expect(OciLayout.open(EXPORTER_LAYOUT, { strictSizes: true }).then((l) => l.image())).rejects.toThrow(/has 901 bytes, its descriptor says 1083/);
  });

  it('keeps the base image family when extending: a Docker base gets Docker types', async () => {
    const layout = await OciLayout.open(EXPORTER_LAYOUT);
    const base = await layout.image();
    const added = { diffId: sha256('x'), descriptor: { mediaType: MediaType.ociLayerGzip, digest: sha256('y'), size: 1 } };
    const docs = extendImage(base, [added], { config: { Labels: { b: '2', a: '1' } } });
    expect(docs.manifest.mediaType).toBe(MediaType.dockerManifest);
    expect(docs.manifest.config.mediaType).toBe(MediaType.dockerConfig);
    expect(docs.manifest.layers.at(-1)!.mediaType).toBe(MediaType.dockerLayerGzip);
    expect(docs.config.rootfs.diff_ids.at(-1)).toBe(added.diffId);
    expect(docs.config.history).toHaveLength(4);
    expect(docs.config.config?.User).toBe('root');
    expect(docs.configBytes.toString()).toContain('"Labels":{"a":"1","b":"2"}');
    expect(docs.configDescriptor.digest).toBe(sha256(docs.configBytes));
  });
});

describe('OciLayout and OciLayoutWriter', () => {
  async function small(dir: string, ref: string, text: string): Promise<string> {
    const root = join(work, `small-${ref}-${text}`);
    await mkdir(root, { recursive: true });
    await writeFile(join(root, 'file'), text);
    const built = await buildImageFromDirectory({ rootfs: root, layoutDir: dir, refName: ref, keepExisting: true, walk: { xattrs: false } });
    return built.manifestDescriptor.digest;
  }

  it('replaces a layout atomically and leaves no temporary directories', async () => {
    const parent = join(work, 'atomic');
    const dir = join(parent, 'layout');
    await mkdir(parent);
    await buildImageFromDirectory({ rootfs: rich, layoutDir: dir, refName: 'one' });
    await buildImageFromDirectory({ rootfs: rich, layoutDir: dir, refName: 'two' });
    expect((await OciLayout.open(dir)).refs().map((r) => r.refName)).toEqual(['two']);
    expect(await readdir(parent)).toEqual(['layout']);
  });

  it('keeps existing images when asked, and replaces one with the same ref name', async () => {
    const dir = join(work, 'multi');
    const a = await small(dir, 'a', 'first');
    await small(dir, 'b', 'second');
    const a2 = await small(dir, 'a', 'third');
    const layout = await OciLayout.open(dir);
    expect(layout.refs().map((r) => r.refName)).toEqual(['b', 'a']);
    expect((await layout.image({ refName: 'a' })).descriptor.digest).toBe(a2);
    expect(a2).not.toBe(a);
    await expect(layout.image()).rejects.toThrow(/holds 2 images \(b, a\); say which/);
    expect(JSON.parse(layout.indexBytes.toString()).manifests[0].annotations[REF_NAME_ANNOTATION]).toBe('b');
  });

  it('leaves the old layout in place when writing fails or is aborted', async () => {
    const dir = join(work, 'failing');
    await small(dir, 'keep', 'kept');
    const before = await readFile(join(dir, 'index.json'));
    const writer = await OciLayoutWriter.create(dir);
    const blobFile = join(work, 'blob-source');
    await writeFile(blobFile, 'content');
    await expect(writer.putBlob(blobFile, 'application/octet-stream', { digest: sha256('other'), size: 7 })).rejects.toThrow(/content has digest/);
    await writer.abort();
    expect(await readFile(join(dir, 'index.json'))).toEqual(before);
    expect((await readdir(work)).filter((n) => n.startsWith('.failing.tmp-'))).toEqual([]);
  });

  it('writes a sparse layout: manifest, config and only the new layer', async () => {
    const { run } = inject('testenv').fixtures;
    const base = await (await OciLayout.open(run.layoutDir)).image({ refName: run.layoutTag });
    const dir = join(work, 'sparse-out');
    const writer = await OciLayoutWriter.create(dir);
    const added = await writer.writeLayer([{ path: 'added', type: 'file', mode: 0o644, uid: 0, gid: 0, content: Buffer.from('new') }]);
    const docs = extendImage(base, [{ diffId: added.diffId, descriptor: added.descriptor, history: { created_by: 'sparse test' } }]);
    await writer.putBytes(docs.configBytes, docs.configDescriptor.mediaType);
    await writer.putBytes(docs.manifestBytes, docs.manifestDescriptor.mediaType);
    writer.addManifest(docs.manifestDescriptor);
    await writer.commit();
    const image = await (await OciLayout.open(dir)).image();
    expect(image.descriptor.digest).toBe(docs.manifestDescriptor.digest);
    expect(image.layers.map((l) => l.present)).toEqual([...base.layers.map(() => false), true]);
    expect(image.config.rootfs.diff_ids).toEqual([...base.config.rootfs.diff_ids, added.diffId]);
    expect(image.manifest.layers.slice(0, -1)).toEqual(base.manifest.layers);
  });

  it('verifies blob digests on read', async () => {
    const dir = join(work, 'corrupt');
    await small(dir, 'c', 'corrupt me');
    const layout = await OciLayout.open(dir);
    const image = await layout.image({ refName: 'c' });
    const layer = image.layers[0]!.descriptor;
    const path = layout.blobPath(layer.digest);
    const bytes = await readFile(path);
    bytes[bytes.length - 5]! ^= 0xff;
    await writeFile(path, bytes);
    await expect(layout.readBlob(layer)).rejects.toThrow(LayoutError);
    const target = join(work, 'corrupt-target');
    await mkdir(target);
    await expect(applyLayer(target, () => layout.openBlob(layer))).rejects.toThrow();
    expect(await readdir(target)).toEqual([]);
    await writeFile(layout.blobPath(image.manifest.config.digest), '{"tampered":true}');
    await expect(layout.image({ refName: 'c' })).rejects.toThrow(/content has digest/);
  });

  it('names the document and the field when a manifest, config or index is malformed', async () => {
    const dir = join(work, 'malformed');
    const writer = await OciLayoutWriter.create(dir);
    const config = await writer.putJson({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers' } }, MediaType.ociConfig);
    const noLayers = await writer.putJson({ schemaVersion: 2, mediaType: MediaType.ociManifest, config }, MediaType.ociManifest);
    const badConfig = await writer.putJson({ schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers: [] }, MediaType.ociManifest);
    const badIndex = await writer.putJson({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [{ mediaType: MediaType.ociManifest, size: 3 }] }, MediaType.ociIndex);
    writer.addManifest(noLayers, 'no-layers');
    writer.addManifest(badConfig, 'bad-config');
    writer.addManifest(badIndex, 'bad-index');
    await writer.commit();
    const layout = await OciLayout.open(dir);
    await expect(layout.image({ refName: 'no-layers' })).rejects.toThrow(`reading image ${noLayers.digest} from ${dir}: "layers" is missing`);
    await expect(layout.image({ refName: 'bad-config' })).rejects.toThrow(`reading config ${config.digest} from ${dir}: "rootfs.diff_ids" is missing`);
    await expect(layout.image({ refName: 'bad-index' })).rejects.toThrow(`reading index ${badIndex.digest} from ${dir}: "manifests[0].digest" is missing`);
    await writeFile(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: {} }));
    await expect(OciLayout.open(dir)).rejects.toThrow(`reading OCI layout ${dir}: index.json: "manifests" is not an array`);
  });
});
