/**
 * The shared image-backend workload (libs/image-backend-kit/bench/harness.ts)
 * through `extend()` with the in-place backend, applied to an unpacked copy of the
 * base (the same execution, snapshot and layer code as in a container, without
 * touching this machine's root filesystem). Run by the kit's comparison benchmark.
 *
 *   node libs/backend-inplace/bench/apply.bench.ts [--runs N] [--json]
 */
import { benchEnv, benchExtend } from '@cnb-extender/image-backend-kit/bench';
import { createInplaceBackend } from '../src/index.ts';

const runsArg = process.argv.indexOf('--runs');
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 3;
const { env, release } = await benchEnv();
try {
  const result = await benchExtend('inplace backend (unpacked base, chroot)', () => createInplaceBackend({ root: 'unpack', network: false }), env, runs);
  process.stdout.write(process.argv.includes('--json') ? `${JSON.stringify(result)}\n` : `${JSON.stringify(result, null, 2)}\n`);
} finally {
  await release();
}
