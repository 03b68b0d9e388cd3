import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import type { Digest } from '@cnb-extender/oci';
import { extend } from './extend.ts';
import { FakeBackend } from './testing/fake-backend.ts';
import { testEnv } from './testing/testenv.ts';
import { createWorkspace, type Workspace } from './testing/workspace.ts';
import { currentOwner, ownerOf, processStartTime, pruneWorkDirs, workDirName } from './work-dir.ts';

const temps: string[] = [];
const workspaces: Workspace[] = [];
afterEach(async () => {
  for (const ws of workspaces.splice(0)) await ws.remove();
  await Promise.all(temps.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

async function workRoot(names: string[]): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'work-root-'));
  temps.push(root);
  for (const name of names) await mkdir(join(root, name, 'inside'), { recursive: true });
  return root;
}

describe('work directories', () => {
  it("carry their owner's pid, pid namespace and start time", () => {
    const here = currentOwner();
    expect(here.pidNamespace).toMatch(/^\d+$/);
    expect(here.startTime).toMatch(/^\d+$/);
    const name = workDirName('run', here);
    expect(name).toMatch(new RegExp(`^run-${process.pid}-${here.pidNamespace}-${here.startTime}-[0-9a-f]{12}$`));
    expect(ownerOf(name)).toEqual(here);
    expect(ownerOf('cache')).toBeUndefined();
  });

  it('of runs that are gone are pruned; those of live runs, of other pid namespaces and of other names are kept', async () => {
    const here = currentOwner();
    const parent = { pid: process.ppid, pidNamespace: here.pidNamespace, startTime: processStartTime(process.ppid)! };
    const mine = workDirName('build', here);
    const live = workDirName('run', parent);
    // the parent's pid with another start time: a process that was gone before the pid was reused
    const reused = workDirName('run', { ...parent, startTime: String(Number(parent.startTime) + 1) });
    const foreign = workDirName('run', { pid: 2 ** 22 + 1, pidNamespace: '1', startTime: '5' });
    const foreignOld = workDirName('build', { pid: 2 ** 22 + 2, pidNamespace: '1', startTime: '5' });
    const root = await workRoot([mine, live, reused, foreign, foreignOld, 'cache', 'run-1-2']);
    const old = new Date(Date.now() - 25 * 60 * 60 * 1000);
    await utimes(join(root, foreignOld), old, old);

    const removed = await pruneWorkDirs(root);
    expect(removed.sort()).toEqual([join(root, foreignOld), join(root, reused)].sort());
    expect((await readdir(root)).sort()).toEqual([mine, live, foreign, 'cache', 'run-1-2'].sort());
  });

  it('of a run killed with SIGKILL are removed by the next run', async () => {
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
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    let killed = false;
    for await (const line of createInterface({ input: child.stdout })) {
      const event = JSON.parse(line) as { type: string; index?: number };
      if (!killed && event.type === 'instruction-started' && (event.index ?? 0) >= 1) {
        killed = true;
        child.kill('SIGKILL');
      }
    }
    expect(killed, `child never started applying; stderr: ${stderr}`).toBe(true);
    expect(await exited).toBe('SIGKILL');
    const left = await readdir(join(ws.extendDir, 'work'));
    expect(left).toHaveLength(1);
    expect(ownerOf(left[0]!)?.pid).toBe(child.pid);

    const next = await createWorkspace({
      runImage: run.registryRef,
      baseLayout: { from: run.layoutDir, digest: run.manifestDigest as Digest, mode: 'full' },
      extensions: [{ id: 'quick', run: 'ARG base_image\nFROM ${base_image}\nRUN echo quick > /quick\n' }],
    });
    workspaces.push(next);
    await extend({ kind: 'run', inputs: { ...next.inputs, extendDir: ws.extendDir }, backend: new FakeBackend() });
    expect(await readdir(ws.extendDir)).toEqual(['cache']);
  });
});
