import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Descriptor, Digest } from '@cnb-extender/oci';
import { afterAll, describe, expect, it } from 'vitest';
import { contextDigest, LayerCache, STAGING_MAX_AGE_MS } from './cache.ts';
import { removeTree } from './test/support.ts';

const scratch = mkdtempSync(join(tmpdir(), 'inplace-cache-'));
afterAll(() => removeTree(scratch));
const descriptor: Descriptor = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${'a'.repeat(64)}` as Digest, size: 3 };

function descriptorOf(content: string): Descriptor {
  return { ...descriptor, digest: `sha256:${createHash('sha256').update(content).digest('hex')}` as Digest, size: Buffer.byteLength(content) };
}

describe('LayerCache', () => {
  it('publishes entries atomically; the first of two writers of one key wins', () => {
    const cache = new LayerCache(join(scratch, 'c1'), 60_000);
    const a = cache.staging();
    const b = cache.staging();
    writeFileSync(join(a, 'layer.tar.gz'), 'aaa');
    writeFileSync(join(b, 'layer.tar.gz'), 'bbb');
    const first = cache.commit(a, 'k', { empty: false, blob: 'layer.tar.gz', diffId: `sha256:${'1'.repeat(64)}` as Digest, descriptor: descriptorOf('aaa') });
    const second = cache.commit(b, 'k', { empty: false, blob: 'layer.tar.gz', diffId: `sha256:${'2'.repeat(64)}` as Digest, descriptor: descriptorOf('bbb') });
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
    // …until they are a day old: then no extender is writing them any more
    const foreign = join(cache.dir, `.tmp-1-4026531836-${'0'.repeat(12)}`);
    mkdirSync(foreign);
    cache.prune();
    expect(existsSync(foreign)).toBe(true);
    cache.prune(Date.now() + STAGING_MAX_AGE_MS + 60_000);
    expect(existsSync(foreign)).toBe(false);
  });
});

describe('LayerCache with damaged entries', () => {
  const diffId = `sha256:${'1'.repeat(64)}` as Digest;
  function withEntry(name: string, content = 'layer bytes') {
    const discarded: [string, string][] = [];
    const cache = new LayerCache(join(scratch, name), 60_000, (key, reason) => discarded.push([key, reason]));
    const staging = cache.staging();
    writeFileSync(join(staging, 'layer.tar.gz'), content);
    cache.commit(staging, 'k', { empty: false, blob: 'layer.tar.gz', diffId, descriptor: descriptorOf(content) });
    expect(cache.get('k')?.diffId).toBe(diffId);
    return { cache, discarded, blob: join(cache.dir, 'k', 'layer.tar.gz') };
  }

  it('removes an entry whose blob was altered, and reports why', () => {
    const { cache, discarded, blob } = withEntry('d1');
    writeFileSync(blob, 'layer bytez');
    expect(cache.get('k')).toBeUndefined();
    expect(existsSync(join(cache.dir, 'k'))).toBe(false);
    expect(discarded).toEqual([['k', expect.stringMatching(/^the layer blob's digest is sha256:[0-9a-f]{64}, not the recorded sha256:/)]]);
  });

  it('removes an entry whose blob was cut short or is missing', () => {
    const cut = withEntry('d2');
    truncateSync(cut.blob, 4);
    expect(cut.cache.get('k')).toBeUndefined();
    expect(cut.discarded[0]?.[1]).toBe('the layer blob has 4 bytes, not the recorded 11');
    const gone = withEntry('d3');
    rmSync(gone.blob);
    expect(gone.cache.get('k')).toBeUndefined();
    expect(gone.discarded[0]?.[1]).toMatch(/^reading the layer blob: ENOENT/);
  });

  it('removes an entry without a readable meta.json, and a new writer replaces it', () => {
    const { cache, discarded } = withEntry('d4');
    writeFileSync(join(cache.dir, 'k', 'meta.json'), '{"version": 1, "crea');
    expect(cache.get('k')).toBeUndefined();
    expect(discarded[0]?.[1]).toMatch(/^reading meta\.json: /);
    // a damaged entry that appears between lookup and publish loses to the new one
    mkdirSync(join(cache.dir, 'k'));
    const staging = cache.staging();
    writeFileSync(join(staging, 'layer.tar.gz'), 'fresh');
    const entry = cache.commit(staging, 'k', { empty: false, blob: 'layer.tar.gz', diffId, descriptor: descriptorOf('fresh') });
    expect(entry.descriptor).toEqual(descriptorOf('fresh'));
    expect(cache.get('k')?.descriptor).toEqual(descriptorOf('fresh'));
    expect(readdirSync(cache.dir)).toEqual(['k']);
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
