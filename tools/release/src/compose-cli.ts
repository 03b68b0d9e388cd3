/**
 * `npm run lifecycle:compose -- --upstream <lifecycle-v<X>+linux.<arch>.tgz>... [--overlay <tgz>]... [--image] [--out <dir>]`
 *
 * Writes `lifecycle-v<X>+extender.<Y>+linux.<arch>.tgz` (and its `.sha256`) to `--out`
 * (default `out/lifecycle`) for each upstream tarball: the upstream lifecycle with this
 * project's extender (see compose.ts). `--overlay` gives the lifecycle overlay of each
 * platform (an upstream with no overlay of its platform among them is refused); without
 * `--overlay` the overlays are built from this checkout first (tools/release's build,
 * those platforms only, no image). `--image` also writes the lifecycle image, one image per
 * platform in one index (lifecycle-image.ts), as the OCI layout `lifecycle-v<version>.oci/`.
 * Exit code 0 when written, 1 when refused or failed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { Command } from 'commander';
import { ensurePackages } from '@cnb-extender/testenv';
import { ComposeRefused, composeLifecycle, readLifecycleOverlay, upstreamPlatform } from './compose.ts';
import { buildLifecycleImage } from './lifecycle-image.ts';
import { buildRelease } from './package.ts';
import { PLATFORMS, type ReleaseArch } from './platforms.ts';

const out = (line: string) => process.stdout.write(`${line}\n`);
const err = (line: string) => process.stderr.write(`${line}\n`);
const collect = (value: string, previous: string[]) => [...previous, value];

interface Options {
  upstream: string[];
  overlay: string[];
  out: string;
  image: boolean;
}

const program = new Command('lifecycle:compose')
  .description("Compose upstream lifecycle release tarballs with this project's extender into lifecycle tarballs (and a lifecycle image)")
  .requiredOption('--upstream <tarball>', 'an upstream lifecycle release tarball (lifecycle-v<version>+linux.<arch>.tgz); repeat for each platform', collect, [] as string[])
  .option('--overlay <tarball>', "this project's lifecycle overlay of a platform (lifecycle-extender-v<version>+linux.<arch>.tgz); repeatable; default: built from this checkout", collect, [] as string[])
  .option('--image', 'also write the lifecycle image (one image per platform in one index) as an OCI layout', false)
  .option('--out <dir>', 'output directory', 'out/lifecycle')
  .showHelpAfterError()
  .action(async (opts: Options) => {
    const outDir = resolve(opts.out);
    const upstreams = opts.upstream.map((p) => resolve(p));
    let scratch: string | undefined;
    try {
      // every upstream is checked before the (slow) overlay build: a refused one builds nothing
      const arches: ReleaseArch[] = [];
      for (const upstream of upstreams) {
        const { arch } = await upstreamPlatform(upstream);
        if (arches.includes(arch)) throw new ComposeRefused('architecture', `two upstream lifecycles for linux/${arch}; give one per platform`);
        arches.push(arch);
      }
      const overlays = new Map<ReleaseArch, string>();
      for (const overlay of opts.overlay.map((p) => resolve(p))) overlays.set((await readLifecycleOverlay(overlay)).platform.arch, overlay);
      const missing = arches.filter((arch) => !overlays.has(arch));
      if (missing.length > 0 && overlays.size > 0) {
        // overlays were given: one of another platform is a mistake, not a reason to build
        const arch = missing[0]!;
        const given = [...overlays.entries()];
        throw new ComposeRefused(
          'architecture',
          `the upstream lifecycle ${upstreams[arches.indexOf(arch)]} is for ${PLATFORMS[arch].suffix} but the lifecycle overlay ${given.map(([, p]) => p).join(', ')} is for ${given.map(([a]) => PLATFORMS[a].suffix).join(', ')}; use the overlay of the same platform`,
        );
      }
      if (missing.length > 0) {
        await ensurePackages({ packages: ['patchelf'], log: err });
        scratch = await mkdtemp(join(tmpdir(), 'lifecycle-compose-'));
        err(`building the lifecycle overlay for ${missing.map((a) => `linux/${a}`).join(', ')} from this checkout`);
        const release = await buildRelease({ outDir: scratch, platforms: missing, image: false });
        for (const arch of missing) overlays.set(arch, release.platforms[arch]!.lifecycleTarball);
      }
      const composed = [];
      for (const [i, upstream] of upstreams.entries()) {
        const result = await composeLifecycle({ upstream, overlay: overlays.get(arches[i]!)!, outDir });
        composed.push(result);
        out(result.path);
        out(`lifecycle ${result.version}: upstream ${result.upstreamVersion} with extender ${result.extenderVersion} for ${result.platform.oci.os}/${result.platform.arch}`);
        out(`Platform APIs ${result.descriptor.apis.platform.supported.join(', ')}; Buildpack APIs ${result.descriptor.apis.buildpack.supported.join(', ')}`);
      }
      if (opts.image) {
        const layoutDir = join(outDir, `${basename(composed[0]!.path).replace(/\+linux\.[^+]+\.tgz$/, '')}.oci`);
        const image = await buildLifecycleImage({ tarballs: composed.map((c) => c.path), layoutDir, workDir: join(outDir, `.image-work-${process.pid}`) });
        out(`${layoutDir} (${image.indexDescriptor.digest}, tag ${image.refName}: ${image.platforms.map((p) => `linux/${p.arch}`).join(', ')})`);
      }
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
