/**
 * The shared image-backend workload (libs/image-backend-kit/bench/harness.ts)
 * through `extend()` with the BuildKit backend, on the test environment's
 * dockerd or on its standalone buildkitd.
 *
 *   node libs/backend-buildkit/bench/apply.bench.ts [--runs N] [--engine debian12|current] [--standalone cold|warm] [--json]
 *
 * `--engine` uses that engine set's dockerd as `docker://<socket>` (default:
 * `DOCKER_HOST` set to the test environment's `docker`, Debian 12's).
 * `--standalone` uses the standalone buildkitd over its unix socket instead:
 * `cold` empties its cache before each run (`buildctl prune --all`, not timed),
 * so the base crosses the session every time; `warm` runs once untimed first,
 * so the daemon holds the base (the workload's RUNs still run: it declares the
 * per-run build_id).
 */
import { execFileSync } from 'node:child_process';
import { benchArg, benchEngine, benchEnv, benchExtend } from '@cnb-extender/image-backend-kit/bench';
import { waitForBuildkitd } from '@cnb-extender/testenv';
import { BuildKitBackend } from '../src/index.ts';

const runs = Number(benchArg('--runs') ?? 3);
const standalone = benchArg('--standalone');
if (standalone !== undefined && standalone !== 'cold' && standalone !== 'warm') throw new Error(`--standalone ${standalone}: cold or warm`);
const { env, release } = await benchEnv();
try {
  let result;
  if (standalone) {
    const buildkitd = await waitForBuildkitd(env);
    const makeBackend = () => new BuildKitBackend({ address: buildkitd.unixAddress });
    const prune = () => execFileSync(buildkitd.buildctl, ['--addr', buildkitd.unixAddress, 'prune', '--all'], { stdio: 'ignore' });
    if (standalone === 'warm') await benchExtend('warm-up', makeBackend, env, 1);
    result = await benchExtend(`buildkit backend (standalone buildkitd ${buildkitd.version}, ${standalone})`, makeBackend, env, runs, standalone === 'cold' ? prune : undefined);
    result.engine = 'standalone';
  } else {
    const engine = benchEngine(env);
    const makeBackend = engine
      ? () => new BuildKitBackend({ address: `docker://${engine.docker.socketPath}` })
      : () => new BuildKitBackend({ env: { ...process.env, DOCKER_HOST: env.docker.host } });
    result = await benchExtend('buildkit backend (dockerd /grpc)', makeBackend, env, runs);
    if (engine) result.engine = engine.id;
  }
  process.stdout.write(process.argv.includes('--json') ? `${JSON.stringify(result)}\n` : `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await release();
}
