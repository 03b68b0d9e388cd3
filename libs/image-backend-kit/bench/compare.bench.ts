/**
 * Wall time of the same workload (bench/harness.ts) through every backend and
 * through the peer tools, on every engine set of one test environment
 * (`env.engines`: Debian 12's Docker 20.10 and buildah 1.28, the current Docker
 * 28 and buildah 1.43):
 *
 * - in-place on an unpacked base, once (it uses no engine);
 * - per engine set: the buildah backend (that set's buildah), the docker backend
 *   with the classic builder and with BuildKit, the BuildKit backend on that
 *   dockerd's BuildKit (`docker://<socket>`);
 * - per engine set, the peers: `buildah build` of that set, `docker build` with
 *   that set's CLI and daemon, classic and BuildKit;
 * - the standalone buildkitd (engine `standalone`): the BuildKit backend over
 *   its unix socket, cold (daemon cache emptied before each run) and warm (the
 *   daemon already holds the base), each against `buildctl build` of the same
 *   Dockerfile on the same daemon in the same state (its base pulled from the
 *   loopback registry when cold).
 *
 * Each row gets its median, its ratio to in-place and its ratio to its peer on
 * the same engine set: buildah backend / `buildah build`; docker BuildKit and
 * BuildKit backends / `docker build` BuildKit; docker classic / `docker build`
 * classic. A table goes to stderr, the JSON to stdout.
 *
 *   node libs/image-backend-kit/bench/compare.bench.ts [--runs N]
 *
 * Backends are never imported here (the kit may not import backends): each
 * backend's own `bench/apply.bench.ts --json [--engine <id>]` runs as a child
 * process on this process's test environment (CNB_TESTENV).
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitForBuildkitd, type BuildkitdEndpoint, type EngineSet, type TestEnv } from '@cnb-extender/testenv';
import { WORKLOAD, benchArg, benchEnv, buildahRunArgs, median, timeCommand, type BenchResult } from './harness.ts';

type RowId =
  | 'inplace'
  | 'buildah'
  | 'docker-classic'
  | 'docker-buildkit'
  | 'buildkit'
  | 'buildkit-cold'
  | 'buildkit-warm'
  | 'peer-buildah'
  | 'peer-docker-classic'
  | 'peer-docker-buildkit'
  | 'peer-buildctl-cold'
  | 'peer-buildctl-warm';

/** Each backend row's peer on the same engine set. */
const PEER_OF: Partial<Record<RowId, RowId>> = {
  buildah: 'peer-buildah',
  'docker-classic': 'peer-docker-classic',
  'docker-buildkit': 'peer-docker-buildkit',
  buildkit: 'peer-docker-buildkit',
  'buildkit-cold': 'peer-buildctl-cold',
  'buildkit-warm': 'peer-buildctl-warm',
};

interface Row {
  id: RowId;
  /** Engine set id; absent for in-place. */
  engine?: string;
  kind: 'backend' | 'peer';
  name: string;
  result?: BenchResult;
  error?: string;
}

const runs = Number(benchArg('--runs') ?? 3);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs ${benchArg('--runs')}: a positive whole number is needed`);
const repo = fileURLToPath(new URL('../../..', import.meta.url));
const started = new Date();
const { env, release } = await benchEnv();
const rows: Row[] = [];

function progress(message: string): void {
  process.stderr.write(`compare.bench: ${message}\n`);
}

/** Measure one row; a failure is recorded (and fails the run at the end), the other rows still run. */
function measure(row: Omit<Row, 'result' | 'error'>, fn: () => BenchResult): void {
  progress(`${row.engine ?? '-'}: ${row.name} …`);
  try {
    const result = fn();
    rows.push({ ...row, result });
    progress(`${row.engine ?? '-'}: ${row.name}: median ${result.medianMs} ms (${result.timesMs.join(', ')})`);
  } catch (err) {
    const message = err instanceof Error ? err.message.split('\n')[0]! : String(err);
    rows.push({ ...row, error: message });
    progress(`${row.engine ?? '-'}: ${row.name}: FAILED: ${message}`);
  }
}

/** A backend's `bench/apply.bench.ts --json` as a child process. */
function backendBench(pkg: string, args: string[]): BenchResult {
  const out = execFileSync(process.execPath, [join(repo, 'libs', pkg, 'bench', 'apply.bench.ts'), '--json', '--runs', String(runs), ...args], { env: process.env, stdio: ['ignore', 'pipe', 'inherit'] });
  return JSON.parse(out.toString()) as BenchResult;
}

function result(name: string, engine: string, times: number[]): BenchResult {
  return { backend: name, engine, runs, medianMs: Math.round(median(times)), timesMs: times.map(Math.round) };
}

/** `buildah build` of the engine set on the workload: fresh overlay storage per run, output to an OCI layout. */
function buildahPeer(env: TestEnv, engine: EngineSet, scratch: string, name: string): BenchResult {
  const buildah = engine.buildah.executable;
  const extra = buildahRunArgs(engine.buildah.version);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const storage = join(scratch, `storage-${engine.id}-${i}`);
    const global = ['--root', join(storage, 'root'), '--runroot', join(storage, 'run'), '--storage-driver', 'overlay'];
    const out = `out-${engine.id}-${i}`;
    mkdirSync(join(scratch, out));
    times.push(
      timeCommand(
        buildah,
        [...global, 'build', '--isolation', 'chroot', '--layers', '--pull-never', ...extra,
          '--build-arg', `base_image=oci:base:${env.fixtures.run.layoutTag}`, '--build-arg', `build_id=${randomUUID()}`, '-f', join(scratch, 'Dockerfile'), '-t', `oci:${out}/img:latest`, join(scratch, 'ctx')],
        { cwd: scratch },
      ),
    );
    execFileSync(buildah, [...global, 'rmi', '--all', '--force'], { stdio: 'pipe' });
    // Debian 12's buildah leaves its overlay mounts in this mount namespace (the current one's go with its private namespace).
    for (const line of execFileSync('sh', ['-c', `grep -o ' ${storage}[^ ]*' /proc/self/mountinfo | sort -r || true`]).toString().split('\n')) if (line.trim()) execFileSync('umount', ['-l', line.trim()]);
  }
  return result(name, engine.id, times);
}

/** `docker build --no-cache` with the engine set's CLI on its daemon; the image is removed after each run. */
function dockerPeer(env: TestEnv, engine: EngineSet, scratch: string, buildkit: boolean, name: string): BenchResult {
  const { cli, host } = engine.docker;
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const tag = `image-backend-peer:${engine.id}-${buildkit ? 'bk' : 'classic'}-${i}`;
    times.push(
      timeCommand(cli, ['-H', host, 'build', '--network', 'host', '--no-cache', '--build-arg', `base_image=${env.fixtures.run.dockerRef}`, '--build-arg', `build_id=${randomUUID()}`, '-t', tag, '-f', join(scratch, 'Dockerfile'), join(scratch, 'ctx')], {
        env: { ...process.env, DOCKER_HOST: host, DOCKER_BUILDKIT: buildkit ? '1' : '0' },
      }),
    );
    execFileSync(cli, ['-H', host, 'rmi', tag], { stdio: 'pipe', env: { ...process.env, DOCKER_HOST: host } });
  }
  return result(name, engine.id, times);
}

/**
 * `buildctl build` of the workload on the standalone buildkitd: the frontend pulls the base from the
 * loopback registry (cold: the daemon's cache is emptied first, not timed), the result is exported as
 * an OCI tarball, as the backend's is.
 */
function buildctlPeer(env: TestEnv, buildkitd: BuildkitdEndpoint, scratch: string, cold: boolean, name: string): BenchResult {
  const prune = () => execFileSync(buildkitd.buildctl, ['--addr', buildkitd.unixAddress, 'prune', '--all'], { stdio: 'ignore' });
  const build = (i: number) =>
    timeCommand(buildkitd.buildctl, [
      '--addr', buildkitd.unixAddress, 'build', '--frontend', 'dockerfile.v0',
      '--local', `context=${join(scratch, 'ctx')}`, '--local', `dockerfile=${scratch}`,
      '--opt', `build-arg:base_image=${env.fixtures.run.registryRef}`, '--opt', `build-arg:build_id=${randomUUID()}`, '--opt', 'force-network-mode=none',
      '--output', `type=oci,dest=${join(scratch, `buildctl-${cold ? 'cold' : 'warm'}-${i}.tar`)}`,
    ]);
  if (!cold) build(-1);
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    if (cold) prune();
    times.push(build(i));
    rmSync(join(scratch, `buildctl-${cold ? 'cold' : 'warm'}-${i}.tar`), { force: true });
  }
  rmSync(join(scratch, 'buildctl-warm--1.tar'), { force: true });
  return result(name, 'standalone', times);
}

try {
  progress(`engine sets: ${env.engines.map((e) => `${e.id} (${e.description})`).join('; ')}; ${runs} runs each`);
  measure({ id: 'inplace', kind: 'backend', name: 'inplace backend (unpacked base, chroot)' }, () => backendBench('backend-inplace', []));

  const scratch = mkdtempSync(join(tmpdir(), 'image-backend-peer-'));
  try {
    cpSync(env.fixtures.run.layoutDir, join(scratch, 'base'), { recursive: true });
    writeFileSync(join(scratch, 'Dockerfile'), WORKLOAD);
    mkdirSync(join(scratch, 'ctx'));
    for (const engine of env.engines) {
      const e = ['--engine', engine.id];
      const on = { engine: engine.id };
      measure({ ...on, id: 'buildah', kind: 'backend', name: `buildah backend (buildah ${engine.buildah.version}, chroot, overlay)` }, () => backendBench('backend-buildah', e));
      measure({ ...on, id: 'docker-classic', kind: 'backend', name: 'docker backend, classic builder' }, () => backendBench('backend-docker', [...e, '--builder', 'classic']));
      measure({ ...on, id: 'docker-buildkit', kind: 'backend', name: 'docker backend, BuildKit' }, () => backendBench('backend-docker', [...e, '--builder', 'buildkit']));
      measure({ ...on, id: 'buildkit', kind: 'backend', name: 'buildkit backend (docker://, dockerd BuildKit)' }, () => backendBench('backend-buildkit', e));
      measure({ ...on, id: 'peer-buildah', kind: 'peer', name: `peer: buildah build ${engine.buildah.version} (CLI, overlay, fresh storage)` }, () =>
        buildahPeer(env, engine, scratch, `peer: buildah build ${engine.buildah.version}`),
      );
      measure({ ...on, id: 'peer-docker-classic', kind: 'peer', name: 'peer: docker build, classic, --no-cache' }, () => dockerPeer(env, engine, scratch, false, 'peer: docker build (classic)'));
      measure({ ...on, id: 'peer-docker-buildkit', kind: 'peer', name: 'peer: docker build, BuildKit, --no-cache' }, () => dockerPeer(env, engine, scratch, true, 'peer: docker build (BuildKit)'));
    }
    const buildkitd = await waitForBuildkitd(env);
    const on = { engine: 'standalone' };
    for (const state of ['cold', 'warm'] as const) {
      measure({ ...on, id: `buildkit-${state}`, kind: 'backend', name: `buildkit backend (standalone buildkitd ${buildkitd.version}, ${state}, unix socket)` }, () =>
        backendBench('backend-buildkit', ['--standalone', state]),
      );
      measure({ ...on, id: `peer-buildctl-${state}`, kind: 'peer', name: `peer: buildctl build (same daemon, ${state})` }, () => buildctlPeer(env, buildkitd, scratch, state === 'cold', `peer: buildctl build (${state})`));
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
} finally {
  await release();
}

const ratio = (a: number | undefined, b: number | undefined): number | null => (a === undefined || b === undefined ? null : Number((a / b).toFixed(2)));
const inplaceMs = rows.find((r) => r.id === 'inplace')?.result?.medianMs;
const report = rows.map((r) => {
  const peerId = PEER_OF[r.id];
  const peer = peerId ? rows.find((p) => p.id === peerId && p.engine === r.engine) : undefined;
  return {
    id: r.id,
    engine: r.engine ?? null,
    kind: r.kind,
    name: r.name,
    runs,
    medianMs: r.result?.medianMs ?? null,
    timesMs: r.result?.timesMs ?? [],
    ratioToInplace: r.id === 'inplace' ? null : ratio(r.result?.medianMs, inplaceMs),
    peer: peer ? peer.name : null,
    ratioToPeer: peer ? ratio(r.result?.medianMs, peer.result?.medianMs) : null,
    ...(r.error !== undefined ? { error: r.error } : {}),
  };
});

// The table (stderr), then the JSON (stdout).
const peerShort: Record<string, string> = {
  'peer-buildah': 'buildah build',
  'peer-docker-classic': 'docker build classic',
  'peer-docker-buildkit': 'docker build BuildKit',
  'peer-buildctl-cold': 'buildctl build cold',
  'peer-buildctl-warm': 'buildctl build warm',
};
const seconds = (ms: number | null) => (ms === null ? 'failed' : `${(ms / 1000).toFixed(2)} s`);
const table = [
  ['engine', 'run', 'median', '× in-place', '× peer', 'peer'],
  ...report.map((r) => [
    r.engine ?? '-',
    r.name,
    seconds(r.medianMs),
    r.ratioToInplace === null ? (r.id === 'inplace' ? '1.00' : '-') : r.ratioToInplace.toFixed(2),
    r.ratioToPeer === null ? '-' : r.ratioToPeer.toFixed(2),
    PEER_OF[r.id] ? peerShort[PEER_OF[r.id]!]! : '-',
  ]),
];
const widths = table[0]!.map((_, c) => Math.max(...table.map((line) => line[c]!.length)));
const engineLines = env.engines.map((e) => `  ${e.id}: ${e.description}`).join('\n');
process.stderr.write(
  `\nWorkload: busybox run image + 3 RUN steps (~600 files); median of ${runs}; ${availableParallelism()} cores, Node ${process.version}; ${started.toISOString()}\n${engineLines}\n\n` +
    `${table.map((line) => line.map((cell, c) => (c >= 2 && c <= 4 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ').trimEnd()).join('\n')}\n\n`,
);
for (const r of report) if (r.error !== undefined) process.stderr.write(`${r.engine ?? '-'}: ${r.name} failed: ${r.error}\n`);
process.stdout.write(
  `${JSON.stringify(
    {
      workload: 'busybox run image + 3 RUN steps (~600 files)',
      date: started.toISOString(),
      machine: { cores: availableParallelism(), node: process.version },
      runs,
      engines: env.engines.map((e) => ({ id: e.id, description: e.description, docker: e.docker.version, builderVersion: e.docker.builderVersion, buildah: e.buildah.version })),
      results: report,
    },
    null,
    2,
  )}\n`,
);
if (report.some((r) => r.error !== undefined)) process.exitCode = 1;
