import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import * as tar from 'tar-stream';
import { readTar, type Digest, type ImageConfig } from '@cnb-extender/oci';
import type { BuiltImage } from './assemble.ts';
import { readImageArchive, writeImageArchive } from './archive.ts';

const temps: string[] = [];
async function temp(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}
afterAll(async () => {
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});

interface Entry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'fifo';
  body?: Buffer | string;
  linkname?: string;
}

/** A tar of `entries`, as tar-stream writes it. */
async function tarOf(entries: readonly Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const collected = (async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of pack as AsyncIterable<Buffer>) chunks.push(chunk);
    return Buffer.concat(chunks);
  })();
  for (const e of entries) {
    const type = e.type ?? 'file';
    await new Promise<void>((resolve, reject) => {
      const header = { name: e.name, type, mode: type === 'directory' ? 0o755 : 0o644, mtime: new Date(0), ...(e.linkname !== undefined ? { linkname: e.linkname } : {}) };
      const done = (err?: Error | null) => (err ? reject(err) : resolve());
      if (type === 'file') pack.entry(header, e.body ?? '', done);
      else pack.entry(header, done);
    });
  }
  pack.finalize();
  return collected;
}

/** `bytes` as a stream of odd-sized chunks, so entries straddle chunk boundaries. */
function streamOf(bytes: Buffer, size = 777): Readable {
  const parts: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) parts.push(bytes.subarray(at, at + size));
  return Readable.from(parts);
}

function digest(bytes: Buffer | string): Digest {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}
function hex(bytes: Buffer | string): string {
  return digest(bytes).slice('sha256:'.length);
}

async function bytesOf(built: BuiltImage, i: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await built.layers[i]!.open()) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** Every file under `dir`, relative, sorted. */
async function filesUnder(dir: string): Promise<string[]> {
  const all = (await readdir(dir, { recursive: true, withFileTypes: true })).filter((d) => !d.isDirectory());
  return all.map((d) => join(d.parentPath, d.name).slice(dir.length + 1)).sort();
}

function configFor(layers: readonly Buffer[]): Buffer {
  const config: ImageConfig = {
    architecture: 'amd64',
    os: 'linux',
    config: { Env: ['PATH=/bin'], Cmd: ['/bin/sh'] },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => digest(l)) },
    history: layers.map((_, i) => ({ created_by: `step ${i}` })),
  };
  return Buffer.from(JSON.stringify(config));
}

// three layers: the first and the third have the same bytes; the second is larger than what is kept in memory
const layerA = await tarOf([{ name: 'etc/a', body: 'a\n' }]);
const layerB = Buffer.concat([await tarOf([{ name: 'big', body: randomBytes(1_500_000) }])]);
const layers = [layerA, layerB, layerA];
const config = configFor(layers);

/** `docker save` before Engine 25: a directory per layer, identical layers as symlinks to the first copy. */
async function oldArchive(): Promise<Buffer> {
  const ids = ['1111111111111111111111111111111111111111111111111111111111111111', '2222222222222222222222222222222222222222222222222222222222222222', '3333333333333333333333333333333333333333333333333333333333333333'];
  return tarOf([
    { name: `${ids[0]}/`, type: 'directory' },
    { name: `${ids[0]}/VERSION`, body: '1.0' },
    { name: `${ids[0]}/json`, body: '{}' },
    { name: `${ids[0]}/layer.tar`, body: layerA },
    { name: `${ids[1]}/`, type: 'directory' },
    { name: `${ids[1]}/layer.tar`, body: layerB },
    { name: `${ids[2]}/`, type: 'directory' },
    { name: `${ids[2]}/layer.tar`, type: 'symlink', linkname: `../${ids[0]}/layer.tar` },
    { name: 'a-fifo', type: 'fifo' },
    { name: `${hex(config)}.json`, body: config },
    { name: 'manifest.json', body: JSON.stringify([{ Config: `${hex(config)}.json`, RepoTags: ['t:1'], Layers: ids.map((id) => `${id}/layer.tar`) }]) },
    { name: 'repositories', body: JSON.stringify({ t: { '1': ids[2] } }) },
  ]);
}

/** `docker save` from Engine 25 on: an OCI layout plus manifest.json into blobs/, one blob for the two identical layers. */
async function ociArchive(): Promise<Buffer> {
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digest(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digest(l), size: l.length })),
    }),
  );
  const index = { schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: digest(manifest), size: manifest.length }] };
  return tarOf([
    { name: 'blobs/', type: 'directory' },
    { name: 'blobs/sha256/', type: 'directory' },
    { name: `blobs/sha256/${hex(layerB)}`, body: layerB },
    { name: `blobs/sha256/${hex(layerA)}`, body: layerA },
    { name: `blobs/sha256/${hex(manifest)}`, body: manifest },
    { name: `blobs/sha256/${hex(config)}`, body: config },
    { name: 'index.json', body: JSON.stringify(index) },
    { name: 'manifest.json', body: JSON.stringify([{ Config: `blobs/sha256/${hex(config)}`, RepoTags: ['t:1'], Layers: layers.map((l) => `blobs/sha256/${hex(l)}`) }]) },
    { name: 'oci-layout', body: '{"imageLayoutVersion":"1.0.0"}' },
    { name: 'repositories', body: '{}' },
  ]);
}

describe('readImageArchive', () => {
  it('reads the docker-archive form: config, layers in order, a symlinked layer.tar stored once, only layer blobs on disk', async () => {
    const dir = join(await temp('kit-archive-'), 'out');
    const built = await readImageArchive(streamOf(await oldArchive()), { dir });
    expect(built.config).toEqual(JSON.parse(config.toString()));
    expect(built.layers.map((l) => l.diffId)).toEqual(layers.map((l) => digest(l)));
    for (const [i, layer] of layers.entries()) expect((await bytesOf(built, i)).equals(layer)).toBe(true);
    expect(await filesUnder(dir)).toEqual([`sha256/${hex(layerA)}`, `sha256/${hex(layerB)}`].sort());
  });

  it('reads the OCI layout form of Engine 25+: one blob for several layers, stored once', async () => {
    const dir = join(await temp('kit-archive-'), 'out');
    const built = await readImageArchive(streamOf(await ociArchive(), 4096), { dir });
    expect(built.config.rootfs.diff_ids).toEqual(layers.map((l) => digest(l)));
    for (const [i, layer] of layers.entries()) expect((await bytesOf(built, i)).equals(layer)).toBe(true);
    expect(await filesUnder(dir)).toEqual([`sha256/${hex(layerA)}`, `sha256/${hex(layerB)}`].sort());
  });

  it("reads a plain OCI layout through index.json (BuildKit's oci exporter): the image beside an attestation in a nested index", async () => {
    const configBytes = Buffer.from(config);
    const descriptor = (bytes: Buffer | string) => ({ digest: digest(bytes), size: Buffer.byteLength(bytes) });
    const image = JSON.stringify({ schemaVersion: 2, config: descriptor(configBytes), layers: layers.map(descriptor) });
    const attestation = JSON.stringify({ schemaVersion: 2, config: descriptor('{}'), layers: [] });
    const nested = JSON.stringify({
      schemaVersion: 2,
      manifests: [
        { ...descriptor(attestation), platform: { os: 'unknown', architecture: 'unknown' } },
        { ...descriptor(image), platform: { os: 'linux', architecture: 'amd64' } },
      ],
    });
    const blobs = [configBytes, Buffer.from('{}'), Buffer.from(image), Buffer.from(attestation), Buffer.from(nested), layerA, layerB];
    const archive = await tarOf([
      { name: 'oci-layout', body: '{"imageLayoutVersion":"1.0.0"}' },
      { name: 'index.json', body: JSON.stringify({ schemaVersion: 2, manifests: [descriptor(nested)] }) },
      ...blobs.map((b) => ({ name: `blobs/sha256/${hex(b)}`, body: b })),
    ]);
    const dir = join(await temp('kit-archive-'), 'out');
    const built = await readImageArchive(streamOf(archive), { dir });
    expect(built.config.rootfs.diff_ids).toEqual(layers.map((l) => digest(l)));
    for (const [i, layer] of layers.entries()) expect((await bytesOf(built, i)).equals(layer)).toBe(true);
  });

  it('with skipLayers does not keep the bottom layers (a blob a kept layer lists stays) and refuses to open them', async () => {
    for (const archive of [await oldArchive(), await ociArchive()]) {
      const dir = join(await temp('kit-archive-'), 'out');
      const built = await readImageArchive(streamOf(archive), { dir, skipLayers: 2 });
      expect(built.layers).toHaveLength(3);
      expect(() => built.layers[0]!.open()).toThrow(/opening layer 0 \(sha256:[0-9a-f]{64}\) of the image archive: its bytes were not kept/);
      expect(() => built.layers[1]!.open()).toThrow(/opening layer 1 .*not kept/);
      expect((await bytesOf(built, 2)).equals(layerA)).toBe(true);
      // layerB was only the base's: gone; layerA is the top layer's too: kept
      expect(await filesUnder(dir)).toEqual([`sha256/${hex(layerA)}`]);
    }
  });

  it('refuses an archive whose manifest and config disagree on the number of layers', async () => {
    const short = configFor([layerA]);
    const archive = await tarOf([
      { name: 'l/layer.tar', body: layerA },
      { name: 'c.json', body: short },
      { name: 'manifest.json', body: JSON.stringify([{ Config: 'c.json', Layers: ['l/layer.tar', 'l/layer.tar'] }]) },
    ]);
    const dir = join(await temp('kit-archive-'), 'out');
    await expect(readImageArchive(streamOf(archive), { dir })).rejects.toThrow("image archive manifest.json lists 2 layers but the config's rootfs.diff_ids has 1");
  });

  it('says what is missing: no manifest.json, a layer not in the archive, a blob whose bytes do not match its name', async () => {
    const dir = join(await temp('kit-archive-'), 'out');
    await expect(readImageArchive(streamOf(await tarOf([{ name: 'oci-layout', body: '{}' }])), { dir })).rejects.toThrow('image archive has neither a manifest.json nor an OCI index.json');
    await expect(readImageArchive(streamOf(await tarOf([{ name: 'index.json', body: '{}' }])), { dir })).rejects.toThrow('image archive index.json: manifest: undefined is not a sha256 digest');
    const missing = await tarOf([
      { name: 'c.json', body: config },
      { name: 'manifest.json', body: JSON.stringify([{ Config: 'c.json', Layers: ['a/layer.tar', 'b/layer.tar', 'c/layer.tar'] }]) },
    ]);
    await expect(readImageArchive(streamOf(missing), { dir })).rejects.toThrow('image archive manifest.json: layer 0 a/layer.tar is not in the archive');
    const wrong = await tarOf([{ name: `blobs/sha256/${hex(layerB)}`, body: layerA }]);
    await expect(readImageArchive(streamOf(wrong), { dir })).rejects.toThrow(`image archive entry blobs/sha256/${hex(layerB)} holds content with digest ${digest(layerA)}`);
  });

  it('fails with a chain when the stream fails, and leaves no blob behind', async () => {
    const dir = join(await temp('kit-archive-'), 'out');
    const archive = await oldArchive();
    async function* broken(): AsyncGenerator<Buffer> {
      yield archive.subarray(0, archive.length - 4096);
      throw new Error('connection reset');
    }
    await expect(readImageArchive(broken(), { dir })).rejects.toThrow(/reading (the image archive|image archive entry \S+): connection reset/);
    expect(await filesUnder(dir)).toEqual([]);
  });

  describe('refuses entries and paths that lead outside the archive, writing nothing outside dir', () => {
    /** Reads `archive` into `<root>/out` and returns what `<root>` holds outside `out` afterwards. */
    async function refuse(entries: Entry[], message: string | RegExp): Promise<void> {
      const root = await temp('kit-archive-evil-');
      const dir = join(root, 'out');
      await mkdir(join(root, 'outside'));
      await writeFile(join(root, 'outside', 'keep'), 'untouched');
      // a big blob first, so something is on disk when the refusal comes
      const archive = await tarOf([{ name: 'big/layer.tar', body: layerB }, ...entries]);
      await expect(readImageArchive(streamOf(archive), { dir })).rejects.toThrow(message);
      expect((await filesUnder(root)).filter((f) => !f.startsWith('out/'))).toEqual(['outside/keep']);
      expect(await filesUnder(dir)).toEqual([]);
    }

    it('an entry ../evil', async () => {
      await refuse([{ name: '../evil', body: 'x' }], 'image archive entry ../evil escapes the archive root');
    });

    it('an entry a/../../outside/evil', async () => {
      await refuse([{ name: 'a/../../outside/evil', body: 'x' }], 'image archive entry a/../../outside/evil escapes the archive root');
    });

    it('an absolute entry /evil', async () => {
      await refuse([{ name: '/evil', body: 'x' }], 'image archive entry /evil escapes the archive root (absolute path)');
    });

    it('a symlink pointing outside, then a file written through it', async () => {
      await refuse(
        [
          { name: 'link', type: 'symlink', linkname: '../outside' },
          { name: 'link/evil', body: 'x' },
        ],
        'image archive entry link is a symlink to ../outside, which escapes the archive root',
      );
      await refuse(
        [
          { name: 'abs', type: 'symlink', linkname: tmpdir() },
          { name: 'abs/evil', body: 'x' },
        ],
        `image archive entry abs is a symlink to ${tmpdir()}, which escapes the archive root`,
      );
    });

    it('a manifest layer path ../../etc/passwd, and a config path outside', async () => {
      await refuse(
        [
          { name: 'c.json', body: configFor([layerA]) },
          { name: 'manifest.json', body: JSON.stringify([{ Config: 'c.json', Layers: ['../../etc/passwd'] }]) },
        ],
        'image archive manifest.json: layer 0 ../../etc/passwd escapes the archive root',
      );
      await refuse([{ name: 'manifest.json', body: JSON.stringify([{ Config: '/etc/passwd', Layers: [] }]) }], 'image archive manifest.json: config /etc/passwd escapes the archive root (absolute path)');
    });

    it('a symlinked layer.tar pointing outside', async () => {
      await refuse(
        [
          { name: 'l/', type: 'directory' },
          { name: 'l/layer.tar', type: 'symlink', linkname: '../../../../etc/passwd' },
          { name: 'c.json', body: configFor([layerA]) },
          { name: 'manifest.json', body: JSON.stringify([{ Config: 'c.json', Layers: ['l/layer.tar'] }]) },
        ],
        'image archive entry l/layer.tar is a symlink to ../../../../etc/passwd, which escapes the archive root',
      );
    });

    it('a symlink that stays inside but climbs out through another symlink', async () => {
      await refuse(
        [
          { name: 'a/', type: 'directory' },
          { name: 'a/up', type: 'symlink', linkname: '..' },
          { name: 'a/up/x', type: 'symlink', linkname: '../evil' },
        ],
        'image archive entry a/up/x is a symlink to ../evil, which escapes the archive root',
      );
    });
  });
});

describe('writeImageArchive', () => {
  async function blobFiles(): Promise<{ dir: string; paths: string[] }> {
    const dir = await temp('kit-archive-write-');
    const paths = [];
    for (const layer of [layerA, layerB]) {
      const path = join(dir, hex(layer));
      await writeFile(path, layer);
      paths.push(path);
    }
    return { dir, paths };
  }

  it('writes a docker-archive that readImageArchive reads back as the same image', async () => {
    const { dir, paths } = await blobFiles();
    const archive = writeImageArchive({
      config,
      layers: [
        { digest: digest(layerA), size: layerA.length, file: paths[0]! },
        { digest: digest(layerB), size: layerB.length, file: paths[1]! },
        { digest: digest(layerA), size: layerA.length, file: paths[0]! },
      ],
      tags: ['example/base:1'],
    });
    const built = await readImageArchive(archive, { dir: join(dir, 'read') });
    expect(built.config).toEqual(JSON.parse(config.toString()));
    for (const [i, layer] of layers.entries()) expect((await bytesOf(built, i)).equals(layer)).toBe(true);
  });

  it('names entries as docker save did, once per blob, and writes an empty entry for a layer the daemon holds', async () => {
    const { paths } = await blobFiles();
    const archive = writeImageArchive({
      config,
      configDigest: digest(config),
      layers: [
        { digest: digest(layerB), size: layerB.length },
        { digest: digest(layerA), size: layerA.length },
        { digest: digest(layerA), size: layerA.length, file: paths[0]! },
      ],
      tags: ['example/base:1'],
    });
    const seen: { name: string; size: number; body: Buffer }[] = [];
    for await (const entry of readTar(archive)) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry.body()) chunks.push(chunk);
      seen.push({ name: entry.name, size: entry.size, body: Buffer.concat(chunks) });
    }
    expect(seen.map((e) => [e.name, e.size])).toEqual([
      [`${hex(config)}.json`, config.length],
      [`${hex(layerB)}/layer.tar`, 0],
      [`${hex(layerA)}/layer.tar`, layerA.length],
      ['manifest.json', seen.at(-1)!.size],
    ]);
    expect(JSON.parse(seen.at(-1)!.body.toString())).toEqual([
      { Config: `${hex(config)}.json`, RepoTags: ['example/base:1'], Layers: [`${hex(layerB)}/layer.tar`, `${hex(layerA)}/layer.tar`, `${hex(layerA)}/layer.tar`] },
    ]);
  });

  it('fails the stream with a chain when a blob file is not what the layer says', async () => {
    const { paths } = await blobFiles();
    const archive = writeImageArchive({ config, layers: [{ digest: digest(layerA), size: layerA.length + 1, file: paths[0]! }] });
    await expect((async () => {
      for await (const _ of archive);
    })()).rejects.toThrow(/^writing the image archive: .*changed while being read/);
    expect(() => writeImageArchive({ config, layers: [{ digest: 'sha256:nothex', size: 1 }] })).toThrow(/^writing the image archive: layer 0: invalid sha256 digest/);
  });
});
