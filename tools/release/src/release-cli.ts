/**
 * `npm run release -- [--dry-run] [--out <dir>] [--push <repository>] [--platform <p>]...`
 *
 * Cuts a release of the repository around the working directory (see release.ts): refuses
 * a dirty tree, changesets it cannot apply and versions the deprecation schedule does not
 * allow; builds every artifact with its SBOM, the release notes and SHA256SUMS; pushes the
 * image index when asked; applies the changesets; prints the tag to create. `--dry-run`
 * does all of it but writing the versions and pushing, and prints the plan.
 * Exit code 0 when released (or planned), 1 when refused or failed.
 */
import { resolve } from 'node:path';
import { Command } from 'commander';
import { ensurePackages } from '@cnb-extender/testenv';
import { ReleaseRefused, type DeprecationSteps } from './deprecation-steps.ts';
import { repositoryRoot } from './git.ts';
import { parsePlatforms } from './platforms.ts';
import { cutRelease, type CutRelease } from './release.ts';

const out = (line = '') => process.stdout.write(`${line}\n`);
const err = (line: string) => process.stderr.write(`${line}\n`);

function stepLines(steps: DeprecationSteps): string[] {
  const lines: string[] = [];
  const row = (label: string, id: string, surface: string, rest: string) => lines.push(`  ${label.padEnd(15)} ${id}: ${surface} (${rest})`);
  for (const s of steps.warn) row('starts warning', s.id, s.surface, `fails from ${s.fail}, removed in ${s.remove}`);
  for (const s of steps.fail) row('STARTS FAILING', s.id, s.surface, `exit 3 unless CNB_DEPRECATION_MODE=warn or quiet; removed in ${s.remove}`);
  for (const s of steps.remove) row('removed', s.id, s.surface, `use ${s.replacement}`);
  if (lines.length === 0) lines.push('  none');
  return lines;
}

function report(release: CutRelease): void {
  const { version, currentVersion, previous, plan } = release;
  out(`${release.dryRun ? 'planned' : 'released'}: cnb-extender ${version} (extender and lifecycle ${currentVersion} → ${version}; ${previous ? `previous release ${previous}` : 'first release'})`);
  out(`changesets: ${plan.changesets.length} (${plan.releases.length} packages versioned)`);
  out(`deprecation steps reached in ${version} (release/deprecations.toml):`);
  for (const line of stepLines(release.steps)) out(line);
  out(`files in ${release.outDir} (checksums in SHA256SUMS):`);
  for (const file of [...release.files, 'SHA256SUMS']) out(`  ${file}`);
  if (release.artifacts.imageDigest) out(`image index: ${release.artifacts.imageDigest} (tag ${version})`);
  const target = release.pushTarget ? `${release.pushTarget.registry}/${release.pushTarget.repository}:${version}` : undefined;
  if (release.pushed) out(`pushed: ${release.pushed.reference}@${release.pushed.digest}`);
  else if (target) out(`not pushed (dry run): would push ${target}`);
  if (release.dryRun) {
    out('dry run: no version written, nothing pushed');
    out(`tag to create when released: ${release.tag}`);
    return;
  }
  out(`tag to create: ${release.tag}`);
  const paths = release.versionChanges.map((l) => l.slice(3).replace(/^.* -> /, ''));
  out('next: commit the versions and changelogs the changesets wrote, then tag that commit:');
  if (paths.length > 0) out(`  git add -A -- ${paths.join(' ')} && git commit -m "cnb-extender ${version}"`);
  out(`  git tag -a ${release.tag} -m "cnb-extender ${version}" && git push origin ${release.tag}`);
}

const program = new Command('release')
  .description('Cut a release of the extender and the lifecycle overlay: versions, artifacts, SHA256SUMS, SBOMs, release notes')
  .option('--dry-run', 'do everything but write the versions and push, and print the plan', false)
  .option('--out <dir>', 'output directory', 'out/release')
  .option('--push <repository>', 'push the image index to this repository (registry/name), tagged with the version')
  .option('--platform <platform>', 'linux/amd64, linux/arm64 or all (repeated or comma-separated; default all)', (value: string, previous: string[]) => [...previous, value], [] as string[])
  .showHelpAfterError()
  .action(async (opts: { dryRun: boolean; out: string; push?: string; platform: string[] }) => {
    const root = await repositoryRoot(process.cwd());
    // patchelf makes the lifecycle overlay and the image's executables self-contained
    await ensurePackages({ packages: ['patchelf'], log: err });
    const release = await cutRelease({
      root,
      outDir: resolve(opts.out),
      dryRun: opts.dryRun,
      ...(opts.push !== undefined ? { push: opts.push } : {}),
      platforms: parsePlatforms(opts.platform.length > 0 ? opts.platform : ['all']),
      log: err,
    });
    for (const s of release.steps.fail) {
      err(`WARNING: ${release.version} makes ${s.surface} fail (exit 3) for everyone who does not set CNB_DEPRECATION_MODE=warn or quiet; its replacement: ${s.replacement}`);
    }
    report(release);
  });

try {
  await program.parseAsync(process.argv);
} catch (error) {
  err(error instanceof ReleaseRefused ? error.message : `release failed: ${(error as Error).message}`);
  process.exitCode = 1;
}
