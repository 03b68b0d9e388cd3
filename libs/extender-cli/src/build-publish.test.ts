import { execFile } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'smol-toml';
import { readLayoutImage } from '@cnb-extender/extender-core';
import { createWorkspace, testEnv, type Workspace } from '@cnb-extender/extender-core/testing';
import type { Digest } from '@cnb-extender/oci';
import { runExtendCommand } from './extend-command.ts';
import { parseSchedule } from './deprecation/schedule.ts';
import { Collect, createFixture, catalogWithFake, type Fixture } from './test/support.ts';

const BUILD_DOCKERFILE = 'ARG base_image\nFROM ${base_image}\nRUN echo built > /built.txt\n';
const SCHEDULE = parseSchedule('');
const run = promisify(execFile);

let fixture: Fixture | undefined;
let workspace: Workspace | undefined;
afterEach(async () => {
  await fixture?.remove();
  await workspace?.remove();
  fixture = undefined;
  workspace = undefined;
});

async function extendCommand(env: Record<string, string | undefined>) {
  const stdout = new Collect();
  const stderr = new Collect();
  const code = await runExtendCommand({ argv: [], env, stdout, stderr, version: '0.1.0', backends: catalogWithFake(), schedule: SCHEDULE });
  return { code, stdout, stderr };
}

/** analyzed.toml with a key we do not know under [build-image]: it must survive the update. */
async function addUnknownKey(analyzedPath: string): Promise<void> {
  const text = await readFile(analyzedPath, 'utf8');
  await writeFile(analyzedPath, text.replace('[build-image]\n', '[build-image]\n  future-key = "kept"\n'));
}

async function buildImageSection(analyzedPath: string): Promise<Record<string, unknown>> {
  return parse(await readFile(analyzedPath, 'utf8'))['build-image'] as Record<string, unknown>;
}

async function leftoverLayerDirs(): Promise<string[]> {
  return (await readdir(tmpdir())).filter((name) => name.startsWith('cnb-extend-layers-'));
}

describe('build kind with an image-producing backend', () => {
  it('refuses to run without a target, naming both inputs (exit 3), before extending anything', async () => {
    fixture = await createFixture([{ id: 'acme/tools', build: BUILD_DOCKERFILE }]);
    const { code, stdout, stderr } = await extendCommand(fixture.env);
    expect(code).toBe(3);
    expect(stderr.text).toContain('ERROR: failed to extend build image: the fake backend produces an image and does not change this container');
    expect(stderr.text).toContain('-extended-build-image / CNB_EXTENDED_BUILD_IMAGE');
    expect(stderr.text).toContain('-extended-build-layout / CNB_EXTENDED_BUILD_LAYOUT');
    expect(stdout.text).not.toContain('Extending build image');
  });

  it('refuses both targets at once (exit 3)', async () => {
    fixture = await createFixture([{ id: 'acme/tools', build: BUILD_DOCKERFILE }]);
    const { code, stderr } = await extendCommand({
      ...fixture.env,
      CNB_EXTENDED_BUILD_IMAGE: '127.0.0.1:1/x',
      CNB_EXTENDED_BUILD_LAYOUT: join(fixture.ws.root, 'out'),
    });
    expect(code).toBe(3);
    expect(stderr.text).toContain('ERROR: failed to extend build image: set only one of -extended-build-image');
  });

  it('writes the extended build image as an OCI layout and records it in analyzed.toml', async () => {
    fixture = await createFixture([{ id: 'acme/tools', build: BUILD_DOCKERFILE }]);
    const analyzedPath = join(fixture.ws.layersDir, 'analyzed.toml');
    await addUnknownKey(analyzedPath);
    const out = join(fixture.ws.root, 'extended-build');
    const { code, stdout, stderr } = await extendCommand({ ...fixture.env, CNB_EXTENDED_BUILD_LAYOUT: out });
    expect(stderr.text).toBe('');
    expect(code).toBe(0);
    const section = await buildImageSection(analyzedPath);
    expect(section['future-key']).toBe('kept');
    const reference = String(section['reference']);
    expect(reference).toMatch(new RegExp(`^${out.replace(/[/.]/g, '\\$&')}@sha256:[0-9a-f]{64}$`));
    const digest = reference.slice(reference.indexOf('@') + 1) as Digest;
    const { image } = await readLayoutImage(out, reference, digest);
    expect(image.layers).toHaveLength(2); // the base layer and RUN echo built
    expect(image.config.history?.some((h) => h.created_by?.includes('echo built'))).toBe(true);
    expect(stdout.text).toContain(`The extended build image is ${reference} (recorded as [build-image] reference in ${analyzedPath})`);
    expect(stdout.text).toContain('the platform must now run the builder in that image');
    expect(stdout.text).not.toContain('Running the build phase');
  });

  it('pushes the image built by buildah to the registry and records its digest reference', async () => {
    const env = testEnv();
    const build = env.fixtures.build;
    workspace = await createWorkspace({
      platformApi: '0.13',
      buildImage: build.registryRef,
      baseLayout: { from: build.layoutDir, digest: build.manifestDigest as Digest, mode: 'full' },
      // the fixture image runs as the cnb user
      extensions: [{ id: 'acme/tools', build: 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo built > /built.txt\nUSER 1000:1000\n' }],
    });
    const analyzedPath = join(workspace.layersDir, 'analyzed.toml');
    await addUnknownKey(analyzedPath);
    const target = `${env.registry.host}/extender-cli/extended-build:${Date.now()}`;
    const before = await leftoverLayerDirs();
    const { code, stdout, stderr } = await extendCommand({
      CNB_PLATFORM_API: '0.13',
      CNB_LAYERS_DIR: workspace.layersDir,
      CNB_APP_DIR: workspace.appDir,
      CNB_PLATFORM_DIR: workspace.platformDir,
      CNB_EXTEND_DIR: workspace.extendDir,
      CNB_EXTEND_BACKEND: 'buildah',
      CNB_EXTENDED_BUILD_IMAGE: target,
    });
    expect(stderr.text).toBe('');
    expect(code).toBe(0);
    const section = await buildImageSection(analyzedPath);
    expect(section['future-key']).toBe('kept');
    const reference = String(section['reference']);
    expect(reference).toMatch(new RegExp(`^${env.registry.host.replace(/\./g, '\\.')}/extender-cli/extended-build@sha256:[0-9a-f]{64}$`));
    expect(stdout.text).toContain(`The extended build image is ${reference}`);
    const { stdout: inspected } = await run('skopeo', ['inspect', '--tls-verify=false', `docker://${target}`]);
    const info = JSON.parse(inspected) as { Digest: string; Layers: string[] };
    expect(info.Digest).toBe(reference.slice(reference.indexOf('@') + 1));
    const base = JSON.parse((await run('skopeo', ['inspect', '--tls-verify=false', `docker://${build.registryRef}`])).stdout) as { Layers: string[] };
    expect(info.Layers.length).toBe(base.Layers.length + 1);
    // the layer directory outside the work directory is gone
    expect((await leftoverLayerDirs()).filter((d) => !before.includes(d))).toEqual([]);
  });
});
