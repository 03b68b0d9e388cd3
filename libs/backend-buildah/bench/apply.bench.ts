/**
 * The shared image-backend workload (libs/image-backend-kit/bench/harness.ts)
 * through `extend()` with the buildah backend.
 *
 *   node libs/backend-buildah/bench/apply.bench.ts [--runs N] [--json]
 */
import { benchEnv, benchExtend } from '@cnb-extender/image-backend-kit/bench';
import { createBuildahBackend } from '../src/index.ts';

const runsArg = process.argv.indexOf('--runs');
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 3;
const { env, release } = await benchEnv();
try {
  const result = await benchExtend('buildah backend (chroot, overlay)', () => createBuildahBackend(), env, runs);
  process.stdout.write(process.argv.includes('--json') ? `${JSON.stringify(result)}\n` : `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await release();
}
