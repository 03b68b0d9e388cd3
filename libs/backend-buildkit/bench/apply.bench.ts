/**
 * The shared image-backend workload (libs/image-backend-kit/bench/harness.ts)
 * through `extend()` with the BuildKit backend on the test environment's dockerd.
 *
 *   node libs/backend-buildkit/bench/apply.bench.ts [--runs N] [--engine debian12|current] [--json]
 *
 * `--engine` uses that engine set's dockerd as `docker://<socket>` (default:
 * `DOCKER_HOST` set to the test environment's `docker`, Debian 12's).
 */
import { benchArg, benchEngine, benchEnv, benchExtend } from '@cnb-extender/image-backend-kit/bench';
import { BuildKitBackend } from '../src/index.ts';

const runs = Number(benchArg('--runs') ?? 3);
const { env, release } = await benchEnv();
try {
  const engine = benchEngine(env);
  const makeBackend = engine
    ? () => new BuildKitBackend({ address: `docker://${engine.docker.socketPath}` })
    : () => new BuildKitBackend({ env: { ...process.env, DOCKER_HOST: env.docker.host } });
  const result = await benchExtend('buildkit backend (dockerd /grpc)', makeBackend, env, runs);
  if (engine) result.engine = engine.id;
  process.stdout.write(process.argv.includes('--json') ? `${JSON.stringify(result)}\n` : `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await release();
}
