import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { inRoot, setXattrHex, removeTree, unpackFixture } from '../test/support.ts';
import { diffSnapshots, hasChanged } from './diff.ts';
import type { ChangeSet, FileMeta } from './types.ts';
import { takeSnapshot } from './walk.ts';

const roots: string[] = [];
afterEach(() => {
  for (const r of roots.splice(0)) removeTree(r);
});

async function fixtureRoot(): Promise<string> {
  const root = await unpackFixture(inject('testenv').fixtures.build);
  roots.push(root);
  return root;
}

function entry(set: ChangeSet, path: string) {
  return set.entries.find((e) => e.path === path);
}

/** Snapshot, change the root with a real busybox shell in a chroot, snapshot again, diff. */
function change(root: string, script: string, ignorePaths: string[] = []): ChangeSet {
  const before = takeSnapshot(root, { ignorePaths });
  inRoot(root, script);
  return diffSnapshots(before, takeSnapshot(root, { ignorePaths }));
}

describe('snapshot', () => {
  it('records the fixture root with owners, modes and symlink targets, and nothing for an unchanged root', async () => {
    const root = await fixtureRoot();
    const a = takeSnapshot(root);
    expect(a.files.get('bin/busybox')).toMatchObject({ type: 'file', mode: 0o755, uid: 0 });
    expect(a.files.get('bin/ls')).toMatchObject({ type: 'symlink', linkTarget: '/bin/busybox' });
    expect(a.files.get('home/cnb')).toMatchObject({ type: 'directory', uid: 1000, gid: 1000 });
    expect(a.files.get('tmp')?.mode).toBe(0o1777);
    const b = takeSnapshot(root);
    const diff = diffSnapshots(a, b);
    expect(diff.entries).toEqual([]);
  });

  it('sees files created, modified and deleted by a RUN-like process; deletions become whiteouts', async () => {
    const root = await fixtureRoot();
    const set = change(root, 'echo new > /etc/new-file && echo changed >> /etc/os-release && rm /etc/cnb-fixture && rm -r /home/cnb');
    expect(set.added).toContain('etc/new-file');
    expect(set.modified).toContain('etc/os-release');
    expect(set.deleted.sort()).toEqual(['etc/cnb-fixture', 'home/cnb']);
    expect(entry(set, 'etc/.wh.cnb-fixture')).toMatchObject({ type: 'file', size: 0, change: 'whiteout' });
    expect(entry(set, 'home/.wh.cnb')).toMatchObject({ change: 'whiteout' });
    // parents come along with their metadata
    expect(entry(set, 'etc')).toMatchObject({ type: 'directory', mode: 0o755 });
    expect(entry(set, 'etc/new-file')).toMatchObject({ type: 'file', size: 4, source: join(root, 'etc/new-file') });
    // unchanged files stay out
    expect(entry(set, 'bin/busybox')).toBeUndefined();
    expect(entry(set, 'etc/passwd')).toBeUndefined();
  });

  it('sees a same-size rewrite with the same times only through the content hash of racy entries', async () => {
    const root = await fixtureRoot();
    const before = takeSnapshot(root);
    const file = join(root, 'etc/os-release');
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, text.replace('busybox', 'BUSYBOX'));
    const set = diffSnapshots(before, takeSnapshot(root));
    expect(set.modified).toContain('etc/os-release');
  });

  it('hashes only what changed in the last few clock ticks, not a freshly unpacked root a moment later', async () => {
    const root = await fixtureRoot();
    await new Promise((r) => setTimeout(r, 200));
    writeFileSync(join(root, 'fresh'), 'just now\n');
    const snapshot = takeSnapshot(root);
    const racy = [...snapshot.files].filter(([, meta]) => meta.racy).map(([path]) => path);
    // the new file only: nothing of the image unpacked 200 ms earlier is hashed
    expect(racy).toEqual(['fresh']);
    expect(snapshot.files.get('fresh')?.hash).toBe(createHash('sha256').update('just now\n').digest('hex'));
    // with a window reaching back past the unpack, everything the unpack wrote is racy
    expect([...takeSnapshot(root, { racyWindowNs: 60_000_000_000n }).files.values()].filter((m) => m.racy).length).toBe(snapshot.files.size);
  });

  it('puts every name of an inode into the layer when a link is added, also when times cannot decide', async () => {
    const root = await fixtureRoot();
    const allRacy = { racyWindowNs: 10n ** 18n };
    const before = takeSnapshot(root, allRacy);
    inRoot(root, 'ln /bin/busybox /bin/bb2');
    const set = diffSnapshots(before, takeSnapshot(root, allRacy));
    expect(entry(set, 'bin/bb2')?.inode).toBeDefined();
    expect(entry(set, 'bin/busybox')?.inode).toBe(entry(set, 'bin/bb2')?.inode);
  });

  it('marks a replaced directory opaque and takes only the new content', async () => {
    const root = await fixtureRoot();
    const set = change(root, 'rm -rf /usr/local && mkdir -p /usr/local/only && echo x > /usr/local/only/f');
    expect(set.opaque).toEqual(['usr/local']);
    expect(entry(set, 'usr/local/.wh..wh..opq')).toMatchObject({ change: 'opaque' });
    expect(set.added).toEqual(expect.arrayContaining(['usr/local/only', 'usr/local/only/f']));
    expect(set.deleted).toEqual([]);
  });

  it('keeps hardlinks as one inode key, symlinks with their targets, setuid bits and type changes', async () => {
    const root = await fixtureRoot();
    const set = change(
      root,
      [
        'echo data > /usr/bin/tool && ln /usr/bin/tool /usr/sbin/tool-link',
        'ln -s ../bin/tool /usr/local/bin/tool',
        'cp /bin/busybox /usr/bin/su-tool && chmod 4755 /usr/bin/su-tool',
        'rm /bin/ls && mkdir /bin/ls',
      ].join(' && '),
    );
    const a = entry(set, 'usr/bin/tool');
    const b = entry(set, 'usr/sbin/tool-link');
    expect(a?.inode).toBeDefined();
    expect(b?.inode).toBe(a?.inode);
    expect(entry(set, 'usr/local/bin/tool')).toMatchObject({ type: 'symlink', linkTarget: '../bin/tool' });
    expect(entry(set, 'usr/bin/su-tool')?.mode).toBe(0o4755);
    expect(entry(set, 'bin/ls')).toMatchObject({ type: 'directory', change: 'added' });
    expect(set.deleted).not.toContain('bin/ls');
  });

  it('sees mode, owner and xattr changes (security.capability) without content changes', async () => {
    const root = await fixtureRoot();
    const before = takeSnapshot(root);
    chmodSync(join(root, 'etc/passwd'), 0o600);
    chownSync(join(root, 'etc/group'), 1000, 1000);
    // v2 file capability granting cap_net_bind_service (bit 10) permitted+effective
    setXattrHex(join(root, 'bin/busybox'), 'security.capability', '0100000200040000000000000000000000000000');
    const set = diffSnapshots(before, takeSnapshot(root));
    expect(entry(set, 'etc/passwd')?.mode).toBe(0o600);
    expect(entry(set, 'etc/group')).toMatchObject({ uid: 1000, gid: 1000 });
    const caps = entry(set, 'bin/busybox')?.xattrs?.['security.capability'];
    expect(caps && Buffer.from(caps).toString('hex')).toBe('0100000200040000000000000000000000000000');
  });

  it('never records ignored paths or anything below them', async () => {
    const root = await fixtureRoot();
    mkdirSync(join(root, 'proc'));
    const set = change(root, 'echo app > /workspace/app.txt && echo l > /layers/x && mkdir -p /proc/fake && echo y > /etc/kept', ['/workspace', '/layers']);
    expect(set.entries.map((e) => e.path).filter((p) => /^(workspace|layers|proc)(\/|$)/.test(p))).toEqual([]);
    expect(set.added).toEqual(['etc/kept']);
  });

  it('does not follow a symlink to a directory outside the root', async () => {
    const root = await fixtureRoot();
    const before = takeSnapshot(root);
    symlinkSync('/usr', join(root, 'host-usr'));
    const set = diffSnapshots(before, takeSnapshot(root));
    expect(set.entries.map((e) => e.path)).toEqual(['host-usr']);
  });
});

describe('hasChanged (metadata decides for entries that were not racy)', () => {
  const base: FileMeta = { type: 'file', mode: 0o644, uid: 0, gid: 0, size: 3, mtimeNs: 1n, ctimeNs: 2n, ino: 7n, birthNs: 5n, dev: 1n, nlink: 1, rdev: 0 };
  it('is false when every recorded field is equal, without reading the file', () => {
    expect(hasChanged(base, { ...base }, '/nonexistent/never-read')).toBe(false);
  });
  it('is true for any difference of ctime, mtime, inode, size, mode or owner', () => {
    for (const patch of [{ ctimeNs: 3n }, { mtimeNs: 0n }, { ino: 8n }, { birthNs: 6n }, { size: 4 }, { mode: 0o600 }, { uid: 1 }, { gid: 1 }]) {
      expect(hasChanged(base, { ...base, ...patch }, '/nonexistent/never-read')).toBe(true);
    }
  });
});

describe('snapshot on overlayfs (the container root in production)', () => {
  it('does not take a copied-up directory for a replaced one, and still sees real replacements', async () => {
    const lower = await fixtureRoot();
    const base = mkdtempSync(join(tmpdir(), 'inplace-ovl-'));
    roots.push(base);
    for (const d of ['upper', 'work', 'merged']) mkdirSync(join(base, d));
    const merged = join(base, 'merged');
    execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${lower},upperdir=${join(base, 'upper')},workdir=${join(base, 'work')}`, merged]);
    try {
      const before = takeSnapshot(merged);
      inRoot(merged, 'echo new > /usr/bin/new-tool && rm -rf /usr/local && mkdir -p /usr/local/bin && echo x > /usr/local/bin/x');
      const after = takeSnapshot(merged);
      const set = diffSnapshots(before, after);
      expect(set.opaque).toEqual(['usr/local']);
      expect(set.added).toEqual(expect.arrayContaining(['usr/bin/new-tool', 'usr/local/bin', 'usr/local/bin/x']));
      // /usr/bin was copied up (new birth time) but keeps its busybox links: only the new file and the dir entry.
      expect(set.entries.map((e) => e.path).filter((p) => p.startsWith('usr/bin/'))).toEqual(['usr/bin/new-tool']);
      expect(set.deleted).toEqual([]);
    } finally {
      execFileSync('umount', [merged]);
    }
  });
});
