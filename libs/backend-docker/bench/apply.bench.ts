/**
 * The shared image-backend workload (libs/image-backend-kit/bench/harness.ts)
 * through `extend()` with the Docker Engine API backend.
 *
 *   node libs/backend-docker/bench/apply.bench.ts [--runs N] [--builder classic|buildkit] [--json]
 */
import { benchEnv, benchExtend } from '@cnb-extender/image-backend-kit/bench';
import { createDockerBackend, type DockerBuilder } from '../src/index.ts';

const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const runs = Number(arg('--runs') ?? 3);
const builder = (arg('--builder') ?? 'classic') as DockerBuilder;
const { env, release } = await benchEnv();
try {
  const result = await benchExtend(`docker backend (${builder})`, () => createDockerBackend({ host: env.docker.host, builder }), env, runs);
  process.stdout.write(process.argv.includes('--json') ? `${JSON.stringify(result)}\n` : `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await release();
}
