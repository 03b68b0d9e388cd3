/**
 * The run-image reference mode (`-extended-run-image`, buildpacks/spec#414): with buildah
 * (an image-producing backend) against the test environment's loopback registry, the
 * extended run image is pushed and its digest reference recorded in analyzed.toml instead of
 * `<extended>/run`; the image is the one `<extended>/run` holds for the same inputs; a push
 * that fails exits 102 and leaves analyzed.toml as it was.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'smol-toml';
import { createWorkspace, testEnv, type Workspace } from '@cnb-extender/extender-core/testing';
import type { Digest } from '@cnb-extender/oci';
import { freePort } from '@cnb-extender/testenv';
import { runExtendCommand } from './extend-command.ts';
import { parseSchedule } from './deprecation/schedule.ts';
import { Collect, createFixture, catalogWithFake, catalogWithFakeInPlace, type Fixture } from './test/support.ts';

const SCHEDULE = parseSchedule('');
const run = promisify(execFile);
/** Config only: the same inputs give the same image, so the two modes can be compared byte for byte. */
const CONFIG_ONLY = 'ARG base_image\nFROM ${base_image}\nENV EXTENDED_BY=acme\nLABEL io.example.extended="yes"\n';
/** A new layer (the fixture run image runs as the CNB user). */
const WITH_LAYER = 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo extended > /extended.txt\nUSER 1000:1000\n';

const workspaces: Workspace[] = [];
let fixture: Fixture | undefined;
afterEach(async () => {
  for (const ws of workspaces.splice(0)) await ws.remove();
  await fixture?.remove();
  fixture = undefined;
});

async function workspace(dockerfile: string): Promise<Workspace> {
  const runImage = testEnv().fixtures.run;
  const ws = await createWorkspace({
    platformApi: '0.13',
    runImage: runImage.registryRef,
    baseLayout: { from: runImage.layoutDir, digest: runImage.manifestDigest as Digest, mode: 'full' },
    extensions: [{ id: 'acme/run', run: dockerfile }],
  });
  workspaces.push(ws);
  return ws;
}

async function extendRun(ws: Workspace, extra: Record<string, string> = {}, argv: string[] = []) {
  const stdout = new Collect();
  const stderr = new Collect();
  const env = {
    CNB_PLATFORM_API: '0.13',
    CNB_LAYERS_DIR: ws.layersDir,
    CNB_APP_DIR: ws.appDir,
    CNB_PLATFORM_DIR: ws.platformDir,
    CNB_EXTEND_DIR: ws.extendDir,
    CNB_EXTEND_KIND: 'run',
    CNB_EXTEND_BACKEND: 'buildah',
    ...extra,
  };
  const code = await runExtendCommand({ argv, env, stdout, stderr, version: '0.1.0', schedule: SCHEDULE });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

const analyzedOf = async (ws: Workspace) => parse(await readFile(join(ws.layersDir, 'analyzed.toml'), 'utf8')) as { 'run-image': Record<string, unknown> & { extended?: { reference: string } } };
const skopeoRaw = async (ref: string, config = false) => (await run('skopeo', ['inspect', '--tls-verify=false', ...(config ? ['--config'] : []), '--raw', `docker://${ref}`])).stdout;

/** The manifest and config bytes of the one image in `<extended>/run`. */
async function runLayout(ws: Workspace): Promise<{ digest: string; manifest: string; config: string }> {
  const runDir = join(ws.layersDir, 'extended', 'run');
  const [dir] = await readdir(runDir);
  const layout = join(runDir, dir!);
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const digest = index.manifests[0]!.digest;
  const blob = (d: string) => readFile(join(layout, 'blobs', 'sha256', d.slice('sha256:'.length)), 'utf8');
  const manifest = await blob(digest);
  return { digest, manifest, config: await blob((JSON.parse(manifest) as { config: { digest: string } }).config.digest) };
}

describe('-extended-run-image', () => {
  it('pushes the image <extended>/run would hold and records its digest reference in analyzed.toml', async () => {
    const env = testEnv();
    const layoutMode = await workspace(CONFIG_ONLY);
    const written = await extendRun(layoutMode);
    expect(written.stderr).toBe('');
    expect(written.code).toBe(0);
    const expected = await runLayout(layoutMode);

    const ws = await workspace(CONFIG_ONLY);
    const before = await analyzedOf(ws);
    const target = `${env.registry.host}/extender-cli/extended-run:${Date.now()}`;
    const { code, stdout, stderr } = await extendRun(ws, { CNB_EXTENDED_RUN_IMAGE: target });
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const analyzed = await analyzedOf(ws);
    const reference = analyzed['run-image'].extended?.reference ?? '';
    expect(reference).toBe(`${env.registry.host}/extender-cli/extended-run@${expected.digest}`);
    // the rest of [run-image] is as the restorer left it
    expect({ ...analyzed['run-image'], extended: undefined }).toEqual({ ...before['run-image'], extended: undefined });
    expect(stdout).toContain(`The extended run image is ${reference} (recorded as [run-image.extended] reference in ${join(ws.layersDir, 'analyzed.toml')})`);
    // nothing in <extended>/run
    await expect(stat(join(ws.layersDir, 'extended', 'run'))).rejects.toThrow(/ENOENT/);
    // byte for byte what the layout holds, by tag and by digest
    expect(await skopeoRaw(target)).toBe(expected.manifest);
    expect(await skopeoRaw(reference)).toBe(expected.manifest);
    expect(await skopeoRaw(reference, true)).toBe(expected.config);
  });

  it('pushes new layers with the original run image’s layers, as the flag', async () => {
    const env = testEnv();
    const ws = await workspace(WITH_LAYER);
    const target = `${env.registry.host}/extender-cli/extended-run-layer:${Date.now()}`;
    const { code, stderr } = await extendRun(ws, {}, ['-extended-run-image', target]);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const reference = (await analyzedOf(ws))['run-image'].extended?.reference ?? '';
    expect(reference).toMatch(/@sha256:[0-9a-f]{64}$/);
    const pushed = JSON.parse(await skopeoRaw(reference)) as { layers: { digest: string }[] };
    const base = JSON.parse(await skopeoRaw(env.fixtures.run.registryRef)) as { layers: { digest: string }[] };
    expect(pushed.layers.slice(0, base.layers.length)).toEqual(base.layers);
    expect(pushed.layers).toHaveLength(base.layers.length + 1);
    const config = JSON.parse(await skopeoRaw(reference, true)) as { created: string; config: { User: string; Labels: Record<string, string> }; history: { created_by?: string }[] };
    expect(config.created).toBe('0001-01-01T00:00:00Z');
    expect(config.config.User).toBe('1000:1000');
    expect(config.config.Labels['io.buildpacks.rebasable']).toBe('false');
    expect(config.history.some((h) => h.created_by === "Layer: 'RUN echo extended > /extended.txt', Created by extension: acme/run")).toBe(true);
    // every blob can be copied out of the registry
    await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${reference}`, `oci:${join(ws.root, 'pulled')}:x`]);
  });

  it('exits 102 when the push fails, leaving analyzed.toml and <extended> as they were', async () => {
    const ws = await workspace(CONFIG_ONLY);
    const path = join(ws.layersDir, 'analyzed.toml');
    const text = await readFile(path, 'utf8');
    const { ino, mtimeMs } = await stat(path);
    const closed = `127.0.0.1:${await freePort()}/nobody/listens:here`;
    const { code, stderr } = await extendRun(ws, { CNB_EXTENDED_RUN_IMAGE: closed });
    expect(code).toBe(102);
    expect(stderr).toMatch(new RegExp(`^ERROR: failed to extend run image: pushing the extended run image to ${closed.replace(/[.:/]/g, '\\$&')}: `));
    expect(await readFile(path, 'utf8')).toBe(text);
    expect(await stat(path)).toMatchObject({ ino, mtimeMs });
    await expect(stat(join(ws.layersDir, 'extended', 'run'))).rejects.toThrow(/ENOENT/);
  });

  it('is refused with an in-place backend (exit 3) before anything is extended', async () => {
    fixture = await createFixture([{ id: 'acme/run', run: CONFIG_ONLY }]);
    const stdout = new Collect();
    const stderr = new Collect();
    const code = await runExtendCommand({
      argv: ['-kind', 'run', '-extended-run-image', '127.0.0.1:1/x'],
      env: { ...fixture.env, CNB_EXTEND_BACKEND: 'fake-inplace' },
      stdout,
      stderr,
      version: '0.1.0',
      backends: catalogWithFakeInPlace(),
      schedule: SCHEDULE,
    });
    expect(code).toBe(3);
    expect(stderr.text).toContain('ERROR: failed to extend run image: -extended-run-image asks for the extended run image to be pushed, which needs an image-producing backend');
    expect(stdout.text).not.toContain('Extending');
    await expect(stat(join(fixture.ws.layersDir, 'extended', 'run'))).rejects.toThrow(/ENOENT/);
  });

  it('is ignored with a warning for the build kind (platforms may set the variable for both kinds)', async () => {
    fixture = await createFixture([{ id: 'acme/tools', build: 'ARG base_image\nFROM ${base_image}\nENV BUILT=1\n' }]);
    const stdout = new Collect();
    const stderr = new Collect();
    const out = join(fixture.ws.root, 'extended-build');
    const code = await runExtendCommand({
      argv: [],
      env: { ...fixture.env, CNB_EXTENDED_RUN_IMAGE: '127.0.0.1:1/x', CNB_EXTENDED_BUILD_LAYOUT: out },
      stdout,
      stderr,
      version: '0.1.0',
      backends: catalogWithFake(),
      schedule: SCHEDULE,
    });
    expect(stderr.text).toBe('Warning: CNB_EXTENDED_RUN_IMAGE is ignored: it applies to the run kind only\n');
    expect(code).toBe(0);
    expect(String((await analyzedOf(fixture.ws))['run-image'].extended ?? '')).toBe('');
    expect(await readdir(out)).toContain('index.json');
  });
});
