/**
 * The shared image-backend workload (libs/image-backend-kit/bench/harness.ts)
 * through `extend()` with the Docker Engine API backend.
 *
 *   node libs/backend-docker/bench/apply.bench.ts [--runs N] [--builder classic|buildkit] [--engine debian12|current] [--json]
 *
 * `--engine` builds on that engine set's dockerd (default: the test environment's `docker`, Debian 12's).
 */
import { benchArg, benchEngine, benchEnv, benchExtend } from '@cnb-extender/image-backend-kit/bench';
import { createDockerBackend, type DockerBuilder } from '../src/index.ts';

const runs = Number(benchArg('--runs') ?? 3);
const builder = (benchArg('--builder') ?? 'classic') as DockerBuilder;
const { env, release } = await benchEnv();
try {
  const engine = benchEngine(env);
  const host = (engine?.docker ?? env.docker).host;
  const result = await benchExtend(`docker backend (${builder})`, () => createDockerBackend({ host, builder }), env, runs);
  if (engine) result.engine = engine.id;
  process.stdout.write(process.argv.includes('--json') ? `${JSON.stringify(result)}\n` : `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await release();
}
