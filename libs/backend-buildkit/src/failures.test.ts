/**
 * Large contexts, long RUNs, tar export over FileSend, and every way a build
 * can end badly: each ends with a clear error and leaves no session or
 * scratch file behind.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createReadStream } from 'node:fs';
import { BackendInstructionError, MemorySink, type ExtenderEvent } from '@cnb-extender/extender-core';
import { readTar } from '@cnb-extender/oci';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { BuildKitBackend, BuildKitClient } from './index.ts';
import { applyDockerfile } from './test-support.ts';

const env = inject('testenv');
const address = `docker://${env.docker.socketPath}`;
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bk-failures-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function runningWith(text: string): Promise<boolean> {
  for (const pid of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(text) && cmdline.includes('sleep 120')) return true;
  }
  return false;
}

/** Waits (bounded) until no process carries the marker; false if one is still there after 30 s. */
async function processGone(marker: string): Promise<boolean> {
  for (let i = 0; i < 300; i++) {
    if (!(await runningWith(marker))) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

async function context(files: Record<string, string> = {}): Promise<string> {
  const ctx = await mkdtemp(join(dir, 'ctx-'));
  for (const [name, content] of Object.entries(files)) await writeFile(join(ctx, name), content);
  return ctx;
}

describe('large context and long RUN', () => {
  it('a 60 MB context file arrives intact and the session outlives several health-check intervals (tar export over FileSend)', async () => {
    const ctx = await context({ Dockerfile: '' });
    const big = join(ctx, 'big.bin');
    const hash = createHash('sha256');
    const out = createWriteStream(big);
    for (let i = 0; i < 60; i++) {
      const chunk = randomBytes(1024 * 1024);
      hash.update(chunk);
      if (!out.write(chunk)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    }
    await new Promise<void>((resolve) => out.end(() => resolve()));
    const expected = hash.digest('hex');
    await writeFile(join(ctx, 'Dockerfile'), `FROM ${env.fixtures.run.registryRef}\nUSER root\nCOPY big.bin /big.bin\nRUN sha256sum /big.bin > /sum && sleep 4\n`);
    const exportFile = join(dir, 'out.tar');
    const client = new BuildKitClient(address);
    try {
      const result = await client.solve({ dockerfileDir: ctx, contextDir: ctx, exporters: [{ type: 'tar', attrs: {} }], exportFile });
      let sum = '';
      for await (const entry of readTar(createReadStream(exportFile))) {
        const chunks: Buffer[] = [];
        for await (const c of entry.body()) chunks.push(c);
        if (entry.name.replace(/^\.?\//, '') === 'sum') sum = Buffer.concat(chunks).toString('utf8');
      }
      expect(sum.split(' ')[0]).toBe(expected);
      // The sleep spans several of the daemon's 1 s health checks; all were answered.
      expect(result.session.healthChecks).toBeGreaterThan(1);
      // Only the context load asked for the big file (followpaths filtered the Dockerfile loads).
      expect(result.session.diffCopies.filter((d) => d.bytes >= 60 * 1024 * 1024)).toHaveLength(1);
      expect(client.openSessions).toBe(0);
    } finally {
      await client.close();
    }
  }, 120_000);
});

describe('progress', () => {
  it('streams step progress and RUN output into the core events', async () => {
    const backend = new BuildKitBackend({ address });
    const nonce = randomBytes(6).toString('hex');
    const events = new MemorySink();
    const applied = await applyDockerfile(backend, `ARG base_image\nFROM \${base_image}\nUSER root\nRUN echo "output-${nonce}" && echo ${nonce} > /n\n`, await context(), { events });
    try {
      const instruction = `RUN echo "output-${nonce}" && echo ${nonce} > /n`;
      // by position after FROM (USER root is 0), with the Dockerfile's text
      const started = events.ofType('instruction-started').map((e) => [e.index, e.instruction]);
      expect([[0, 'USER root'], [1, instruction]]).toEqual(expect.arrayContaining([...started, [1, instruction]]));
      expect(events.ofType('cache-miss').map((e) => [e.index, typeof e.key])).toEqual([[1, 'string']]);
      expect(events.ofType('debug').map((e) => e.message)).toContain(`${instruction}: output-${nonce}`);
      expect(events.ofType('layer-written').map((e) => [e.index, e.instruction, e.level])).toEqual([[1, instruction, 'info']]);
    } finally {
      await applied.dispose();
    }
  });
});

describe('solve options', () => {
  it('labels, platform and no-cache reach the daemon', async () => {
    const dockerfile = 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo same > /same\n';
    const ctx = await context();
    // Warm the cache, then build again without it.
    const warm = await applyDockerfile(new BuildKitBackend({ address }), dockerfile, ctx);
    await warm.dispose();
    const events = new MemorySink();
    const backend = new BuildKitBackend({ address, noCache: true, platform: 'linux/amd64', labels: { 'org.example.from-options': 'yes' } });
    const applied = await applyDockerfile(backend, dockerfile, ctx, { events });
    try {
      expect(applied.result.config.config?.Labels?.['org.example.from-options']).toBe('yes');
      expect(applied.result.config.architecture).toBe('amd64');
      expect(events.events.flatMap((e) => (e.type === 'cache-hit' && e.instruction.startsWith('RUN') ? [e] : []))).toEqual([]);
      expect(events.ofType('instruction-started').map((e) => e.instruction)).toContain('RUN echo same > /same');
    } finally {
      await applied.dispose();
    }
  });
});

describe('cache options', () => {
  it('passes the inline cache export to dockerd and leaves out what its BuildKit cannot do, with a warning', async () => {
    const events = new MemorySink();
    const backend = new BuildKitBackend({
      address,
      cacheExports: [
        { type: 'inline', attrs: {} },
        { type: 'local', attrs: { dest: join(dir, 'cache') } },
      ],
    });
    const applied = await applyDockerfile(backend, 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo cached > /cached\n', await context(), { events });
    try {
      const warnings = events.ofType('warning').filter((w) => w.code === 'buildkit-cache-unsupported');
      expect(warnings.map((w) => w.message)).toEqual(['cache export type local is not supported by the BuildKit in this Docker Engine; left out']);
      expect(applied.newLayers).toHaveLength(1);
    } finally {
      await applied.dispose();
    }
  });
});

describe('builds that end badly', () => {
  it('a bad Dockerfile ends with the parse error, not an instruction failure', async () => {
    const backend = new BuildKitBackend({ address });
    const err = await applyDockerfile(backend, 'ARG base_image\nFROM ${base_image}\nCOPYY a b\n', await context()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(BackendInstructionError);
    expect((err as Error).message).toMatch(/^building .*run\.Dockerfile with BuildKit at docker:\/\/.*: .*unknown instruction: COPYY/);
    expect(backend.openSessions).toBe(0);
  });

  it('an unreachable daemon ends with the address and the cause', async () => {
    for (const bad of [`unix://${join(dir, 'nothing.sock')}`, `docker://${join(dir, 'nothing.sock')}`]) {
      const backend = new BuildKitBackend({ address: bad });
      const workDir = await mkdtemp(join(dir, 'work-'));
      const err = await applyDockerfile(backend, 'ARG base_image\nFROM ${base_image}\n', await context(), { workDir }).catch((e: unknown) => e);
      expect((err as Error).message).toContain(`connecting to BuildKit at ${bad}`);
      expect((err as Error).message).toMatch(/ENOENT/);
    }
  });

  it('a failing RUN names the instruction and the exit code', async () => {
    const backend = new BuildKitBackend({ address });
    const err = await applyDockerfile(backend, 'ARG base_image\nFROM ${base_image}\nUSER root\nRUN echo fine > /fine\nRUN echo failing-now && exit 3\n', await context()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendInstructionError);
    expect((err as BackendInstructionError).instruction).toBe('RUN echo failing-now && exit 3');
    expect((err as Error).message).toMatch(/exit code: 3/);
    expect(backend.openSessions).toBe(0);
  });

  it('a cancelled build stops, rejects with the reason, and leaves no session or scratch file', async () => {
    const backend = new BuildKitBackend({ address });
    const controller = new AbortController();
    const marker = randomBytes(4).toString('hex');
    let sawProcess = false;
    const sink = new MemorySink();
    const events = {
      emit(event: ExtenderEvent) {
        sink.emit(event);
        if (event.type === 'instruction-started' && event.instruction.startsWith('RUN sleep')) {
          // Abort once the RUN's process really runs in the daemon.
          void (async () => {
            for (let i = 0; i < 300 && !(await runningWith(marker)); i++) await new Promise((resolve) => setTimeout(resolve, 100));
            sawProcess = await runningWith(marker);
            controller.abort(new Error('operator cancelled'));
          })();
        }
      },
    };
    const workDir = await mkdtemp(join(dir, 'work-'));
    const err = await applyDockerfile(backend, `ARG base_image\nFROM \${base_image}\nUSER root\nRUN sleep 120 && echo ${marker}\n`, await context(), {
      signal: controller.signal,
      events: events as unknown as MemorySink,
      workDir,
    }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('operator cancelled');
    expect(backend.openSessions).toBe(0);
    // The daemon cancelled the job: the RUN's process goes away instead of sleeping on.
    expect(sawProcess).toBe(true);
    expect(await processGone(marker)).toBe(true);
    await expect(readdir(workDir)).rejects.toThrow(/ENOENT/);
  }, 60_000);
});
