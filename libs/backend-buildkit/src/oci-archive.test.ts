import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createReadStream } from 'node:fs';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { decompressLayer } from '@cnb-extender/oci';
import { readOciArchive } from './oci-archive.ts';
import { tarEntries, type TarFileEntry } from './tarwriter.ts';
import './test-support.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** The fixture's OCI layout as the `oci` exporter streams it: one tar. */
async function layoutTar(layoutDir: string, target: string): Promise<void> {
  const entries: TarFileEntry[] = [];
  for (const name of ['oci-layout', 'index.json']) entries.push({ name, data: await readFile(join(layoutDir, name)) });
  for (const hex of await readdir(join(layoutDir, 'blobs', 'sha256'))) {
    const path = join(layoutDir, 'blobs', 'sha256', hex);
    entries.push({ name: `blobs/sha256/${hex}`, size: (await stat(path)).size, open: () => createReadStream(path) });
  }
  await pipeline(Readable.from(tarEntries(entries)), createWriteStream(target));
}

describe('readOciArchive', () => {
  it('reads an OCI layout tarball as the built image, layers matching their diff_ids', async () => {
    const fixture = inject('testenv').fixtures.run;
    const dir = await mkdtemp(join(tmpdir(), 'bk-oci-'));
    dirs.push(dir);
    const file = join(dir, 'export.tar');
    await layoutTar(fixture.layoutDir, file);
    const built = await readOciArchive(file, 'fixture', join(dir, 'blobs'));
    expect(built.layers.length).toBeGreaterThan(0);
    expect(built.layers.map((l) => l.diffId)).toEqual(built.config.rootfs.diff_ids);
    for (const layer of built.layers) {
      const { tar } = await decompressLayer(Readable.from(await layer.open()));
      const hash = createHash('sha256');
      for await (const chunk of tar) hash.update(chunk);
      expect(`sha256:${hash.digest('hex')}`).toBe(layer.diffId);
    }
    await expect(stat(file)).rejects.toThrow(/ENOENT/);
  });
});
