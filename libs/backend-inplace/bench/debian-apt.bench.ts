/**
 * The realistic case on the Debian bookworm minbase run image (from
 * `ensureDebianLayouts()`), by this backend (base unpacked into the work dir,
 * RUN chrooted with the network) and by buildah (chroot isolation, vfs,
 * --layers) in the same run, for two workloads:
 *
 * - `overhead`: a COPY and a trivial RUN, so nearly all time is the tools' own
 *   work (base unpack, snapshots, layers);
 * - `apt`: the lifecycle fixture's `apt-get update && apt-get install curl`,
 *   where the download dominates; for this backend the RUN's own time is split
 *   out (from its timing events) so that what the backend adds can be compared.
 *
 * Reports times, ratios against buildah, and compares the RUN layers' paths.
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

const WORKLOADS = {
  overhead: ['USER root', 'COPY payload /opt/payload', 'RUN echo done > /opt/done', 'USER 1000:1000'],
  apt: ['USER root', 'RUN apt-get update && apt-get install -y --no-install-recommends curl', 'USER 1000:1000'],
} as const;

const debian = await ensureDebianLayouts({ log: (l) => console.log(l) });
const scratch = join(tmpdir(), `inplace-apt-bench-${randomBytes(6).toString('hex')}`);
const seconds = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;

try {
  const base = (await readLayoutImage(debian.run.layoutDir, 'base')).image;
  const layout = join(scratch, 'base');
  mkdirSync(scratch, { recursive: true });
  cpSync(debian.run.layoutDir, layout, { recursive: true });
  console.log(`Debian bookworm minbase run image, ${base.layers.length} layer(s); times are wall clock in one run`);
  for (const [name, body] of Object.entries(WORKLOADS)) {
    const dir = join(scratch, name);
    const ctx = join(dir, 'ctx');
    mkdirSync(ctx, { recursive: true });
    mkdirSync(join(dir, 'work'));
    writeFileSync(join(ctx, 'payload'), randomBytes(1 << 20));

    const backend = createInplaceBackend({ root: 'unpack', network: true, cache: false });
    const events = new MemorySink();
    const context = { signal: new AbortController().signal, events, workDir: join(dir, 'work') };
    let start = performance.now();
    const ours = await backend.apply(
      { extensionId: 'bench', kind: 'run', path: join(dir, 'run.Dockerfile'), content: ['ARG base_image', 'FROM ${base_image}', ...body, ''].join('\n'), args: [{ name: 'base_image', value: 'base' }], contextDir: ctx },
      base,
      { buildContext: ctx, ignorePaths: ['/workspace'], cacheTtlMs: 0, extendDir: join(dir, 'extend') },
      context,
    );
    const oursMs = performance.now() - start;
    const timing = (prefix: string): number => events.ofType('timing').filter((e) => e.name.startsWith(prefix)).reduce((sum, e) => sum + e.durationMs, 0);
    const runIndexes = body.map((line, i) => (line.startsWith('RUN ') ? i : -1)).filter((i) => i >= 0);
    const runMs = runIndexes.reduce((sum, i) => sum + timing(`execute-step-${i}:`), 0);
    const ourLayer = ours.layers.at(-1)!;
    const ourPaths = new Set((await readLayerPaths(ourLayer.blob!)).map((p) => p.replace(/\/$/, '')));

    writeFileSync(join(dir, 'Dockerfile'), [`FROM oci:${layout}:${debian.run.layoutTag}`, ...body, ''].join('\n'));
    const out = join(dir, 'out');
    start = performance.now();
    execFileSync('buildah', ['--root', join(dir, 'storage'), '--runroot', join(dir, 'run'), '--storage-driver', 'vfs', 'build', '--isolation', 'chroot', '--layers', '-q', '-f', join(dir, 'Dockerfile'), '-t', `oci:${out}:x`, ctx], { stdio: 'ignore' });
    const peerMs = performance.now() - start;
    const peer = (await readLayoutImage(out, 'x')).image;
    const peerLayer = peer.layers.at(-1)!;
    const peerPaths = new Set((await readLayerPaths(peerLayer.blob!)).map((p) => p.replace(/\/$/, '')).filter((p) => p !== 'run' && !p.startsWith('run/')));
    const onlyOurs = [...ourPaths].filter((p) => !peerPaths.has(p));
    const onlyPeer = [...peerPaths].filter((p) => !ourPaths.has(p));
    await backend.cleanup(context);
    execFileSync('buildah', ['--root', join(dir, 'storage'), '--runroot', join(dir, 'run'), '--storage-driver', 'vfs', 'rmi', '--all', '--force'], { stdio: 'ignore' });

    console.log(`\n[${name}] ${body.join(' / ')}`);
    console.log(`  inplace backend: ${seconds(oursMs)} (RUN itself ${seconds(runMs)}, everything else ${seconds(oursMs - runMs)}: unpack ${seconds(timing('unpack-base:'))}, snapshots ${seconds(timing('snapshot:'))}, layers ${seconds(timing('write-layer:'))}); last layer ${ourPaths.size} paths, ${(ourLayer.descriptor.size / 1e6).toFixed(1)} MB gzip`);
    console.log(`  buildah --isolation chroot --layers (vfs): ${seconds(peerMs)}; last layer ${peerPaths.size} paths (its /run mount point left out), ${(peerLayer.descriptor.size / 1e6).toFixed(1)} MB (buildah writes oci: layers uncompressed)`);
    console.log(`  ratio inplace/buildah: ${(oursMs / peerMs).toFixed(2)}×`);
    console.log(`  paths only in ours: ${onlyOurs.length}${onlyOurs.length ? ` (${onlyOurs.slice(0, 10).join(', ')})` : ''}; only in buildah's: ${onlyPeer.length}${onlyPeer.length ? ` (${onlyPeer.slice(0, 10).join(', ')})` : ''}`);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
