import { describe, expect, it } from 'vitest';
import { parseGroup, parsePasswd, resolveImageUser, UserResolutionError } from './user.ts';

const passwd = 'root:x:0:0:root:/root:/bin/sh\n# comment:x:1:1:c:/c:/bin/sh\nbroken\nbad:x:nan:1::/b:/bin/sh\ncnb:x:1000:1001:cnb:/home/cnb:/bin/sh\napp:x:2000:2000::/srv:/bin/sh\n';
const group = 'root:x:0:\ncnb:x:1001:\ndocker:x:999:cnb,app\nstaff:x:50:cnb\n';

describe('parsePasswd / parseGroup', () => {
  it('read name, ids and home, skipping comments, short lines and lines without a numeric uid', () => {
    expect(parsePasswd(passwd)).toEqual([
      { name: 'root', uid: 0, gid: 0, home: '/root' },
      { name: 'cnb', uid: 1000, gid: 1001, home: '/home/cnb' },
      { name: 'app', uid: 2000, gid: 2000, home: '/srv' },
    ]);
    expect(parseGroup(group)[2]).toEqual({ name: 'docker', gid: 999, members: ['cnb', 'app'] });
  });
});

describe('resolveImageUser', () => {
  it('resolves names and numbers, with supplementary groups only without a group', () => {
    expect(resolveImageUser('', passwd, group)).toEqual({ uid: 0, gid: 0, groups: [0], home: '/root', name: 'root' });
    expect(resolveImageUser('cnb', passwd, group)).toEqual({ uid: 1000, gid: 1001, groups: [1001, 999, 50], home: '/home/cnb', name: 'cnb' });
    expect(resolveImageUser('1000', passwd, group)).toMatchObject({ uid: 1000, gid: 1001 });
    expect(resolveImageUser('4242', passwd, group)).toEqual({ uid: 4242, gid: 0, groups: [0], home: '/' });
    expect(resolveImageUser('cnb:staff', passwd, group)).toMatchObject({ uid: 1000, gid: 50, groups: [50] });
    expect(resolveImageUser('2000:7', passwd, group)).toMatchObject({ uid: 2000, gid: 7, home: '/srv' });
    expect(resolveImageUser('7:8', '', '')).toMatchObject({ uid: 7, gid: 8 });
  });

  it('says which name is missing', () => {
    expect(() => resolveImageUser('ghost', passwd, group)).toThrow(UserResolutionError);
    expect(() => resolveImageUser('ghost', passwd, group)).toThrow('resolving user "ghost": no user "ghost" in /etc/passwd of the image');
    expect(() => resolveImageUser('cnb:nogroup', passwd, group)).toThrow('resolving user "cnb:nogroup": no group "nogroup" in /etc/group of the image');
  });
});
