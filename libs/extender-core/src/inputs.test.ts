import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Digest } from '@cnb-extender/oci';
import { ExtenderError } from './errors.ts';
import { extend } from './extend.ts';
import { FakeBackend } from './testing/fake-backend.ts';
import { testEnv } from './testing/testenv.ts';
import { createWorkspace, type Workspace, type WorkspaceOptions } from './testing/workspace.ts';

const header = 'ARG base_image\nFROM ${base_image}\n';
const workspaces: Workspace[] = [];
afterEach(async () => {
  for (const ws of workspaces.splice(0)) await ws.remove();
});

async function workspace(options: WorkspaceOptions = {}): Promise<Workspace> {
  const run = testEnv().fixtures.run;
  const ws = await createWorkspace({
    runImage: run.registryRef,
    buildImage: run.registryRef,
    baseLayout: { from: run.layoutDir, digest: run.manifestDigest as Digest, mode: 'sparse' },
    extensions: [{ id: 'curl', build: `${header}RUN echo a > /a\n`, run: `${header}RUN echo a > /a\n` }],
    ...options,
  });
  workspaces.push(ws);
  return ws;
}

async function failure(ws: Workspace, kind: 'build' | 'run' = 'run', platformApi?: string): Promise<ExtenderError> {
  const inputs = platformApi ? { ...ws.inputs, platformApi } : ws.inputs;
  const err = await extend({ kind, inputs, backend: new FakeBackend() }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ExtenderError);
  return err as ExtenderError;
}

describe('input errors (a code per failure, messages naming the file)', () => {
  it('malformed analyzed.toml → ANALYZED_INVALID, names analyzed.toml', async () => {
    const ws = await workspace({ analyzedToml: '[run-image\nreference = ' });
    const err = await failure(ws);
    expect(err.code).toBe('ANALYZED_INVALID');
    expect(err.path).toBe(ws.inputs.analyzedPath);
    expect(err.message).toContain(`failed to extend run image: initializing extender: parsing analyzed file ${ws.inputs.analyzedPath}: `);
  });

  it('missing analyzed.toml → ANALYZED_INVALID, names analyzed.toml', async () => {
    const ws = await workspace();
    await rm(ws.inputs.analyzedPath);
    const err = await failure(ws);
    expect(err.code).toBe('ANALYZED_INVALID');
    expect(err.message).toBe(`failed to extend run image: initializing extender: reading analyzed file ${ws.inputs.analyzedPath}: file does not exist`);
  });

  it('analyzed.toml without the reference for the kind → ANALYZED_INVALID, names analyzed.toml', async () => {
    const ws = await workspace({ analyzedToml: '[run-image]\nreference = "x@sha256:' + '0'.repeat(64) + '"\n' });
    const err = await failure(ws, 'build');
    expect(err.code).toBe('ANALYZED_INVALID');
    expect(err.message).toContain(`${ws.inputs.analyzedPath}: no build-image.reference to extend`);
  });

  it('malformed group.toml → GROUP_INVALID, names group.toml', async () => {
    const ws = await workspace({ groupToml: '[[group-extensions]]\nid = \n' });
    const err = await failure(ws);
    expect(err.code).toBe('GROUP_INVALID');
    expect(err.message).toContain(`parsing group file ${ws.inputs.groupPath}`);
  });

  it('malformed extend-config.toml → EXTEND_CONFIG_INVALID, names the file', async () => {
    const ws = await workspace({ extensions: [{ id: 'curl', run: header, config: '[[run.args]\nname = "x"' }] });
    const err = await failure(ws);
    expect(err.code).toBe('EXTEND_CONFIG_INVALID');
    expect(err.message).toContain(`parsing extend config ${join(ws.generatedDir, 'curl', 'extend-config.toml')}`);
  });

  it('missing Dockerfile directory (<generated>) → DOCKERFILE_DIR_MISSING, names the directory', async () => {
    const ws = await workspace();
    await rm(ws.generatedDir, { recursive: true });
    const err = await failure(ws);
    expect(err.code).toBe('DOCKERFILE_DIR_MISSING');
    expect(err.message).toBe(`failed to extend run image: getting run.Dockerfiles: finding run Dockerfiles: generated directory ${ws.generatedDir} does not exist`);
  });

  it('unreadable build context (a context.run that cannot be resolved) → CONTEXT_UNREADABLE, names the context', async () => {
    const ws = await workspace();
    const context = join(ws.generatedDir, 'curl', 'context.run');
    await symlink(context, context); // a loop: stat fails with ELOOP
    const err = await failure(ws);
    expect(err.code).toBe('CONTEXT_UNREADABLE');
    expect(err.message).toContain(context);
  });

  it('unreadable build context (missing <app> below Platform API 0.13) → CONTEXT_UNREADABLE, names the context', async () => {
    const ws = await workspace({ platformApi: '0.12' });
    await rm(ws.appDir, { recursive: true });
    const err = await failure(ws);
    expect(err.code).toBe('CONTEXT_UNREADABLE');
    expect(err.message).toContain(`reading build context ${ws.appDir} for extension curl`);
  });

  for (const api of ['0.9', '0.16', '1.0', 'nonsense', '']) {
    it(`unsupported Platform API ${JSON.stringify(api)} → PLATFORM_API_UNSUPPORTED`, async () => {
      const ws = await workspace();
      const err = await failure(ws, 'run', api === '' ? ' ' : api);
      expect(err.code).toBe('PLATFORM_API_UNSUPPORTED');
      expect(err.message).toMatch(/^failed to (get|parse|set) platform API/);
    });
  }

  for (const api of ['0.6', '0.13', '2.0']) {
    it(`extension API ${api} outside the supported range → EXTENSION_API_UNSUPPORTED, names group.toml and the extension`, async () => {
      const ws = await workspace({ extensions: [{ id: 'curl', version: '1.2.3', api, run: header }] });
      const err = await failure(ws);
      expect(err.code).toBe('EXTENSION_API_UNSUPPORTED');
      expect(err.message).toContain(ws.inputs.groupPath);
      expect(err.message).toContain("Extension 'curl@1.2.3'");
    });
  }

  it('accepts a context dir that exists and is readable', async () => {
    const ws = await workspace();
    await mkdir(join(ws.generatedDir, 'curl', 'context.run'));
    await writeFile(join(ws.generatedDir, 'curl', 'context.run', 'f'), 'x');
    await expect(extend({ kind: 'run', inputs: ws.inputs, backend: new FakeBackend() })).resolves.toBeDefined();
  });
});
