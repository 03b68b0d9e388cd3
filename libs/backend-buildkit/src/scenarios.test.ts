/**
 * Run-kind scenarios against dockerd's embedded BuildKit on every engine set,
 * through both session transports: the filesystem the new layers produce is
 * what the Dockerfile says.
 */
import { link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startGrpcForwarder, type GrpcForwarder } from '@cnb-extender/testenv';
import { BuildKitBackend } from './index.ts';
import { applyDockerfile, flatten, type Applied, type FsNode } from './test-support.ts';

const engineSets = inject('testenv').engines;

const DOCKERFILE = `ARG base_image
FROM \${base_image}
USER root
RUN mkdir -p /s/dir && echo a > /s/dir/a && echo keep > /s/keep && echo del > /s/del
RUN echo modified > /s/keep && rm /s/del
RUN rm -rf /s/dir && echo nowfile > /s/dir
RUN echo h > /s/h1 && ln /s/h1 /s/h2
RUN ln -s ../s/keep /s/link
RUN echo x > /s/suid && chmod 4755 /s/suid
COPY ctx/ /s/ctx/
WORKDIR /s/work
RUN echo wd > here
RUN mkdir /s/u && chown 1000:1000 /s/u
USER 1000:1000
RUN id -u > /s/u/uid && echo mine > /s/u/owned
`;

type Route = 'docker /session' | 'docker Control/Session' | 'tcp forwarder Control/Session';

const cases = engineSets.flatMap((engineSet) =>
  (['docker /session', 'docker Control/Session', 'tcp forwarder Control/Session'] as Route[]).map((route) => ({ route, docker: engineSet.docker, name: `${route} on ${engineSet.id} (Docker ${engineSet.docker.version})` })),
);

describe.each(cases)('run-kind scenarios through $name', ({ route, docker }) => {
  let forwarder: GrpcForwarder | undefined;
  let contextDir: string;
  let applied: Applied;
  let fs: Map<string, FsNode>;

  beforeAll(async () => {
    contextDir = await mkdtemp(join(tmpdir(), 'bk-scenario-ctx-'));
    await mkdir(join(contextDir, 'ctx', 'sub'), { recursive: true });
    await writeFile(join(contextDir, 'ctx', 'file'), 'context file\n');
    await link(join(contextDir, 'ctx', 'file'), join(contextDir, 'ctx', 'hard'));
    await symlink('file', join(contextDir, 'ctx', 'sym'));
    await writeFile(join(contextDir, 'ctx', 'sub', 'x'), 'x\n');
    await writeFile(join(contextDir, 'ctx', 'ignored.txt'), 'must not arrive\n');
    await writeFile(join(contextDir, '.dockerignore'), 'ctx/ignored.txt\n');
    let backend: BuildKitBackend;
    if (route === 'tcp forwarder Control/Session') {
      forwarder = await startGrpcForwarder(docker.socketPath, { kind: 'tcp' });
      backend = new BuildKitBackend({ address: forwarder.address, engine: `docker://${docker.socketPath}` });
    } else {
      backend = new BuildKitBackend({ address: `docker://${docker.socketPath}`, sessionTransport: route === 'docker /session' ? 'docker' : 'control' });
    }
    applied = await applyDockerfile(backend, DOCKERFILE, contextDir);
    fs = await flatten(applied.newLayers);
  });

  afterAll(async () => {
    await applied?.dispose();
    await forwarder?.close();
    await rm(contextDir, { recursive: true, force: true });
  });

  const content = (path: string) => fs.get(path)?.content.toString('utf8');

  it('creates, modifies and deletes files', () => {
    expect(content('s/keep')).toBe('modified\n');
    expect(fs.has('s/del')).toBe(false);
  });

  it('replaces a directory by a file', () => {
    expect(fs.get('s/dir')?.type).toBe('file');
    expect(content('s/dir')).toBe('nowfile\n');
    expect(fs.has('s/dir/a')).toBe(false);
  });

  it('keeps hard links and symlinks made by RUN', () => {
    expect(content('s/h1')).toBe('h\n');
    const h2 = fs.get('s/h2');
    expect(h2?.type === 'hardlink' ? h2.linkTarget.replace(/^\//, '') : h2?.content.toString()).toBe(h2?.type === 'hardlink' ? 's/h1' : 'h\n');
    expect(fs.get('s/link')).toMatchObject({ type: 'symlink', linkTarget: '../s/keep' });
  });

  it('keeps setuid bits', () => {
    expect((fs.get('s/suid')?.mode ?? 0) & 0o7777).toBe(0o4755);
  });

  it('copies from the context with symlinks and hard links, honouring .dockerignore', () => {
    expect(content('s/ctx/file')).toBe('context file\n');
    expect(content('s/ctx/sub/x')).toBe('x\n');
    expect(fs.get('s/ctx/sym')).toMatchObject({ type: 'symlink', linkTarget: 'file' });
    const hard = fs.get('s/ctx/hard');
    expect(hard?.type === 'hardlink' ? hard.linkTarget.replace(/^\//, '') : hard?.content.toString()).toBe(hard?.type === 'hardlink' ? 's/ctx/file' : 'context file\n');
    expect(fs.has('s/ctx/ignored.txt')).toBe(false);
  });

  it('runs in the WORKDIR and as the USER', () => {
    expect(content('s/work/here')).toBe('wd\n');
    expect(content('s/u/uid')).toBe('1000\n');
    expect(fs.get('s/u/owned')?.uid).toBe(1000);
    expect(applied.result.config.config?.User).toBe('1000:1000');
    expect(applied.result.config.config?.WorkingDir).toBe('/s/work');
  });

  it('describes one history entry per new layer, reading like the Dockerfile line', () => {
    const history = (applied.result.config.history ?? []).filter((h) => !h.empty_layer);
    expect(history).toHaveLength(applied.result.layers.length);
    const created = history.slice(applied.base.layers.length).map((h) => h.created_by);
    expect(created).toContain('RUN echo modified > /s/keep && rm /s/del');
    expect(created).toContain('COPY ctx/ /s/ctx/');
  });

  it('reports each instruction as started or cached', () => {
    const seen = [...applied.events.ofType('instruction-started'), ...applied.events.ofType('cache-hit')].map((e) => e.instruction);
    expect(seen).toContain('RUN echo wd > here');
    expect(seen).toContain('COPY ctx/ /s/ctx/');
  });
});
