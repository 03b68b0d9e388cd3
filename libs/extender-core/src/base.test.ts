import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { testEnv } from './testing/testenv.ts';
import { RegistryClient, parseReference, type Digest, type ImageManifest } from '@cnb-extender/oci';
import { readLayoutImage, registryAccess, resolveBaseImage, type RegistryAccess } from './base.ts';
import type { ImageDescription, ResolveBaseRequest } from './backend.ts';
import { ExtenderError } from './errors.ts';
import { MemorySink } from './events.ts';
import { extend } from './extend.ts';
import { FakeBackend } from './testing/fake-backend.ts';
import { copyLayoutImage, createWorkspace, type Workspace, type WorkspaceOptions } from './testing/workspace.ts';

const header = 'ARG base_image\nFROM ${base_image}\n';
const workspaces: Workspace[] = [];
afterEach(async () => {
  for (const ws of workspaces.splice(0)) await ws.remove();
});

async function workspace(options: WorkspaceOptions): Promise<Workspace> {
  const ws = await createWorkspace(options);
  workspaces.push(ws);
  return ws;
}

/** The fixture run image's manifest as the loopback registry serves it. */
async function registryManifest(): Promise<{ digest: Digest; manifest: ImageManifest }> {
  const run = testEnv().fixtures.run;
  const client = new RegistryClient();
  const resolved = await client.getManifest(parseReference(run.registryRef));
  return { digest: resolved.descriptor.digest, manifest: resolved.manifest as ImageManifest };
}

describe('base image resolution', () => {
  for (const mode of ['sparse', 'full'] as const) {
    it(`reads a ${mode} layout from <extend-dir>/cache/base/<digest> and matches the registry's manifest`, async () => {
      const run = testEnv().fixtures.run;
      const ws = await workspace({ baseLayout: { from: run.layoutDir, digest: run.manifestDigest as Digest, mode } });
      const events = new MemorySink();
      const image = await resolveBaseImage({ kind: 'run', reference: run.registryRef, extendDir: ws.extendDir, events, signal: new AbortController().signal });
      const fromRegistry = await registryManifest();
      expect(fromRegistry.digest).toBe(run.manifestDigest);
      expect(image.manifestDigest).toBe(run.manifestDigest);
      expect(image.layers.map((l) => l.descriptor)).toEqual(fromRegistry.manifest.layers);
      expect(image.config.rootfs.diff_ids).toEqual(image.layers.map((l) => l.diffId));
      expect(events.ofType('base-resolved')).toEqual([
        expect.objectContaining({ source: mode === 'sparse' ? 'layout-sparse' : 'layout-full', manifestDigest: run.manifestDigest, location: join(ws.extendDir, 'cache', 'base', run.manifestDigest) }),
      ]);
      for (const layer of image.layers) {
        if (mode === 'sparse') expect(layer.blob).toBeUndefined();
        else expect(layer.blob).toEqual({ kind: 'file', path: join(ws.extendDir, 'cache', 'base', run.manifestDigest, 'blobs', 'sha256', layer.descriptor.digest.slice(7)) });
      }
    });
  }

  it('falls back to the registry with the digest reference from analyzed.toml when the extend dir has no layout', async () => {
    const run = testEnv().fixtures.run;
    const ws = await workspace({ runImage: run.registryRef, extensions: [{ id: 'A', run: `${header}RUN echo a > /a\n` }] });
    const events = new MemorySink();
    const result = await extend({ kind: 'run', inputs: ws.inputs, backend: new FakeBackend(), events });
    expect(events.ofType('base-resolved')).toEqual([expect.objectContaining({ source: 'registry', reference: run.registryRef, manifestDigest: run.manifestDigest })]);
    const fromRegistry = await registryManifest();
    const index = JSON.parse(await readFile(join(result.outputDir!, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
    const manifest = JSON.parse(await readFile(join(result.outputDir!, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as ImageManifest;
    expect(manifest.layers.slice(0, fromRegistry.manifest.layers.length)).toEqual(fromRegistry.manifest.layers);
  });

  it('resolves a tag reference to a digest first and reports the resolution', async () => {
    const run = testEnv().fixtures.run;
    const tagRef = run.dockerRef; // 127.0.0.1:<port>/fixtures/run:latest in the plain registry
    const ws = await workspace({ runImage: tagRef, extensions: [{ id: 'A', run: `${header}ARG base_image\nRUN echo \${base_image} > /base\n` }] });
    const events = new MemorySink();
    const backend = new FakeBackend();
    await extend({ kind: 'run', inputs: ws.inputs, backend, events });
    const resolved = events.ofType('base-resolved')[0]!;
    expect(resolved.resolvedFrom).toBe(tagRef);
    expect(resolved.manifestDigest).toBe(run.manifestDigest);
    expect(resolved.reference).toBe(`${tagRef.slice(0, tagRef.lastIndexOf(':'))}@${run.manifestDigest}`);
    expect(backend.calls[0]!.dockerfile.args.at(-1)).toEqual({ name: 'base_image', value: resolved.reference });
  });

  it('uses the registry auth of libs/oci (TLS + basic auth registry, credentials from CNB_REGISTRY_AUTH)', async () => {
    const env = testEnv();
    const run = env.fixtures.run;
    const secure = env.secureRegistry;
    // Copy the fixture into the secure registry under a new name.
    const plain = new RegistryClient();
    const auth = { [secure.host]: `Basic ${Buffer.from(`${secure.username}:${secure.password}`).toString('base64')}` };
    const client = new RegistryClient({ caFile: secure.caFile, env: { CNB_REGISTRY_AUTH: JSON.stringify(auth) } });
    const src = parseReference(run.registryRef);
    const dest = { registry: secure.host, repository: 'extender-core/base' };
    const manifest = await plain.getManifest(src);
    const parsed = manifest.manifest as ImageManifest;
    for (const blob of [parsed.config, ...parsed.layers]) await client.pushBlob(dest, blob, await plain.getBlobBytes(src, blob.digest));
    await client.putManifest(dest, manifest.descriptor.digest, manifest.bytes, manifest.descriptor.mediaType);

    const reference = `${secure.host}/extender-core/base@${manifest.descriptor.digest}`;
    const ws = await workspace({ runImage: reference, extensions: [{ id: 'A', run: `${header}RUN echo a > /a\n` }] });
    const events = new MemorySink();
    await extend({ kind: 'run', inputs: ws.inputs, backend: new FakeBackend(), events, registry: registryAccess(client) });
    expect(events.ofType('base-resolved')[0]).toEqual(expect.objectContaining({ source: 'registry', manifestDigest: manifest.descriptor.digest }));

    const anonymous = registryAccess(new RegistryClient({ caFile: secure.caFile, env: {} }));
    const err = (await extend({ kind: 'run', inputs: ws.inputs, backend: new FakeBackend(), registry: anonymous }).catch((e: unknown) => e)) as ExtenderError;
    expect(err).toBeInstanceOf(ExtenderError);
    expect(err.code).toBe('BASE_IMAGE');
    expect(err.message).toMatch(/^failed to extend run image: getting run image to extend: resolving run image .*: from the registry: /);
  });

  describe('the image to extend is verified before anything is applied', () => {
    it('refuses a cache/base/<digest> layout whose index.json does not list that digest', async () => {
      const { run, build } = testEnv().fixtures;
      // the run image's layout, named after the build image as a confused restorer could leave it
      const ws = await workspace({
        runImage: `${run.registryRef.slice(0, run.registryRef.indexOf('@'))}@${build.manifestDigest}`,
        extensions: [{ id: 'A', run: `${header}RUN echo a > /a\n` }],
      });
      await copyLayoutImage(run.layoutDir, run.manifestDigest as Digest, join(ws.extendDir, 'cache', 'base', build.manifestDigest), 'full');
      const backend = new FakeBackend();
      const err = (await extend({ kind: 'run', inputs: ws.inputs, backend }).catch((e: unknown) => e)) as ExtenderError;
      expect(err).toBeInstanceOf(ExtenderError);
      expect(err.code).toBe('BASE_IMAGE');
      expect(err.message).toBe(
        `failed to extend run image: getting run image to extend: resolving run image ${run.registryRef.slice(0, run.registryRef.indexOf('@'))}@${build.manifestDigest}: the layout ${join(ws.extendDir, 'cache', 'base', build.manifestDigest)} does not hold ${build.manifestDigest}: its index.json lists ${run.manifestDigest}`,
      );
      expect(backend.calls).toEqual([]);
    });

    it("refuses an image whose os/architecture is not analyzed.toml's [run-image.target], wherever it comes from", async () => {
      const run = testEnv().fixtures.run;
      const actual = (await readLayoutImage(run.layoutDir, run.registryRef, run.manifestDigest as Digest)).image.config;
      const other = actual.architecture === 'arm64' ? 'amd64' : 'arm64';
      const analyzed = (arch: string) => `[run-image]\n  reference = "${run.registryRef}"\n  extend = true\n  [run-image.target]\n    os = "linux"\n    arch = "${arch}"\n`;
      for (const baseLayout of [{ from: run.layoutDir, digest: run.manifestDigest as Digest, mode: 'sparse' as const }, undefined]) {
        const ws = await workspace({ analyzedToml: analyzed(other), extensions: [{ id: 'A', run: `${header}RUN echo a > /a\n` }], ...(baseLayout ? { baseLayout } : {}) });
        const backend = new FakeBackend();
        const err = (await extend({ kind: 'run', inputs: ws.inputs, backend }).catch((e: unknown) => e)) as ExtenderError;
        expect(err).toBeInstanceOf(ExtenderError);
        expect(err.code).toBe('BASE_IMAGE');
        const source = baseLayout ? `in the layout ${join(ws.extendDir, 'cache', 'base', run.manifestDigest)}` : 'from the registry';
        expect(err.message).toBe(
          `failed to extend run image: getting run image to extend: resolving run image ${run.registryRef}: the image ${source} is linux/${actual.architecture}, but analyzed.toml's [run-image.target] is linux/${other}; extend an image of the platform that was analyzed`,
        );
        expect(backend.calls).toEqual([]);
        // the platform that was analyzed: extended
        const same = await workspace({ analyzedToml: analyzed(actual.architecture), extensions: [{ id: 'A', run: `${header}RUN echo a > /a\n` }], ...(baseLayout ? { baseLayout } : {}) });
        await expect(extend({ kind: 'run', inputs: same.inputs, backend: new FakeBackend() })).resolves.toMatchObject({ kind: 'run' });
      }
    });
  });

  describe('a backend with its own resolution', () => {
    class ResolvingBackend extends FakeBackend {
      readonly requests: ResolveBaseRequest[] = [];
      async resolveBase(request: ResolveBaseRequest): Promise<ImageDescription | undefined> {
        this.requests.push(request);
        const run = testEnv().fixtures.run;
        return (await readLayoutImage(run.layoutDir, request.reference, run.manifestDigest as Digest)).image;
      }
    }
    const noRegistry: RegistryAccess = {
      resolve: () => Promise.reject(new Error('the registry must not be asked')),
      blob: () => Promise.reject(new Error('the registry must not be asked')),
    };

    it('is asked when the extend dir has no layout, before the registry', async () => {
      const run = testEnv().fixtures.run;
      const ws = await workspace({ runImage: run.registryRef, extensions: [{ id: 'A', run: `${header}RUN echo a > /a\n` }] });
      const backend = new ResolvingBackend();
      const events = new MemorySink();
      await extend({ kind: 'run', inputs: ws.inputs, backend, events, registry: noRegistry });
      expect(backend.requests).toEqual([{ kind: 'run', reference: run.registryRef, extendDir: ws.extendDir }]);
      expect(events.ofType('base-resolved')).toEqual([expect.objectContaining({ source: 'backend', manifestDigest: run.manifestDigest })]);
    });

    it('is not asked when the extend dir has the layout', async () => {
      const run = testEnv().fixtures.run;
      const ws = await workspace({
        runImage: run.registryRef,
        baseLayout: { from: run.layoutDir, digest: run.manifestDigest as Digest, mode: 'sparse' },
        extensions: [{ id: 'A', run: `${header}RUN echo a > /a\n` }],
      });
      const backend = new ResolvingBackend();
      await extend({ kind: 'run', inputs: ws.inputs, backend, registry: noRegistry });
      expect(backend.requests).toEqual([]);
    });
  });
});
