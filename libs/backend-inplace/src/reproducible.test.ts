// Layer bytes are pinned: the same tree changes, snapshotted and written with a fixed
// SOURCE_DATE_EPOCH, give these digests with 1 and with 4 compression workers, for gzip and
// zstd. The digests were recorded before the snapshot and layer writer did each file's work in
// one pass (racy hashes from the layer writer's read, zero blocks compressed once); a change
// to what goes into a layer or how it is encoded fails here, and so does a racy file whose
// change is missed (with every entry racy, the same layers must come out).
import { chmodSync, closeSync, linkSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LayerCompression } from '@cnb-extender/oci';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeChangeLayer } from './layer.ts';
import { diffSnapshots, settleHashes, takeSnapshot, type ChangeSet, type Snapshot } from './snapshot/index.ts';
import { setXattrHex } from './test/support.ts';

const MIB = 1 << 20;
const mtime = new Date(1_700_000_000 * 1000); // what SOURCE_DATE_EPOCH=1700000000 gives

/** Deterministic bytes that compress like program text: words from a small LCG. */
function pseudoText(size: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  const words = ['lorem', 'ipsum', 'dolor', 'sit', 'amet', '0x7f', 'libc.so.6', 'ELF', '\n', '\t', '{}', 'usr/lib'];
  let x = seed >>> 0;
  let at = 0;
  while (at < size) {
    x = (Math.imul(x, 1_664_525) + 1_013_904_223) >>> 0;
    const word = x % 7 === 0 ? String.fromCharCode(33 + (x >>> 8) % 90) : words[(x >>> 16) % words.length]!;
    at += out.write(word, at, 'latin1');
  }
  return out;
}

const VARIANTS = [['gzip', 1], ['gzip', 4], ['zstd', 1], ['zstd', 4]] as const;
const dirs: string[] = [];

interface Run {
  /** `<compression>-<workers>` → per layer: diffID, digest, size. */
  written: Map<string, string[]>;
  changes: ChangeSet[];
}

/**
 * The same three steps on a fresh root, each followed by a snapshot (racy files left for the
 * layer writer to hash, as the backend does) and its layers, written right after the step in
 * every variant (the writer reads the root).
 */
async function run(racyWindowNs: bigint | undefined, variants: readonly (readonly [LayerCompression, number])[]): Promise<Run> {
  const root = mkdtempSync(join(tmpdir(), 'inplace-repro-root-'));
  const scratch = mkdtempSync(join(tmpdir(), 'inplace-repro-out-'));
  dirs.push(root, scratch);
  chmodSync(root, 0o755);
  const snap = (): Snapshot => takeSnapshot(root, { ignoreMountPoints: false, deferHashes: true, ...(racyWindowNs === undefined ? {} : { racyWindowNs }) });
  const out: Run = { written: new Map(), changes: [] };
  let previous = snap();
  const step = async (change: () => void): Promise<void> => {
    settleHashes(previous);
    change();
    const next = snap();
    const set = diffSnapshots(previous, next);
    out.changes.push(set);
    previous = next;
    for (const [compression, workers] of variants) {
      const name = `${compression}-${workers}`;
      const layer = await writeChangeLayer(set, next, join(scratch, `${name}-${out.changes.length}`), { compression, mtime, workers });
      out.written.set(name, [...(out.written.get(name) ?? []), `${layer.diffId} ${layer.digest} ${layer.size}`]);
    }
  };
  // 1: many small files, a 40 MiB file, a 100 MiB sparse file, links, an xattr
  await step(() => {
    mkdirSync(join(root, 'opt/app/small'), { recursive: true });
    for (const d of ['opt', 'opt/app', 'opt/app/small']) chmodSync(join(root, d), 0o755);
    for (let i = 0; i < 300; i++) writeFileSync(join(root, `opt/app/small/f${i}`), `file ${i}\n`.repeat(i % 50));
    writeFileSync(join(root, 'opt/app/big'), pseudoText(40 * MIB, 1));
    const fd = openSync(join(root, 'opt/app/sparse'), 'w');
    writeSync(fd, pseudoText(64 << 10, 2), 0, 64 << 10, 10 * MIB);
    writeSync(fd, pseudoText(4096, 3), 0, 4096, 70 * MIB + 123);
    closeSync(fd);
    truncateSync(join(root, 'opt/app/sparse'), 100 * MIB);
    symlinkSync('small/f1', join(root, 'opt/app/link'));
    linkSync(join(root, 'opt/app/small/f2'), join(root, 'opt/app/hard'));
    writeFileSync(join(root, 'opt/app/cap'), 'x');
    chmodSync(join(root, 'opt/app/cap'), 0o4755);
    setXattrHex(join(root, 'opt/app/cap'), 'security.capability', '0100000200040000000000000000000000000000');
  });
  // 2: the big file rewritten with the same size, deletions, a symlink replaced by a directory
  await step(() => {
    writeFileSync(join(root, 'opt/app/big'), pseudoText(40 * MIB, 4));
    for (let i = 10; i < 20; i++) rmSync(join(root, `opt/app/small/f${i}`));
    rmSync(join(root, 'opt/app/link'));
    mkdirSync(join(root, 'opt/app/link'), { mode: 0o700 });
    chmodSync(join(root, 'opt/app/link'), 0o700);
    writeFileSync(join(root, 'opt/app/link/inside'), 'inside\n');
  });
  // 3: one small file rewritten with the same size; with every entry racy only its content tells
  await step(() => writeFileSync(join(root, 'opt/app/small/f3'), 'FILE 3\n'.repeat(3)));
  return out;
}

let normal: Run;
let allRacy: Run;
beforeAll(async () => {
  normal = await run(undefined, VARIANTS);
  // Every entry racy: content hashes decide every comparison (what a change in the same clock tick needs).
  allRacy = await run(10n ** 18n, [['gzip', 1]]);
}, 180_000);

afterAll(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const PINNED: Record<'gzip' | 'zstd', string[]> = {
  gzip: [
    'sha256:4d4bd0780d757cafa0e73cf39b641b4c5803fab34450f28f020b99e4892ce3cb sha256:4f96a80de1734f01c8978c47413c10e3bcb816d889b6528d4636d899a410e4c7 10469394',
    'sha256:840299839c63ceae2c6a3f00aaf33c4caa57eb4d14d2e872d11ed39607d92f3c sha256:6696818c1213d6f6d1be578a85a375f15f273fc74f35c8b5d70a5e037040e813 10335513',
    'sha256:5094216f6314f82a96559d06cdcf8542a968f8b871ffa5664fddac84bbba7142 sha256:a5f672a87498ac96c440e75b4549eecec7aa08fe78a825ea828b84535183e25b 166',
  ],
  zstd: [
    'sha256:4d4bd0780d757cafa0e73cf39b641b4c5803fab34450f28f020b99e4892ce3cb sha256:34aeff114174f84252f96d4617465c941a02336ee54f73781ad79618155cb397 11355107',
    'sha256:840299839c63ceae2c6a3f00aaf33c4caa57eb4d14d2e872d11ed39607d92f3c sha256:97f017aa0d2b7cc6e76ed898c37ee4f0103021c97cfc267e10b97c1ab12f1e16 11324322',
    'sha256:5094216f6314f82a96559d06cdcf8542a968f8b871ffa5664fddac84bbba7142 sha256:cc8817aa013287637cc9689e51f3702b06dd5cc3ee5a3f0da324331f71427cd3 139',
  ],
};

describe('layer digests for a fixed SOURCE_DATE_EPOCH', () => {
  for (const [compression, workers] of VARIANTS) {
    it(`${compression}, ${workers} compression worker${workers === 1 ? '' : 's'}`, () => {
      expect(normal.written.get(`${compression}-${workers}`)).toEqual(PINNED[compression]);
    });
  }
  it('gzip with every entry racy (content hashes decide)', () => {
    expect(allRacy.written.get('gzip-1')).toEqual(PINNED.gzip);
  });
  it('the change sets hold what changed', () => {
    for (const { changes } of [normal, allRacy]) {
      expect(changes.map((c) => c.entries.length)).toEqual([308, 16, 4]);
      expect(changes[1]!.modified).toContain('opt/app/big');
      expect(changes[2]!.modified).toEqual(['opt/app/small/f3']);
    }
  });
});
