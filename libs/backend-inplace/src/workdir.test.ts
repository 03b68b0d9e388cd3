import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { childClosed } from '@cnb-extender/testenv';
import { mountsAt, removeTree } from './test/support.ts';
import { createWorkArea, withWorkArea } from './workdir.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) removeTree(d);
});

function extendDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'inplace-extend-'));
  dirs.push(d);
  mkdirSync(join(d, 'cache'));
  return d;
}

/** Processes whose root directory is `root` (a chrooted RUN). */
function processesIn(root: string): string[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        return readlinkSync(`/proc/${p}/root`).startsWith(root);
      } catch {
        return false;
      }
    });
}

describe('work area', () => {
  it('is unique per call and removed after success, leaving only cache/', async () => {
    const ext = extendDir();
    const seen = await withWorkArea(ext, async (a) => {
      const b = createWorkArea(ext);
      expect(b.dir).not.toBe(a.dir);
      writeFileSync(join(a.dir, 'x'), 'x');
      await b.remove();
      return a.dir;
    });
    expect(existsSync(seen)).toBe(false);
    expect(readdirSync(ext)).toEqual(['cache']);
  });

  it('is removed after a failure', async () => {
    const ext = extendDir();
    let seen = '';
    await expect(
      withWorkArea(ext, async (a) => {
        seen = a.dir;
        mkdirSync(join(a.dir, 'deep/er'), { recursive: true });
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(seen).not.toBe('');
    expect(readdirSync(ext)).toEqual(['cache']);
  });

  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    it(`on ${sig} during a long RUN: kills the RUN's processes, leaves no mounts, removes the work dir`, async () => {
      const ext = extendDir();
      const child = spawn(process.execPath, [fileURLToPath(new URL('./test/work-area-child.ts', import.meta.url)), ext, JSON.stringify(inject('testenv').fixtures.build)], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const closed = childClosed(child, 'running the work-area child');
      const ready = await new Promise<string[]>((resolve, reject) => {
        let out = '';
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          const line = out.split('\n').find((l) => l.startsWith('ready '));
          if (line) resolve(line.split(' ').slice(1));
        });
        void closed.then(({ code }) => reject(new Error(`child exited (${code}) before it was ready: ${stderr}`)), reject);
      });
      const [workDir, root] = ready as [string, string];
      expect(processesIn(root).length).toBeGreaterThan(0);
      const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
      child.kill(sig);
      expect(await exited).toBe(sig);
      expect(existsSync(workDir)).toBe(false);
      expect(readdirSync(ext)).toEqual(['cache']);
      expect(mountsAt(root)).toEqual([]);
      // SIGKILL was sent to the group; give the kernel a moment to reap before looking.
      for (let i = 0; i < 50 && processesIn(root).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(processesIn(root)).toEqual([]);
    });
  }
});
