/**
 * The shared benchmark workload of the image-producing backends: the busybox
 * fixture run image extended through the core's `extend()` (a real workspace,
 * full base layout in the extend dir) with three RUN steps touching a few
 * hundred files. Each backend's `bench/apply.bench.ts` runs it; `compare.bench.ts`
 * runs them all in one process tree and prints ratios.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extend, type ExtenderBackend } from '@cnb-extender/extender-core';
import { startTestEnv, stopTestEnv, testEnvFromProcess, TESTENV_VARIABLE, type EngineSet, type TestEnv, type TestEnvHandle } from '@cnb-extender/testenv';

export const WORKLOAD = `ARG base_image
FROM \${base_image}
# a fresh build_id per run (as the core passes it): no builder cache hit between runs
ARG build_id
USER root
RUN mkdir -p /w && i=0; while [ $i -lt 300 ]; do echo $i > /w/f$i; i=$((i+1)); done
RUN for f in /w/f1*; do echo x >> $f; done && rm -f /w/f2*
RUN i=0; while [ $i -lt 300 ]; do mkdir -p /w/d$((i%10)) && echo $i > /w/d$((i%10))/g$i; i=$((i+1)); done
USER 1000:1000
`;

export interface BenchResult {
  backend: string;
  /** The engine set it ran on (`debian12`, `current`); absent where no engine is involved (in-place) or none was named. */
  engine?: string;
  runs: number;
  medianMs: number;
  timesMs: number[];
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** The value after `name` in this process's arguments (`--runs 3` → `'3'`). */
export function benchArg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

/**
 * The engine set a benchmark runs on: `--engine <id>` (`debian12`, `current`) from
 * `env.engines`; undefined without the argument (the benchmark keeps its default,
 * Debian 12's `env.docker` and the `buildah` in PATH). An id the environment does
 * not have fails naming the ones it has.
 */
export function benchEngine(env: TestEnv): EngineSet | undefined {
  const id = benchArg('--engine');
  if (id === undefined) return undefined;
  const engine = env.engines.find((e) => e.id === id);
  if (!engine) throw new Error(`choosing the engine set: --engine ${id} is not in the test environment (it has ${env.engines.map((e) => e.id).join(', ') || 'none'})`);
  return engine;
}

/** The test environment of a parent process (CNB_TESTENV), else a fresh one (stopped by `release`). */
export async function benchEnv(): Promise<{ env: TestEnv; release(): Promise<void> }> {
  if (process.env[TESTENV_VARIABLE]) return { env: testEnvFromProcess(), release: async () => undefined };
  const handle: TestEnvHandle = await startTestEnv();
  process.env[TESTENV_VARIABLE] = JSON.stringify(handle.env);
  return { env: handle.env, release: () => stopTestEnv(handle) };
}

/** A throwaway extend workspace for the workload (Platform API 0.13 layout, full base layout). */
export function workloadWorkspace(env: TestEnv, dockerfile = WORKLOAD): { inputs: Parameters<typeof extend>[0]['inputs']; root: string } {
  const run = env.fixtures.run;
  const root = mkdtempSync(join(tmpdir(), 'image-backend-bench-'));
  const layers = join(root, 'layers');
  mkdirSync(join(layers, 'generated', 'bench_ext'), { recursive: true });
  for (const d of ['workspace', 'platform', 'extend']) mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(layers, 'generated', 'bench_ext', 'run.Dockerfile'), dockerfile);
  writeFileSync(join(layers, 'group.toml'), '[[group-extensions]]\nid = "bench/ext"\nversion = "0.0.1"\napi = "0.10"\n');
  writeFileSync(join(layers, 'analyzed.toml'), `[run-image]\n  reference = "${run.registryRef}"\n  extend = true\n`);
  cpSync(run.layoutDir, join(root, 'extend', 'cache', 'base', run.manifestDigest), { recursive: true });
  return {
    root,
    inputs: {
      platformApi: '0.13',
      analyzedPath: join(layers, 'analyzed.toml'),
      groupPath: join(layers, 'group.toml'),
      generatedDir: join(layers, 'generated'),
      appDir: join(root, 'workspace'),
      layersDir: layers,
      platformDir: join(root, 'platform'),
      extendedDir: join(layers, 'extended'),
      extendDir: join(root, 'extend'),
    },
  };
}

/** Run the workload `runs` times through `extend()`, each with a fresh backend and workspace. */
export async function benchExtend(name: string, makeBackend: () => ExtenderBackend, env: TestEnv, runs = 3, beforeEach?: () => void): Promise<BenchResult> {
  const timesMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const ws = workloadWorkspace(env);
    try {
      beforeEach?.(); // not timed (e.g. emptying a daemon's cache for a cold run)
      const start = performance.now();
      await extend({ kind: 'run', inputs: ws.inputs, backend: makeBackend() });
      timesMs.push(performance.now() - start);
    } finally {
      rmSync(ws.root, { recursive: true, force: true });
    }
  }
  return { backend: name, runs, medianMs: Math.round(median(timesMs)), timesMs: timesMs.map(Math.round) };
}

/** Time a command (a peer tool run on the same workload). */
export function timeCommand(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): number {
  const start = performance.now();
  execFileSync(command, args, { stdio: 'pipe', ...options });
  return performance.now() - start;
}

/**
 * What `buildah build` of `version` needs here for RUN to work, as the buildah
 * backend passes it (libs/backend-buildah/src/limits.ts): buildah 1.35 and later
 * raise RUN's open files and processes to 1048576, which fails without
 * CAP_SYS_RESOURCE, so both are pinned to this process's hard limits (processes
 * capped at kernel.pid_max); and `--network host`. Older buildah gets nothing.
 */
export function buildahRunArgs(version: string): string[] {
  if (compareVersions(version, '1.35.0') < 0) return [];
  const read = (path: string) => {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return '';
    }
  };
  const args = ['--network', 'host'];
  const capEff = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(read('/proc/self/status'))?.[1];
  if (capEff !== undefined && ((BigInt(`0x${capEff}`) >> 24n) & 1n) === 1n) return args;
  const hard = (what: string): number | undefined => {
    const value = new RegExp(`^Max ${what}\\s+\\S+\\s+(\\S+)`, 'm').exec(read('/proc/self/limits'))?.[1];
    return value === undefined ? undefined : value === 'unlimited' ? Infinity : Number(value);
  };
  const nofile = hard('open files');
  const nproc = hard('processes');
  const pidMax = Number(read('/proc/sys/kernel/pid_max').trim()) || Infinity;
  if (nofile !== undefined && nofile < 1048576) args.push('--ulimit', `nofile=${nofile}:${nofile}`);
  if (nproc !== undefined && nproc < 1048576) {
    const p = Math.min(nproc, pidMax);
    args.push('--ulimit', `nproc=${p}:${p}`);
  }
  return args;
}

function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((n) => Number.parseInt(n, 10) || 0);
  const pb = b.split('.').map((n) => Number.parseInt(n, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
