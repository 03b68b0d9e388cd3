/**
 * Wall time per workload on the test environment's dockerd 20.10:
 *
 * - `client /session`: BuildKitClient.solve, `moby` export, session over `POST /session`
 * - `client Control/Session`: the same with the session tunnelled through Control/Session
 * - `backend apply`: BuildKitBackend.apply (solve + Engine API read-back + ignore-path filter)
 * - `docker build`: `DOCKER_BUILDKIT=1 /usr/bin/docker build --network none -q` on the same daemon
 *
 * Each run busts the cache (fresh nonce / fresh random payload). Median of N runs.
 *
 *   node libs/backend-buildkit/bench/solve.bench.ts [runs]
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemorySink, readLayoutImage } from '@cnb-extender/extender-core';
import type { Digest } from '@cnb-extender/oci';
import { startTestEnv, stopTestEnv } from '@cnb-extender/testenv';
import { BuildKitBackend, BuildKitClient } from '../src/index.ts';

const runs = Number(process.argv[2] ?? 5);
const handle = await startTestEnv({ install: false });
const env = handle.env;
const address = `docker://${env.docker.socketPath}`;
const scratch = join(tmpdir(), `buildkit-bench-${randomBytes(6).toString('hex')}`);
mkdirSync(scratch, { recursive: true });
const base = (await readLayoutImage(env.fixtures.run.layoutDir, env.fixtures.run.registryRef, env.fixtures.run.manifestDigest as Digest)).image;

interface Workload {
  name: string;
  body: string[];
  /** Writes the context for one run. */
  context(dir: string): void;
}

const workloads: Workload[] = [
  {
    name: 'config + small COPY',
    body: ['USER root', 'COPY small.txt /opt/small.txt', 'ENV A=1', 'LABEL x=y', 'USER 1000:1000'],
    context: (dir) => writeFileSync(join(dir, 'small.txt'), randomBytes(64).toString('hex')),
  },
  {
    name: 'RUN writing 500 files',
    body: ['USER root', 'ARG nonce', 'RUN mkdir -p /opt/tool && echo $nonce > /opt/nonce && for i in $(seq 1 500); do echo $i > /opt/tool/f$i; done', 'USER 1000:1000'],
    context: () => undefined,
  },
  {
    name: 'COPY 60 MB file',
    body: ['USER root', 'COPY big.bin /opt/big.bin', 'USER 1000:1000'],
    context: (dir) => writeFileSync(join(dir, 'big.bin'), randomBytes(60 * 1024 * 1024)),
  },
];

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

const rows: string[] = [];
try {
  for (const w of workloads) {
    const times: Record<string, number[]> = { 'client /session': [], 'client Control/Session': [], 'backend apply': [], 'docker build': [] };
    for (let i = 0; i < runs; i++) {
      for (const variant of Object.keys(times)) {
        const dir = join(scratch, `${w.name.replace(/\W+/g, '-')}-${variant.replace(/\W+/g, '-')}-${i}`);
        mkdirSync(dir, { recursive: true });
        w.context(dir);
        const nonce = randomBytes(8).toString('hex');
        const dockerfile = ['ARG base_image', 'FROM ${base_image}', ...w.body, ''].join('\n');
        writeFileSync(join(dir, 'Dockerfile'), dockerfile);
        const tag = `buildkit-bench/${nonce}:latest`;
        const args = [
          { name: 'nonce', value: nonce },
          { name: 'base_image', value: env.fixtures.run.registryRef },
        ];
        if (variant.startsWith('client')) {
          const client = new BuildKitClient(address, { sessionTransport: variant === 'client /session' ? 'docker' : 'control' });
          times[variant]!.push(await timed(() => client.solve({ dockerfileDir: dir, contextDir: dir, buildArgs: args, exporters: [{ type: 'moby', attrs: { name: tag } }] }).then(() => undefined)));
          await client.close();
          execFileSync(env.docker.cli, ['-H', env.docker.host, 'rmi', tag], { stdio: 'ignore' });
        } else if (variant === 'backend apply') {
          const backend = new BuildKitBackend({ address });
          const workDir = join(dir, 'work');
          mkdirSync(workDir);
          const context = { signal: new AbortController().signal, events: new MemorySink(), workDir };
          times[variant]!.push(
            await timed(async () => {
              await backend.apply(
                { extensionId: 'bench', kind: 'run', path: join(dir, 'Dockerfile'), content: dockerfile, args, contextDir: dir },
                base,
                { buildContext: dir, ignorePaths: ['/workspace'], cacheTtlMs: 0, extendDir: join(dir, 'extend') },
                context,
              );
            }),
          );
          await backend.cleanup(context);
        } else {
          times[variant]!.push(
            await timed(async () => {
              execFileSync(
                env.docker.cli,
                ['-H', env.docker.host, 'build', '-q', '--network', 'none', '-t', tag, '--build-arg', `nonce=${nonce}`, '--build-arg', `base_image=${env.fixtures.run.registryRef}`, dir],
                { env: { ...process.env, DOCKER_BUILDKIT: '1' }, stdio: 'ignore' },
              );
            }),
          );
          execFileSync(env.docker.cli, ['-H', env.docker.host, 'rmi', tag], { stdio: 'ignore' });
        }
        rmSync(dir, { recursive: true, force: true });
      }
    }
    const docker = median(times['docker build']!);
    for (const [variant, values] of Object.entries(times)) {
      const m = median(values);
      rows.push(`| ${w.name} | ${variant} | ${m.toFixed(0)} ms | ${(m / docker).toFixed(2)} |`);
    }
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
  await stopTestEnv(handle);
}
process.stdout.write(`| workload | variant | median wall time (${runs} runs) | ratio to docker build |\n|---|---|---|---|\n${rows.join('\n')}\n`);
