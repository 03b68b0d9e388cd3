import { createReadStream } from 'node:fs';
import { chmod, mkdtemp, readFile, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ExtenderError, MemorySink, extend, readLayoutImage, type DockerfileSpec, type ImageDescription, type LayerDescription } from '@cnb-extender/extender-core';
import { createWorkspace, testEnv, type Workspace } from '@cnb-extender/extender-core/testing';
import { decompressLayer, readTar, type Digest } from '@cnb-extender/oci';
import { compareVersions } from './detect.ts';
import { buildahDefinition } from './definition.ts';
import { type BuildahBackend, createBuildahBackend, detectBuildah, isBuildahAvailable, mountsBelow, type BuildahBackendOptions } from './index.ts';
import { hasCapSysResource, parseHardLimits } from './limits.ts';
import { buildahExecutables } from './test-engines.ts';

const ENGINES = buildahExecutables();

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

async function runBase(): Promise<ImageDescription> {
  const run = testEnv().fixtures.run;
  return (await readLayoutImage(run.layoutDir, run.registryRef, run.manifestDigest as Digest)).image;
}

/** Apply one Dockerfile directly (no core) and hand back the backend, its work dir and the result. */
async function applyOnce(dockerfile: string, options: BuildahBackendOptions = {}) {
  const backend = createBuildahBackend(options);
  const workDir = await temp('buildah-work-');
  const base = await runBase();
  return { backend, workDir, base, ...(await applyWith(backend, workDir, dockerfile, base)) };
}

/** Apply one Dockerfile on `base` with a backend (one storage for all its applies). */
async function applyWith(backend: BuildahBackend, workDir: string, dockerfile: string, base: ImageDescription) {
  const run = testEnv().fixtures.run;
  const contextDir = await temp('buildah-context-');
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
  return { result, events, context };
}

/** The regular files of a new layer: path → content. */
async function filesOf(layer: LayerDescription): Promise<Map<string, string>> {
  if (layer.blob?.kind !== 'file') throw new Error(`layer ${layer.descriptor.digest} has no file blob`);
  const { tar } = await decompressLayer(createReadStream(layer.blob.path));
  const files = new Map<string, string>();
  for await (const entry of readTar(tar)) {
    if (entry.type !== 'file') continue;
    const chunks: Buffer[] = [];
    for await (const chunk of entry.body()) chunks.push(chunk);
    files.set(entry.name.replace(/^\.?\//, ''), Buffer.concat(chunks).toString('utf8'));
  }
  return files;
}

describe.each(ENGINES)('buildah detection: $id ($buildah)', ({ buildah }) => {
  it('finds the buildah of the test environment and its version', async () => {
    const found = await detectBuildah({ buildah });
    expect(found.available).toBe(true);
    expect(found.version).toMatch(/^\d+\.\d+/);
    expect(await isBuildahAvailable({ buildah })).toBe(true);
  });
});

describe('buildah detection', () => {
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
  it('fails the extend phase (APPLY_FAILED) with a clear message when buildah is not in PATH', async () => {
    const ws = await runWorkspace('ARG base_image\nFROM ${base_image}\nRUN true\n');
    const backend = createBuildahBackend({ env: { ...process.env, PATH: '/nonexistent' } });
    const err = await extend({ kind: 'run', inputs: ws.inputs, backend }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ExtenderError);
    expect((err as ExtenderError).code).toBe('APPLY_FAILED');
    expect((err as ExtenderError).message).toBe(
      'failed to extend run image: applying Dockerfile for test/ext: checking buildah: buildah was not found in PATH; install buildah (Debian: apt-get install buildah) or choose another backend',
    );
  });

  it('says to install netavark when buildah wants it', async () => {
    // buildah 1.4x refuses to build without netavark, also for RUN on the host network
    const dir = await temp('buildah-no-netavark-');
    await writeFile(
      join(dir, 'buildah'),
      `#!/bin/sh
for a; do
  case "$a" in
    --version) echo "buildah version 1.43.2 (image-spec 1.1.1, runtime-spec 1.2.1)"; exit 0 ;;
    build) echo 'STEP 1/2: FROM oci:base-1:base'; echo 'Error: creating build container: could not find "netavark" in one of [/usr/local/libexec/podman /usr/local/lib/podman /usr/libexec/podman /usr/lib/podman].  To resolve this error, set the helper_binaries_dir key in the \`[engine]\` section of containers.conf to the directory containing your helper binaries.' >&2; exit 125 ;;
  esac
done
exit 0
`,
    );
    await chmod(join(dir, 'buildah'), 0o755);
    const err = await applyOnce('ARG base_image\nFROM ${base_image}\nRUN true\n', { buildah: join(dir, 'buildah'), storageDriver: 'vfs' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as Error).message).toMatch(/could not find "netavark" .*; buildah 1\.43\.2 needs netavark to build, even for RUN on the host network: install it \(Debian: apt-get install netavark\)$/s);
  });

  it('is created by its definition from the environment', async () => {
    const fromEnv = async (env: Record<string, string>) => (await buildahDefinition.create({ env })) as BuildahBackend;
    const backend = await fromEnv({ BUILDAH_ISOLATION: 'chroot', SOURCE_DATE_EPOCH: '0' });
    expect(backend.id).toBe('buildah');
    expect(backend.isolation).toBe('chroot');
    expect(backend.timestamp).toBe(0);
    expect((await fromEnv({})).isolation).toBe('chroot');
  });
});

describe.each(ENGINES)('buildah backend on $id ($buildah)', ({ buildah }) => {
  it('chooses overlay storage in its work area when overlay mounts there, and leaves no mount and no file behind', async () => {
    const { backend, workDir, context } = await applyOnce('ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo x > /x\n', { buildah });
    expect(backend.storageDriver).toBe('overlay');
    expect(await readdir(workDir)).toEqual(expect.arrayContaining(['buildah', 'buildah-layers']));
    await backend.cleanup(context);
    expect(await mountsBelow(workDir)).toEqual([]);
    expect(await readdir(workDir)).toEqual([]);
  });

  it('works on vfs storage when asked', async () => {
    const { backend, result, base, context, workDir } = await applyOnce('ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo x > /x\n', { buildah, storageDriver: 'vfs' });
    expect(backend.storageDriver).toBe('vfs');
    expect(result.layers).toHaveLength(base.layers.length + 1);
    await backend.cleanup(context);
    expect(await readdir(workDir)).toEqual([]);
  });

  it('makes byte-identical layers in two separate runs with a timestamp (SOURCE_DATE_EPOCH)', async () => {
    const dockerfile = 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN mkdir -p /r && echo same > /r/file && ln -s file /r/link\n';
    const env = { ...process.env, SOURCE_DATE_EPOCH: '1700000000' };
    const one = await applyOnce(dockerfile, { buildah, env });
    const two = await applyOnce(dockerfile, { buildah, env });
    const a = one.result.layers.at(-1)!;
    const b = two.result.layers.at(-1)!;
    expect(a.descriptor.digest).toBe(b.descriptor.digest);
    expect(a.diffId).toBe(b.diffId);
    expect(one.result.config.created).toBe('2023-11-14T22:13:20Z');
    await one.backend.cleanup(one.context);
    await two.backend.cleanup(two.context);
  });

  it('streams the steps as events', async () => {
    const { events, backend, context } = await applyOnce('ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo x > /x\nENV A=1\n', { buildah });
    // by position after FROM, with the Dockerfile's text
    expect(events.ofType('instruction-started').map((e) => [e.index, e.instruction])).toEqual([[0, 'USER root'], [1, 'RUN echo x > /x'], [2, 'ENV A=1']]);
    expect(events.events.filter((e) => e.type === 'cache-hit' || e.type === 'cache-miss').map((e) => e.type === 'cache-hit' || e.type === 'cache-miss' ? e.index : -1)).toEqual([1]);
    expect(events.ofType('layer-written').map((e) => [e.index, e.level])).toEqual([[1, 'info']]);
    // config-only instructions finish when the next starts or the build ends; the RUN once its layer is read (by the core)
    expect(events.ofType('instruction-finished').map((e) => e.index)).toEqual([0, 2]);
    await backend.cleanup(context);
  });

  it('runs RUN under the limits the extender has, where buildah 1.35 and later would fail to raise them to 1048576', async () => {
    // buildah inherits this process's limits; without CAP_SYS_RESOURCE it cannot raise a hard limit
    const own = parseHardLimits(await readFile('/proc/self/limits', 'utf8'));
    const capSysResource = hasCapSysResource(await readFile('/proc/self/status', 'utf8'));
    const { version } = await detectBuildah({ buildah });
    const { result, backend, context } = await applyOnce(
      'ARG base_image\nFROM ${base_image}\nUSER root\nRUN mkdir /limits && ulimit -Hn > /limits/nofile && ulimit -Hu > /limits/nproc\n',
      { buildah },
    );
    const files = await filesOf(result.layers.at(-1)!);
    const number = (name: string) => Number(files.get(`limits/${name}`)?.trim());
    if (compareVersions(version!, '1.35.0') < 0) {
      // older buildah keeps the runtime spec's default of 1024 open files
      expect(number('nofile')).toBe(1024);
    } else if (capSysResource) {
      expect(number('nofile')).toBeGreaterThanOrEqual(Math.min(own.nofile!, 1048576));
    } else {
      expect(number('nofile')).toBe(own.nofile);
    }
    expect(number('nproc')).toBeGreaterThan(0);
    if (!capSysResource) expect(number('nproc')).toBeLessThanOrEqual(own.nproc!);
    await backend.cleanup(context);
  });

  it.each(['chroot', 'oci'] as const)("gives RUN the host's network with %s isolation", async (isolation) => {
    // crun, buildah 1.4x's default runtime, refuses the test machine's hybrid cgroup hierarchy; runc runs there
    const env = { ...process.env, BUILDAH_RUNTIME: 'runc' };
    const { result, backend, context } = await applyOnce('ARG base_image\nFROM ${base_image}\nUSER root\nRUN readlink /proc/self/ns/net > /netns\n', { buildah, isolation, env });
    const files = await filesOf(result.layers.at(-1)!);
    expect(files.get('netns')?.trim()).toBe(await readlink('/proc/self/ns/net'));
    await backend.cleanup(context);
  });

  it('builds each Dockerfile on its own base, though buildah 1.32 and later give every base the same name', async () => {
    // one storage for all three; the second base is the first result, the third the run image again
    const backend = createBuildahBackend({ buildah });
    const workDir = await temp('buildah-work-');
    const run = await runBase();
    const one = await applyWith(backend, workDir, 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo one > /one\n', run);
    const two = await applyWith(backend, workDir, 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN cat /one > /two\n', one.result);
    const three = await applyWith(backend, workDir, 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN if [ -e /one ]; then echo wrong base; exit 1; fi; echo three > /three\n', run);
    expect(two.result.layers.map((l) => l.diffId)).toEqual([...one.result.layers.map((l) => l.diffId), two.result.layers.at(-1)!.diffId]);
    expect((await filesOf(two.result.layers.at(-1)!)).get('two')).toBe('one\n');
    expect(three.result.layers.slice(0, -1).map((l) => l.diffId)).toEqual(run.layers.map((l) => l.diffId));
    // besides the file, buildah 1.28 leaves the empty mount targets /etc/hosts, /etc/hostname and /etc/resolv.conf
    expect([...(await filesOf(three.result.layers.at(-1)!)).entries()].filter(([path]) => !path.startsWith('etc/'))).toEqual([['three', 'three\n']]);
    await backend.cleanup(three.context);
    expect(await readdir(workDir)).toEqual([]);
  });

  it('stops a running build when the signal is aborted and cleans up without leaving mounts', async () => {
    const run = testEnv().fixtures.run;
    const { image: base } = await readLayoutImage(run.layoutDir, run.registryRef, run.manifestDigest as Digest);
    const workDir = await temp('buildah-work-');
    const contextDir = await temp('buildah-context-');
    const backend = createBuildahBackend({ buildah });
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
