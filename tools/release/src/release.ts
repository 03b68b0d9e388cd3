/**
 * A whole release of the extender and the lifecycle overlay, from a clean checkout:
 *
 * 1. guards (`prepareRelease`), each refusing with a ReleaseRefused that says why: a work
 *    tree with uncommitted changes; pending changesets the changesets CLI cannot apply, or
 *    that would give the two apps different versions; a version already released (tag
 *    `v<version>`); a deprecation schedule that does not allow the version (see
 *    deprecation-steps.ts);
 * 2. the artifacts (package.ts: tarballs, the multi-platform image), a CycloneDX SBOM per
 *    artifact (sbom.ts), the release notes (release-notes.ts) and `SHA256SUMS`, all in the
 *    output directory;
 * 3. unless it is a dry run: the image index pushed (when asked), then the changesets
 *    applied (`changeset version`: versions, CHANGELOG.md files). The maintainer commits
 *    that and creates the tag.
 *
 * The versions are those the changesets give (the `fixed` group keeps both apps on one);
 * artifacts, SBOMs, notes and SHA256SUMS depend only on the commit (and, for linux/arm64,
 * the download cache), so a dry run and a real run of one commit write the same bytes.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { basename, join, relative, resolve } from 'node:path';
import { parseSchedule, ScheduleError, SURFACE_IDS, type DeprecationSchedule } from '@cnb-extender/extender-cli';
import { parseReference, RegistryClient, type RepositoryRef } from '@cnb-extender/oci';
import { APPS, type AppName } from './bundle.ts';
import { applyReleasePlan, changelogEntries, ChangesetsError, readReleasePlan, type ChangelogEntry, type ReleasePlan } from './changesets.ts';
import { checkScheduleGuards, deprecationSteps, previousRelease, ReleaseRefused, type DeprecationSteps } from './deprecation-steps.ts';
import { releasedVersions, releaseTag, uncommittedChanges } from './git.ts';
import { buildRelease, writeSha256Sums, type ReleaseArtifacts } from './package.ts';
import { RELEASE_ARCHES, type ReleaseArch } from './platforms.ts';
import { pushImageIndex, type PushedIndex } from './push.ts';
import { releaseNotes } from './release-notes.ts';
import { writeSboms } from './sbom.ts';

/** The npm names of the apps, which are released together. */
const APP_PACKAGES: Readonly<Record<AppName, string>> = { extender: '@cnb-extender/extender', lifecycle: '@cnb-extender/lifecycle' };

/** What a release will be, once every guard passed. */
export interface PreparedRelease {
  /** The repository released. */
  root: string;
  /** The apps' version now, and the one this release gives them. */
  currentVersion: string;
  version: string;
  /** The tag to create: `v<version>`. */
  tag: string;
  /** Versions released so far (tags), and the latest one below `version`. */
  released: string[];
  previous?: string;
  plan: ReleasePlan;
  changelog: ChangelogEntry[];
  /** New versions of the repository's packages the changesets bump. */
  workspaceVersions: Map<string, string>;
  scheduleFile: string;
  schedule: DeprecationSchedule;
  steps: DeprecationSteps;
}

async function packageVersion(root: string, app: AppName): Promise<string> {
  return (JSON.parse(await readFile(join(root, 'apps', app, 'package.json'), 'utf8')) as { version: string }).version;
}

/** Run the guards and work out the release; throws ReleaseRefused when it must not happen. */
export async function prepareRelease(root: string): Promise<PreparedRelease> {
  const dirty = await uncommittedChanges(root);
  if (dirty.length > 0) {
    const shown = dirty.slice(0, 10).map((l) => `  ${l}`);
    if (dirty.length > 10) shown.push(`  … and ${dirty.length - 10} more`);
    throw new ReleaseRefused('clean-tree', `refusing to release: the work tree of ${root} has uncommitted changes (commit or remove them; a release is built from a commit):\n${shown.join('\n')}`);
  }

  let plan: ReleasePlan;
  try {
    plan = await readReleasePlan(root);
  } catch (err) {
    if (err instanceof ChangesetsError) throw new ReleaseRefused('changesets', `refusing to release: the pending changesets cannot be applied: ${err.message}`, { cause: err });
    throw err;
  }
  const current = {} as Record<AppName, string>;
  const next = {} as Record<AppName, string>;
  for (const app of APPS) {
    current[app] = await packageVersion(root, app);
    next[app] = plan.releases.find((r) => r.name === APP_PACKAGES[app])?.newVersion ?? current[app];
  }
  if (current.extender !== current.lifecycle || next.extender !== next.lifecycle) {
    throw new ReleaseRefused(
      'changesets',
      `refusing to release: the extender and the lifecycle are released together, but the pending changesets would give them different versions ` +
        `(extender ${current.extender} → ${next.extender}, lifecycle ${current.lifecycle} → ${next.lifecycle}); keep both in the "fixed" group of .changeset/config.json`,
    );
  }
  const version = next.extender;
  const tag = releaseTag(version);
  const released = await releasedVersions(root);
  if (released.includes(version)) {
    const why =
      version !== current.extender
        ? `the pending changesets take the apps from ${current.extender} to it again`
        : plan.changesets.length === 0
          ? 'add a changeset (npx changeset) for what changed since'
          : 'the pending changesets bump neither app';
    throw new ReleaseRefused('version', `refusing to release ${version}: it is already released (tag ${tag}); ${why}`);
  }

  const scheduleFile = join(root, 'release', 'deprecations.toml');
  let schedule: DeprecationSchedule;
  try {
    schedule = parseSchedule(await readFile(scheduleFile, 'utf8'), relative(root, scheduleFile));
  } catch (err) {
    if (err instanceof ScheduleError) throw new ReleaseRefused('schedule', `refusing to release ${version}: ${err.message}`, { cause: err });
    throw err;
  }
  checkScheduleGuards({ schedule, scheduleFile: relative(root, scheduleFile), version, released, implemented: SURFACE_IDS });

  const previous = previousRelease(released, version);
  return {
    root,
    currentVersion: current.extender,
    version,
    tag,
    released,
    ...(previous ? { previous } : {}),
    plan,
    changelog: await changelogEntries(root, plan),
    workspaceVersions: new Map(plan.releases.map((r) => [r.name, r.newVersion])),
    scheduleFile,
    schedule,
    steps: deprecationSteps(schedule, version, previous),
  };
}

export interface CutReleaseOptions {
  /** The repository to release: its changesets, versions, deprecation schedule and tags. */
  root: string;
  /** Where the artifacts go (default `<root>/out/release`). */
  outDir?: string;
  /** Everything but writing the versions and pushing. */
  dryRun?: boolean;
  /** Push the image index to this repository (`registry/name`, no tag: the version is the tag). */
  push?: string;
  /** Platforms to build (default all). */
  platforms?: readonly ReleaseArch[];
  /** Download cache for linux/arm64 (see inputs.ts). */
  cacheDir?: string;
  /** Registry client for the push (default: credentials and insecure registries from the environment). */
  registryClient?: RegistryClient;
  /** Progress, one line at a time. */
  log?: (line: string) => void;
}

export interface CutRelease extends PreparedRelease {
  dryRun: boolean;
  outDir: string;
  artifacts: ReleaseArtifacts;
  /** The files SHA256SUMS lists, relative to `outDir`: tarballs, SBOMs, the notes, the image layout's index.json. */
  files: string[];
  notesFile: string;
  sumsFile: string;
  /** The push target, pushed or (dry run) not. */
  pushTarget?: RepositoryRef;
  pushed?: PushedIndex;
  /** What applying the changesets changed (`git status --porcelain` lines); empty for a dry run. */
  versionChanges: string[];
}

function pushTarget(input: string): RepositoryRef {
  let ref;
  try {
    ref = parseReference(input, { defaultTag: false });
  } catch (err) {
    throw new ReleaseRefused('arguments', `refusing to release: --push ${input}: ${(err as Error).message}`, { cause: err });
  }
  if (ref.tag || ref.digest) throw new ReleaseRefused('arguments', `refusing to release: --push ${input}: give a repository without tag or digest (the release's version is the tag)`);
  return { registry: ref.registry, repository: ref.repository };
}

export async function cutRelease(options: CutReleaseOptions): Promise<CutRelease> {
  const log = options.log ?? (() => {});
  const target = options.push !== undefined ? pushTarget(options.push) : undefined;
  const prepared = await prepareRelease(options.root);
  const { version } = prepared;
  const outDir = resolve(options.outDir ?? join(options.root, 'out', 'release'));
  const platforms = options.platforms ?? RELEASE_ARCHES;

  log(`building ${version} for ${platforms.map((a) => `linux/${a}`).join(', ')} in ${outDir}`);
  const artifacts = await buildRelease({
    outDir,
    version,
    scheduleFile: prepared.scheduleFile,
    platforms,
    ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}),
  });
  // the scratch directory (bundles, executables, image root filesystems) is not part of the release
  await rm(join(outDir, 'work'), { recursive: true, force: true });
  const sboms = await writeSboms(artifacts, { workspaceVersions: prepared.workspaceVersions });
  const tarballs = Object.values(artifacts.platforms).flatMap((p) => [p.extenderTarball, p.lifecycleTarball]);
  const files = [...tarballs, ...sboms].map((f) => relative(outDir, f));
  const image = artifacts.imageLayout && artifacts.imageDigest ? { layout: basename(artifacts.imageLayout), digest: artifacts.imageDigest, tag: version } : undefined;
  const notesName = `release-notes-v${version}.md`;
  const notesFile = join(outDir, notesName);
  await writeFile(notesFile, releaseNotes({ version, changelog: prepared.changelog, steps: prepared.steps, files, ...(image ? { image } : {}) }));
  const sumsFile = await writeSha256Sums(outDir, [...files, notesName, ...(image ? [`${image.layout}/index.json`] : [])]);

  const result: CutRelease = {
    ...prepared,
    dryRun: options.dryRun ?? false,
    outDir,
    artifacts,
    files: [...files, notesName, ...(image ? [`${image.layout}/index.json`] : [])].sort(),
    notesFile,
    sumsFile,
    ...(target ? { pushTarget: target } : {}),
    versionChanges: [],
  };
  if (options.dryRun) return result;

  if (target) {
    if (!artifacts.imageLayout) throw new Error(`pushing ${version}: no image was built`);
    log(`pushing the image index to ${target.registry}/${target.repository}:${version}`);
    const client = options.registryClient ?? new RegistryClient();
    try {
      result.pushed = await pushImageIndex(client, artifacts.imageLayout, version, target);
    } finally {
      if (!options.registryClient) await client.close();
    }
  }
  if (prepared.plan.changesets.length > 0) {
    log(`applying ${prepared.plan.changesets.length} changesets`);
    await applyReleasePlan(options.root);
  }
  for (const app of APPS) {
    const written = await packageVersion(options.root, app);
    if (written !== version) throw new Error(`applying the changesets: apps/${app}/package.json has version ${written}, the release is ${version}`);
  }
  // what the changesets wrote, not the release's own files when --out is in the work tree
  result.versionChanges = (await uncommittedChanges(options.root)).filter((line) => {
    const path = resolve(options.root, line.slice(3).replace(/^.* -> /, ''));
    return path !== outDir && !path.startsWith(`${outDir}/`);
  });
  return result;
}
