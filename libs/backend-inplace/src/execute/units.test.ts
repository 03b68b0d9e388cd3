import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeTree } from '../test/support.ts';
import { resolveInRoot } from './paths.ts';
import { resolveOwner, resolveUser } from './user.ts';

const root = mkdtempSync(join(tmpdir(), 'inplace-units-'));
afterAll(() => removeTree(root));
mkdirSync(join(root, 'etc'));
writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\ncnb:x:1000:1000:cnb:/home/cnb:/bin/sh\napp:x:2000:2000::/srv:/bin/sh\n');
writeFileSync(join(root, 'etc/group'), 'root:x:0:\ncnb:x:1000:\ndocker:x:999:cnb,app\nstaff:x:50:cnb\n');

describe('resolveUser / resolveOwner', () => {
  it('resolves names and numbers against the root, with supplementary groups only without a group', () => {
    expect(resolveUser(root, 'cnb')).toEqual({ uid: 1000, gid: 1000, groups: [1000, 999, 50], home: '/home/cnb', name: 'cnb' });
    expect(resolveUser(root, 'cnb:docker')).toMatchObject({ uid: 1000, gid: 999, groups: [999] });
    expect(resolveUser(root, '4242')).toEqual({ uid: 4242, gid: 0, groups: [0], home: '/' });
    expect(resolveUser(root, '2000:7')).toMatchObject({ uid: 2000, gid: 7, home: '/srv' });
    expect(resolveUser(root, '')).toMatchObject({ uid: 0, gid: 0, home: '/root' });
    expect(() => resolveUser(root, 'nobody-here')).toThrow(/no user "nobody-here"/);
    expect(() => resolveUser(root, 'cnb:nogroup')).toThrow(/no group "nogroup"/);
    expect(resolveOwner(root, 'app')).toEqual({ uid: 2000, gid: 2000 });
    expect(resolveOwner(root, '1234')).toEqual({ uid: 1234, gid: 1234 });
  });
});

describe('resolveInRoot', () => {
  it('follows symlinks as a chrooted process would and never leaves the root', () => {
    mkdirSync(join(root, 'usr/lib'), { recursive: true });
    symlinkSync('usr/lib', join(root, 'lib'));
    symlinkSync('/usr', join(root, 'abs'));
    symlinkSync('../../../../..', join(root, 'up'));
    expect(resolveInRoot(root, '/lib/x')).toBe(join(root, 'usr/lib/x'));
    expect(resolveInRoot(root, '/abs/lib')).toBe(join(root, 'usr/lib'));
    expect(resolveInRoot(root, '/up/etc/passwd')).toBe(join(root, 'etc/passwd'));
    expect(resolveInRoot(root, '/../../etc')).toBe(join(root, 'etc'));
    expect(resolveInRoot(root, '/lib', false)).toBe(join(root, 'lib'));
  });
});
