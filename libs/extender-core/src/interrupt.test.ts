import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import type { Digest } from '@cnb-extender/oci';
import { testEnv } from './testing/testenv.ts';
import { createWorkspace, type Workspace } from './testing/workspace.ts';

const workspaces: Workspace[] = [];
afterEach(async () => {
  for (const ws of workspaces.splice(0)) await ws.remove();
});

describe('interrupted run', () => {
  it('SIGTERM while a Dockerfile is being applied leaves no <extended>/run entry and no work directory', async () => {
    const run = testEnv().fixtures.run;
    const steps = Array.from({ length: 200 }, (_, i) => `RUN echo ${i} > /step-${i}\n`).join('');
    const ws = await createWorkspace({
      runImage: run.registryRef,
      baseLayout: { from: run.layoutDir, digest: run.manifestDigest as Digest, mode: 'full' },
      extensions: [{ id: 'slow', run: `ARG base_image\nFROM \${base_image}\n${steps}` }],
    });
    workspaces.push(ws);
    const child = spawn(process.execPath, [join(import.meta.dirname, 'interrupt.child.ts'), JSON.stringify({ kind: 'run', inputs: ws.inputs, stall: 'apply' })], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const lines: { type: string; code?: string; message?: string }[] = [];
    let signalled = false;
    for await (const line of createInterface({ input: child.stdout })) {
      const event = JSON.parse(line) as { type: string; index?: number };
      lines.push(event);
      // Interrupt once a layer exists in the work directory and the next instruction runs.
      if (!signalled && event.type === 'instruction-started' && (event.index ?? 0) >= 2) {
        signalled = true;
        child.kill('SIGTERM');
      }
    }
    const code = await exited;
    expect(signalled, `child never started applying; stderr: ${stderr}`).toBe(true);
    const error = lines.find((l) => l.type === 'error');
    expect(error?.code, stderr).toBe('ABORTED');
    expect(error?.message).toMatch(/^failed to extend run image: .*cancelled: received SIGTERM$/);
    // ended through extend()'s error (the CLIs turn ABORTED into 102), not killed by the signal
    expect(code).toBe(1);
    await expect(readdir(join(ws.extendedDir, 'run'))).rejects.toThrow(/ENOENT/);
    expect(await readdir(ws.extendDir)).toEqual(['cache']);
    expect(lines.some((l) => l.type === 'extend-finished')).toBe(false);
  });

  it('SIGTERM while <extended>/run is being written leaves no entry there, no temporary and no work directory', async () => {
    const run = testEnv().fixtures.run;
    const ws = await createWorkspace({
      runImage: run.registryRef,
      baseLayout: { from: run.layoutDir, digest: run.manifestDigest as Digest, mode: 'sparse' },
      extensions: [{ id: 'big', run: 'ARG base_image\nFROM ${base_image}\nRUN echo a > /a\nRUN echo b > /b\n' }],
    });
    workspaces.push(ws);
    const child = spawn(process.execPath, [join(import.meta.dirname, 'interrupt.child.ts'), JSON.stringify({ kind: 'run', inputs: ws.inputs, stall: 'output' })], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const lines: { type: string; code?: string; name?: string }[] = [];
    let signalled = false;
    for await (const line of createInterface({ input: child.stdout })) {
      const event = JSON.parse(line) as { type: string };
      lines.push(event);
      if (!signalled && event.type === 'blob-opened') {
        signalled = true;
        // The temporary layout exists beside run/ while the blob is copied.
        expect((await readdir(ws.extendedDir)).some((e) => e.startsWith('.run-'))).toBe(true);
        child.kill('SIGTERM');
      }
    }
    const code = await exited;
    expect(signalled, `child never started writing; stderr: ${stderr}`).toBe(true);
    expect(lines.find((l) => l.type === 'error')?.code, stderr).toBe('ABORTED');
    expect(code).toBe(1);
    expect(await readdir(join(ws.extendedDir, 'run'))).toEqual([]);
    expect(await readdir(ws.extendedDir)).toEqual(['run']);
    expect(await readdir(ws.extendDir)).toEqual(['cache']);
  });
});
