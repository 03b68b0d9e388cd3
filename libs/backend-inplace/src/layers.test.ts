// Round trip: what the executor does to a root, captured as layers by the
// snapshotter and libs/oci's writer, applied by libs/oci's applier onto a fresh
// copy of the base, must give the same tree (types, modes, owners, content,
// link targets, xattrs, hardlinks).
import { chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { applyLayer, writeLayer } from '@cnb-extender/oci';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { diffSnapshots, takeSnapshot, type Snapshot } from './snapshot/index.ts';
import { executeDockerfile, setXattrHex, removeTree, treeView, unpackFixture } from './test/support.ts';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) removeTree(d);
});

const view = (s: Snapshot) => treeView(s);

describe('executed changes → layers → applied on the base', () => {
  for (const [name, racyWindowNs] of [['default racy window', undefined], ['every entry racy (content decides)', 10n ** 18n]] as const) it(`reproduces the executed root exactly (${name})`, async () => {
    const fixture = inject('testenv').fixtures.build;
    const a = await unpackFixture(fixture);
    const b = await unpackFixture(fixture);
    const scratch = mkdtempSync(join(tmpdir(), 'inplace-layers-'));
    dirs.push(a, b, scratch);
    chmodSync(a, 0o755);
    const ignorePaths = ['/workspace'];
    const snap = (root: string): Snapshot => takeSnapshot(root, racyWindowNs === undefined ? { ignorePaths } : { ignorePaths, racyWindowNs });
    const opts = { root: a, contextDir: scratch, config: { User: '0:0', Env: ['PATH=/usr/sbin:/usr/bin:/sbin:/bin'] } };
    const steps: (() => Promise<unknown>)[] = [
      () => executeDockerfile('RUN mkdir -p /opt/a/b && echo one > /opt/a/b/f && ln /opt/a/b/f /opt/a/hard && ln -s b/f /opt/a/soft && cp /bin/busybox /opt/a/suid && chmod 4755 /opt/a/suid && chown 1000:1000 /opt/a/b', opts),
      async () => setXattrHex(join(a, 'opt/a/suid'), 'security.capability', '0100000200040000000000000000000000000000'),
      () => executeDockerfile('RUN rm -rf /opt/a/b && mkdir /opt/a/b && echo two > /opt/a/b/g; rm /etc/cnb-fixture; rm -rf /home/cnb; echo more >> /opt/a/hard', opts),
      () => executeDockerfile('RUN rm /opt/a/soft && mkdir /opt/a/soft && rm -rf /usr/local && echo file > /usr/local; chmod 700 /root; ln /bin/busybox /bin/bb2; echo ws > /workspace/x', opts),
    ];
    let previous = snap(a);
    for (const [i, step] of steps.entries()) {
      await step();
      const next = snap(a);
      const changes = diffSnapshots(previous, next);
      previous = next;
      const path = join(scratch, `layer-${i}.tar.gz`);
      await writeLayer(changes.entries, path);
      await applyLayer(b, path);
    }
    expect(readFileSync(join(a, 'workspace/x'), 'utf8')).toBe('ws\n');
    const want = view(takeSnapshot(a, { ignorePaths }));
    const got = view(takeSnapshot(b, { ignorePaths }));
    expect([...got.keys()].sort()).toEqual([...want.keys()].sort());
    const diffs = [...want].filter(([p, l]) => got.get(p) !== l).map(([p, l]) => `${p}\n  want ${l}\n  got  ${got.get(p)}`);
    expect(diffs.join("\n")).toBe("");
  });
});
