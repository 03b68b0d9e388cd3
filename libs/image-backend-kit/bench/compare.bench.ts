/**
 * Wall time of the same workload (bench/harness.ts) through every backend (in-place
 * on an unpacked base, buildah, docker classic and BuildKit, BuildKit's own API), plus the raw
 * tools on the same Dockerfile (`buildah build`, `docker build` on the test
 * environment's dockerd) as the peer reference. One test environment for all.
 *
 *   node libs/image-backend-kit/bench/compare.bench.ts [--runs N]
 *
 * Backends are never imported here (the kit may not import backends): each
 * backend's own `bench/apply.bench.ts --json` runs as a child process.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WORKLOAD, benchEnv, median, timeCommand, type BenchResult } from './harness.ts';

const runsArg = process.argv.indexOf('--runs');
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 3;
const repo = fileURLToPath(new URL('../../..', import.meta.url));
const { env, release } = await benchEnv();
const results: BenchResult[] = [];
try {
  for (const [pkg, extra] of [
    ['backend-inplace', []],
    ['backend-buildah', []],
    ['backend-docker', ['--builder', 'classic']],
    ['backend-docker', ['--builder', 'buildkit']],
    ['backend-buildkit', []],
  ] as const) {
    const out = execFileSync(process.execPath, [join(repo, 'libs', pkg, 'bench', 'apply.bench.ts'), '--json', '--runs', String(runs), ...extra], { env: process.env, stdio: ['ignore', 'pipe', 'inherit'] });
    results.push(JSON.parse(out.toString()) as BenchResult);
  }

  // Peer tools on the same Dockerfile and base.
  const scratch = mkdtempSync(join(tmpdir(), 'image-backend-peer-'));
  try {
    const layout = join(scratch, 'base');
    cpSync(env.fixtures.run.layoutDir, layout, { recursive: true });
    writeFileSync(join(scratch, 'Dockerfile'), WORKLOAD);
    mkdirSync(join(scratch, 'ctx'));
    const buildahTimes: number[] = [];
    for (let i = 0; i < runs; i++) {
      const storage = join(scratch, `storage-${i}`);
      mkdirSync(join(scratch, `out-${i}`));
      buildahTimes.push(
        timeCommand('buildah', ['--root', join(storage, 'root'), '--runroot', join(storage, 'run'), '--storage-driver', 'overlay', 'build', '--isolation', 'chroot', '--layers', '--pull-never',
          '--build-arg', `base_image=oci:base:${env.fixtures.run.layoutTag}`, '--build-arg', `build_id=${randomUUID()}`, '-f', join(scratch, 'Dockerfile'), '-t', `oci:out-${i}/img:latest`, join(scratch, 'ctx')], { cwd: scratch }),
      );
      execFileSync('buildah', ['--root', join(storage, 'root'), '--runroot', join(storage, 'run'), '--storage-driver', 'overlay', 'rmi', '--all', '--force'], { stdio: 'pipe' });
      for (const line of execFileSync('sh', ['-c', `grep -o ' ${storage}[^ ]*' /proc/self/mountinfo | sort -r || true`]).toString().split('\n')) if (line.trim()) execFileSync('umount', ['-l', line.trim()]);
    }
    results.push({ backend: 'peer: buildah build (CLI, overlay)', runs, medianMs: Math.round(median(buildahTimes)), timesMs: buildahTimes.map(Math.round) });
    for (const buildkit of [false, true]) {
      const times: number[] = [];
      for (let i = 0; i < runs; i++) {
        const tag = `image-backend-peer:${buildkit ? 'bk' : 'classic'}-${i}`;
        times.push(
          timeCommand(env.docker.cli, ['-H', env.docker.host, 'build', '--network', 'host', '--no-cache', '--build-arg', `base_image=${env.fixtures.run.dockerRef}`, '--build-arg', `build_id=${randomUUID()}`, '-t', tag, '-f', join(scratch, 'Dockerfile'), join(scratch, 'ctx')], {
            env: { ...process.env, DOCKER_BUILDKIT: buildkit ? '1' : '0' },
          }),
        );
        execFileSync(env.docker.cli, ['-H', env.docker.host, 'rmi', tag], { stdio: 'pipe' });
      }
      results.push({ backend: `peer: docker build (CLI, ${buildkit ? 'BuildKit' : 'classic'}, no export)`, runs, medianMs: Math.round(median(times)), timesMs: times.map(Math.round) });
    }
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
} finally {
  await release();
}

const inplace = results[0]!.medianMs;
const buildah = results[1]!.medianMs;
process.stdout.write(
  `${JSON.stringify(
    {
      workload: 'busybox run image + 3 RUN steps (~600 files)',
      runs,
      results: results.map((r) => ({ ...r, ratioToInplace: Number((r.medianMs / inplace).toFixed(2)), ratioToBuildahBackend: Number((r.medianMs / buildah).toFixed(2)) })),
    },
    null,
    2,
  )}\n`,
);
