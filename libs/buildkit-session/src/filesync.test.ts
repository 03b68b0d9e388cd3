import { execFileSync } from 'node:child_process';
import { chmod, chown, link, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GoMode, Pattern, PatternSet, sendDiffCopy, walkContext, type WalkOptions } from './filesync.ts';
import { PacketType, decodePacket, encodePacket, type Packet } from './messages.ts';

let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'bk-walk-'));
  await mkdir(join(root, 'a'));
  await writeFile(join(root, 'a', 'x'), 'x');
  await writeFile(join(root, 'a.txt'), 'a.txt');
  await writeFile(join(root, 'B'), 'B');
  await mkdir(join(root, 'ab'));
  await writeFile(join(root, 'ab', 'y'), 'y');
  await writeFile(join(root, 'first'), 'same inode');
  await link(join(root, 'first'), join(root, 'second'));
  await symlink('/etc/passwd', join(root, 'outside'));
  await writeFile(join(root, 'suid'), 's');
  await chmod(join(root, 'suid'), 0o4755);
  execFileSync('mkfifo', [join(root, 'pipe')]);
  await mkdir(join(root, 'logs'));
  await writeFile(join(root, 'logs', 'a.log'), 'log');
  await writeFile(join(root, 'logs', 'keep.log'), 'keep');
  await mkdir(join(root, 'real'));
  await writeFile(join(root, 'real', 'Dockerfile'), 'FROM scratch\n');
  await symlink('real/Dockerfile', join(root, 'Dockerfile'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function walk(options: WalkOptions = {}) {
  const out = [];
  for await (const e of walkContext(root, options)) out.push(e);
  return out;
}

describe('walkContext (fsutil sender order and stats)', () => {
  it('walks like Go filepath.Walk: names in byte order per directory, directory before its children', async () => {
    const paths = (await walk()).map((e) => e.path);
    expect(paths).toEqual(['B', 'Dockerfile', 'a', 'a/x', 'a.txt', 'ab', 'ab/y', 'first', 'logs', 'logs/a.log', 'logs/keep.log', 'outside', 'pipe', 'real', 'real/Dockerfile', 'second', 'suid']);
  });

  it("sends every entry as root's, whoever owns it here (as buildctl does), so COPY without --chown gives 0:0", async () => {
    const owned = join(root, 'a', 'x');
    await chown(owned, 1000, 1000);
    try {
      const byPath = new Map((await walk()).map((e) => [e.path, e]));
      expect(byPath.get('a/x')?.stat).toMatchObject({ uid: 0, gid: 0 });
    } finally {
      await chown(owned, 0, 0);
    }
  });

  it('sends Go os.FileMode bits', async () => {
    const byPath = new Map((await walk()).map((e) => [e.path, e]));
    expect(byPath.get('a')?.stat.mode).toBe(GoMode.dir + 0o755);
    expect(byPath.get('outside')?.stat.mode).toBe(GoMode.symlink + 0o777);
    expect(byPath.get('suid')?.stat.mode).toBe(GoMode.setuid + 0o755);
    expect(byPath.get('pipe')?.stat.mode).toBe(GoMode.namedPipe + 0o644);
    expect(byPath.get('a.txt')?.stat).toMatchObject({ mode: 0o644, size: 5, linkname: '' });
  });

  it('names a hard link by the first path of its inode, and a symlink by its target without following it', async () => {
    const byPath = new Map((await walk()).map((e) => [e.path, e]));
    expect(byPath.get('first')?.stat.linkname).toBe('');
    expect(byPath.get('second')?.stat).toMatchObject({ linkname: 'first', size: 0 });
    expect(byPath.get('second')?.regular).toBe(false);
    expect(byPath.get('outside')?.stat).toMatchObject({ linkname: '/etc/passwd', size: 0 });
    expect(byPath.get('outside')?.regular).toBe(false);
  });

  it('honours exclude patterns with exceptions, as .dockerignore does', async () => {
    const paths = (await walk({ excludePatterns: ['logs/*.log', '!logs/keep.log', 'a'] })).map((e) => e.path);
    expect(paths).toContain('logs/keep.log');
    expect(paths).not.toContain('logs/a.log');
    expect(paths).not.toContain('a');
    expect(paths).not.toContain('a/x');
    expect(paths).toContain('a.txt');
  });

  it('honours include patterns, emitting parent directories only for included children', async () => {
    const paths = (await walk({ includePatterns: ['ab/y', '**/keep.log'] })).map((e) => e.path);
    expect(paths).toEqual(['ab', 'ab/y', 'logs', 'logs/keep.log']);
  });

  it('treats followpaths as includes and brings the target of a followed symlink', async () => {
    const paths = (await walk({ followPaths: ['Dockerfile', 'Dockerfile.dockerignore'] })).map((e) => e.path);
    expect(paths).toEqual(['Dockerfile', 'real', 'real/Dockerfile']);
  });
});

describe('Docker patterns', () => {
  it("are the context patterns shared through @cnb-extender/dockerfile (Go's classes: `[!…]` is no negation)", () => {
    expect(new PatternSet(['**/*.go']).matches('a/b/c.go')).toBe(true);
    expect(new PatternSet(['a/**/z']).matches('a/z')).toBe(true);
    expect(new PatternSet(['*.txt']).matches('dir/x.txt')).toBe(false);
    expect(new PatternSet(['[!a-c]at']).matches('bat')).toBe(true);
    expect(new PatternSet(['[^a-c]at']).matches('bat')).toBe(false);
    expect(new PatternSet(['dir', '!dir/keep']).matches('dir/other/file')).toBe(true);
    expect(new PatternSet(['dir', '!dir/keep']).matches('dir/keep')).toBe(false);
    expect(new Pattern('x', true).exclusion).toBe(true);
  });

  it('enters an excluded directory for an exception with a wildcard, as fsutil does, and sends the directory with what it re-includes', async () => {
    const paths = (await walk({ excludePatterns: ['logs', '!*/keep.log'] })).map((e) => e.path);
    expect(paths.filter((p) => p.startsWith('logs'))).toEqual(['logs', 'logs/keep.log']);
  });
});

/** An in-memory message channel playing the daemon's side of DiffCopy. */
function daemonSide(requests: Packet[]) {
  const sent: Packet[] = [];
  let release: () => void = () => undefined;
  const statsDone = new Promise<void>((resolve) => (release = resolve));
  return {
    sent,
    channel: {
      async *messages() {
        await statsDone;
        for (const r of requests) yield encodePacket(r);
      },
      async send(message: Uint8Array) {
        const packet = decodePacket(Buffer.from(message));
        sent.push(packet);
        if (packet.type === PacketType.stat && !packet.stat) release();
      },
    },
  };
}

describe('sendDiffCopy', () => {
  it('sends stats, an empty stat, file data on request in chunks with an empty EOF packet, then FIN', async () => {
    const entries = await walk();
    const id = entries.findIndex((e) => e.path === 'a.txt');
    const { sent, channel } = daemonSide([
      { type: PacketType.req, id },
      { type: PacketType.fin, id: 0 },
    ]);
    const result = await sendDiffCopy(root, {}, channel);
    const stats = sent.filter((p) => p.type === PacketType.stat);
    expect(stats).toHaveLength(entries.length + 1);
    expect(stats.at(-1)?.stat).toBeUndefined();
    const data = sent.filter((p) => p.type === PacketType.data);
    expect(Buffer.concat(data.map((p) => p.data ?? Buffer.alloc(0))).toString()).toBe('a.txt');
    expect(data.at(-1)?.data).toBeUndefined();
    expect(sent.at(-1)?.type).toBe(PacketType.fin);
    expect(result.bytes).toBe(5);
  });

  it('refuses to send anything but a regular file of the walk (a symlink out of the context is never read)', async () => {
    const entries = await walk();
    const id = entries.findIndex((e) => e.path === 'outside');
    const { channel } = daemonSide([{ type: PacketType.req, id }]);
    await expect(sendDiffCopy(root, {}, channel)).rejects.toThrow(/not a regular file/);
  });
});
