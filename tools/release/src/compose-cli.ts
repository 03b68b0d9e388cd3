/**
 * `npm run lifecycle:compose -- --upstream <lifecycle-v<X>+linux.<arch>.tgz> [--overlay <tgz>] [--out <dir>]`
 *
 * Writes `lifecycle-v<X>+extender.<Y>+linux.<arch>.tgz` (and its `.sha256`) to `--out`
 * (default `out/lifecycle`): the upstream lifecycle with this project's extender (see
 * compose.ts). Without `--overlay`, the lifecycle overlay of the upstream's platform is built
 * from this checkout first (tools/release's build, that platform only, no image).
 * Exit code 0 when written, 1 when refused or failed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Command } from 'commander';
import { ensurePackages } from '@cnb-extender/testenv';
import { ComposeRefused, composeLifecycle, upstreamPlatform } from './compose.ts';
import { buildRelease } from './package.ts';

const out = (line: string) => process.stdout.write(`${line}\n`);
const err = (line: string) => process.stderr.write(`${line}\n`);

const program = new Command('lifecycle:compose')
  .description("Compose an upstream lifecycle release tarball with this project's extender into one lifecycle tarball")
  .requiredOption('--upstream <tarball>', 'the upstream lifecycle release tarball (lifecycle-v<version>+linux.<arch>.tgz)')
  .option('--overlay <tarball>', "this project's lifecycle overlay for the same platform (lifecycle-extender-v<version>+linux.<arch>.tgz); default: built from this checkout")
  .option('--out <dir>', 'output directory', 'out/lifecycle')
  .showHelpAfterError()
  .action(async (opts: { upstream: string; overlay?: string; out: string }) => {
    const upstream = resolve(opts.upstream);
    let overlay = opts.overlay === undefined ? undefined : resolve(opts.overlay);
    let scratch: string | undefined;
    try {
      if (overlay === undefined) {
        // checked before the (slow) build: a refused upstream builds nothing
        const platform = await upstreamPlatform(upstream);
        await ensurePackages({ packages: ['patchelf'], log: err });
        scratch = await mkdtemp(join(tmpdir(), 'lifecycle-compose-'));
        err(`building the lifecycle overlay for ${platform.oci.os}/${platform.arch} from this checkout`);
        const release = await buildRelease({ outDir: scratch, platforms: [platform.arch], image: false });
        overlay = release.platforms[platform.arch]!.lifecycleTarball;
      }
      const composed = await composeLifecycle({ upstream, overlay, outDir: resolve(opts.out) });
      out(composed.path);
      out(`lifecycle ${composed.version}: upstream ${composed.upstreamVersion} with extender ${composed.extenderVersion} for ${composed.platform.oci.os}/${composed.platform.arch}`);
      out(`Platform APIs ${composed.descriptor.apis.platform.supported.join(', ')}; Buildpack APIs ${composed.descriptor.apis.buildpack.supported.join(', ')}`);
    } finally {
      if (scratch) await rm(scratch, { recursive: true, force: true });
    }
  });

try {
  await program.parseAsync(process.argv);
} catch (error) {
  err(error instanceof ComposeRefused ? `refused: ${error.message}` : `composing the lifecycle failed: ${(error as Error).message}`);
  process.exitCode = 1;
}
