/**
 * The shared image-backend workload (libs/image-backend-kit/bench/harness.ts)
 * through `extend()` with the BuildKit backend on the test environment's dockerd.
 *
 *   node libs/backend-buildkit/bench/apply.bench.ts [--runs N] [--json]
 */
import { benchEnv, benchExtend } from '@cnb-extender/image-backend-kit/bench';
import { BuildKitBackend } from '../src/index.ts';

const runsArg = process.argv.indexOf('--runs');
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 3;
const { env, release } = await benchEnv();
try {
  const result = await benchExtend('buildkit backend (dockerd /grpc)', () => new BuildKitBackend({ env: { ...process.env, DOCKER_HOST: env.docker.host } }), env, runs);
  process.stdout.write(process.argv.includes('--json') ? `${JSON.stringify(result)}\n` : `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await release();
}
