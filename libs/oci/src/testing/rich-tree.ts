import { execFileSync } from 'node:child_process';
import { chmod, chown, link, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireXattrAccess } from '../layer/xattr.ts';

/** `security.capability` value for cap_net_bind_service=ep (VFS_CAP_REVISION_2). */
export const NET_BIND_CAPABILITY = Buffer.from('0100000200040000000000000000000000000000', 'hex');

export function requireRoot(what: string): void {
  if (process.getuid?.() !== 0) throw new Error(`${what} needs root (owners, device nodes, security.* xattrs); run the tests as root`);
}

/**
 * A tree with every kind of thing a layer can hold: modes with setuid, setgid
 * and sticky bits, several owners, symlinks (relative, absolute, dangling),
 * a hardlink group, xattrs (user.* and security.capability), a fifo, a
 * character device, long and non-ASCII names, empty and larger files.
 * Needs root.
 */
export async function makeRichTree(root: string): Promise<void> {
  requireRoot('makeRichTree');
  const x = requireXattrAccess('makeRichTree');
  const w = async (rel: string, data: string | Buffer, mode = 0o644, uid = 0, gid = 0): Promise<void> => {
    const p = join(root, rel);
    await writeFile(p, data);
    await chown(p, uid, gid);
    await chmod(p, mode);
  };
  const d = async (rel: string, mode = 0o755, uid = 0, gid = 0): Promise<void> => {
    const p = join(root, rel);
    await mkdir(p, { recursive: true });
    await chown(p, uid, gid);
    await chmod(p, mode);
  };
  await d('bin');
  await d('etc');
  await d('home/cnb', 0o750, 1000, 1000);
  await d('tmp', 0o1777);
  await d('srv/shared', 0o2775, 0, 1000);
  await d('empty-dir', 0o700, 12345, 54321);
  await w('bin/tool', '#!/bin/sh\necho tool\n', 0o755);
  await w('bin/su-helper', 'setuid helper\n', 0o4755);
  await w('bin/sg-helper', 'setgid helper\n', 0o2755, 0, 1000);
  await w('bin/ping', 'capable\n', 0o755);
  x.set(join(root, 'bin/ping'), 'security.capability', NET_BIND_CAPABILITY);
  await w('etc/config', 'key=value\n', 0o600);
  x.set(join(root, 'etc/config'), 'user.origin', Buffer.from('test suite'));
  x.set(join(root, 'etc/config'), 'user.binary', Buffer.from([0, 1, 2, 255, 10, 61]));
  await w('home/cnb/.profile', 'export PATH\n', 0o644, 1000, 1000);
  await w('home/cnb/empty', '', 0o640, 1000, 1000);
  await w('home/cnb/big.bin', Buffer.alloc(3 * 1024 * 1024 + 17, 0x5a), 0o644, 1000, 1000);
  await w('srv/shared/data', 'shared data\n', 0o664, 2000, 1000);
  await link(join(root, 'srv/shared/data'), join(root, 'srv/hardlink-1'));
  await link(join(root, 'srv/shared/data'), join(root, 'bin/hardlink-2'));
  await symlink('tool', join(root, 'bin/relative-link'));
  await symlink('/etc/config', join(root, 'bin/absolute-link'));
  await symlink('../nowhere/at-all', join(root, 'bin/dangling-link'));
  await symlink('bin', join(root, 'dir-link'));
  const longDir = `deep/${'d'.repeat(90)}/${'e'.repeat(90)}`;
  await d(longDir);
  await w(`${longDir}/${'f'.repeat(120)}.txt`, 'long name\n');
  await symlink(`../${'t'.repeat(150)}`, join(root, longDir, 'long-target-link'));
  await w('unicodé-名前.txt', 'utf-8 name\n');
  await w('space name', 'spaces\n');
  execFileSync('mkfifo', ['-m', '640', join(root, 'tmp/fifo')]);
  execFileSync('mknod', ['-m', '666', join(root, 'etc/null-device'), 'c', '1', '3']);
}
