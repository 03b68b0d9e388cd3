import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureOwner } from './build-handoff.ts';

const scratch = mkdtempSync(join(tmpdir(), 'ensure-owner-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('ensureOwner (<layers> handed to the CNB user)', () => {
  it('gives the whole tree to uid:gid, and only when the top is not theirs', async () => {
    const layers = join(scratch, 'plain');
    mkdirSync(join(layers, 'a', 'b'), { recursive: true });
    writeFileSync(join(layers, 'a', 'b', 'f'), 'x');
    expect(await ensureOwner(layers, 1000, 1001)).toBe(true);
    for (const p of ['', 'a', 'a/b', 'a/b/f']) expect(statSync(join(layers, p))).toMatchObject({ uid: 1000, gid: 1001 });
    expect(await ensureOwner(layers, 1000, 1001)).toBe(false);
  });

  it('skips entries removed while it walks (a run-kind extender writing <layers>/extended at the same time)', async () => {
    for (let round = 0; round < 5; round++) {
      const layers = join(scratch, `racing-${round}`);
      for (let d = 0; d < 40; d++) {
        const dir = join(layers, 'extended', 'run', `.tmp-${d}`);
        mkdirSync(dir, { recursive: true });
        for (let f = 0; f < 50; f++) writeFileSync(join(dir, `blob-${f}`), '');
      }
      mkdirSync(join(layers, 'config'));
      const remover = new Promise<void>((resolve, reject) => {
        const child = spawn('rm', ['-rf', join(layers, 'extended', 'run')]);
        child.on('error', reject);
        child.on('close', () => resolve());
      });
      await ensureOwner(layers, 1000, 1000);
      await remover;
      expect(statSync(join(layers, 'config')).uid).toBe(1000);
    }
  });
});
