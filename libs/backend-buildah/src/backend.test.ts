import { chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ExtenderError, MemorySink, extend, readLayoutImage, type DockerfileSpec } from '@cnb-extender/extender-core';
import { createWorkspace, testEnv, type Workspace } from '@cnb-extender/extender-core/testing';
import type { Digest } from '@cnb-extender/oci';
import { createBackend, createBuildahBackend, detectBuildah, isBuildahAvailable, mountsBelow, type BuildahBackendOptions } from './index.ts';

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

async function runWorkspace(dockerfile: string): Promise<Workspace> {
  const run = testEnv().fixtures.run;
  const ws = await createWorkspace({
    runImage: run.registryRef,
    baseLayout: { from: run.layoutDir, digest: run.manifestDigest as Digest, mode: 'full' },
    extensions: [{ id: 'test/ext', run: dockerfile }],
  });
  workspaces.push(ws);
  return ws;
}

/** Apply one Dockerfile directly (no core) and hand back the backend, its work dir and the result. */
async function applyOnce(dockerfile: string, options: BuildahBackendOptions = {}) {
  const run = testEnv().fixtures.run;
  const { image: base } = await readLayoutImage(run.layoutDir, run.registryRef, run.manifestDigest as Digest);
  const workDir = await temp('buildah-work-');
  const contextDir = await temp('buildah-context-');
  const backend = createBuildahBackend(options);
  const events = new MemorySink();
  const context = { signal: new AbortController().signal, events, workDir };
  const spec: DockerfileSpec = {
    extensionId: 'test/ext',
    kind: 'run',
    path: join(contextDir, 'run.Dockerfile'),
    content: dockerfile,
    args: [{ name: 'base_image', value: run.registryRef }],
    contextDir,
  };
  const result = await backend.apply(spec, base, { buildContext: contextDir, ignorePaths: [], cacheTtlMs: 0, extendDir: await temp('buildah-extend-') }, context);
  return { backend, workDir, result, base, events, context };
}

describe('buildah detection', () => {
  it('finds the buildah of the test environment and its version', async () => {
    const found = await detectBuildah();
    expect(found.available).toBe(true);
    expect(found.version).toMatch(/^\d+\.\d+/);
    expect(await isBuildahAvailable()).toBe(true);
  });

  it('reports buildah missing from PATH', async () => {
    const found = await detectBuildah({ env: { ...process.env, PATH: '/nonexistent' } });
    expect(found).toEqual({ available: false, reason: 'buildah was not found in PATH' });
    expect(await isBuildahAvailable({ env: { ...process.env, PATH: '/nonexistent' } })).toBe(false);
  });

  it('reports a buildah that is too old', async () => {
    const dir = await temp('old-buildah-');
    await writeFile(join(dir, 'buildah'), '#!/bin/sh\necho "buildah version 1.19.6 (image-spec 1.0.1, runtime-spec 1.0.2-dev)"\n');
    await chmod(join(dir, 'buildah'), 0o755);
    const found = await detectBuildah({ env: { ...process.env, PATH: dir } });
    expect(found.available).toBe(false);
    expect(found.reason).toBe('buildah 1.19.6 is too old (1.23.0 or later is needed)');
  });
});

describe('buildah backend', () => {
  it('fails the extend phase (exit 102) with a clear message when buildah is not in PATH', async () => {
    const ws = await runWorkspace('ARG base_image\nFROM ${base_image}\nRUN true\n');
    const backend = createBuildahBackend({ env: { ...process.env, PATH: '/nonexistent' } });
    const err = await extend({ kind: 'run', inputs: ws.inputs, backend }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ExtenderError);
    expect((err as ExtenderError).exitCode).toBe(102);
    expect((err as ExtenderError).message).toBe(
      'failed to extend run image: applying Dockerfile for test/ext: checking buildah: buildah was not found in PATH; install buildah (Debian: apt-get install buildah) or choose another backend',
    );
  });

  it('chooses overlay storage in its work area when overlay mounts there, and leaves no mount and no file behind', async () => {
    const { backend, workDir, context } = await applyOnce('ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo x > /x\n');
    expect(backend.storageDriver).toBe('overlay');
    expect(await readdir(workDir)).toEqual(expect.arrayContaining(['buildah', 'buildah-layers']));
    await backend.cleanup(context);
    expect(await mountsBelow(workDir)).toEqual([]);
    expect(await readdir(workDir)).toEqual([]);
  });

  it('works on vfs storage when asked', async () => {
    const { backend, result, base, context, workDir } = await applyOnce('ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo x > /x\n', { storageDriver: 'vfs' });
    expect(backend.storageDriver).toBe('vfs');
    expect(result.layers).toHaveLength(base.layers.length + 1);
    await backend.cleanup(context);
    expect(await readdir(workDir)).toEqual([]);
  });

  it('makes byte-identical layers in two separate runs with a timestamp (SOURCE_DATE_EPOCH)', async () => {
    const dockerfile = 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN mkdir -p /r && echo same > /r/file && ln -s file /r/link\n';
    const env = { ...process.env, SOURCE_DATE_EPOCH: '1700000000' };
    const one = await applyOnce(dockerfile, { env });
    const two = await applyOnce(dockerfile, { env });
    const a = one.result.layers.at(-1)!;
    const b = two.result.layers.at(-1)!;
    expect(a.descriptor.digest).toBe(b.descriptor.digest);
    expect(a.diffId).toBe(b.diffId);
    expect(one.result.config.created).toBe('2023-11-14T22:13:20Z');
    await one.backend.cleanup(one.context);
    await two.backend.cleanup(two.context);
  });

  it('streams the steps as events', async () => {
    const { events, backend, context } = await applyOnce('ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo x > /x\nENV A=1\n');
    expect(events.ofType('instruction-started').map((e) => e.instruction)).toEqual([expect.stringMatching(/^FROM /), 'USER root', 'RUN echo x > /x', 'ENV A=1']);
    expect(events.ofType('layer-written')).toHaveLength(1);
    await backend.cleanup(context);
  });

  it('is created by the backend registry factory from the environment', async () => {
    const backend = createBackend({ env: { BUILDAH_ISOLATION: 'chroot', SOURCE_DATE_EPOCH: '0' } });
    expect(backend.id).toBe('buildah');
    expect(backend.isolation).toBe('chroot');
    expect(backend.timestamp).toBe(0);
    expect(createBackend({ env: {} }).isolation).toBe('chroot');
  });
});



describe('buildah backend cancellation', () => {
  it('stops a running build when the signal is aborted and cleans up without leaving mounts', async () => {
    const run = testEnv().fixtures.run;
    const { image: base } = await readLayoutImage(run.layoutDir, run.registryRef, run.manifestDigest as Digest);
    const workDir = await temp('buildah-work-');
    const contextDir = await temp('buildah-context-');
    const backend = createBuildahBackend();
    const controller = new AbortController();
    const events = {
      emit(event: { type: string; instruction?: string }) {
        if (event.type === 'instruction-started' && event.instruction?.startsWith('RUN sleep')) controller.abort(new Error('stop now'));
      },
    };
    const context = { signal: controller.signal, events: events as never, workDir };
    const spec: DockerfileSpec = { extensionId: 'test/ext', kind: 'run', path: join(contextDir, 'x'), content: 'ARG base_image\nFROM ${base_image}\nRUN sleep 600\n', args: [{ name: 'base_image', value: 'x' }], contextDir };
    await expect(backend.apply(spec, base, { buildContext: contextDir, ignorePaths: [], cacheTtlMs: 0, extendDir: workDir }, context)).rejects.toThrow('stop now');
    await backend.cleanup({ ...context, signal: new AbortController().signal });
    expect(await mountsBelow(workDir)).toEqual([]);
    expect(await readdir(workDir)).toEqual([]);
  });
});
