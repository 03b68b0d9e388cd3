import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import type {} from '@cnb-extender/testenv';
import { ExtenderError, MemorySink, extend, readLayoutImage, type DockerfileSpec } from '@cnb-extender/extender-core';
import { createWorkspace, type Workspace } from '@cnb-extender/extender-core/testing';
import type { Digest } from '@cnb-extender/oci';
import { dockerDefinition } from './definition.ts';
import { connect, createDockerBackend, isDockerReachable, type DockerBackend, type DockerBackendOptions } from './index.ts';

const env = inject('testenv');

/** The backend as the catalog creates it, from `vars` only. */
async function fromEnv(vars: Record<string, string>): Promise<DockerBackend> {
  return (await dockerDefinition.create({ env: vars })) as DockerBackend;
}
const temps: string[] = [];
const workspaces: Workspace[] = [];
afterAll(async () => {
  for (const ws of workspaces) await ws.remove();
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});
async function temp(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

async function applyOnce(dockerfile: string, options: DockerBackendOptions) {
  const run = env.fixtures.run;
  const { image: base } = await readLayoutImage(run.layoutDir, run.registryRef, run.manifestDigest as Digest);
  const workDir = await temp('docker-work-');
  const contextDir = await temp('docker-context-');
  const backend = createDockerBackend(options);
  const events = new MemorySink();
  const context = { signal: new AbortController().signal, events, workDir };
  const spec: DockerfileSpec = { extensionId: 'test/ext', kind: 'run', path: join(contextDir, 'run.Dockerfile'), content: dockerfile, args: [{ name: 'base_image', value: run.registryRef }], contextDir };
  const result = await backend.apply(spec, base, { buildContext: contextDir, ignorePaths: [], cacheTtlMs: 0, extendDir: await temp('docker-extend-') }, context);
  return { backend, workDir, result, base, events, context };
}

/** The tags `backend` made that are in the daemon (other tests' backends share it). */
async function ourImages(backend: { runId: string }): Promise<string[]> {
  const images = await connect(env.docker.host).docker.listImages();
  return images.flatMap((i) => i.RepoTags ?? []).filter((t) => t.startsWith('cnb-extender-') && t.includes(`-${backend.runId}:`));
}

describe('docker daemon detection', () => {
  it('answers for the test environment daemon and not for an absent socket or port', async () => {
    expect(await isDockerReachable(env.docker.host)).toBe(true);
    expect(await isDockerReachable('unix:///nonexistent/docker.sock')).toBe(false);
    expect(await isDockerReachable('tcp://127.0.0.1:1', 1000)).toBe(false);
  });

  it('reads DOCKER_HOST forms and refuses others', () => {
    expect(() => connect('tcp://127.0.0.1:2375')).not.toThrow();
    expect(() => connect('ssh://host')).toThrow('reading DOCKER_HOST "ssh://host": expected unix:///path or tcp://host:port');
  });
});

describe('docker backend', () => {
  it('fails the extend phase (APPLY_FAILED) naming the daemon address when the daemon does not answer', async () => {
    const run = env.fixtures.run;
    const ws = await createWorkspace({
      runImage: run.registryRef,
      baseLayout: { from: run.layoutDir, digest: run.manifestDigest as Digest, mode: 'full' },
      extensions: [{ id: 'test/ext', run: 'ARG base_image\nFROM ${base_image}\nRUN true\n' }],
    });
    workspaces.push(ws);
    const err = await extend({ kind: 'run', inputs: ws.inputs, backend: createDockerBackend({ host: 'unix:///nonexistent/docker.sock' }) }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ExtenderError);
    expect((err as ExtenderError).code).toBe('APPLY_FAILED');
    expect((err as ExtenderError).message).toMatch(
      /^failed to extend run image: applying Dockerfile for test\/ext: connecting to the Docker daemon at unix:\/\/\/nonexistent\/docker\.sock: .*ENOENT.*; start dockerd or set DOCKER_HOST$/,
    );
  });

  for (const builder of ['classic', 'buildkit'] as const) {
    it(`${builder}: streams the steps as events and leaves no image in the daemon after cleanup`, async () => {
      const { events, backend, context, workDir } = await applyOnce('ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo x > /x\nENV A=1\n', { host: env.docker.host, builder });
      // by position after FROM, with the Dockerfile's text; the RUN cached or run, with its layer
      const started = events.ofType('instruction-started').map((e) => [e.index, e.instruction]);
      const steps = [[0, 'USER root'], [1, 'RUN echo x > /x'], [2, 'ENV A=1']];
      // the classic builder shows every step; BuildKit those it has a vertex for (the core starts the others)
      if (builder === 'classic') expect(started).toEqual(steps);
      else expect(steps).toEqual(expect.arrayContaining([...started, [1, 'RUN echo x > /x']]));
      const cache = events.events.flatMap((e) => (e.type === 'cache-hit' || e.type === 'cache-miss' ? [e.index] : []));
      expect(cache).toEqual([1]);
      expect(events.ofType('cache-hit').every((e) => e.key !== '')).toBe(true);
      expect(events.ofType('layer-written').map((e) => [e.index, e.level])).toEqual([[1, 'info']]);
      // the base and the result stay for a next Dockerfile until cleanup
      expect((await ourImages(backend)).sort()).toEqual([`cnb-extender-base-${backend.runId}:1`, `cnb-extender-result-${backend.runId}:1`]);
      await backend.cleanup(context);
      expect(await ourImages(backend)).toEqual([]);
      expect(await readdir(workDir)).toEqual([]);
    });
  }

  for (const builder of ['classic', 'buildkit'] as const) {
    it(`${builder}: applies a context .dockerignore as Docker does and never lets its own Dockerfile reach COPY`, async () => {
      const run = env.fixtures.run;
      const { image: base } = await readLayoutImage(run.layoutDir, run.registryRef, run.manifestDigest as Digest);
      const { writeFile } = await import('node:fs/promises');
      const { readLayerPaths } = await import('@cnb-extender/extender-core/testing');
      // the .dockerignore reaches COPY unless it excludes itself (Docker's rule for both builders)
      for (const [rules, expected] of [
        ['secret.txt', ['ctx/.dockerignore', 'ctx/kept.txt']],
        ['secret.txt\n.dockerignore\n', ['ctx/kept.txt']],
      ] as const) {
        const workDir = await temp('docker-work-');
        const contextDir = await temp('docker-context-');
        await writeFile(join(contextDir, 'kept.txt'), 'kept\n');
        await writeFile(join(contextDir, 'secret.txt'), 'not sent\n');
        await writeFile(join(contextDir, '.dockerignore'), rules);
        const backend = createDockerBackend({ host: env.docker.host, builder });
        const context = { signal: new AbortController().signal, events: new MemorySink(), workDir };
        const content = 'ARG base_image\nFROM ${base_image}\nUSER root\nCOPY . /ctx/\n';
        const spec: DockerfileSpec = { extensionId: 'test/ext', kind: 'run', path: join(contextDir, 'x'), content, args: [{ name: 'base_image', value: 'x' }], contextDir };
        const result = await backend.apply(spec, base, { buildContext: contextDir, ignorePaths: [], cacheTtlMs: 0, extendDir: workDir }, context);
        const paths = await readLayerPaths(result.layers.at(-1)!.blob!);
        expect(paths.filter((p) => p.startsWith('ctx/') && p !== 'ctx/'), `${builder} with .dockerignore ${JSON.stringify(rules)}`).toEqual(expected);
        await backend.cleanup(context);
      }
    });
  }

  for (const builder of ['classic', 'buildkit'] as const) {
    it(`${builder}: prefers <Dockerfile>.dockerignore beside the Dockerfile to the context's .dockerignore`, async () => {
      const run = env.fixtures.run;
      const { image: base } = await readLayoutImage(run.layoutDir, run.registryRef, run.manifestDigest as Digest);
      const { writeFile } = await import('node:fs/promises');
      const { readLayerPaths } = await import('@cnb-extender/extender-core/testing');
      const workDir = await temp('docker-work-');
      const contextDir = await temp('docker-context-');
      const dockerfileDir = await temp('docker-dockerfile-');
      await writeFile(join(contextDir, 'a.txt'), 'a\n');
      await writeFile(join(contextDir, 'b.txt'), 'b\n');
      await writeFile(join(contextDir, '.dockerignore'), 'a.txt\n');
      await writeFile(join(dockerfileDir, 'run.Dockerfile.dockerignore'), 'b.txt\n');
      const backend = createDockerBackend({ host: env.docker.host, builder, network: 'none' });
      const context = { signal: new AbortController().signal, events: new MemorySink(), workDir };
      const content = 'ARG base_image\nFROM ${base_image}\nUSER root\nCOPY . /ctx/\n';
      const spec: DockerfileSpec = { extensionId: 'test/ext', kind: 'run', path: join(dockerfileDir, 'run.Dockerfile'), content, args: [{ name: 'base_image', value: 'x' }], contextDir };
      const result = await backend.apply(spec, base, { buildContext: contextDir, ignorePaths: [], cacheTtlMs: 0, extendDir: workDir }, context);
      const paths = (await readLayerPaths(result.layers.at(-1)!.blob!)).filter((p) => p.startsWith('ctx/') && p !== 'ctx/');
      // BuildKit copies the context's .dockerignore as a file; the classic builder's context tar holds one .dockerignore, the one in use
      expect(paths).toEqual(builder === 'buildkit' ? ['ctx/.dockerignore', 'ctx/a.txt'] : ['ctx/a.txt']);
      await backend.cleanup(context);
    });
  }

  it('is created by its definition from the environment without connecting', async () => {
    const backend = await fromEnv({ DOCKER_HOST: 'unix:///x.sock', DOCKER_BUILDKIT: '1' });
    expect(backend.host).toBe('unix:///x.sock');
    expect(backend.builder).toBe('buildkit');
    expect((await fromEnv({ CNB_DOCKER_BUILDER: 'classic', DOCKER_BUILDKIT: '1' })).builder).toBe('classic');
    expect((await fromEnv({})).id).toBe('docker');
  });
});

describe('.dockerignore', () => {
  async function tarEntries(stream: NodeJS.ReadableStream): Promise<Map<string, string>> {
    const tar = await import('tar-stream');
    const extract = tar.extract();
    const out = new Map<string, string>();
    const done = new Promise<void>((resolve, reject) => {
      extract.on('entry', (header, body, next) => {
        const chunks: Buffer[] = [];
        body.on('data', (c: unknown) => chunks.push(c as Buffer));
        body.on('end', () => {
          out.set(`${header.name}${header.type === 'directory' ? '/' : ''}`, Buffer.concat(chunks).toString('utf8'));
          next();
        });
      });
      extract.on('finish', resolve);
      extract.on('error', reject);
    });
    stream.pipe(extract as unknown as NodeJS.WritableStream);
    await done;
    return out;
  }

  it('the classic context tar leaves out what the ignore file excludes, with the shared patterns and the Docker CLI walk', async () => {
    const { mkdir, writeFile } = await import('node:fs/promises');
    const { readDockerignore } = await import('@cnb-extender/dockerfile');
    const { contextTar } = await import('./archive.ts');
    const contextDir = await temp('docker-context-');
    for (const d of ['logs', 'a/keep', 'build/x']) await mkdir(join(contextDir, d), { recursive: true });
    for (const f of ['kept.txt', 'secret1.txt', 'logs/a.log', 'logs/keep.log', 'a/keep/x', 'build/x/y', 'sub.log']) await writeFile(join(contextDir, f), f);
    await writeFile(join(contextDir, '.dockerignore'), '# comment\n/build/\nsecret?.txt\nlogs\n!logs/keep.log\na\n!*/keep\n*.log\n');
    const ignore = await readDockerignore(contextDir, join(contextDir, 'run.Dockerfile'));
    const entries = await tarEntries(contextTar(contextDir, 'D', 'FROM x\n', ignore) as unknown as NodeJS.ReadableStream);
    // logs/keep.log without its excluded directory, as the Docker CLI sends it; `!*/keep` does not reach into `a` there
    expect([...entries.keys()]).toEqual(['kept.txt', 'logs/keep.log', '.dockerignore', 'D']);
    // the Docker CLI appends the name of a Dockerfile from outside the context to the context's .dockerignore
    expect(entries.get('.dockerignore')).toBe('# comment\n/build/\nsecret?.txt\nlogs\n!logs/keep.log\na\n!*/keep\n*.log\n\nD\n');
  });

  it('the classic context tar uses <Dockerfile>.dockerignore before the context\'s .dockerignore, and refuses a malformed pattern', async () => {
    const { writeFile } = await import('node:fs/promises');
    const { readDockerignore } = await import('@cnb-extender/dockerfile');
    const { contextTar } = await import('./archive.ts');
    const dir = await temp('docker-dockerfile-');
    const contextDir = await temp('docker-context-');
    for (const f of ['a.txt', 'b.txt']) await writeFile(join(contextDir, f), f);
    await writeFile(join(contextDir, '.dockerignore'), 'a.txt\n');
    await writeFile(join(dir, 'run.Dockerfile.dockerignore'), 'b.txt\n');
    const ignore = await readDockerignore(contextDir, join(dir, 'run.Dockerfile'));
    const entries = await tarEntries(contextTar(contextDir, 'D', 'FROM x\n', ignore) as unknown as NodeJS.ReadableStream);
    expect([...entries.keys()]).toEqual(['a.txt', '.dockerignore', 'D']);
    expect(entries.get('.dockerignore')).toBe('b.txt\n\n.dockerignore\nD\n');
    expect(() => contextTar(contextDir, 'D', 'FROM x\n', { path: '/ctx/.dockerignore', text: '[\n', patterns: ['['] })).toThrow(/^reading \/ctx\/\.dockerignore: syntax error in pattern: "\["$/);
  });
});

describe('docker backend cancellation', () => {
  for (const builder of ['classic', 'buildkit'] as const) {
    it(`${builder}: stops waiting for a running build when the signal is aborted and leaves no tagged image`, async () => {
      const run = env.fixtures.run;
      const { image: base } = await readLayoutImage(run.layoutDir, run.registryRef, run.manifestDigest as Digest);
      const workDir = await temp('docker-work-');
      const contextDir = await temp('docker-context-');
      const backend = createDockerBackend({ host: env.docker.host, builder });
      const controller = new AbortController();
      const events = {
        emit(event: { type: string; instruction?: string }) {
          if (event.type === 'instruction-started' && event.instruction?.startsWith('RUN sleep')) controller.abort(new Error('stop now'));
        },
      };
      const context = { signal: controller.signal, events: events as never, workDir };
      const spec: DockerfileSpec = { extensionId: 'test/ext', kind: 'run', path: join(contextDir, 'x'), content: 'ARG base_image\nFROM ${base_image}\nRUN sleep 20\n', args: [{ name: 'base_image', value: 'x' }], contextDir };
      await expect(backend.apply(spec, base, { buildContext: contextDir, ignorePaths: [], cacheTtlMs: 0, extendDir: workDir }, context)).rejects.toThrow('stop now');
      await backend.cleanup({ ...context, signal: new AbortController().signal });
      expect(await ourImages(backend)).toEqual([]);
      expect(await readdir(workDir)).toEqual([]);
    });
  }
});

describe('docker backend base pulled by the daemon', () => {
  it('lets the daemon pull the digest reference instead of loading the base, and falls back to loading when the pull fails', async () => {
    const run = env.fixtures.run;
    const { image: base } = await readLayoutImage(run.layoutDir, run.registryRef, run.manifestDigest as Digest);
    const content = 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo pulled > /pulled\n';
    for (const [reference, pulled] of [
      [run.registryRef, true],
      [`127.0.0.1:1/fixtures/run@${run.manifestDigest}`, false],
    ] as const) {
      const workDir = await temp('docker-work-');
      const contextDir = await temp('docker-context-');
      const events = new MemorySink();
      const backend = createDockerBackend({ host: env.docker.host, pullBase: true });
      const context = { signal: new AbortController().signal, events, workDir };
      const spec: DockerfileSpec = { extensionId: 'test/ext', kind: 'run', path: join(contextDir, 'x'), content, args: [{ name: 'base_image', value: reference }], contextDir };
      const result = await backend.apply(spec, { ...base, reference }, { buildContext: contextDir, ignorePaths: [], cacheTtlMs: 0, extendDir: workDir }, context);
      expect(result.layers.slice(0, base.layers.length).map((l) => l.descriptor)).toEqual(base.layers.map((l) => l.descriptor));
      expect(result.layers).toHaveLength(base.layers.length + 1);
      const fellBack = events.ofType('debug').some((e) => e.message.includes('loading the base instead'));
      expect(fellBack).toBe(!pulled);
      await backend.cleanup(context);
    }
    expect((await fromEnv({ CNB_DOCKER_PULL_BASE: '1' })).pullBase).toBe(true);
  });
});
