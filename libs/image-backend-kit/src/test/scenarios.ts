/**
 * The acceptance scenarios every image-producing backend runs in its own test
 * suite, through the core's `extend()` with a real workspace (analyzed.toml,
 * group.toml, generated Dockerfiles, an extend dir): run kind checked with
 * umoci/skopeo and against an explicit expected tree, a failing RUN, build kind
 * published to the loopback registry and started on dockerd as 1000:1000, and
 * a registry that refuses the credentials.
 */
import { execFileSync } from 'node:child_process';
import { cp, lstat, readFile, readdir, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import type {} from '@cnb-extender/testenv';
import { ExtenderError, MemorySink, extend, type ExtenderBackend } from '@cnb-extender/extender-core';
import { createWorkspace, type Workspace } from '@cnb-extender/extender-core/testing';
import { OciLayout, RegistryClient, parseReference, pushLayoutImage, staticKeychain, type Digest, type ImageManifest } from '@cnb-extender/oci';
import { readAnalyzed } from '@cnb-extender/platform';
import { publishBuildImage } from '../publish.ts';

export interface ScenarioOptions {
  name: string;
  /** Make the backend; `layerDir` is set for build kind (blobs must outlive `extend()`). */
  makeBackend: (options: { layerDir?: string; registry?: RegistryClient }) => ExtenderBackend;
}

/** Extension 1: files created, modified, deleted (also from the base), a replaced directory, links, setuid, COPY. */
export const FILES_DOCKERFILE = `ARG base_image
FROM \${base_image}
USER root
RUN mkdir -p /opt/app/sub /opt/repl && echo one > /opt/app/one && echo two > /opt/app/two && echo old > /opt/repl/old && echo gone > /opt/app/sub/gone
RUN echo changed > /opt/app/one && rm /opt/app/sub/gone && rm /etc/cnb-fixture && rm -r /opt/repl && mkdir /opt/repl && echo new > /opt/repl/new
RUN ln /opt/app/two /opt/app/two-hard && ln -s ../app/one /opt/app/one-link && cp /bin/busybox /opt/app/suid && chmod 4755 /opt/app/suid
COPY ctx.txt /opt/app/ctx.txt
LABEL io.buildpacks.rebasable=true
USER 1000:1000
`;

/** Extension 2: USER switching and WORKDIR (a new one as root, an existing one as cnb). */
export const USER_DOCKERFILE = `ARG base_image
FROM \${base_image}
USER root
WORKDIR /srv/data
RUN echo here > here.txt && chown 1000:1000 here.txt
USER 1000:1000
WORKDIR /home/cnb
RUN echo mine > made-by-cnb
ENV EXT_USER_ENV=from-extension
LABEL io.buildpacks.rebasable=true
`;

/** The tree the two extensions must leave (stated explicitly: no other backend is imported). */
async function checkExpectedTree(rootfs: string): Promise<void> {
  const text = (p: string) => readFile(join(rootfs, p), 'utf8');
  expect(await text('opt/app/one')).toBe('changed\n');
  expect(await text('opt/app/two')).toBe('two\n');
  const two = await stat(join(rootfs, 'opt/app/two'));
  const hard = await stat(join(rootfs, 'opt/app/two-hard'));
  expect(hard.ino).toBe(two.ino);
  expect(two.nlink).toBe(2);
  expect((await lstat(join(rootfs, 'opt/app/one-link'))).isSymbolicLink()).toBe(true);
  expect(await readlink(join(rootfs, 'opt/app/one-link'))).toBe('../app/one');
  expect(await readdir(join(rootfs, 'opt/app/sub'))).toEqual([]);
  await expect(stat(join(rootfs, 'etc/cnb-fixture'))).rejects.toThrow();
  expect(await readdir(join(rootfs, 'opt/repl'))).toEqual(['new']);
  expect(await text('opt/repl/new')).toBe('new\n');
  expect((await stat(join(rootfs, 'opt/app/suid'))).mode & 0o7777).toBe(0o4755);
  expect(await text('opt/app/ctx.txt')).toBe('from the extension context\n');
  expect(await text('srv/data/here.txt')).toBe('here\n');
  const mine = await stat(join(rootfs, 'home/cnb/made-by-cnb'));
  expect([mine.uid, mine.gid]).toEqual([1000, 1000]);
  expect(await text('home/cnb/made-by-cnb')).toBe('mine\n');
  // the base is still there
  expect((await stat(join(rootfs, 'bin/busybox'))).isFile()).toBe(true);
}

export function runImageBackendScenarios(options: ScenarioOptions): void {
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

  describe(options.name, () => {
    const env = inject('testenv');

    it('run kind through extend(): a sparse base layout (blobs from the registry), two extensions; the layout is what the exporter reads and umoci unpacks the expected tree', async () => {
      const run = env.fixtures.run;
      const ws = await createWorkspace({
        runImage: run.registryRef,
        baseLayout: { from: run.layoutDir, digest: run.manifestDigest as Digest, mode: 'sparse' },
        extensions: [
          { id: 'test/files', run: FILES_DOCKERFILE, context: { 'ctx.txt': 'from the extension context\n' } },
          { id: 'test/user', run: USER_DOCKERFILE },
        ],
      });
      workspaces.push(ws);
      const events = new MemorySink();
      const result = await extend({ kind: 'run', inputs: ws.inputs, backend: options.makeBackend({}), events });
      expect(result.rebasable).toBe(true);
      // exactly one layout in <extended>/run, one manifest, only the new layers' blobs
      const runDir = join(ws.extendedDir, 'run');
      const entries = await readdir(runDir);
      expect(entries).toHaveLength(1);
      const dir = join(runDir, entries[0]!);
      expect(result.outputDir).toBe(dir);
      const layout = await OciLayout.open(dir);
      expect(layout.index.manifests).toHaveLength(1);
      const image = await layout.image();
      const fixtureManifest = JSON.parse(await readFile(join(run.layoutDir, 'blobs', 'sha256', run.manifestDigest.slice(7)), 'utf8')) as ImageManifest;
      const baseCount = fixtureManifest.layers.length;
      expect(image.manifest.layers.slice(0, baseCount)).toEqual(fixtureManifest.layers);
      expect(image.layers.slice(0, baseCount).every((l) => !l.present)).toBe(true);
      expect(image.layers.slice(baseCount).every((l) => l.present)).toBe(true);
      expect(image.config.rootfs.diff_ids).toHaveLength(image.layers.length);
      const history = (image.config.history ?? []).map((h) => h.created_by ?? '');
      expect(history).toHaveLength(image.layers.length);
      // WORKDIR makes a layer with some builders (classic, BuildKit); buildah's RUN in it creates it instead
      const workdirs = history.slice(baseCount).filter((h) => h.startsWith("Layer: 'WORKDIR "));
      for (const h of workdirs) expect(h).toMatch(/^Layer: 'WORKDIR \/(srv\/data|home\/cnb)', Created by extension: test\/user$/);
      // 4 layers from test/files (3 RUN + COPY), 2 RUN layers from test/user
      expect(image.layers.length - baseCount - workdirs.length).toBe(6);
      expect(history.slice(baseCount).filter((h) => !workdirs.includes(h))).toEqual([
        expect.stringMatching(/^Layer: 'RUN mkdir -p \/opt\/app\/sub .*', Created by extension: test\/files$/),
        expect.stringMatching(/^Layer: 'RUN echo changed > .*', Created by extension: test\/files$/),
        expect.stringMatching(/^Layer: 'RUN ln \/opt\/app\/two .*', Created by extension: test\/files$/),
        "Layer: 'COPY ctx.txt /opt/app/ctx.txt', Created by extension: test/files",
        "Layer: 'RUN echo here > here.txt && chown 1000:1000 here.txt', Created by extension: test/user",
        "Layer: 'RUN echo mine > made-by-cnb', Created by extension: test/user",
      ]);
      expect(image.config.config?.User).toBe('1000:1000');
      expect(image.config.config?.WorkingDir).toBe('/home/cnb');
      expect(image.config.config?.Env).toContain('EXT_USER_ENV=from-extension');
      expect(image.config.config?.Labels?.['io.buildpacks.rebasable']).toBe('true');
      expect(image.config.created).toBe('0001-01-01T00:00:00Z');
      // a full copy (base blobs added) unpacked by umoci gives the expected tree
      const full = await temp('scenario-full-');
      await cp(dir, join(full, 'image'), { recursive: true });
      for (const layer of fixtureManifest.layers) {
        await cp(join(run.layoutDir, 'blobs', 'sha256', layer.digest.slice(7)), join(full, 'image', 'blobs', 'sha256', layer.digest.slice(7)));
      }
      const index = JSON.parse(await readFile(join(full, 'image', 'index.json'), 'utf8')) as { manifests: { annotations?: Record<string, string> }[] };
      index.manifests[0]!.annotations = { 'org.opencontainers.image.ref.name': 'latest' };
      await writeFile(join(full, 'image', 'index.json'), JSON.stringify(index));
      // (skopeo reads `oci:<dir>:<ref>`: the copy's directory name has no colon)
      expect(execFileSync('skopeo', ['inspect', `oci:${join(full, 'image')}:latest`]).toString()).toContain('EXT_USER_ENV=from-extension');
      execFileSync('oci-image-tool', ['validate', '--type', 'image', '--ref', 'name=latest', join(full, 'image')], { stdio: 'pipe' });
      execFileSync('umoci', ['unpack', '--image', `${join(full, 'image')}:latest`, join(full, 'bundle')], { stdio: 'pipe' });
      await checkExpectedTree(join(full, 'bundle', 'rootfs'));
      // the extend dir holds only the cache afterwards
      for (const entry of await readdir(ws.extendDir)) expect(entry).toBe('cache');
    });

    it('run kind with the base resolved from the registry only (no layout in the extend dir)', async () => {
      const run = env.fixtures.run;
      const ws = await createWorkspace({ runImage: run.registryRef, extensions: [{ id: 'test/one', run: 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo one > /one\nUSER 1000:1000\n' }] });
      workspaces.push(ws);
      const result = await extend({ kind: 'run', inputs: ws.inputs, backend: options.makeBackend({}) });
      expect(result.image.layers).toHaveLength(3);
      expect(result.image.config.history?.at(-1)?.created_by).toBe("Layer: 'RUN echo one > /one', Created by extension: test/one");
    });

    it('a failing RUN fails the phase (APPLY_FAILED) naming the extension and the instruction', async () => {
      const run = env.fixtures.run;
      const ws = await createWorkspace({
        runImage: run.registryRef,
        baseLayout: { from: run.layoutDir, digest: run.manifestDigest as Digest, mode: 'full' },
        extensions: [{ id: 'test/fail', run: 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo fine > /fine\nRUN exit 3\nUSER 1000:1000\n' }],
      });
      workspaces.push(ws);
      const err = await extend({ kind: 'run', inputs: ws.inputs, backend: options.makeBackend({}) }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ExtenderError);
      expect((err as ExtenderError).code).toBe('APPLY_FAILED');
      expect((err as ExtenderError).message).toContain('failed to extend run image: applying Dockerfile for test/fail: RUN exit 3');
      for (const entry of await readdir(ws.extendDir)) expect(entry).toBe('cache');
    });

    it('build kind: the extended build image is pushed, recorded in analyzed.toml and runs a build-phase stand-in as 1000:1000 with the extended env', async () => {
      const build = env.fixtures.build;
      const ws = await createWorkspace({
        buildImage: build.registryRef,
        analyzedToml: `unknown-top = "kept"\n[build-image]\n  reference = "${build.registryRef}"\n  unknown-key = "kept too"\n[run-image]\n  reference = "${env.fixtures.run.registryRef}"\n`,
        extensions: [
          {
            id: 'test/build',
            build: 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN mkdir -p /opt/tool && echo tool > /opt/tool/version\nENV TOOL_HOME=/opt/tool\nUSER 1000:1000\n',
          },
        ],
      });
      workspaces.push(ws);
      const layerDir = await temp('scenario-build-layers-');
      const result = await extend({ kind: 'build', inputs: ws.inputs, backend: options.makeBackend({ layerDir }) });
      expect(result.envMap['TOOL_HOME']).toBe('/opt/tool');
      const target = `${env.registry.host}/extended/build-${options.name.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '').toLowerCase()}:${Date.now()}`;
      const published = await publishBuildImage({ image: result.image, target: { kind: 'registry', reference: target }, analyzedPath: ws.inputs.analyzedPath });
      expect(published.reference).toMatch(new RegExp(`^${env.registry.host}/extended/build-[a-z0-9-]+@sha256:[0-9a-f]{64}$`));
      expect(published.message).toContain('the platform must now run the builder');
      const analyzed = await readAnalyzed(ws.inputs.analyzedPath);
      expect(analyzed.buildImage?.reference).toBe(published.reference);
      const text = await readFile(ws.inputs.analyzedPath, 'utf8');
      expect(text).toContain('unknown-key = "kept too"');
      expect(text).toContain('unknown-top = "kept"');
      expect(text).toContain(env.fixtures.run.registryRef);
      const script = 'set -e; echo "uid=$(id -u):$(id -g) tool=$TOOL_HOME version=$(cat $TOOL_HOME/version)"; touch /layers/written-by-build';
      const out = execFileSync(env.docker.cli, ['-H', env.docker.host, 'run', '--rm', '--network', 'none', '--user', '1000:1000', published.reference, '/bin/sh', '-c', script], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
      expect(out.trim()).toBe('uid=1000:1000 tool=/opt/tool version=tool');
      execFileSync(env.docker.cli, ['-H', env.docker.host, 'rmi', published.reference], { stdio: 'pipe' });
    });

    it('a registry that refuses the credentials fails with the registry named and no secret shown', async () => {
      const secure = env.secureRegistry;
      const run = env.fixtures.run;
      const ca = await readFile(secure.caFile, 'utf8');
      const pusher = new RegistryClient({ ca, keychain: staticKeychain({ [secure.host]: { kind: 'basic', username: secure.username, password: secure.password } }) });
      const ref = parseReference(`${secure.host}/fixtures/run-auth:latest`);
      const pushed = await pushLayoutImage(pusher, ref, run.layoutDir, { selector: { refName: run.layoutTag } });
      await pusher.close();
      const secureRef = `${secure.host}/fixtures/run-auth@${pushed.descriptor.digest}`;
      const ws = await createWorkspace({
        runImage: secureRef,
        baseLayout: { from: run.layoutDir, digest: run.manifestDigest as Digest, mode: 'sparse' },
        extensions: [{ id: 'test/auth', run: 'ARG base_image\nFROM ${base_image}\nRUN true\n' }],
      });
      workspaces.push(ws);
      const wrong = new RegistryClient({ ca, keychain: staticKeychain({ [secure.host]: { kind: 'basic', username: secure.username, password: 'not-the-password' } }) });
      const err = await extend({ kind: 'run', inputs: ws.inputs, backend: options.makeBackend({ registry: wrong }) }).then(
        () => undefined,
        (e: unknown) => e,
      );
      await wrong.close();
      expect(err).toBeInstanceOf(ExtenderError);
      expect((err as ExtenderError).code).toBe('APPLY_FAILED');
      const message = (err as ExtenderError).message;
      expect(message).toContain(`fetching layer sha256:`);
      expect(message).toContain(`${secure.host}/fixtures/run-auth`);
      expect(message).toMatch(/401|unauthori[sz]ed|authentication/i);
      expect(message).not.toContain('not-the-password');
      expect(message).not.toContain(secure.password);
    });
  });
}
