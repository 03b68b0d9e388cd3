/**
 * The backend contract kit: `runBackendContract(makeBackend, options)` declares
 * vitest suites that check every obligation a backend has towards the core.
 * Call it at the top level of a backend package's test file.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { testEnv } from './testenv.ts';
import type { ApplyOptions, BackendContext, BuildArg, DockerfileSpec, ExtendKind, ExtenderBackend, ImageDescription, LayerDescription } from '../backend.ts';
import type { BackendFactoryOptions } from '../backend-definition.ts';
import { readLayoutImage } from '../base.ts';
import { isInstructionEvent, MemorySink } from '../events.ts';
import { orderInstructionEvents } from '../instruction-order.ts';
import { dockerfileSteps } from '../steps.ts';
import { openBlob } from '../output.ts';
import { readLayerFiles } from './tar.ts';

export interface BackendContractOptions {
  /** Suite name (default `backend contract: <id>`). */
  name?: string;
  /** The image to apply on (default: the test environment's busybox run image, from its OCI layout). */
  baseImage?: () => Promise<ImageDescription>;
  /** Kind to exercise (default: `run` when supported, else `build`). */
  kind?: ExtendKind;
  /** An absolute path the backend must treat as ignored (default `/workspace`). */
  ignoredPath?: string;
  /** Parent of the temporary work and context directories (default the OS temp dir). */
  tempRoot?: string;
  /** Extend dir handed in ApplyOptions (default a temporary directory). */
  extendDir?: string;
}

/**
 * One setting in which a backend's definition is held to the contract: what its `create` gets
 * (a daemon address, a test root: `settings` may name constructor options that are no
 * `-backend-opt`) and what the contract needs for it (a base image, a temporary root). A
 * backend package exports its environments from its `./testing` entry; the catalog runs the
 * contract once per environment.
 */
export interface BackendContractEnvironment {
  /** Names the environment in the suite title (`debian12, buildah 1.28.2`). */
  name: string;
  options: BackendFactoryOptions;
  contract?: Omit<BackendContractOptions, 'name'>;
}

interface Applied {
  backend: ExtenderBackend;
  /** Calls the backend's cleanup (once). */
  cleanup(): Promise<void>;
  extendDir: string;
  base: ImageDescription;
  result: ImageDescription;
  newLayers: LayerDescription[];
  events: MemorySink;
  workDir: string;
}

async function defaultBase(): Promise<ImageDescription> {
  const fixture = testEnv().fixtures.run;
  const { image } = await readLayoutImage(fixture.layoutDir, fixture.registryRef, fixture.manifestDigest as `sha256:${string}`);
  return image;
}

async function sha256Of(stream: Readable): Promise<{ digest: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of stream) {
    hash.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size };
}

async function diffIdOf(layer: LayerDescription): Promise<string> {
  const bytes: Buffer[] = [];
  for await (const chunk of await openBlob(layer.blob!)) bytes.push(Buffer.from(chunk as Buffer));
  const all = Buffer.concat(bytes);
  if (all[0] === 0x1f && all[1] === 0x8b) return (await sha256Of(Readable.from([all]).pipe(createGunzip()))).digest;
  return (await sha256Of(Readable.from([all]))).digest;
}

/** Declare the contract suites for a backend. `makeBackend` is called once per test. */
export function runBackendContract(makeBackend: () => ExtenderBackend | Promise<ExtenderBackend>, options: BackendContractOptions = {}): void {
  const ignoredPath = options.ignoredPath ?? '/workspace';
  const cleanups: (() => Promise<void>)[] = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function tempDir(prefix: string): Promise<string> {
    const root = options.tempRoot ?? tmpdir();
    await mkdir(root, { recursive: true });
    const dir = await mkdtemp(join(root, prefix));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    return dir;
  }

  async function apply(
    dockerfile: string,
    setup: { args?: BuildArg[]; context?: Record<string, string>; signal?: AbortSignal; backend?: ExtenderBackend } = {},
  ): Promise<Applied> {
    const backend = setup.backend ?? (await makeBackend());
    const kind = options.kind ?? (backend.capabilities.kinds.includes('run') ? 'run' : 'build');
    const base = await (options.baseImage ?? defaultBase)();
    const workDir = await tempDir('contract-work-');
    const contextDir = await tempDir('contract-context-');
    for (const [name, content] of Object.entries(setup.context ?? {})) {
      await mkdir(join(contextDir, name, '..'), { recursive: true });
      await writeFile(join(contextDir, name), content);
    }
    const extendDir = options.extendDir ?? (await tempDir('contract-extend-'));
    const events = new MemorySink();
    const context: BackendContext = { signal: setup.signal ?? new AbortController().signal, events, workDir };
    const spec: DockerfileSpec = {
      extensionId: 'contract/ext',
      kind,
      path: join(contextDir, '..', `${kind}.Dockerfile`),
      content: dockerfile,
      args: [
        { name: 'build_id', value: 'contract-build-id' },
        { name: 'user_id', value: '1000' },
        { name: 'group_id', value: '1000' },
        ...(setup.args ?? []),
        { name: 'base_image', value: base.reference ?? 'contract-base' },
      ],
      contextDir,
    };
    const applyOptions: ApplyOptions = { buildContext: contextDir, ignorePaths: [ignoredPath, workDir], cacheTtlMs: 60_000, extendDir };
    let cleaned = false;
    const cleanup = async () => {
      if (cleaned) return;
      cleaned = true;
      await backend.cleanup({ ...context, signal: new AbortController().signal });
    };
    // Runs before the temporary directories are removed (cleanups run in reverse).
    cleanups.push(cleanup);
    const result = await backend.apply(spec, base, applyOptions, context);
    return { backend, base, result, newLayers: result.layers.slice(base.layers.length), events, workDir, cleanup, extendDir };
  }

  async function filesOf(layers: LayerDescription[]): Promise<Map<string, string>[]> {
    const out: Map<string, string>[] = [];
    for (const layer of layers) {
      expect(layer.blob, `new layer ${layer.descriptor.digest} must say where its blob is`).toBeDefined();
      const files = await readLayerFiles(layer.blob!);
      out.push(new Map([...files].map(([k, v]) => [k, v.toString('utf8')])));
    }
    return out;
  }

  // Root, and directories created first: the Dockerfiles run on a plain busybox base.
  const header = 'ARG base_image\nFROM ${base_image}\nUSER root\n';
  const mk = 'RUN mkdir -p /contract\n';

  describe(options.name ?? 'backend contract', () => {
    it('declares well-formed capabilities', async () => {
      const backend = await makeBackend();
      expect(typeof backend.id).toBe('string');
      expect(backend.id.length).toBeGreaterThan(0);
      expect(typeof backend.capabilities.inPlace).toBe('boolean');
      expect(typeof backend.capabilities.cache).toBe('boolean');
      expect(backend.capabilities.kinds.length).toBeGreaterThan(0);
      for (const kind of backend.capabilities.kinds) expect(['build', 'run']).toContain(kind);
      expect(typeof backend.capabilities.privileges.root).toBe('boolean');
      expect(Array.isArray(backend.capabilities.privileges.capabilities)).toBe(true);
    });

    it('receives the build args in order and makes them visible to instructions', async () => {
      const { newLayers } = await apply(
        `${header}ARG build_id\nARG user_id\nARG some_arg\nRUN mkdir -p /contract && echo \${some_arg}-\${build_id}-\${user_id} > /contract/args\n`,
        { args: [{ name: 'some_arg', value: 'some-value' }] },
      );
      const [files] = await filesOf(newLayers);
      expect(files?.get('contract/args')).toBe('some-value-contract-build-id-1000\n');
    });

    it('reads COPY sources from the build context it is given', async () => {
      const { newLayers } = await apply(`${header}COPY hello.txt /contract/hello.txt\n`, { context: { 'hello.txt': 'from the context\n' } });
      expect(newLayers).toHaveLength(1);
      const [files] = await filesOf(newLayers);
      expect(files?.get('contract/hello.txt')).toBe('from the context\n');
    });

    it('never captures changes under the ignore paths', async () => {
      const { newLayers } = await apply(`${header}RUN mkdir -p ${ignoredPath} && echo ignored > ${ignoredPath}/contract-ignored\n${mk}RUN echo kept > /contract/kept\n`);
      const all = await filesOf(newLayers);
      for (const files of all) for (const path of files.keys()) expect(`/${path}`.startsWith(`${ignoredPath}/`), `layer holds ${path}`).toBe(false);
      expect(all.some((files) => files.get('contract/kept') === 'kept\n')).toBe(true);
    });

    it('reports new layers after the unchanged base layers, in instruction order, with matching digests', async () => {
      const { base, result, newLayers } = await apply(`${header}RUN mkdir -p /contract && echo one > /contract/one\nRUN echo two > /contract/two\n`);
      expect(result.layers.slice(0, base.layers.length)).toEqual(base.layers.map((l) => expect.objectContaining({ descriptor: l.descriptor, diffId: l.diffId })));
      expect(newLayers).toHaveLength(2);
      const [first, second] = await filesOf(newLayers);
      expect(first?.get('contract/one')).toBe('one\n');
      expect(second?.get('contract/two')).toBe('two\n');
      expect(result.config.rootfs.diff_ids).toEqual(result.layers.map((l) => l.diffId));
      for (const layer of newLayers) {
        const blob = await sha256Of(await openBlob(layer.blob!));
        expect(blob.digest).toBe(layer.descriptor.digest);
        expect(blob.size).toBe(layer.descriptor.size);
        expect(await diffIdOf(layer)).toBe(layer.diffId);
      }
    });

    it('reports instructions by position after FROM, each layer-making one cached or run, each layer with its size', async () => {
      const dockerfile = `${header}RUN mkdir -p /contract && echo one > /contract/one\nENV CONTRACT=1\nRUN echo two >> /contract/two\nRUN echo two >> /contract/two\n`;
      const { events, newLayers } = await apply(dockerfile);
      const steps = dockerfileSteps(dockerfile);
      const reported = events.events.filter(isInstructionEvent);
      for (const event of reported) {
        expect(event.extensionId).toBe('contract/ext');
        expect(steps[event.index], `${event.type} ${event.index}`).toBeDefined();
        expect(event.instruction).toBe(steps[event.index]!.instruction);
      }
      // what the backend reported, in the core's order
      const ordered = new MemorySink();
      const sink = orderInstructionEvents(ordered, 'contract/ext', steps);
      for (const event of events.events) sink.emit(event);
      sink.complete();
      const trace = ordered.events.filter(isInstructionEvent).map((e) => `${e.index} ${e.type === 'cache-hit' ? 'cache-miss' : e.type}`);
      expect(trace).toEqual([
        '0 instruction-started', '0 instruction-finished',
        '1 instruction-started', '1 cache-miss', '1 layer-written', '1 instruction-finished',
        '2 instruction-started', '2 instruction-finished',
        '3 instruction-started', '3 cache-miss', '3 layer-written', '3 instruction-finished',
        '4 instruction-started', '4 cache-miss', '4 layer-written', '4 instruction-finished',
      ]);
      // each new layer once, with its size (in which order the image lists them is another check's business)
      const layers = ordered.events.flatMap((e) => (e.type === 'layer-written' ? [`${e.digest} ${e.size}`] : []));
      expect(layers.sort()).toEqual(newLayers.map((l) => `${l.descriptor.digest} ${l.descriptor.size}`).sort());
      expect(ordered.ofType('cache-hit').every((e) => e.key !== '')).toBe(true);
    });

    it('reports history that names each new layer by its instruction', async () => {
      const { result } = await apply(`${header}RUN mkdir -p /contract && echo one > /contract/one\nENV CONTRACT=1\n`);
      const nonEmpty = (result.config.history ?? []).filter((h) => !h.empty_layer);
      expect(nonEmpty.at(-1)?.created_by).toContain('echo one > /contract/one');
    });

    it('reports config changes (ENV, LABEL, USER, WORKDIR)', async () => {
      const { result } = await apply(`${header}ENV CONTRACT_ENV=contract-value\nLABEL contract.label=yes\nWORKDIR /contract-dir\nUSER 1234:1000\n`);
      expect(result.config.config?.Env).toContain('CONTRACT_ENV=contract-value');
      expect(result.config.config?.Labels?.['contract.label']).toBe('yes');
      expect(result.config.config?.WorkingDir).toBe('/contract-dir');
      expect(result.config.config?.User).toBe('1234:1000');
    });

    it('leaves nothing behind after cleanup (work directory empty, only cache/ in the extend dir)', async () => {
      const applied = await apply(`${header}RUN mkdir -p /contract && echo one > /contract/one\n`);
      await applied.cleanup();
      expect(await readdir(applied.workDir)).toEqual([]);
      for (const entry of await readdir(applied.extendDir)) expect(entry).toBe('cache');
    });

    it('rejects with an error naming the instruction that failed', async () => {
      const failing = apply(`${header}RUN mkdir -p /contract && echo fine > /contract/fine\nRUN exit 3\n`);
      await expect(failing).rejects.toSatisfy((err: unknown) => {
        const instruction = (err as { instruction?: unknown }).instruction;
        return typeof instruction === 'string' && instruction.includes('exit 3');
      });
    });

    it('stops when its signal is aborted', async () => {
      const controller = new AbortController();
      controller.abort(new Error('contract abort'));
      await expect(apply(`${header}${mk}RUN echo one > /contract/one\n`, { signal: controller.signal })).rejects.toBeDefined();
    });
  });
}
