/**
 * Snapshot benchmark: full walks of a Debian minbase root filesystem (~170 MB,
 * ~7k paths) and diffs, next to a peer tool doing the same metadata walk
 * (`find -printf` with size, times, inode, mode and owner) in the same run.
 *
 *   node libs/backend-inplace/bench/snapshot.bench.ts [rootfs]
 *
 * Without an argument it unpacks the test environment's Debian bookworm
 * minbase run image (`ensureDebianLayouts()`, built once with mmdebstrap) into
 * `.cache/backend-inplace/debian-run-<key>`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readLayoutImage } from '@cnb-extender/extender-core';
import { applyLayer } from '@cnb-extender/oci';
import { ensureDebianLayouts } from '@cnb-extender/testenv';
import { diffSnapshots, takeSnapshot } from '../src/snapshot/index.ts';

const cacheDir = fileURLToPath(new URL('../../../.cache/backend-inplace', import.meta.url));
let root = process.argv[2];
if (root === undefined) {
  const debian = await ensureDebianLayouts({ log: (l) => console.log(l) });
  root = join(cacheDir, `debian-run-${debian.key}`);
  if (!existsSync(root)) {
    const tmp = `${root}.tmp`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    for (const layer of (await readLayoutImage(debian.run.layoutDir, 'debian-run')).image.layers) {
      await applyLayer(tmp, (layer.blob as { path: string }).path, { absolutePaths: 'root' });
    }
    renameSync(tmp, root);
  }
}

const ignorePaths = ['/workspace', '/layers', '/platform', '/kaniko'];
function time<T>(fn: () => T): [T, number] {
  const start = performance.now();
  const value = fn();
  return [value, performance.now() - start];
}
function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const runs = 7;
const walk: number[] = [];
const peer: number[] = [];
const diff: number[] = [];
let last = takeSnapshot(root, { ignorePaths });
const size = Number(execFileSync('du', ['-sb', root], { encoding: 'utf8' }).split('\t')[0]) / 1e6;
for (let i = 0; i < runs; i++) {
  const [snap, ms] = time(() => takeSnapshot(root, { ignorePaths }));
  walk.push(ms);
  const [set, dms] = time(() => diffSnapshots(last, snap));
  if (set.entries.length !== 0) throw new Error(`unchanged tree produced ${set.entries.length} entries`);
  diff.push(dms);
  last = snap;
  const [, pms] = time(() => spawnSync('find', [root, '-xdev', '-printf', '%p %s %T@ %C@ %i %m %U %G %l\n'], { stdio: ['ignore', 'ignore', 'inherit'] }));
  peer.push(pms);
}
// Worst case: every entry racy (a snapshot taken right after the tree was written) hashes every file.
const [allRacy, racyMs] = time(() => takeSnapshot(root, { ignorePaths, racyWindowNs: 10n ** 18n }));
const racy = [...last.files.values()].filter((m) => m.racy).length;

// A RUN-like change: new files, an edit, a deletion.
const marker = join(root, 'usr/share/bench-change');
mkdirSync(marker, { recursive: true });
for (let i = 0; i < 200; i++) writeFileSync(join(marker, `f${i}`), `file ${i}\n`);
const after = takeSnapshot(root, { ignorePaths });
const [changes, changeMs] = time(() => diffSnapshots(last, after));
rmSync(marker, { recursive: true });

console.log(`rootfs ${root}: ${last.files.size} paths, ${size.toFixed(0)} MB, ${racy} racy (hashed)`);
console.log(`full snapshot (lstat walk):          median ${median(walk).toFixed(1)} ms over ${runs} runs (min ${Math.min(...walk).toFixed(1)}, max ${Math.max(...walk).toFixed(1)})`);
console.log(`peer: find -printf metadata walk:    median ${median(peer).toFixed(1)} ms`);
console.log(`worst case, every file racy (hashed): ${racyMs.toFixed(1)} ms for ${allRacy.files.size} paths`);
console.log(`diff of two unchanged snapshots:     median ${median(diff).toFixed(1)} ms`);
console.log(`diff after adding 200 files:         ${changeMs.toFixed(1)} ms, ${changes.entries.length} entries`);
