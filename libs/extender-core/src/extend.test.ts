import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { testEnv } from './testing/testenv.ts';
import type { Digest, ImageConfig, ImageIndex, ImageManifest } from '@cnb-extender/oci';
import { ExtenderError } from './errors.ts';
import { MemorySink } from './events.ts';
import { extend, REBASABLE_LABEL, type ExtendResult } from './extend.ts';
import { FakeBackend } from './testing/fake-backend.ts';
import { BackendInstructionError, type ExtenderBackend } from './backend.ts';
import { createWorkspace, type Workspace, type WorkspaceOptions } from './testing/workspace.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const header = 'ARG base_image\nFROM ${base_image}\n';

const workspaces: Workspace[] = [];
afterEach(async () => {
  for (const ws of workspaces.splice(0)) await ws.remove();
});

function fixture() {
  return testEnv().fixtures.run;
}

/** A workspace whose run and build image is the busybox fixture, served from a sparse base layout. */
async function workspace(options: WorkspaceOptions = {}): Promise<Workspace> {
  const run = fixture();
  const ws = await createWorkspace({
    runImage: run.registryRef,
    buildImage: run.registryRef,
    baseLayout: { from: run.layoutDir, digest: run.manifestDigest as Digest, mode: 'sparse' },
    ...options,
  });
  workspaces.push(ws);
  return ws;
}

async function readJson<T>(path: string): Promise<T> {
  return JSON.parse(await readFile(path, 'utf8')) as T;
}

async function baseConfig(): Promise<{ manifest: ImageManifest; config: ImageConfig }> {
  const run = fixture();
  const hex = (d: string) => d.slice('sha256:'.length);
  const manifest = await readJson<ImageManifest>(join(run.layoutDir, 'blobs', 'sha256', hex(run.manifestDigest)));
  const config = await readJson<ImageConfig>(join(run.layoutDir, 'blobs', 'sha256', hex(manifest.config.digest)));
  return { manifest, config };
}

describe('extend', () => {
  describe('build args', () => {
    it('passes build_id (fresh UUID), user_id/group_id of the intermediate image, extend-config args, then base_image', async () => {
      const ws = await workspace({
        extensions: [
          { id: 'A', build: `${header}USER 2345:6789\n`, config: '[[build.args]]\nname = "argA"\nvalue = "valueA"\n' },
          { id: 'B', build: `${header}RUN echo b > /b\n`, config: '[[build.args]]\nname = "argB"\nvalue = "valueB"\n[[run.args]]\nname = "notForBuild"\nvalue = "x"\n' },
        ],
      });
      const backend = new FakeBackend();
      await extend({ kind: 'build', inputs: ws.inputs, backend });
      expect(backend.calls).toHaveLength(2);
      const [first, second] = backend.calls.map((c) => c.dockerfile.args);
      const { config } = await baseConfig();
      const [baseUid, baseGid] = (config.config?.User ?? '').split(':');
      expect(first!.map((a) => a.name)).toEqual(['build_id', 'user_id', 'group_id', 'argA', 'base_image']);
      expect(first![0]!.value).toMatch(UUID);
      expect(first![1]!.value).toBe(baseUid);
      expect(first![2]!.value).toBe(baseGid);
      expect(first![3]!.value).toBe('valueA');
      expect(first![4]!.value).toBe(fixture().registryRef);
      expect(second!.map((a) => a.name)).toEqual(['build_id', 'user_id', 'group_id', 'argB', 'base_image']);
      expect(second![0]!.value).toMatch(UUID);
      expect(second![0]!.value).not.toBe(first![0]!.value);
      expect(second![1]!.value).toBe('2345');
      expect(second![2]!.value).toBe('6789');
      expect(second![4]!.value).toMatch(/@sha256:[0-9a-f]{64}$/);
      expect(second![4]!.value).not.toBe(first![4]!.value);
    });

    it('splits User the lifecycle way: "cnb" → cnb and "", "" → "" and ""', async () => {
      const ws = await workspace({
        extensions: [
          { id: 'A', build: `${header}USER cnb\n` },
          { id: 'B', build: `${header}USER ""\n` },
          { id: 'C', build: `${header}USER 1000:1000\n` },
        ],
      });
      const backend = new FakeBackend();
      await extend({ kind: 'build', inputs: ws.inputs, backend });
      const ids = backend.calls.map((c) => c.dockerfile.args.slice(1, 3).map((a) => a.value));
      expect(ids[1]).toEqual(['cnb', '']);
      expect(ids[2]).toEqual(['', '']);
    });

    it('rejects reserved names in extend-config.toml', async () => {
      const ws = await workspace({ extensions: [{ id: 'A', build: header, config: '[[build.args]]\nname = "build_id"\nvalue = "mine"\n' }] });
      const err = await extend({ kind: 'build', inputs: ws.inputs, backend: new FakeBackend() }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ExtenderError);
      expect((err as ExtenderError).code).toBe('EXTEND_CONFIG_INVALID');
      expect((err as ExtenderError).message).toContain('arg with name "build_id" is not allowed');
      expect((err as ExtenderError).message).toContain(join(ws.generatedDir, 'A', 'extend-config.toml'));
    });
  });

  describe('Dockerfile discovery and build context', () => {
    for (const platformApi of ['0.12', '0.13']) {
      describe(`Platform API ${platformApi}`, () => {
        it('applies extensions in group order, escaping "/" in ids, skipping extensions without a Dockerfile for the kind', async () => {
          const ws = await workspace({
            platformApi,
            extensions: [
              { id: 'samples/first', build: `${header}RUN echo 1 > /one\n` },
              { id: 'no-build', run: `${header}RUN echo r > /r\n` },
              { id: 'second', build: `${header}RUN echo 2 > /two\n` },
            ],
          });
          const backend = new FakeBackend();
          await extend({ kind: 'build', inputs: ws.inputs, backend });
          expect(backend.calls.map((c) => c.dockerfile.extensionId)).toEqual(['samples/first', 'second']);
          const expectedPath =
            platformApi === '0.12' ? join(ws.generatedDir, 'build', 'samples_first', 'Dockerfile') : join(ws.generatedDir, 'samples_first', 'build.Dockerfile');
          expect(backend.calls[0]!.dockerfile.path).toBe(expectedPath);
        });
      });
    }

    it('never applies Dockerfiles ending in .ignore', async () => {
      const ws = await workspace({ extensions: [{ id: 'A', run: `${header}RUN echo 1 > /one\n` }] });
      const { rename } = await import('node:fs/promises');
      await rename(join(ws.generatedDir, 'A', 'run.Dockerfile'), join(ws.generatedDir, 'A', 'run.Dockerfile.ignore'));
      const backend = new FakeBackend();
      await extend({ kind: 'run', inputs: ws.inputs, backend });
      expect(backend.calls).toHaveLength(0);
    });

    it('uses <app> as the context below Platform API 0.13, even when context dirs exist', async () => {
      const ws = await workspace({ platformApi: '0.12', extensions: [{ id: 'A', build: header }] });
      const { mkdir } = await import('node:fs/promises');
      await mkdir(join(ws.generatedDir, 'build', 'A', 'context'), { recursive: true });
      const backend = new FakeBackend();
      await extend({ kind: 'build', inputs: ws.inputs, backend });
      expect(backend.calls[0]!.dockerfile.contextDir).toBe(ws.appDir);
      expect(backend.calls[0]!.options.buildContext).toBe(ws.appDir);
    });

    it('uses context.<kind>, else context, else <app> from Platform API 0.13', async () => {
      const ws = await workspace({
        extensions: [
          { id: 'specific', build: header, run: header, contextBuild: { 'build-file': 'b' }, contextRun: { 'run-file': 'r' } },
          { id: 'shared', build: header, context: { 'shared-file': 's' } },
          { id: 'none', build: header },
        ],
      });
      const backend = new FakeBackend();
      await extend({ kind: 'build', inputs: ws.inputs, backend });
      expect(backend.calls.map((c) => c.dockerfile.contextDir)).toEqual([
        join(ws.generatedDir, 'specific', 'context.build'),
        join(ws.generatedDir, 'shared', 'context'),
        ws.appDir,
      ]);
    });

    it('fails with CONTEXT_CONFLICT naming the directory when context and context.<kind> both exist', async () => {
      const ws = await workspace({ extensions: [{ id: 'A', run: header, context: { f: '1' }, contextRun: { g: '2' } }] });
      const err = (await extend({ kind: 'run', inputs: ws.inputs, backend: new FakeBackend() }).catch((e: unknown) => e)) as ExtenderError;
      expect(err.code).toBe('CONTEXT_CONFLICT');
      expect(err.message).toContain(join(ws.generatedDir, 'A', 'context'));
      expect(err.message).toMatch(/^failed to extend run image: getting run.Dockerfiles: /);
    });

    it('passes <app>, <layers>, <platform> (and the extend work area) as ignore paths, and the cache TTL', async () => {
      const ws = await workspace({ extensions: [{ id: 'A', build: header }] });
      const backend = new FakeBackend();
      await extend({ kind: 'build', inputs: { ...ws.inputs, cacheTtlMs: 7 * 24 * 3600 * 1000 }, backend });
      const options = backend.calls[0]!.options;
      expect(options.ignorePaths.slice(0, 3)).toEqual([ws.appDir, ws.layersDir, ws.platformDir]);
      expect(options.ignorePaths).toContain(join(ws.extendDir, 'work'));
      expect(options.cacheTtlMs).toBe(7 * 24 * 3600 * 1000);
    });

    it('does not capture writes to <app> in a layer (RUN writing into the app dir)', async () => {
      const ws = await workspace({ extensions: [{ id: 'A', run: '' }] });
      const { writeFile } = await import('node:fs/promises');
      await writeFile(join(ws.generatedDir, 'A', 'run.Dockerfile'), `${header}RUN echo some-content > ${ws.appDir}/some-file\nRUN echo kept > /kept\n`);
      const result = await extend({ kind: 'run', inputs: ws.inputs, backend: new FakeBackend() });
      expect(result.image.layers.length - (await baseConfig()).manifest.layers.length).toBe(1);
    });
  });

  describe('rebasable', () => {
    const cases: [boolean | undefined, boolean | undefined, string][] = [
      [true, true, 'true'],
      [true, false, 'false'],
      [false, true, 'false'],
      [false, false, 'false'],
      // A Dockerfile without the label inherits the previous image's value.
      [true, undefined, 'true'],
      [false, undefined, 'false'],
      [undefined, true, 'false'],
    ];
    for (const [first, second, expected] of cases) {
      it(`first ${String(first)}, second ${String(second)} → "${expected}"`, async () => {
        const label = (v: boolean | undefined) => (v === undefined ? '' : `LABEL ${REBASABLE_LABEL}=${String(v)}\n`);
        const ws = await workspace({
          extensions: [
            { id: 'A', run: `${header}RUN echo a > /a\n${label(first)}` },
            { id: 'B', run: `${header}RUN echo b > /b\n${label(second)}` },
          ],
        });
        const result = await extend({ kind: 'run', inputs: ws.inputs, backend: new FakeBackend() });
        expect(result.rebasable).toBe(expected === 'true');
        const manifest = await outputManifest(result);
        const config = await readJson<ImageConfig>(join(result.outputDir!, 'blobs', 'sha256', manifest.config.digest.slice(7)));
        expect(config.config?.Labels?.[REBASABLE_LABEL]).toBe(expected);
      });
    }
  });

  describe('user checks', () => {
    it('fails run kind with ROOT_USER when the final user is root, and writes no output', async () => {
      const ws = await workspace({ extensions: [{ id: 'A', run: `${header}USER root\nRUN echo a > /a\n` }] });
      const events = new MemorySink();
      const err = (await extend({ kind: 'run', inputs: ws.inputs, backend: new FakeBackend(), events }).catch((e: unknown) => e)) as ExtenderError;
      expect(err.code).toBe('ROOT_USER');
      expect(err.message).toBe(
        'failed to extend run image: extending run image: the final user ID is 0 (root); please add another extension that resets the user to non-root',
      );
      expect(events.ofType('warning').map((w) => w.code)).toContain('user-root');
      await expect(readdir(join(ws.extendedDir, 'run'))).rejects.toThrow(/ENOENT/);
    });

    it('warns (and succeeds) for build kind when the user is left as root', async () => {
      const ws = await workspace({ extensions: [{ id: 'A', build: `${header}USER 0\n` }] });
      const events = new MemorySink();
      const result = await extend({ kind: 'build', inputs: ws.inputs, backend: new FakeBackend(), events });
      expect(result.user).toBe('0');
      const warnings = events.ofType('warning');
      expect(warnings.map((w) => w.code)).toEqual(['user-root', 'user-changed']);
      expect(warnings[1]!.message).toMatch(/^The original user ID was 1000 but the final extension left the user ID set to 0\.$/);
    });

    it('accepts a root user mid-way when a later extension resets it', async () => {
      const ws = await workspace({ extensions: [{ id: 'A', run: `${header}USER root\n` }, { id: 'B', run: `${header}ARG user_id\nUSER 1000:1000\n` }] });
      const events = new MemorySink();
      await extend({ kind: 'run', inputs: ws.inputs, backend: new FakeBackend(), events });
      expect(events.ofType('warning').map((w) => w.code)).toEqual(['user-root']);
    });
  });

  describe('history', () => {
    it('keeps the base history and adds "Layer: \'<instruction>\', Created by extension: <id>" per new layer', async () => {
      const ws = await workspace({
        extensions: [
          { id: 'curl', run: `${header}USER root\nRUN echo curl > /curl\nARG build_id=0\nRUN echo \${build_id}\nARG user_id\nUSER \${user_id}\n` },
          { id: 'tree', run: `${header}COPY shared-file /shared-run\n`, context: { 'shared-file': 'x' } },
        ],
      });
      const result = await extend({ kind: 'run', inputs: ws.inputs, backend: new FakeBackend() });
      const { config: base } = await baseConfig();
      const history = result.image.config.history!;
      expect(history).toHaveLength(result.image.config.rootfs.diff_ids.length);
      const baseHistory = (base.history ?? []).filter((h) => !h.empty_layer);
      expect(history.slice(0, baseHistory.length)).toEqual(baseHistory);
      expect(history.slice(baseHistory.length).map((h) => h.created_by)).toEqual([
        "Layer: 'RUN echo curl > /curl', Created by extension: curl",
        "Layer: 'RUN echo ${build_id}', Created by extension: curl",
        "Layer: 'COPY shared-file /shared-run', Created by extension: tree",
      ]);
    });
  });

  describe('run-kind output', () => {
    it('writes exactly one sparse layout: oci-layout, index.json and blobs holding only the new layers, config and manifest', async () => {
      const ws = await workspace({ extensions: [{ id: 'A', run: `${header}RUN echo a > /a\nENV A=1\nRUN echo b > /b\n` }] });
      const result = await extend({ kind: 'run', inputs: ws.inputs, backend: new FakeBackend() });
      const entries = await readdir(join(ws.extendedDir, 'run'));
      expect(entries).toHaveLength(1);
      expect(entries[0]).toMatch(/^sha256:[0-9a-f]{64}$/);
      const dir = join(ws.extendedDir, 'run', entries[0]!);
      expect(result.outputDir).toBe(dir);
      expect((await readdir(dir)).sort()).toEqual(['blobs', 'index.json', 'oci-layout']);
      const index = await readJson<ImageIndex>(join(dir, 'index.json'));
      expect(index.manifests).toHaveLength(1);
      expect(`sha256:${entries[0]!.slice(7)}`).toBe(index.manifests[0]!.digest);
      const manifest = await outputManifest(result);
      const { manifest: baseManifest } = await baseConfig();
      expect(manifest.layers.slice(0, baseManifest.layers.length)).toEqual(baseManifest.layers);
      const newLayers = manifest.layers.slice(baseManifest.layers.length);
      expect(newLayers).toHaveLength(2);
      const blobs = (await readdir(join(dir, 'blobs', 'sha256'))).sort();
      expect(blobs).toEqual([index.manifests[0]!.digest, manifest.config.digest, ...newLayers.map((l) => l.digest)].map((d) => d.slice(7)).sort());
      const config = await readJson<ImageConfig>(join(dir, 'blobs', 'sha256', manifest.config.digest.slice(7)));
      expect(config.created).toBe('0001-01-01T00:00:00Z');
      expect(config.rootfs.diff_ids).toHaveLength(manifest.layers.length);
      expect(config.config?.Env).toContain('A=1');
      expect(await readdir(ws.extendedDir)).toEqual(['run']);
    });

    it('replaces the layout an earlier run left behind', async () => {
      const ws = await workspace({ extensions: [{ id: 'A', run: `${header}ARG build_id\nRUN echo \${build_id} > /id\n` }] });
      await extend({ kind: 'run', inputs: ws.inputs, backend: new FakeBackend() });
      const second = await extend({ kind: 'run', inputs: ws.inputs, backend: new FakeBackend() });
      expect(await readdir(join(ws.extendedDir, 'run'))).toEqual([second.outputDir!.split('/').at(-1)]);
    });

    it('leaves no <extended>/run entry and no temporary directory when writing the output fails', async () => {
      const ws = await workspace({ extensions: [{ id: 'A', run: `${header}RUN echo a > /a\nRUN echo b > /b\n` }] });
      // A faulty backend: the last layer's blob does not match its descriptor.
      class CorruptingBackend extends FakeBackend {
        override async apply(...args: Parameters<FakeBackend['apply']>) {
          const result = await super.apply(...args);
          const last = result.layers.at(-1)!;
          last.descriptor = { ...last.descriptor, digest: `sha256:${'0'.repeat(64)}` };
          return result;
        }
      }
      const err = (await extend({ kind: 'run', inputs: ws.inputs, backend: new CorruptingBackend() }).catch((e: unknown) => e)) as ExtenderError;
      expect(err.code).toBe('OUTPUT_FAILED');
      expect(err.message).toMatch(/^failed to extend run image: copying extended image to output directory .*: blob for layer sha256:0{64} has digest sha256:/);
      expect(await readdir(join(ws.extendedDir, 'run'))).toEqual([]);
      expect(await readdir(ws.extendedDir)).toEqual(['run']);
      expect(await readdir(ws.extendDir)).toEqual(['cache']);
    });

    it('fails with CLEANUP_FAILED when the backend cleanup fails, still removing the work directory', async () => {
      const ws = await workspace({ extensions: [{ id: 'A', run: `${header}RUN echo a > /a\n` }] });
      class FailingCleanup extends FakeBackend {
        override async cleanup(...args: Parameters<FakeBackend['cleanup']>) {
          await super.cleanup(...args);
          throw new Error('device busy');
        }
      }
      const err = (await extend({ kind: 'run', inputs: ws.inputs, backend: new FailingCleanup() }).catch((e: unknown) => e)) as ExtenderError;
      expect(err.code).toBe('CLEANUP_FAILED');
      expect(err.message).toBe('failed to extend run image: cleaning up backend fake: device busy');
      expect(await readdir(ws.extendDir)).toEqual(['cache']);
    });

    it('removes its work directory and calls the backend cleanup once', async () => {
      const ws = await workspace({ extensions: [{ id: 'A', run: `${header}RUN echo a > /a\n` }] });
      const backend = new FakeBackend();
      const result = await extend({ kind: 'run', inputs: ws.inputs, backend });
      expect(backend.cleanups).toBe(1);
      expect(await readdir(ws.extendDir)).toEqual(['cache']);
      await expect(readdir(result.workDir)).rejects.toThrow(/ENOENT/);
    });
  });

  describe('concurrency', () => {
    it('build and run extension at the same time on one extend dir use separate work directories and leave only cache/', async () => {
      const ws = await workspace({ extensions: [{ id: 'A', build: `${header}RUN echo b > /b\n`, run: `${header}RUN echo r > /r\n` }] });
      const build = new FakeBackend({ instructionDelayMs: 5 });
      const runBackend = new FakeBackend({ instructionDelayMs: 5 });
      const [b, r] = await Promise.all([
        extend({ kind: 'build', inputs: ws.inputs, backend: build }),
        extend({ kind: 'run', inputs: ws.inputs, backend: runBackend }),
      ]);
      expect(b.workDir).not.toBe(r.workDir);
      expect(await readdir(ws.extendDir)).toEqual(['cache']);
      expect(await readdir(join(ws.extendedDir, 'run'))).toHaveLength(1);
    });
  });

  describe('build kind hand-off', () => {
    it('returns the extended Env (values may contain "=") and User for the build phase, and writes no run output', async () => {
      const ws = await workspace({
        extensions: [{ id: 'tree', build: `${header}ENV CNB_STACK_ID=stack-id-from-ext-tree\nENV WITH_EQUALS="a=b=c"\nUSER 1000:1000\n` }],
      });
      const result = await extend({ kind: 'build', inputs: ws.inputs, backend: new FakeBackend() });
      expect(result.env).toContain('CNB_STACK_ID=stack-id-from-ext-tree');
      expect(result.envMap['WITH_EQUALS']).toBe('a=b=c');
      expect(result.envMap['CNB_STACK_ID']).toBe('stack-id-from-ext-tree');
      expect(result.user).toBe('1000:1000');
      expect(result.outputDir).toBeUndefined();
      await expect(readdir(ws.extendedDir)).rejects.toThrow(/ENOENT/);
    });
  });

  describe('events', () => {
    it('reports extension, instruction, layer, base and timing events and never needs a printer', async () => {
      const ws = await workspace({ extensions: [{ id: 'A', run: `${header}RUN echo a > /a\nCMD ["x"]\n` }] });
      const events = new MemorySink();
      await extend({ kind: 'run', inputs: ws.inputs, backend: new FakeBackend(), events });
      const types = new Set(events.events.map((e) => e.type));
      for (const type of ['extend-started', 'dockerfile-found', 'base-resolved', 'extension-started', 'instruction-started', 'layer-written', 'extension-finished', 'timing', 'extend-finished'] as const) {
        expect(types, type).toContain(type);
      }
      const rule = events.ofType('warning').find((w) => w.code === 'dockerfile-rule');
      expect(rule?.message).toContain('command CMD on line 4 is not recommended');
      expect(events.ofType('base-resolved')[0]!.source).toBe('layout-sparse');
    });
  });

  describe('failures from the backend', () => {
    it('names the extension and the failing instruction (APPLY_FAILED)', async () => {
      const ws = await workspace({ extensions: [{ id: 'curl', run: `${header}RUN echo a > /a\nRUN exit 3\n` }] });
      const backend = new FakeBackend();
      const err = (await extend({ kind: 'run', inputs: ws.inputs, backend }).catch((e: unknown) => e)) as ExtenderError;
      expect(err.code).toBe('APPLY_FAILED');
      expect(err.instruction).toBe('RUN exit 3');
      expect(err.message).toBe('failed to extend run image: applying Dockerfile for curl: RUN exit 3: command "exit 3" exited with status 3');
      expect(backend.cleanups).toBe(1);
      await expect(readdir(join(ws.extendedDir, 'run'))).rejects.toThrow(/ENOENT/);
    });

    it('reports the failing instruction once as instruction-failed, after the ones before it finished, and nothing after it', async () => {
      const ws = await workspace({ extensions: [{ id: 'curl', run: `${header}RUN echo a > /a\nRUN exit 3\nRUN echo b > /b\n` }] });
      const events = new MemorySink();
      await extend({ kind: 'run', inputs: ws.inputs, backend: new FakeBackend(), events }).catch(() => undefined);
      const trace = events.events.flatMap((e) => ('index' in e ? [`${e.index} ${e.type}`] : []));
      expect(trace).toEqual(['0 instruction-started', '0 cache-miss', '0 layer-written', '0 instruction-finished', '1 instruction-started', '1 cache-miss', '1 instruction-failed']);
      expect(events.ofType('instruction-failed')).toEqual([{ type: 'instruction-failed', level: 'error', extensionId: 'curl', index: 1, instruction: 'RUN exit 3', message: 'command "exit 3" exited with status 3' }]);
      expect(events.ofType('extension-finished')).toEqual([]);
    });

    it('names the failing instruction once, also when the backend\'s message already starts with it', async () => {
      const ws = await workspace({ extensions: [{ id: 'ext', run: `${header}RUN make all\n` }] });
      for (const message of ['RUN make all: running ["/bin/sh","-c","make all"]: exit code 2', 'running ["/bin/sh","-c","make all"]: exit code 2']) {
        const backend: ExtenderBackend = {
          id: 'prefixing',
          capabilities: { inPlace: false, kinds: ['build', 'run'], cache: false, privileges: { root: false, capabilities: [], container: false } },
          async apply() {
            throw new BackendInstructionError('RUN make all', message);
          },
          async cleanup() {},
        };
        const err = (await extend({ kind: 'run', inputs: ws.inputs, backend }).catch((e: unknown) => e)) as ExtenderError;
        expect(err.code).toBe('APPLY_FAILED');
        expect(err.message, message).toBe('failed to extend run image: applying Dockerfile for ext: RUN make all: running ["/bin/sh","-c","make all"]: exit code 2');
      }
    });

    it('refuses a kind the backend does not support before doing anything', async () => {
      const ws = await workspace({ extensions: [{ id: 'A', run: header }] });
      const err = (await extend({ kind: 'run', inputs: ws.inputs, backend: new FakeBackend({ kinds: ['build'] }) }).catch((e: unknown) => e)) as ExtenderError;
      expect(err.code).toBe('BACKEND_UNSUPPORTED');
    });

    it('finds a bad second Dockerfile before the first is applied, naming it (DOCKERFILE_INVALID)', async () => {
      const ws = await workspace({ extensions: [{ id: 'good', run: `${header}RUN echo a > /a\n` }, { id: 'bad', run: `${header}FROM \${base_image}\n` }] });
      const backend = new FakeBackend();
      const err = (await extend({ kind: 'run', inputs: ws.inputs, backend }).catch((e: unknown) => e)) as ExtenderError;
      expect(err.code).toBe('DOCKERFILE_INVALID');
      expect(err.extensionId).toBe('bad');
      expect(err.message).toMatch(/^failed to extend run image: applying Dockerfile for bad: .*multistage/);
      // nothing was applied, not even the good first one
      expect(backend.calls).toEqual([]);
      await expect(readdir(join(ws.extendedDir, 'run'))).rejects.toThrow(/ENOENT/);
    });

    it('rejects multi-stage Dockerfiles (extension rules) with DOCKERFILE_INVALID', async () => {
      const ws = await workspace({ extensions: [{ id: 'A', run: `${header}FROM \${base_image}\n` }] });
      const err = (await extend({ kind: 'run', inputs: ws.inputs, backend: new FakeBackend() }).catch((e: unknown) => e)) as ExtenderError;
      expect(err.code).toBe('DOCKERFILE_INVALID');
      expect(err.message).toContain('multistage');
    });
  });
});

async function outputManifest(result: ExtendResult): Promise<ImageManifest> {
  const index = await readJson<ImageIndex>(join(result.outputDir!, 'index.json'));
  return readJson<ImageManifest>(join(result.outputDir!, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)));
}

describe('extendInputsFrom', () => {
  it("maps libs/platform's resolved extender inputs (defaults, <layers> placeholders, cache TTL alias)", async () => {
    const { parseExtenderCommandLine } = await import('@cnb-extender/platform');
    const invocation = parseExtenderCommandLine(['-layers', '/some-layers', '-kind', 'run'], {
      env: { CNB_PLATFORM_API: '0.13', CNB_KANIKO_CACHE_TTL: '1h' },
      cwd: '/',
    });
    if (invocation.action !== 'run') throw new Error(`unexpected ${invocation.action}`);
    const { extendInputsFrom } = await import('./extend.ts');
    expect(extendInputsFrom(invocation.inputs, invocation.platformApi)).toEqual({
      platformApi: '0.13',
      analyzedPath: '/some-layers/analyzed.toml',
      groupPath: '/some-layers/group.toml',
      generatedDir: '/some-layers/generated',
      appDir: '/workspace',
      layersDir: '/some-layers',
      platformDir: '/platform',
      extendedDir: '/some-layers/extended',
      extendDir: '/kaniko',
      cacheTtlMs: 3_600_000,
    });
  });
});
