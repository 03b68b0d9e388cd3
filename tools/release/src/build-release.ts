/**
 * `node tools/release/src/build-release.ts [outDir]`: bundles, single executables and the
 * two release tarballs (with .sha256 files) in `out/release/`.
 */
import { buildRelease } from './package.ts';

const artifacts = await buildRelease(process.argv[2] ? { outDir: process.argv[2] } : {});
process.stdout.write(`${artifacts.extenderTarball}\n${artifacts.lifecycleTarball}\nbackends in this build: ${artifacts.backends.join(', ') || '(none)'}\n`);
