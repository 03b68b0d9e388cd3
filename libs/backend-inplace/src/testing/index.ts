/**
 * Test support: how the catalog holds this backend to the backend contract. The contract runs
 * on an unpacked root (never on the test machine's own `/`), without the network.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readLayoutImage, type ImageDescription } from '@cnb-extender/extender-core';
import type { BackendContractEnvironment } from '@cnb-extender/extender-core/testing';
import { writeLayer, type Digest } from '@cnb-extender/oci';
import { afterAll, inject } from 'vitest';

/**
 * The contract's Dockerfiles write into /contract as the image's user (1000), which a real
 * build can only do when the directory exists and is writable: the base is the fixture run
 * image plus one layer holding /contract (1000:1000). The layer is written once per test file
 * into a directory removed after it.
 */
function baseWithContractDir(): () => Promise<ImageDescription> {
  let base: Promise<ImageDescription> | undefined;
  let scratch: string | undefined;
  afterAll(async () => {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });
  return () => {
    base ??= (async () => {
      const f = inject('testenv').fixtures.run;
      const { image } = await readLayoutImage(f.layoutDir, f.registryRef, f.manifestDigest as Digest);
      scratch = await mkdtemp(join(tmpdir(), 'inplace-contract-'));
      const path = join(scratch, 'contract-dir.tar.gz');
      const layer = await writeLayer([{ path: 'contract', type: 'directory', mode: 0o755, uid: 1000, gid: 1000 }], path);
      return {
        ...image,
        config: { ...image.config, rootfs: { type: 'layers', diff_ids: [...image.config.rootfs.diff_ids, layer.diffId] }, history: [...(image.config.history ?? []), { created_by: 'test: /contract' }] },
        layers: [...image.layers, { descriptor: layer.descriptor, diffId: layer.diffId, blob: { kind: 'file', path } }],
      };
    })();
    return base;
  };
}

/** The unpacked root without the network. Call it while the test file is collected: it registers the base's cleanup. */
export function contractEnvironments(): BackendContractEnvironment[] {
  return [{ name: 'unpacked root', options: { env: process.env, network: 'none', settings: { root: 'unpack' } }, contract: { baseImage: baseWithContractDir() } }];
}
