/**
 * `npm run bench`: the release build's extender with the in-place backend (run kind, in a
 * run-image sandbox) against `docker build --no-cache` with BuildKit on the test environment's
 * current engine (Docker 28) and against the `buildah build` CLI of that engine set, on the
 * Debian 12 minbase run image, in one run: every repetition runs the three tools one after
 * the other (alternating), and the table has medians, ratios to BuildKit, the split of the
 * extender's own time (RUN, snapshot, layer, output, from its `-log-level debug` timers) and
 * its peak RSS (`/usr/bin/time`). Writes docs/benchmarks.md with the table and an SVG chart
 * (Vega-Lite, rendered by its own library).
 *
 * The sandbox is what a platform gives the extender: the run image's root filesystem (an
 * overlay of the unpacked image, fresh per run) as `/` in a private mount and pid namespace,
 * the repository bind-mounted at its own path (Node and the bundle), `/layers` and the extend
 * directory with the base layout, as the restorer leaves it.
 *
 *   npm run bench [-- --runs N] [--workloads config,small-files,rewrite-40mb,apt] [--tools inplace-gzip,inplace-zstd,buildkit,buildah] [--no-docs] [--trace] [--cpu-prof <dir>]
 *
 * `--cpu-prof <dir>` writes a V8 CPU profile of every in-place run into `<dir>` (an absolute path
 * under the repository, which the sandbox sees at the same path).
 *
 * Needs root, and Debian's package archive for the apt workload (the machine's apt sources).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchArg, benchEnv, buildahRunArgs, median } from '@cnb-extender/image-backend-kit/bench';
import { applyLayer } from '@cnb-extender/oci';
import { ensureDebianImages, type EngineSet } from '@cnb-extender/testenv';
import { bundleApp, REPO_ROOT } from '../src/bundle.ts';
import { renderChart, type ChartRow } from './chart.ts';

interface Workload {
  id: string;
  title: string;
  /** Instructions after `FROM ${base_image}` (and `ARG build_id`, so no run hits a builder cache). */
  body: string[];
  network?: boolean;
}

const WORKLOADS: Workload[] = [
  { id: 'config', title: 'config only (ENV, LABEL, USER)', body: ['ENV EXTENDED=1 PATH=/opt/tools/bin:$PATH', 'LABEL io.example.extended="true"', 'USER 1000:1000'] },
  {
    id: 'small-files',
    title: 'many small files (3 RUNs, 600 files)',
    body: [
      'USER root',
      'RUN mkdir -p /w && i=0; while [ $i -lt 300 ]; do echo $i > /w/f$i; i=$((i+1)); done',
      'RUN for f in /w/f1*; do echo x >> $f; done && rm -f /w/f2*',
      'RUN i=0; while [ $i -lt 300 ]; do mkdir -p /w/d$((i%10)) && echo $i > /w/d$((i%10))/g$i; i=$((i+1)); done',
      'USER 1000:1000',
    ],
  },
  {
    id: 'rewrite-40mb',
    title: '40 MB written, then rewritten, plus a 100 MB sparse file',
    body: [
      'USER root',
      'RUN head -c 41943040 /dev/urandom > /opt/big && truncate -s 100M /opt/sparse && echo data | dd of=/opt/sparse bs=1 seek=50000000 conv=notrunc 2>/dev/null',
      'RUN head -c 41943040 /dev/urandom > /opt/big',
      'USER 1000:1000',
    ],
  },
  {
    id: 'apt',
    title: 'apt-get install curl (Debian archive)',
    body: ['USER root', 'RUN apt-get update && apt-get install -y --no-install-recommends curl ca-certificates && rm -rf /var/lib/apt/lists/*', 'USER 1000:1000'],
    network: true,
  },
];

/** The sandbox: an overlay of the run image as `/`, the repository at its own path, /layers and the extend dir. */
const SANDBOX = `set -e
lower=$1; run=$2; repo=$3; shift 3
mkdir -p "$run/upper" "$run/work" "$run/root"
mount -t overlay overlay -o "lowerdir=$lower,upperdir=$run/upper,workdir=$run/work" "$run/root"
root=$run/root
mkdir -p "$root$repo" "$root/layers" "$root/kaniko" "$root/workspace" "$root/platform"
mount --rbind "$repo" "$root$repo"
mount --bind "$run/layers" "$root/layers"
mount --bind "$run/kaniko" "$root/kaniko"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --bind /etc/resolv.conf "$root/etc/resolv.conf"
exec chroot "$root" "$@"
`;

type ToolId = 'inplace-gzip' | 'inplace-zstd' | 'buildkit' | 'buildah';
const TOOLS: { id: ToolId; name: string }[] = [
  { id: 'inplace-gzip', name: 'in-place, gzip' },
  { id: 'inplace-zstd', name: 'in-place, zstd' },
  { id: 'buildkit', name: 'docker build (BuildKit)' },
  { id: 'buildah', name: 'buildah build' },
];

interface Split {
  run: number;
  snapshot: number;
  layer: number;
  output: number;
  total: number;
}

// as many repetitions as tools by default: each tool in each place of the turning order once
const runs = Number(benchArg('--runs') ?? TOOLS.length);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs ${benchArg('--runs')}: a positive whole number is needed`);
const chosen = benchArg('--workloads')?.split(',') ?? WORKLOADS.map((w) => w.id);
const workloads = WORKLOADS.filter((w) => chosen.includes(w.id));
const tools = TOOLS.filter((t) => (benchArg('--tools')?.split(',') ?? TOOLS.map((x) => x.id)).includes(t.id));
const log = (line: string): void => void process.stderr.write(`${line}\n`);
const cpuProfileDir = benchArg('--cpu-prof');
const cpuProfile = cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', cpuProfileDir] : [];

const { env, release } = await benchEnv();
const scratch = mkdtempSync(join(tmpdir(), 'extend-bench-'));
try {
  const engine: EngineSet | undefined = env.engines.find((e) => e.id === 'current');
  if (!engine) throw new Error(`the test environment has no current engine set (it has ${env.engines.map((e) => e.id).join(', ')})`);
  log(`engine: ${engine.description}`);
  const debian = await ensureDebianImages({ env, log });
  const bundle = join(REPO_ROOT, 'out', 'bench', 'extender.cjs');
  await bundleApp({ app: 'extender', outFile: bundle });

  // The run image's root filesystem, unpacked once: every in-place run gets an overlay of it.
  const lower = join(scratch, 'lower');
  mkdirSync(lower, { mode: 0o755 });
  const index = JSON.parse(readFileSync(join(debian.run.layoutDir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const blob = (digest: string): string => join(debian.run.layoutDir, 'blobs', ...digest.split(':'));
  const manifest = JSON.parse(readFileSync(blob(index.manifests[0]!.digest), 'utf8')) as { layers: { digest: string }[] };
  for (const layer of manifest.layers) await applyLayer(lower, blob(layer.digest), { absolutePaths: 'root' });
  const baseLayout = join(scratch, 'base-layout');
  cpSync(debian.run.layoutDir, baseLayout, { recursive: true });

  const results = new Map<string, number[]>();
  const splits = new Map<string, Split[]>();
  const rss = new Map<string, number[]>();
  const add = <T>(map: Map<string, T[]>, key: string, value: T): void => void map.set(key, [...(map.get(key) ?? []), value]);

  for (const workload of workloads) {
    log(`\n[${workload.id}] ${workload.title}`);
    const dockerfile = ['ARG base_image', 'FROM ${base_image}', 'ARG build_id', ...workload.body, ''].join('\n');
    const dir = join(scratch, workload.id);
    mkdirSync(join(dir, 'ctx'), { recursive: true });
    writeFileSync(join(dir, 'Dockerfile'), dockerfile);
    // one run of each peer first, not timed: the base pulled into the engine, its storage warm
    if (tools.some((t) => t.id === 'buildkit')) buildkit(engine, debian.run.registryRef, dir, workload, -1);
    if (tools.some((t) => t.id === 'buildah')) buildah(engine, baseLayout, debian.run.layoutTag, dir, -1);
    // and of the extender: its bundle and the run image's files in the page cache, as the peers' storage is
    for (const tool of tools.filter((t) => t.id.startsWith('inplace-'))) {
      inPlace(bundle, lower, baseLayout, debian.run.registryRef, debian.run.manifestDigest, dir, workload, tool.id === 'inplace-zstd' ? 'zstd' : 'gzip', -1);
    }
    for (let i = 0; i < runs; i++) {
      // the order turns each repetition: no tool always runs right after the same one (a buildah
      // run leaves the machine slower for a while, whoever comes next pays for it)
      for (const tool of [...tools.slice(i % tools.length), ...tools.slice(0, i % tools.length)]) {
        const key = `${workload.id}/${tool.id}`;
        // the previous tool's files written back before this one starts, not during its run
        execFileSync('sync');
        if (tool.id === 'buildkit') add(results, key, buildkit(engine, debian.run.registryRef, dir, workload, i));
        else if (tool.id === 'buildah') add(results, key, buildah(engine, baseLayout, debian.run.layoutTag, dir, i));
        else {
          const out = inPlace(bundle, lower, baseLayout, debian.run.registryRef, debian.run.manifestDigest, dir, workload, tool.id === 'inplace-zstd' ? 'zstd' : 'gzip', i);
          add(results, key, out.ms);
          add(splits, key, out.split);
          add(rss, key, out.maxRssKb);
        }
        log(`  ${tool.name}: ${(results.get(key)!.at(-1)! / 1000).toFixed(2)} s`);
      }
    }
  }

  // The table
  const seconds = (ms: number): string => (ms / 1000).toFixed(2);
  const machine = `${cpus()[0]?.model.trim() ?? 'unknown CPU'}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, ${readFileSync('/etc/os-release', 'utf8').match(/^PRETTY_NAME="?([^"\n]*)/m)?.[1] ?? 'Linux'}, Node ${process.version}`;
  const lines = [
    '| workload | in-place gzip | in-place zstd | BuildKit | buildah | gzip / BuildKit | zstd / BuildKit | buildah / BuildKit | in-place gzip split: RUN / snapshot / layer / output / rest | peak RSS gzip |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  const chart: ChartRow[] = [];
  for (const workload of workloads) {
    const med = (tool: ToolId): number => median(results.get(`${workload.id}/${tool}`) ?? [Number.NaN]);
    const bk = med('buildkit');
    const split = splits.get(`${workload.id}/inplace-gzip`) ?? [];
    const part = (name: keyof Split): number => median(split.map((s) => s[name]));
    const rest = med('inplace-gzip') - part('run') - part('snapshot') - part('layer') - part('output');
    lines.push(
      `| ${workload.title} | ${seconds(med('inplace-gzip'))} s | ${seconds(med('inplace-zstd'))} s | ${seconds(bk)} s | ${seconds(med('buildah'))} s | **${(med('inplace-gzip') / bk).toFixed(2)}×** | **${(med('inplace-zstd') / bk).toFixed(2)}×** | ${(med('buildah') / bk).toFixed(2)}× | ${['run', 'snapshot', 'layer', 'output'].map((p) => seconds(part(p as keyof Split))).join(' / ')} / ${seconds(rest)} s | ${Math.round(median(rss.get(`${workload.id}/inplace-gzip`) ?? [0]) / 1024)} MB |`,
    );
    for (const tool of TOOLS) chart.push({ workload: workload.title, tool: TOOLS.find((t) => t.id === tool.id)!.name, seconds: Number(seconds(med(tool.id))) });
  }
  const table = lines.join('\n');
  process.stdout.write(`${table}\n`);
  if (!process.argv.includes('--no-docs')) {
    const svg = renderChart(chart, `Wall time, median of ${runs} (lower is better)`);
    writeFileSync(join(REPO_ROOT, 'docs', 'benchmarks.svg'), svg);
    writeFileSync(join(REPO_ROOT, 'docs', 'benchmarks.md'), benchmarksDoc(table, machine, engine, new Date()));
    log('wrote docs/benchmarks.md and docs/benchmarks.svg');
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
  await release();
}

function benchmarksDoc(table: string, machine: string, engine: EngineSet, when: Date): string {
  return `# Benchmarks

Written by \`npm run bench\` (\`tools/release/bench/extend.bench.ts\`); do not edit by hand.

Machine: ${machine}. Run ${when.toISOString().slice(0, 16).replace('T', ' ')} UTC, ${runs} alternating repetitions per tool, medians.
Peers: ${engine.description}.

![wall time per workload and tool](benchmarks.svg)

${table}

- **in-place**: the release bundle of the extender (\`-kind run -backend inplace\`, \`-backend-opt cache=false\`) in a
  run-image sandbox: the Debian 12 minbase run image as \`/\` (an overlay of the unpacked image, fresh per run) in a
  private mount and pid namespace, the base layout in the extend directory as the restorer leaves it. Wall time is
  the whole process, from start to the \`<layers>/extended/run\` layout written. The split comes from its
  \`-log-level debug\` timers: RUN (the instructions' own processes), snapshot (walks and diffs), layer (tar,
  compression, digests), output (the run layout); the rest is start-up, reading the inputs, planning and the base.
  Every tool gets one untimed run per workload before the timed ones (page cache and engine storage warm), and
  every run starts after a \`sync\`, so no tool pays for writing back what the one before it wrote. The order of the
  tools turns with every repetition, so none always follows the same one.
- **BuildKit**: \`docker build --no-cache --network host\` on the engine's BuildKit, the base pulled once before the
  timed runs; the image is removed after each run. BuildKit keeps layers uncompressed until a push.
- **buildah**: \`buildah build --isolation chroot --layers\` with fresh overlay storage per run and an \`oci:\` output
  (uncompressed layers).
- Ratios are against BuildKit in the same run; peak RSS is the extender's maximum resident set (\`/usr/bin/time\`).
`;
}

/** `docker build --no-cache` with BuildKit on the engine set's daemon; returns the wall time (ms). */
function buildkit(engine: EngineSet, baseRef: string, dir: string, workload: Workload, i: number): number {
  const { cli, host } = engine.docker;
  const tag = `extend-bench:${workload.id}-${i < 0 ? 'warm' : i}`;
  const denv = { ...process.env, DOCKER_HOST: host, DOCKER_BUILDKIT: '1' };
  const start = performance.now();
  execFileSync(cli, ['-H', host, 'build', '--network', 'host', '--no-cache', '--build-arg', `base_image=${baseRef}`, '--build-arg', `build_id=${randomUUID()}`, '-t', tag, '-f', join(dir, 'Dockerfile'), join(dir, 'ctx')], { stdio: 'pipe', env: denv });
  const ms = performance.now() - start;
  execFileSync(cli, ['-H', host, 'rmi', tag], { stdio: 'pipe', env: denv });
  return ms;
}

/** `buildah build` of the engine set: fresh overlay storage per run, output to an OCI layout. */
function buildah(engine: EngineSet, baseLayout: string, baseTag: string, dir: string, i: number): number {
  const storage = join(dir, `buildah-${i < 0 ? 'warm' : i}`);
  const global = ['--root', join(storage, 'root'), '--runroot', join(storage, 'run'), '--storage-driver', 'overlay'];
  mkdirSync(join(storage, 'out'), { recursive: true });
  const start = performance.now();
  execFileSync(
    engine.buildah.executable,
    [...global, 'build', '--isolation', 'chroot', '--layers', '--pull-never', ...buildahRunArgs(engine.buildah.version), '--build-arg', `base_image=oci:${baseLayout}:${baseTag}`, '--build-arg', `build_id=${randomUUID()}`, '-f', join(dir, 'Dockerfile'), '-t', `oci:${join(storage, 'out')}:x`, join(dir, 'ctx')],
    { stdio: 'pipe' },
  );
  const ms = performance.now() - start;
  execFileSync(engine.buildah.executable, [...global, 'rmi', '--all', '--force'], { stdio: 'pipe' });
  for (const line of execFileSync('sh', ['-c', `grep -o ' ${storage}[^ ]*' /proc/self/mountinfo | sort -r || true`]).toString().split('\n')) if (line.trim()) execFileSync('umount', ['-l', line.trim()]);
  rmSync(storage, { recursive: true, force: true });
  return ms;
}

interface InPlaceRun {
  ms: number;
  split: Split;
  maxRssKb: number;
}

function inPlace(bundle: string, lower: string, baseLayout: string, baseRef: string, baseDigest: string, dir: string, workload: Workload, compression: 'gzip' | 'zstd', i: number): InPlaceRun {
  const run = join(dir, `inplace-${compression}-${i}`);
  const layers = join(run, 'layers');
  mkdirSync(join(layers, 'generated', 'bench_ext'), { recursive: true });
  writeFileSync(join(layers, 'generated', 'bench_ext', 'run.Dockerfile'), readFileSync(join(dir, 'Dockerfile')));
  writeFileSync(join(layers, 'group.toml'), '[[group-extensions]]\nid = "bench/ext"\nversion = "0.0.1"\napi = "0.10"\n');
  writeFileSync(join(layers, 'analyzed.toml'), `[run-image]\n  reference = "${baseRef}"\n  extend = true\n`);
  cpSync(baseLayout, join(run, 'kaniko', 'cache', 'base', baseDigest), { recursive: true });
  const argv = ['-kind', 'run', '-backend', 'inplace', '-backend-opt', 'cache=false', '-extend-layer-compression', compression, '-log-level', 'debug', '-log-format', 'json'];
  const start = performance.now();
  // GNU time outside the sandbox: the largest resident set of the process tree (the extender's; a RUN's own processes are smaller here)
  const child = spawnSync(
    '/usr/bin/time',
    ['-f', 'maxrss=%M', 'unshare', '--mount', '--propagation', 'private', '--pid', '--fork', '--kill-child', '--', 'sh', '-c', SANDBOX, 'sandbox', lower, run, REPO_ROOT, '/usr/bin/env', '-i', 'container=cnb-bench', 'CNB_PLATFORM_API=0.13', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'SOURCE_DATE_EPOCH=1700000000', process.execPath, ...cpuProfile, bundle, ...argv],
    { encoding: 'utf8', maxBuffer: 256 << 20 },
  );
  const ms = performance.now() - start;
  if (child.status !== 0) throw new Error(`in-place run of ${workload.id} exited ${child.status}: ${child.stderr.slice(-4000)}${child.stdout.slice(-4000)}`);
  const split: Split = { run: 0, snapshot: 0, layer: 0, output: 0, total: ms };
  for (const line of child.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    // -log-format json: { level, time, message, event, …fields } (docs/events.md)
    const raw = JSON.parse(line) as { event?: string; name?: string; durationMs?: number; fields?: { event?: string; name?: string; durationMs?: number } };
    const event = { ...raw, ...raw.fields };
    if (event.event !== 'timing' || !event.name || event.durationMs === undefined) continue;
    if (process.argv.includes('--trace')) log(`    ${event.name}: ${event.durationMs.toFixed(0)} ms`);
    if (event.name.startsWith('execute-step-')) split.run += event.durationMs;
    else if (event.name.startsWith('snapshot')) split.snapshot += event.durationMs;
    else if (event.name.startsWith('write-layer')) split.layer += event.durationMs;
    else if (/output|layout/.test(event.name)) split.output += event.durationMs;
  }
  const maxRssKb = Number(child.stderr.match(/maxrss=(\d+)/)?.[1] ?? 0);
  rmSync(run, { recursive: true, force: true });
  return { ms, split, maxRssKb };
}
