/**
 * `node tools/release/src/build-release.ts [--platform <p>]... [outDir]`: bundles, single
 * executables, the release tarballs (with .sha256 files) and the multi-platform image in
 * `out/release/`. `--platform` (`linux/amd64`, `linux/arm64`, `all`; repeated or
 * comma-separated) limits the build to those platforms; default all.
 */
import { parseArgs } from 'node:util';
import { ensurePackages } from '@cnb-extender/testenv';
import { buildRelease } from './package.ts';
import { parsePlatforms } from './platforms.ts';

const { values, positionals } = parseArgs({ options: { platform: { type: 'string', multiple: true } }, allowPositionals: true });
if (positionals.length > 1) throw new Error(`usage: build-release.ts [--platform <p>]... [outDir] (got ${positionals.length} arguments)`);

// patchelf makes the lifecycle overlay self-contained
await ensurePackages({ packages: ['patchelf'], log: (line) => process.stderr.write(`${line}\n`) });

const artifacts = await buildRelease({
  ...(positionals[0] ? { outDir: positionals[0] } : {}),
  platforms: parsePlatforms(values.platform ?? ['all']),
});
const lines: string[] = [];
for (const built of Object.values(artifacts.platforms)) lines.push(built.extenderTarball, built.lifecycleTarball);
if (artifacts.imageLayout) lines.push(`${artifacts.imageLayout} (${artifacts.imageDigest}: ${Object.keys(artifacts.platforms).map((a) => `linux/${a}`).join(', ')})`);
lines.push(`backends in this build: ${artifacts.backends.join(', ') || '(none)'}`);
process.stdout.write(`${lines.join('\n')}\n`);
