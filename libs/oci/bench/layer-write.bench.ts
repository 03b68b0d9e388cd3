/**
 * Layer writer benchmark: our gzip layer writer against `tar -c | gzip -6` on
 * the same generated tree, in the same run.
 *
 *   node libs/oci/bench/layer-write.bench.ts [--files 20000] [--mb 320] [--runs 3] [--compression gzip|zstd]
 *
 * The tree (≥ 20,000 files, ≥ 300 MB: many small text-like files, some large
 * ones, some incompressible data) is generated in a temp dir and removed
 * afterwards. Prints a JSON summary; exits 1 when our writer is slower than
 * 1.2× the pipeline (the target), so it can gate a CI job.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { walkDirectory } from '../src/layer/walk.ts';
import { writeLayer } from '../src/layer/writer.ts';

const { values } = parseArgs({
  options: {
    files: { type: 'string', default: '20000' },
    mb: { type: 'string', default: '320' },
    runs: { type: 'string', default: '3' },
    compression: { type: 'string', default: 'gzip' },
    keep: { type: 'boolean', default: false },
  },
});
const fileCount = Number(values.files);
const totalBytes = Number(values.mb) * 1024 * 1024;
const runs = Number(values.runs);
const compression = values.compression as 'gzip' | 'zstd';
const TARGET_RATIO = 1.2;

function seeded(seed: number): () => number {
  // mulberry32: a small deterministic PRNG so the tree is the same every run.
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Text-like bytes (words from a small vocabulary) that gzip shrinks about 3×. */
function textPool(size: number, rand: () => number): Buffer {
  const words = Array.from({ length: 4096 }, () =>
    Array.from({ length: 2 + Math.floor(rand() * 9) }, () => String.fromCharCode(97 + Math.floor(rand() * 26))).join(''),
  );
  const parts: string[] = [];
  let length = 0;
  while (length < size) {
    const line = Array.from({ length: 4 + Math.floor(rand() * 12) }, () => words[Math.floor(rand() * words.length)]).join(' ') + '\n';
    parts.push(line);
    length += line.length;
  }
  return Buffer.from(parts.join('')).subarray(0, size);
}

async function generateTree(root: string): Promise<{ files: number; bytes: number }> {
  const rand = seeded(42);
  const text = textPool(16 << 20, rand);
  const noise = randomBytes(16 << 20);
  // 85% of the bytes in many small files, 15% in 24 large files; 1 in 10 small files is incompressible.
  const largeCount = 24;
  const largeBytes = Math.floor((totalBytes * 0.15) / largeCount);
  const smallCount = fileCount - largeCount;
  const smallAvg = Math.floor((totalBytes - largeBytes * largeCount) / smallCount);
  let files = 0;
  let bytes = 0;
  const pick = (pool: Buffer, size: number): Buffer => {
    const start = Math.floor(rand() * (pool.length - size));
    return pool.subarray(start, start + size);
  };
  const dirs: string[] = [];
  for (let d = 0; d < 200; d++) {
    const dir = join(root, `pkg-${d % 20}`, `lib-${d}`);
    await mkdir(dir, { recursive: true });
    dirs.push(dir);
  }
  const pending: Promise<void>[] = [];
  for (let i = 0; i < smallCount; i++) {
    const size = Math.max(1, Math.floor(smallAvg * (0.2 + rand() * 1.6)));
    const data = i % 10 === 0 ? pick(noise, size) : pick(text, size);
    pending.push(writeFile(join(dirs[i % dirs.length]!, `file-${i}.txt`), data));
    files++;
    bytes += size;
    if (pending.length >= 64) await Promise.all(pending.splice(0));
  }
  for (let i = 0; i < largeCount; i++) {
    const parts: Buffer[] = [];
    for (let got = 0; got < largeBytes; got += 1 << 20) {
      const size = Math.min(1 << 20, largeBytes - got);
      parts.push(i % 4 === 0 ? pick(noise, size) : pick(text, size));
    }
    pending.push(writeFile(join(root, `big-${i}.bin`), Buffer.concat(parts)));
    files++;
    bytes += largeBytes;
  }
  await Promise.all(pending);
  return { files, bytes };
}

/** Run a shell pipeline; resolves to the CPU seconds (user + system) its processes used. */
function sh(command: string): Promise<number> {
  return new Promise((resolve, reject) => {
    // bash's `times` prints the children's user and system time on its second line.
    const child = spawn('bash', ['-c', `${command}\ntimes`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`${command}: exit ${code}`));
      const seconds = [...(out.trim().split('\n').at(-1) ?? '').matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
      resolve(seconds.reduce((a, b) => a + b, 0));
    });
  });
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const work = await mkdtemp(join(tmpdir(), 'oci-layer-bench-'));
try {
  const root = join(work, 'tree');
  const t0 = performance.now();
  const tree = await generateTree(root);
  const generateSeconds = (performance.now() - t0) / 1000;

  const peerCompress = compression === 'zstd' ? 'zstd -3 -q -T1' : 'gzip -6 -n';
  const peerCommand = `tar -C ${root} --sort=name --numeric-owner --mtime=@315532801 -cf - . | ${peerCompress} > ${join(work, 'peer.out')}`;
  // Warm the page cache for both sides equally.
  await sh(`tar -C ${root} -cf - . > /dev/null`);

  const ours: number[] = [];
  const peer: number[] = [];
  const oursCpu: number[] = [];
  const peerCpu: number[] = [];
  let result: Awaited<ReturnType<typeof writeLayer>> | undefined;
  for (let r = 0; r < runs; r++) {
    const a = performance.now();
    const cpu = process.cpuUsage(); // all threads of this process, zlib's pool included
    const entries = await walkDirectory(root);
    result = await writeLayer(entries, join(work, `ours-${r}.out`), { compression });
    ours.push((performance.now() - a) / 1000);
    const used = process.cpuUsage(cpu);
    oursCpu.push((used.user + used.system) / 1e6);
    const b = performance.now();
    peerCpu.push(await sh(peerCommand));
    peer.push((performance.now() - b) / 1000);
  }
  const reproducible = (await sha256File(join(work, 'ours-0.out'))) === (await sha256File(join(work, `ours-${runs - 1}.out`)));

  // sha256 throughput of this machine on the uncompressed layer's bytes.
  const buf = randomBytes(256 << 20);
  const h0 = performance.now();
  createHash('sha256').update(buf).digest();
  const shaMBps = 256 / ((performance.now() - h0) / 1000);

  const oursMedian = median(ours);
  const peerMedian = median(peer);
  const ratio = oursMedian / peerMedian;
  const peerSize = (await stat(join(work, 'peer.out'))).size;
  const summary = {
    tree: { files: tree.files, megabytes: +(tree.bytes / 2 ** 20).toFixed(1), generateSeconds: +generateSeconds.toFixed(2) },
    compression,
    node: process.version,
    runs,
    oursSeconds: ours.map((s) => +s.toFixed(3)),
    peerSeconds: peer.map((s) => +s.toFixed(3)),
    peer: peerCommand.replaceAll(root, '$TREE').replaceAll(work, '$WORK'),
    ratio: +ratio.toFixed(3),
    oursCpuSeconds: oursCpu.map((s) => +s.toFixed(2)),
    peerCpuSeconds: peerCpu.map((s) => +s.toFixed(2)),
    target: `ratio <= ${TARGET_RATIO}`,
    oursTarMBps: +(result!.uncompressedSize / 2 ** 20 / oursMedian).toFixed(1),
    sha256MBps: +shaMBps.toFixed(0),
    sizes: { oursCompressed: result!.size, peerCompressed: peerSize, uncompressed: result!.uncompressedSize },
    reproducible,
  };
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
  if (!reproducible) {
    process.stderr.write('layer bytes differ between runs\n');
    process.exitCode = 1;
  }
  if (ratio > TARGET_RATIO) {
    process.stderr.write(`our writer took ${ratio.toFixed(2)}× the tar | ${peerCompress} pipeline (target ≤ ${TARGET_RATIO}×)\n`);
    process.exitCode = 1;
  }
} finally {
  if (!values.keep) await rm(work, { recursive: true, force: true });
}
