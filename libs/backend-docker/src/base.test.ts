/**
 * How the base gets into the daemon: not at all when the daemon has it, and
 * without the layers it already holds when a Dockerfile's base is the previous
 * one's result. The backend talks to the test dockerd through a loopback TCP
 * forwarder that counts the bytes sent to the daemon.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startSocketForwarder, type SocketForwarder } from '@cnb-extender/testenv';
import { MemorySink, readLayoutImage, type DockerfileSpec, type ImageDescription } from '@cnb-extender/extender-core';
import { readLayerPaths } from '@cnb-extender/extender-core/testing';
import type { Digest } from '@cnb-extender/oci';
import { connect, createDockerBackend, type DockerBackend } from './index.ts';

const env = inject('testenv');
let dir: string;
let forwarder: SocketForwarder;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'docker-base-'));
  forwarder = await startSocketForwarder(env.docker.socketPath);
});

afterAll(async () => {
  await forwarder?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Apply `content` to `base`; returns the result, the backend's debug messages and the bytes sent to the daemon meanwhile. */
async function apply(backend: DockerBackend, base: ImageDescription, content: string, ignorePaths: string[] = []) {
  const contextDir = await mkdtemp(join(dir, 'ctx-'));
  await writeFile(join(contextDir, 'ctx.txt'), 'from the context\n');
  const workDir = join(dir, 'work');
  const events = new MemorySink();
  const spec: DockerfileSpec = { extensionId: 'test/ext', kind: 'run', path: join(contextDir, 'run.Dockerfile'), content, args: [{ name: 'base_image', value: 'x' }], contextDir };
  const sentBefore = forwarder.bytesIn;
  const result = await backend.apply(spec, base, { buildContext: contextDir, ignorePaths, cacheTtlMs: 0, extendDir: dir }, { signal: new AbortController().signal, events, workDir });
  const debug = events.ofType('debug').map((e) => e.message).filter((m) => /\bbase\b/.test(m));
  return { result, debug, sent: forwarder.bytesIn - sentBefore, context: { signal: new AbortController().signal, events, workDir } };
}

/** The fixture run image with a label no other test uses: a config (hence an image ID) the daemon has never seen, as an intermediate base has. */
async function freshBase(): Promise<ImageDescription> {
  const run = env.fixtures.run;
  const { image } = await readLayoutImage(run.layoutDir, run.registryRef, run.manifestDigest as Digest);
  const config = structuredClone(image.config);
  config.config = { ...config.config, Labels: { ...config.config?.Labels, 'test.base': randomUUID() } };
  const { manifestDigest: _pinned, ...rest } = image;
  return { ...rest, config };
}

async function tagsOf(backend: DockerBackend): Promise<string[]> {
  const images = await connect(env.docker.host).docker.listImages();
  return images.flatMap((i) => i.RepoTags ?? []).filter((t) => t.includes(`-${backend.runId}:`)).sort();
}

const ONE = 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo one > /one && mkdir /ignored && echo x > /ignored/x\nUSER 1000:1000\n';
const TWO = 'ARG base_image\nFROM ${base_image}\nUSER root\nCOPY ctx.txt /two/ctx.txt\nRUN echo two > /two/two\nUSER 1000:1000\n';
const THREE = 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo three > /three\nUSER 1000:1000\n';
const LOADING = /^docker: loading base sha256:[0-9a-f]{64}: /;

describe.each(['classic', 'buildkit'] as const)('docker backend (%s): the base in the daemon', (builder) => {
  it('sends the base layers once for Dockerfiles in a row (each base the previous result), and nothing for a base the daemon has', async () => {
    const base = await freshBase();
    const baseBytes = base.layers.reduce((sum, l) => sum + l.descriptor.size, 0);
    const smallest = Math.min(...base.layers.filter((l) => l.descriptor.size > 10_000).map((l) => l.descriptor.size));
    const backend = createDockerBackend({ host: forwarder.address, builder });
    const workDir = join(dir, 'work');
    try {
      // 1. a base the daemon has never seen: every layer is sent
      const first = await apply(backend, base, ONE, ['/ignored']);
      expect(first.debug).toEqual([expect.stringMatching(LOADING)]);
      expect(first.debug[0]).toMatch(/: sending all 2 layers$/);
      expect(first.sent).toBeGreaterThan(baseBytes);

      // 2. its result is the next base: the kit left /ignored out of the new layer, so that
      // layer is not the daemon's and is sent; the base layers are not
      const second = await apply(backend, first.result, TWO);
      expect(second.debug).toEqual([expect.stringMatching(LOADING)]);
      expect(second.debug[0]).toMatch(/: 2 of 3 layers already in the daemon, sending 1$/);
      expect(second.sent).toBeLessThan(smallest);
      expect(second.result.layers.slice(0, 3).map((l) => l.descriptor)).toEqual(first.result.layers.map((l) => l.descriptor));
      expect(second.result.layers).toHaveLength(5);

      // 3. and again, now with new layers the kit kept as the builder made them: only the config is sent
      const third = await apply(backend, second.result, THREE);
      expect(third.debug).toEqual([expect.stringMatching(LOADING)]);
      expect(third.debug[0]).toMatch(/: 5 of 5 layers already in the daemon, sending 0$/);
      expect(third.sent).toBeLessThan(smallest);

      // 4. the same base again (a retry, another extension of the same image): only tagged
      const fourth = await apply(backend, second.result, ONE);
      expect(fourth.debug).toEqual([expect.stringMatching(/^docker: base sha256:[0-9a-f]{64} is already in the daemon; not loading it$/)]);
      expect(fourth.sent).toBeLessThan(smallest);

      // the same Dockerfile through a backend that holds nothing (all layers sent) gives the same result
      const fresh = createDockerBackend({ host: env.docker.host, builder });
      try {
        const reference = await apply(fresh, first.result, TWO);
        expect(reference.debug[0]).toMatch(/: sending all 3 layers$/);
        for (const k of [3, 4]) expect(await readLayerPaths(second.result.layers[k]!.blob!)).toEqual(await readLayerPaths(reference.result.layers[k]!.blob!));
        expect(second.result.config.config).toEqual(reference.result.config.config);
        expect(second.result.config.rootfs.diff_ids.slice(0, 3)).toEqual(reference.result.config.rootfs.diff_ids.slice(0, 3));
      } finally {
        await fresh.cleanup({ signal: new AbortController().signal, events: new MemorySink(), workDir });
      }
      // only the last base and result are kept between applies, none after cleanup
      expect(await tagsOf(backend)).toEqual([`cnb-extender-base-${backend.runId}:4`, `cnb-extender-result-${backend.runId}:4`]);
    } finally {
      await backend.cleanup({ signal: new AbortController().signal, events: new MemorySink(), workDir });
    }
    expect(await tagsOf(backend)).toEqual([]);
  });

  it('finds the original base by its digest reference when the daemon pulled it', async () => {
    // the test environment pulled the fixture into dockerd by tag; its manifest digest is the registry reference's
    const run = env.fixtures.run;
    const { image } = await readLayoutImage(run.layoutDir, run.registryRef, run.manifestDigest as Digest);
    const backend = createDockerBackend({ host: forwarder.address, builder });
    try {
      const applied = await apply(backend, image, ONE);
      expect(applied.debug).toEqual([`docker: base ${run.registryRef} is already in the daemon (${(await connect(env.docker.host).docker.getImage(run.dockerRef).inspect()).Id}); not loading it`]);
      expect(applied.sent).toBeLessThan(image.layers[0]!.descriptor.size);
      expect(await readLayerPaths(applied.result.layers.at(-1)!.blob!)).toContain('one');
    } finally {
      await backend.cleanup({ signal: new AbortController().signal, events: new MemorySink(), workDir: join(dir, 'work') });
    }
    // only our tag was removed: the image pulled by the environment is still there
    expect((await connect(env.docker.host).docker.getImage(run.dockerRef).inspect()).RepoTags).toContain(run.dockerRef);
  });
});

// Classic builder only: BuildKit's cache keeps the layers of images removed from the
// daemon's store, so a load counting on them works there anyway.
describe('docker backend (classic): the base in the daemon', () => {
  it('sends every layer again when an image it counted on is gone', async () => {
    const base = await freshBase();
    const backend = createDockerBackend({ host: forwarder.address, builder: 'classic' });
    const workDir = join(dir, 'work');
    try {
      const first = await apply(backend, base, THREE);
      // someone removes the images the backend keeps for the next base
      for (const tag of await tagsOf(backend)) await connect(env.docker.host).docker.getImage(tag).remove({ force: true });
      const second = await apply(backend, first.result, TWO);
      expect(second.debug).toEqual([
        expect.stringMatching(/: 3 of 3 layers already in the daemon, sending 0$/),
        expect.stringMatching(/^docker: loading base sha256:[0-9a-f]{64} without its first 3 layers failed \(.+\); sending all of them$/),
        expect.stringMatching(/: sending all 3 layers$/),
      ]);
      expect(await readLayerPaths(second.result.layers.at(-1)!.blob!)).toContain('two/two');
    } finally {
      await backend.cleanup({ signal: new AbortController().signal, events: new MemorySink(), workDir });
    }
  });
});
