/**
 * End-to-end benchmark: one extension Dockerfile applied to the busybox
 * fixture run image by this backend (base unpacked into the work dir, RUNs
 * chrooted, one snapshot and layer per filesystem-changing instruction) and by
 * buildah (chroot isolation, vfs storage, --layers) in the same run.
 *
 *   node libs/backend-inplace/bench/apply.bench.ts
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemorySink, readLayoutImage } from '@cnb-extender/extender-core';
import type { Digest } from '@cnb-extender/oci';
import { buildFixtureLayouts } from '@cnb-extender/testenv';
import { createInplaceBackend } from '../src/index.ts';

const BODY = [
  'USER root',
  'RUN mkdir -p /opt/tool && for i in $(seq 1 500); do echo $i > /opt/tool/f$i; done',
  'COPY payload /opt/payload',
  'RUN rm -rf /usr/local && mkdir -p /usr/local/bin && cp /bin/busybox /usr/local/bin/bb',
  'ENV TOOL_HOME=/opt/tool',
  'USER 1000:1000',
];
const runs = 5;

const fixtures = await buildFixtureLayouts();
const scratch = join(tmpdir(), `inplace-bench-${randomBytes(6).toString('hex')}`);
mkdirSync(join(scratch, 'ctx/payload'), { recursive: true });
for (let i = 0; i < 200; i++) writeFileSync(join(scratch, `ctx/payload/p${i}`), randomBytes(4096));
const layout = join(scratch, 'base');
cpSync(fixtures.run.layoutDir, layout, { recursive: true });
writeFileSync(join(scratch, 'Dockerfile'), [`FROM oci:${layout}:${fixtures.run.layoutTag}`, ...BODY, ''].join('\n'));
const base = (await readLayoutImage(fixtures.run.layoutDir, 'base', fixtures.run.manifestDigest as Digest)).image;

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const ours: number[] = [];
const peer: number[] = [];
try {
  for (let i = 0; i < runs; i++) {
    const workDir = join(scratch, `work-${i}`);
    mkdirSync(workDir);
    const backend = createInplaceBackend({ root: 'unpack', network: false });
    const context = { signal: new AbortController().signal, events: new MemorySink(), workDir };
    let start = performance.now();
    const result = await backend.apply(
      { extensionId: 'bench/ext', kind: 'run', path: join(scratch, 'run.Dockerfile'), content: ['ARG base_image', 'FROM ${base_image}', ...BODY, ''].join('\n'), args: [{ name: 'base_image', value: 'base' }], contextDir: join(scratch, 'ctx') },
      base,
      { buildContext: join(scratch, 'ctx'), ignorePaths: ['/workspace'], cacheTtlMs: 0, extendDir: join(scratch, 'extend') },
      context,
    );
    ours.push(performance.now() - start);
    if (result.layers.length !== base.layers.length + 3) throw new Error(`expected 3 new layers, got ${result.layers.length - base.layers.length}`);
    await backend.cleanup(context);

    const storage = join(scratch, `storage-${i}`);
    start = performance.now();
    execFileSync('buildah', ['--root', storage, '--runroot', join(scratch, `run-${i}`), '--storage-driver', 'vfs', 'build', '--isolation', 'chroot', '--layers', '-q', '-f', join(scratch, 'Dockerfile'), '-t', `oci:${join(scratch, `out-${i}`)}:x`, join(scratch, 'ctx')], { stdio: 'ignore' });
    peer.push(performance.now() - start);
    execFileSync('buildah', ['--root', storage, '--runroot', join(scratch, `run-${i}`), '--storage-driver', 'vfs', 'rm', '--all'], { stdio: 'ignore' });
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
console.log(`Dockerfile: ${BODY.length} instructions (3 change files) on the busybox fixture run image, ${runs} runs`);
console.log(`inplace backend (unpack base, execute, snapshot, gzip layers): median ${median(ours).toFixed(0)} ms (min ${Math.min(...ours).toFixed(0)}, max ${Math.max(...ours).toFixed(0)})`);
console.log(`peer: buildah build --isolation chroot --layers (vfs, oci: output): median ${median(peer).toFixed(0)} ms (min ${Math.min(...peer).toFixed(0)}, max ${Math.max(...peer).toFixed(0)})`);
