import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BackendInstructionError, MemorySink, type BackendContext, type DockerfileSpec, type ImageDescription } from '@cnb-extender/extender-core';
import { MediaType, sha256 } from '@cnb-extender/oci';
import { ImageBackendError } from './errors.ts';
import { ImageBuildTemplate, type ImageBuild, type ImageBuildSteps } from './template.ts';

const temps: string[] = [];
afterAll(async () => {
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});

const base: ImageDescription = {
  manifestMediaType: MediaType.ociManifest,
  config: { architecture: 'amd64', os: 'linux', config: { User: '1000' }, rootfs: { type: 'layers', diff_ids: [] }, history: [] },
  layers: [],
};

async function setup() {
  const root = await mkdtemp(join(tmpdir(), 'kit-template-'));
  temps.push(root);
  const tree = join(root, 'tree');
  await mkdir(tree);
  await writeFile(join(tree, 'hello'), 'hi\n');
  const tar = join(root, 'layer.tar');
  execFileSync('tar', ['--sort=name', '--format=pax', '-C', tree, '-cf', tar, '.']);
  const workDir = join(root, 'work');
  await mkdir(workDir);
  const events = new MemorySink();
  const dockerfile: DockerfileSpec = { extensionId: 'test/x', kind: 'run', path: join(root, 'Dockerfile'), content: 'FROM base\nUSER root\nRUN echo hi > /hello\n', args: [], contextDir: root };
  const context = (signal = new AbortController().signal): BackendContext => ({ signal, events, workDir });
  const diffId = sha256(readFileSync(tar));
  const built = { config: { ...base.config, config: { User: 'root' }, rootfs: { type: 'layers' as const, diff_ids: [diffId] } }, layers: [{ diffId, open: () => createReadStream(tar) }] };
  return { workDir, events, dockerfile, context, built };
}

describe('the image build template', () => {
  it('runs the steps in order, reports the steps and the new layer, and removes the apply scratch and, at cleanup, the work area', async () => {
    const { workDir, events, dockerfile, context, built } = await setup();
    const calls: string[] = [];
    let scratch = '';
    const steps: ImageBuildSteps<string, number> = {
      prepare: async (_context, area) => void calls.push(`prepare ${area === join(workDir, 'tool')}`),
      prepareBase: async (build) => {
        scratch = build.scratch;
        calls.push(`base ${existsSync(build.scratch)} ${build.n}`);
        return 'tag';
      },
      build: async (build: ImageBuild, prepared) => {
        calls.push(`build ${prepared}`);
        build.progress.started(0);
        build.progress.started(1);
        return 7;
      },
      readBack: async (_build, _prepared, output) => {
        calls.push(`read ${output}`);
        return built;
      },
      finished: (_build, prepared, image) => void calls.push(`finished ${prepared} ${image.layers.length}`),
      release: async (_build, succeeded) => void calls.push(`release ${succeeded}`),
      cleanup: async () => void calls.push('cleanup'),
    };
    const template = new ImageBuildTemplate({ id: 'tool' }, steps);
    const image = await template.apply(dockerfile, base, { buildContext: dockerfile.contextDir, ignorePaths: [], cacheTtlMs: 0, extendDir: workDir }, context());
    expect(calls).toEqual(['prepare true', 'base true 1', 'build tag', 'read 7', 'finished tag 1', 'release true']);
    expect(image.config.config).toEqual({ User: 'root' });
    expect(image.config.history).toEqual([{ created_by: 'RUN echo hi > /hello' }]);
    expect(events.events.map((e) => e.type)).toEqual(['instruction-started', 'instruction-finished', 'instruction-started', 'cache-miss', 'layer-written']);
    expect(existsSync(scratch)).toBe(false);
    expect((await readdir(workDir)).sort()).toEqual(['tool', 'tool-layers']);
    await template.cleanup(context());
    expect(calls.at(-1)).toBe('cleanup');
    expect(await readdir(workDir)).toEqual([]);
  });

  it('passes instruction and backend errors on, gives others to the backend, releases the apply and removes its scratch', async () => {
    const { dockerfile, context, built } = await setup();
    const options = { buildContext: dockerfile.contextDir, ignorePaths: [], cacheTtlMs: 0, extendDir: dockerfile.contextDir };
    const released: boolean[] = [];
    const failing = (error: unknown) =>
      new ImageBuildTemplate(
        { id: 'tool' },
        {
          prepareBase: async () => undefined,
          build: async (build) => {
            if (error === 'instruction') throw build.progress.failed('RUN echo hi > /hello', 1, 'exit 1');
            throw error;
          },
          readBack: async () => built,
          release: async (_build, succeeded) => void released.push(succeeded),
          failure: (build, err) => new ImageBackendError(`building ${build.dockerfile.path} with the tool: ${(err as Error).message}`, { cause: err }),
        },
      );
    const instruction = await failing('instruction').apply(dockerfile, base, options, context()).catch((err: unknown) => err);
    expect(instruction).toBeInstanceOf(BackendInstructionError);
    expect(instruction).toMatchObject({ instruction: 'RUN echo hi > /hello', index: 1, message: 'exit 1' });
    const kept = new ImageBackendError('as it is');
    await expect(failing(kept).apply(dockerfile, base, options, context())).rejects.toBe(kept);
    await expect(failing(new Error('boom')).apply(dockerfile, base, options, context())).rejects.toThrow(`building ${dockerfile.path} with the tool: boom`);
    const controller = new AbortController();
    const template = failing(new Error('aborted meanwhile'));
    const pending = template.apply(dockerfile, base, options, context(controller.signal));
    controller.abort(new Error('stop now'));
    await expect(pending).rejects.toThrow('stop now');
    expect(released).toEqual([false, false, false, false]);
  });
});
