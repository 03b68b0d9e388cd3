/**
 * `node tools/release/bench/startup.ts [executable]`: size of the single executables and
 * the median wall time of 20 runs of `extender -version` (target: < 150 ms), next to a bare
 * `node -e 0` from the same Node binary in the same run as the reference. Builds the
 * executables into out/startup/ when none is given.
 */
import { spawnSync } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { bundleApp, REPO_ROOT } from '../src/bundle.ts';
import { buildSea, nodeBinary } from '../src/sea.ts';

const RUNS = 20;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function time(cmd: string, args: string[]): number {
  const start = process.hrtime.bigint();
  const result = spawnSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (result.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${result.status}: ${result.stderr.toString()}`);
  return ms;
}

function measure(cmd: string, args: string[]): { median: number; min: number; max: number } {
  time(cmd, args); // warm the page cache
  const samples = Array.from({ length: RUNS }, () => time(cmd, args));
  return { median: median(samples), min: Math.min(...samples), max: Math.max(...samples) };
}

let executable = process.argv[2];
if (!executable) {
  const dir = join(REPO_ROOT, 'out', 'startup');
  await bundleApp({ app: 'extender', outFile: join(dir, 'extender.cjs') });
  executable = join(dir, 'extender');
  await buildSea({ bundle: join(dir, 'extender.cjs'), output: executable, workDir: join(dir, 'work') });
}
const size = (await stat(executable)).size;
const reference = measure(nodeBinary(), ['-e', '0']);
const extender = measure(executable, ['-version']);
// -help loads the whole extend command (platform, core, registry) before answering
const help = measure(executable, ['-help']);
const fmt = (r: { median: number; min: number; max: number }) => `median ${r.median.toFixed(1)} ms (min ${r.min.toFixed(1)}, max ${r.max.toFixed(1)})`;
process.stdout.write(
  [
    `executable: ${executable}`,
    `size: ${(size / 1e6).toFixed(1)} MB (${size} bytes)`,
    `node -e 0 (reference, ${RUNS} runs): ${fmt(reference)}`,
    `extender -version (${RUNS} runs): ${fmt(extender)}  target < 150 ms: ${extender.median < 150 ? 'met' : 'NOT met'}`,
    `extender -help, full command loaded (${RUNS} runs): ${fmt(help)}`,
    '',
  ].join('\n'),
);
