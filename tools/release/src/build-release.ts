/**
 * `node tools/release/src/build-release.ts [outDir]`: bundles, single executables and the
 * two release tarballs (with .sha256 files) in `out/release/`.
 */
import { ensurePackages } from '@cnb-extender/testenv';
import { buildRelease } from './package.ts';

// patchelf makes the lifecycle overlay self-contained
await ensurePackages({ packages: ['patchelf'], log: (line) => process.stderr.write(`${line}\n`) });

const artifacts = await buildRelease(process.argv[2] ? { outDir: process.argv[2] } : {});
process.stdout.write(`${artifacts.extenderTarball}\n${artifacts.lifecycleTarball}\n${artifacts.imageLayout} (${artifacts.imageDigest})\nbackends in this build: ${artifacts.backends.join(', ') || '(none)'}\n`);
