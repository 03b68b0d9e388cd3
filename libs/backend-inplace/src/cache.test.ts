import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Descriptor, Digest } from '@cnb-extender/oci';
import { afterAll, describe, expect, it } from 'vitest';
import { contextDigest, LayerCache } from './cache.ts';
import { removeTree } from './test/support.ts';

const scratch = mkdtempSync(join(tmpdir(), 'inplace-cache-'));
afterAll(() => removeTree(scratch));
const descriptor: Descriptor = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${'a'.repeat(64)}` as Digest, size: 3 };

describe('LayerCache', () => {
  it('publishes entries atomically; the first of two writers of one key wins', () => {
    const cache = new LayerCache(join(scratch, 'c1'), 60_000);
    const a = cache.staging();
    const b = cache.staging();
    writeFileSync(join(a, 'layer.tar.gz'), 'aaa');
    writeFileSync(join(b, 'layer.tar.gz'), 'bbb');
    const first = cache.commit(a, 'k', { empty: false, blob: 'layer.tar.gz', diffId: `sha256:${'1'.repeat(64)}` as Digest, descriptor });
    const second = cache.commit(b, 'k', { empty: false, blob: 'layer.tar.gz', diffId: `sha256:${'2'.repeat(64)}` as Digest, descriptor });
    expect(second).toEqual(first);
    expect(cache.get('k')?.diffId).toBe(`sha256:${'1'.repeat(64)}`);
    expect(readdirSync(cache.dir)).toEqual(['k']);
  });

  it('expires entries after the TTL and prunes staging dirs of processes that are gone', () => {
    const cache = new LayerCache(join(scratch, 'c2'), 1000);
    cache.commit(cache.staging(), 'old', { empty: true });
    expect(cache.get('old', Date.now())).toMatchObject({ empty: true });
    expect(cache.get('old', Date.now() + 5000)).toBeUndefined();
    expect(existsSync(join(cache.dir, 'old'))).toBe(false);
    const mine = cache.staging();
    // a staging dir of a process of this pid namespace that is gone
    mkdirSync(join(cache.dir, mine.split('/').at(-1)!.replace(/^\.tmp-\d+-/, '.tmp-999999999-')));
    cache.prune();
    expect(readdirSync(cache.dir)).toEqual([mine.split('/').at(-1)]);
  });

  it('keeps the staging dirs of extenders in other pid namespaces (other containers sharing the extend dir)', () => {
    const cache = new LayerCache(join(scratch, 'c3'), 60_000);
    const mine = cache.staging();
    // this process's pid means nothing in a fresh pid namespace, where it names no process
    execFileSync('unshare', ['--pid', '--fork', '--kill-child', '--', process.execPath, fileURLToPath(new URL('./test/prune-child.ts', import.meta.url)), cache.dir], { stdio: 'pipe' });
    expect(existsSync(mine)).toBe(true);
    const entry = cache.commit(mine, 'k', { empty: true });
    expect(entry).toMatchObject({ empty: true });
  });
});

describe('contextDigest', () => {
  it('changes with any content, mode, name or link target in the context', () => {
    const dir = join(scratch, 'ctx');
    mkdirSync(join(dir, 'd'), { recursive: true });
    writeFileSync(join(dir, 'd/f'), 'x');
    symlinkSync('d/f', join(dir, 'l'));
    const one = contextDigest(dir);
    expect(contextDigest(dir)).toBe(one);
    writeFileSync(join(dir, 'd/f'), 'y');
    const two = contextDigest(dir);
    expect(two).not.toBe(one);
    writeFileSync(join(dir, 'd/g'), '');
    expect(contextDigest(dir)).not.toBe(two);
  });
});
