/**
 * The shared image-backend workload (libs/image-backend-kit/bench/harness.ts)
 * through `extend()` with the buildah backend.
 *
 *   node libs/backend-buildah/bench/apply.bench.ts [--runs N] [--engine debian12|current] [--json]
 *
 * `--engine` runs the buildah of that engine set of the test environment
 * (default: `buildah` from PATH).
 */
import { benchArg, benchEngine, benchEnv, benchExtend } from '@cnb-extender/image-backend-kit/bench';
import { createBuildahBackend } from '../src/index.ts';

const runs = Number(benchArg('--runs') ?? 3);
const { env, release } = await benchEnv();
try {
  const engine = benchEngine(env);
  const result = await benchExtend('buildah backend (chroot, overlay)', () => createBuildahBackend(engine ? { buildah: engine.buildah.executable } : {}), env, runs);
  if (engine) result.engine = engine.id;
  process.stdout.write(process.argv.includes('--json') ? `${JSON.stringify(result)}\n` : `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await release();
}
