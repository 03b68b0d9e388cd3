/**
 * The docker backend on the engines platforms run: the Engine API version is
 * negotiated, BuildKit builds wherever the daemon has it (the syntax the classic
 * builder lacks works), an engine too old for what is asked is refused clearly,
 * and a daemon that goes away mid-build fails the phase with nothing written.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tar from 'tar-stream';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { ensureCurrentEngineRoot, startDockerd, writeEngineTools, type RunningDockerd } from '@cnb-extender/testenv';
import { ExtenderError, MemorySink, extend, readLayoutImage, type DockerfileSpec } from '@cnb-extender/extender-core';
import { createWorkspace, readLayerPaths, type Workspace } from '@cnb-extender/extender-core/testing';
import type { Digest } from '@cnb-extender/oci';
import { API_VERSION_MAX, builderFromEnv, compareApiVersions, createDockerBackend } from './index.ts';

const env = inject('testenv');
const temps: string[] = [];
const workspaces: Workspace[] = [];
const servers: Server[] = [];
afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
  for (const ws of workspaces) await ws.remove();
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});
async function temp(prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

/** What failed with the classic builder on Docker 28: `COPY --chmod`, and a RUN as a non-root USER in a WORKDIR it creates. */
const BUILDKIT_SYNTAX = `ARG base_image
FROM \${base_image}
USER root
COPY --chmod=0751 tool.sh /opt/tool.sh
USER 1000:1000
WORKDIR /home/cnb/fresh
RUN echo made-by-cnb > made
`;

/** Applies `dockerfile` once and returns the paths of its new layers (read before cleanup). */
async function applyWith(backend: ReturnType<typeof createDockerBackend>, dockerfile: string): Promise<{ paths: string[] }> {
  const run = env.fixtures.run;
  const { image: base } = await readLayoutImage(run.layoutDir, run.registryRef, run.manifestDigest as Digest);
  const workDir = await temp('docker-engines-work-');
  const contextDir = await temp('docker-engines-ctx-');
  const { writeFile } = await import('node:fs/promises');
  await writeFile(join(contextDir, 'tool.sh'), '#!/bin/sh\necho tool\n');
  const context = { signal: new AbortController().signal, events: new MemorySink(), workDir };
  const spec: DockerfileSpec = { extensionId: 'test/ext', kind: 'run', path: join(contextDir, 'run.Dockerfile'), content: dockerfile, args: [{ name: 'base_image', value: run.registryRef }], contextDir };
  try {
    const result = await backend.apply(spec, base, { buildContext: contextDir, ignorePaths: [], cacheTtlMs: 0, extendDir: workDir }, context);
    return { paths: (await Promise.all(result.layers.slice(base.layers.length).map((l) => readLayerPaths(l.blob!)))).flat() };
  } finally {
    await backend.cleanup(context);
  }
}

describe.each(env.engines.map((e) => ({ ...e, name: `${e.id} (Docker ${e.docker.version}, API ${e.docker.apiVersion})` })))('the docker backend on $name', (engineSet) => {
  it('negotiates the API version and builds with BuildKit by default, so BuildKit-only syntax works', async () => {
    const backend = createDockerBackend({ host: engineSet.docker.host });
    expect(backend.builder).toBe('auto');
    const { paths } = await applyWith(backend, BUILDKIT_SYNTAX);
    expect(backend.builder).toBe('buildkit');
    const expected = compareApiVersions(engineSet.docker.apiVersion, API_VERSION_MAX) < 0 ? engineSet.docker.apiVersion : API_VERSION_MAX;
    expect(backend.daemon).toMatchObject({ apiVersion: engineSet.docker.apiVersion, negotiated: expected, buildkit: true, builderVersion: engineSet.docker.builderVersion });
    expect(paths).toContain('opt/tool.sh');
    expect(paths).toContain('home/cnb/fresh/made');
  });

  it('with the classic builder asked for, fails that syntax naming the instruction and the builder', async () => {
    const backend = createDockerBackend({ host: engineSet.docker.host, builder: 'classic' });
    const error = await applyWith(backend, BUILDKIT_SYNTAX).then(() => undefined, (e: unknown) => e as Error);
    expect(error?.message).toMatch(/docker build \(classic builder\) at unix:\/\/.* failed: .*(chmod|BuildKit)/i);
  });
});

describe('choosing the builder', () => {
  it('reads CNB_DOCKER_BUILDER, then DOCKER_BUILDKIT as the Docker CLI does, else auto', () => {
    expect(builderFromEnv({})).toBe('auto');
    expect(builderFromEnv({ CNB_DOCKER_BUILDER: 'classic', DOCKER_BUILDKIT: '1' })).toBe('classic');
    expect(builderFromEnv({ CNB_DOCKER_BUILDER: 'BuildKit' })).toBe('buildkit');
    expect(builderFromEnv({ DOCKER_BUILDKIT: '1' })).toBe('buildkit');
    expect(builderFromEnv({ DOCKER_BUILDKIT: 'true' })).toBe('buildkit');
    expect(builderFromEnv({ DOCKER_BUILDKIT: '0' })).toBe('classic');
    expect(() => builderFromEnv({ CNB_DOCKER_BUILDER: 'kaniko' })).toThrow('reading CNB_DOCKER_BUILDER=kaniko: expected auto, buildkit or classic');
  });
});

/**
 * A daemon of an older Engine in front of a real one: `_ping` names `apiVersion`
 * and, as such a daemon does, a request for a newer version is refused (HTTP 400).
 * With `imageArchive`, every `GET /images/{name}/get` answers that tar instead.
 */
async function olderEngine(apiVersion: string, socketPath: string, imageArchive?: Buffer): Promise<string> {
  const dir = await temp('docker-older-');
  const front = join(dir, 'docker.sock');
  const server = createServer((req, res) => {
    const asked = /^\/v(\d+\.\d+)\//.exec(req.url ?? '')?.[1];
    if (asked && compareApiVersions(asked, apiVersion) > 0) {
      res.writeHead(400, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify({ message: `client version ${asked} is too new. Maximum supported API version is ${apiVersion}` }));
      return;
    }
    if (imageArchive && req.method === 'GET' && /\/images\/[^?]+\/get(\?|$)/.test(req.url ?? '')) {
      req.resume();
      res.writeHead(200, { 'Content-Type': 'application/x-tar' });
      res.end(imageArchive);
      return;
    }
    const upstream = request({ socketPath, path: req.url, method: req.method, headers: req.headers }, (answer: IncomingMessage) => {
      const headers = { ...answer.headers };
      if (req.url === '/_ping') {
        headers['api-version'] = apiVersion;
        headers['builder-version'] = '';
      }
      res.writeHead(answer.statusCode ?? 502, headers);
      answer.pipe(res);
    });
    upstream.on('error', (err) => res.destroy(err));
    req.pipe(upstream);
  });
  // BuildKit's session (`/session`, an HTTP upgrade) goes through untouched
  server.on('upgrade', (req: IncomingMessage, client: Socket, head: Buffer) => {
    const upstream = connect({ path: socketPath }, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      upstream.write(`${lines.join('\r\n')}\r\n\r\n`);
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(front, resolve));
  return `unix://${front}`;
}

describe('an engine too old for what is asked', () => {
  const current = env.engines.find((e) => e.id === 'current')!;

  it('API 1.38 (Docker 18.06): BuildKit asked for is refused before anything is sent; auto builds with its classic builder at that version', async () => {
    const host = await olderEngine('1.38', current.docker.socketPath);
    const forced = createDockerBackend({ host, builder: 'buildkit' });
    const error = await applyWith(forced, 'ARG base_image\nFROM ${base_image}\nRUN true\n').then(() => undefined, (e: unknown) => e as Error);
    expect(error?.message).toBe(
      `connecting to the Docker daemon at ${host}: the daemon (Engine API 1.38, linux) has no BuildKit builder, which needs Engine API 1.39 or later on Linux; leave CNB_DOCKER_BUILDER unset (or auto) to use its classic builder`,
    );
    const auto = createDockerBackend({ host });
    await applyWith(auto, 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo old > /old\n');
    expect(auto.builder).toBe('classic');
    expect(auto.daemon?.negotiated).toBe('1.38');
  });

  it('API 1.23: refused through extend() with APPLY_FAILED and nothing written', async () => {
    const host = await olderEngine('1.23', current.docker.socketPath);
    const run = env.fixtures.run;
    const ws = await createWorkspace({
      runImage: run.registryRef,
      baseLayout: { from: run.layoutDir, digest: run.manifestDigest as Digest, mode: 'full' },
      extensions: [{ id: 'test/ext', run: 'ARG base_image\nFROM ${base_image}\nRUN true\n' }],
    });
    workspaces.push(ws);
    const err = await extend({ kind: 'run', inputs: ws.inputs, backend: createDockerBackend({ host }) }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ExtenderError);
    expect((err as ExtenderError).code).toBe('APPLY_FAILED');
    expect((err as Error).message).toBe(
      `failed to extend run image: applying Dockerfile for test/ext: connecting to the Docker daemon at ${host}: the daemon speaks Engine API 1.23, older than the 1.24 this backend needs`,
    );
    expect(existsSync(join(ws.extendedDir, 'run'))).toBe(false);
  });
});

describe('an image archive from the daemon with an entry that escapes its root', () => {
  it('fails extend() with APPLY_FAILED naming the entry, and writes nothing outside or as output', async () => {
    const current = env.engines.find((e) => e.id === 'current')!;
    const outside = join(await temp('docker-escape-'), 'escaped');
    const pack = tar.pack();
    pack.entry({ name: 'manifest.json' }, JSON.stringify([{ Config: 'c.json', Layers: ['l/layer.tar'] }]));
    pack.entry({ name: `../../../../../../../..${outside}` }, 'escaped\n');
    pack.entry({ name: 'c.json' }, '{"rootfs":{"type":"layers","diff_ids":[]}}');
    pack.finalize();
    const chunks: Buffer[] = [];
    for await (const chunk of pack as AsyncIterable<Buffer>) chunks.push(chunk);
    const host = await olderEngine(current.docker.apiVersion, current.docker.socketPath, Buffer.concat(chunks));
    const run = env.fixtures.run;
    const ws = await createWorkspace({
      runImage: run.registryRef,
      baseLayout: { from: run.layoutDir, digest: run.manifestDigest as Digest, mode: 'full' },
      extensions: [{ id: 'test/ext', run: 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo x > /x\n' }],
    });
    workspaces.push(ws);
    const err = await extend({ kind: 'run', inputs: ws.inputs, backend: createDockerBackend({ host }) }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(ExtenderError);
    expect((err as ExtenderError).code).toBe('APPLY_FAILED');
    expect((err as Error).message).toMatch(/^failed to extend run image: applying Dockerfile for test\/ext: exporting the built image .* from the Docker daemon at unix:\/\/.*: .*escapes the archive root/);
    expect(existsSync(outside)).toBe(false);
    expect(existsSync(join(ws.extendedDir, 'run'))).toBe(false);
  });
});

describe('a daemon that goes away mid-build', () => {
  it('fails extend() with APPLY_FAILED naming the daemon, and writes nothing', async () => {
    // a dockerd of its own (the current engines), stopped while a RUN is running
    const root = await ensureCurrentEngineRoot();
    const dir = await temp('docker-dying-');
    const tools = await writeEngineTools(root.root, join(dir, 'engine'));
    let dockerd: RunningDockerd | undefined = await startDockerd(join(dir, 'd'), { enter: tools.enter, label: 'dying' });
    try {
      const run = env.fixtures.run;
      const ws = await createWorkspace({
        runImage: run.registryRef,
        baseLayout: { from: run.layoutDir, digest: run.manifestDigest as Digest, mode: 'full' },
        extensions: [{ id: 'test/slow', run: 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo started && sleep 60\n' }],
      });
      workspaces.push(ws);
      const events = new MemorySink();
      const daemon = dockerd;
      const killer = (async () => {
        for (let i = 0; i < 600 && !events.events.some((e) => e.type === 'instruction-started'); i++) await new Promise((r) => setTimeout(r, 100));
        await daemon.stop();
      })();
      const started = Date.now();
      const err = await extend({ kind: 'run', inputs: ws.inputs, backend: createDockerBackend({ host: daemon.host }), events }).then(() => undefined, (e: unknown) => e);
      await killer;
      dockerd = undefined;
      expect(Date.now() - started).toBeLessThan(55_000);
      expect(err).toBeInstanceOf(ExtenderError);
      expect((err as ExtenderError).code).toBe('APPLY_FAILED');
      expect((err as Error).message).toMatch(/^failed to extend run image: applying Dockerfile for test\/slow: .*(Docker daemon|docker build).* at unix:\/\/.*docker\.sock/);
      expect(existsSync(join(ws.extendedDir, 'run'))).toBe(false);
      expect((await readdir(ws.extendDir)).filter((e) => e !== 'cache' && e !== 'cache.lock')).toEqual([]);
    } finally {
      await dockerd?.stop();
    }
  });
});
