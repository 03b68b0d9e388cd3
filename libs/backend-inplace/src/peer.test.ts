// Conformance against a peer builder: the same Dockerfile body built by
// buildah (chroot isolation, vfs storage, one layer per instruction) and by
// this backend on the fixture run image must give the same filesystem and
// the same config fields.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, cpSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemorySink, readLayoutImage } from '@cnb-extender/extender-core';
import { applyLayer, type Digest } from '@cnb-extender/oci';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createInplaceBackend } from './backend.ts';
import { takeSnapshot } from './snapshot/index.ts';
import { removeTree, treeView } from './test/support.ts';

// buildah wants lower-case layout paths (they become image names).
const scratch = join(tmpdir(), `inplace-peer-${randomBytes(6).toString('hex')}`);
mkdirSync(scratch);
afterAll(() => removeTree(scratch));

const BODY = [
  'USER root',
  'COPY --chown=cnb a.txt /opt/',
  'COPY dir /opt/dir',
  'COPY dir /newdir/',
  'COPY --chmod=0640 a.txt b.txt /many/',
  'WORKDIR /made/here',
  'ENV GREETING="hello world" EMPTY=',
  'RUN mkdir -p /srv && echo "$GREETING" > /srv/greeting && rm /etc/cnb-fixture && ln -s /srv/greeting /srv/link && chmod 4755 /srv/greeting',
  'USER cnb',
  'WORKDIR /made/by/cnb',
  'RUN echo "$(id -u):$(id -g) $(pwd) $HOME" > /made/by/cnb/info',
  'LABEL io.buildpacks.rebasable=true other="two words"',
  'USER root',
  'ARG dest=/from-arg',
  'COPY . ${dest}/all/',
  'COPY --chown=1000:1000 dir /owned',
  'ADD archive.tar.gz /extracted/',
  'ADD archive.tar.gz /plain-name',
  'WORKDIR relative/sub',
  'ENV PATH=$PATH:/opt/bin',
  'RUN echo "$PATH" > /path.txt && touch ./here',
  'COPY b.txt ./',
  'USER 1000:1000',
];

function unpackInto(dir: string, layers: string[]): Promise<void> {
  return layers.reduce((p, layer) => p.then(() => applyLayer(dir, layer, { absolutePaths: 'root' }).then(() => undefined)), Promise.resolve());
}

describe('same result as buildah', () => {
  it('for COPY/ADD rules (globs, contents, context root, archives), WORKDIR, USER, ARG, ENV, RUN with deletions, symlinks and setuid', async () => {
    const fixture = inject('testenv').fixtures.run;
    const context = join(scratch, 'ctx');
    mkdirSync(join(context, 'dir/sub'), { recursive: true });
    writeFileSync(join(context, 'a.txt'), 'a\n');
    writeFileSync(join(context, 'b.txt'), 'b\n');
    writeFileSync(join(context, 'dir/sub/c'), 'c\n');
    chmodSync(join(context, 'dir/sub/c'), 0o600);
    symlinkSync('sub/c', join(context, 'dir/link'));
    mkdirSync(join(scratch, 'tarsrc/t'), { recursive: true });
    writeFileSync(join(scratch, 'tarsrc/t/inside'), 'inside\n');
    execFileSync('tar', ['-czf', join(context, 'archive.tar.gz'), '--owner=123', '--group=456', '-C', join(scratch, 'tarsrc'), 't']);

    // buildah
    const layout = join(scratch, 'base');
    cpSync(fixture.layoutDir, layout, { recursive: true });
    writeFileSync(join(scratch, 'Dockerfile'), [`FROM oci:${layout}:${fixture.layoutTag}`, ...BODY, ''].join('\n'));
    const out = join(scratch, 'buildah-out');
    execFileSync('buildah', ['--root', join(scratch, 'storage'), '--runroot', join(scratch, 'run'), '--storage-driver', 'vfs', 'build', '--isolation', 'chroot', '--layers', '-f', join(scratch, 'Dockerfile'), '-t', `oci:${out}:x`, context], { stdio: 'pipe' });
    const peer = (await readLayoutImage(out, 'x')).image;
    const peerRoot = join(scratch, 'peer-root');
    mkdirSync(peerRoot);
    await unpackInto(peerRoot, peer.layers.map((l) => (l.blob as { path: string }).path));

    // this backend
    const base = (await readLayoutImage(fixture.layoutDir, fixture.registryRef, fixture.manifestDigest as Digest)).image;
    const workDir = join(scratch, 'work');
    mkdirSync(workDir);
    const backend = createInplaceBackend({ root: 'unpack', network: false });
    const ctx = { signal: new AbortController().signal, events: new MemorySink(), workDir };
    const ours = await backend.apply(
      { extensionId: 'peer/ext', kind: 'run', path: join(scratch, 'run.Dockerfile'), content: ['ARG base_image', 'FROM ${base_image}', ...BODY, ''].join('\n'), args: [{ name: 'base_image', value: 'base' }], contextDir: context },
      base,
      { buildContext: context, ignorePaths: ['/workspace'], cacheTtlMs: 0, extendDir: join(scratch, 'extend') },
      ctx,
    );
    const ourRoot = join(scratch, 'our-root');
    mkdirSync(ourRoot);
    await unpackInto(ourRoot, ours.layers.map((l) => (l.blob as { path: string }).path));
    await backend.cleanup(ctx);

    expect(readFileSync(join(ourRoot, 'made/by/cnb/info'), 'utf8')).toBe('1000:1000 /made/by/cnb /home/cnb\n');
    // buildah leaves the /run mount point it creates for RUN in the image; BuildKit and this backend do not.
    const want = treeView(takeSnapshot(peerRoot, { ignoreMountPoints: false, ignorePaths: ['/run'] }));
    const got = treeView(takeSnapshot(ourRoot, { ignoreMountPoints: false }));
    const lines = (m: Map<string, string>) => [...m].map(([p, l]) => `${p} ${l}`).sort();
    const a = new Set(lines(got));
    const b = new Set(lines(want));
    expect({ onlyOurs: [...a].filter((l) => !b.has(l)), onlyBuildah: [...b].filter((l) => !a.has(l)) }).toEqual({ onlyOurs: [], onlyBuildah: [] });
    for (const key of ['User', 'WorkingDir'] as const) expect(ours.config.config?.[key], key).toEqual(peer.config.config?.[key]);
    // ENV of an existing name: BuildKit and the classic builder replace it in place, buildah moves it to the end.
    expect([...(ours.config.config?.Env ?? [])].sort()).toEqual([...(peer.config.config?.Env ?? [])].sort());
    expect(ours.config.config?.Env?.[0]).toMatch(/^PATH=.*:\/opt\/bin$/);
    // buildah adds its own io.buildah.version label.
    const { 'io.buildah.version': _, ...peerLabels } = peer.config.config?.Labels ?? {};
    expect(ours.config.config?.Labels).toEqual(peerLabels);
  }, 60_000);
});
