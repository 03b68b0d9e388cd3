/**
 * The realistic case: the lifecycle fixture's `RUN apt-get update && apt-get
 * install -y curl` on the Debian bookworm minbase run image (from
 * `ensureDebianLayouts()`), by this backend (base unpacked into the work dir,
 * RUN chrooted with the network) and by buildah (chroot isolation, vfs,
 * --layers) in the same run. Reports times and compares the RUN layers' paths.
 * Needs Debian's package archive (the machine's apt sources).
 *
 *   node libs/backend-inplace/bench/debian-apt.bench.ts
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemorySink, readLayoutImage } from '@cnb-extender/extender-core';
import { readLayerPaths } from '@cnb-extender/extender-core/testing';
import { ensureDebianLayouts } from '@cnb-extender/testenv';
import { createInplaceBackend } from '../src/index.ts';

const BODY = ['USER root', 'RUN apt-get update && apt-get install -y --no-install-recommends curl', 'USER 1000:1000'];
const debian = await ensureDebianLayouts({ log: (l) => console.log(l) });
const scratch = join(tmpdir(), `inplace-apt-bench-${randomBytes(6).toString('hex')}`);
mkdirSync(join(scratch, 'ctx'), { recursive: true });
mkdirSync(join(scratch, 'work'));
try {
  const base = (await readLayoutImage(debian.run.layoutDir, 'base')).image;
  const backend = createInplaceBackend({ root: 'unpack', network: true });
  const context = { signal: new AbortController().signal, events: new MemorySink(), workDir: join(scratch, 'work') };
  let start = performance.now();
  const ours = await backend.apply(
    { extensionId: 'curl', kind: 'run', path: join(scratch, 'run.Dockerfile'), content: ['ARG base_image', 'FROM ${base_image}', ...BODY, ''].join('\n'), args: [{ name: 'base_image', value: 'base' }], contextDir: join(scratch, 'ctx') },
    base,
    { buildContext: join(scratch, 'ctx'), ignorePaths: ['/workspace'], cacheTtlMs: 0, extendDir: join(scratch, 'extend') },
    context,
  );
  const oursMs = performance.now() - start;
  const ourLayer = ours.layers.at(-1)!;
  const ourPaths = new Set((await readLayerPaths(ourLayer.blob!)).map((p) => p.replace(/\/$/, '')));

  const layout = join(scratch, 'base');
  cpSync(debian.run.layoutDir, layout, { recursive: true });
  writeFileSync(join(scratch, 'Dockerfile'), [`FROM oci:${layout}:${debian.run.layoutTag}`, ...BODY, ''].join('\n'));
  const out = join(scratch, 'out');
  start = performance.now();
  execFileSync('buildah', ['--root', join(scratch, 'storage'), '--runroot', join(scratch, 'run'), '--storage-driver', 'vfs', 'build', '--isolation', 'chroot', '--layers', '-q', '-f', join(scratch, 'Dockerfile'), '-t', `oci:${out}:x`, join(scratch, 'ctx')], { stdio: 'ignore' });
  const peerMs = performance.now() - start;
  const peer = (await readLayoutImage(out, 'x')).image;
  const runIndex = (peer.config.history ?? []).filter((h) => !h.empty_layer).findIndex((h) => h.created_by?.includes('apt-get'));
  const peerLayer = peer.layers[runIndex]!;
  const peerPaths = new Set((await readLayerPaths(peerLayer.blob!)).map((p) => p.replace(/\/$/, '')).filter((p) => p !== 'run' && !p.startsWith('run/')));
  const onlyOurs = [...ourPaths].filter((p) => !peerPaths.has(p));
  const onlyPeer = [...peerPaths].filter((p) => !ourPaths.has(p));
  await backend.cleanup(context);

  console.log(`RUN apt-get update && apt-get install -y --no-install-recommends curl on Debian bookworm minbase`);
  console.log(`inplace backend: ${(oursMs / 1000).toFixed(1)} s, RUN layer ${ourPaths.size} paths, ${(ourLayer.descriptor.size / 1e6).toFixed(1)} MB gzip`);
  console.log(`peer: buildah --isolation chroot --layers (vfs): ${(peerMs / 1000).toFixed(1)} s, RUN layer ${peerPaths.size} paths (its /run mount point left out), ${(peerLayer.descriptor.size / 1e6).toFixed(1)} MB (buildah stores oci: layers uncompressed)`);
  console.log(`paths only in ours: ${onlyOurs.length}${onlyOurs.length ? ` (${onlyOurs.slice(0, 10).join(', ')})` : ''}`);
  console.log(`paths only in buildah's: ${onlyPeer.length}${onlyPeer.length ? ` (${onlyPeer.slice(0, 10).join(', ')})` : ''}`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
