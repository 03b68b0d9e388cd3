/**
 * The release build the test files share: one linux/amd64 build (tarballs and the extender
 * image) per source tree, made by the first file that asks and read by the others (each vitest
 * file runs in its own process), so a run pays for one build instead of one per file. The
 * build is reproducible, so a cached one is the build these sources give; a change to any
 * source the release is made from makes a new one.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildAtomically, ensureCachedDir } from '@cnb-extender/testenv';
import { REPO_ROOT } from '../bundle.ts';
import { buildRelease, type PlatformArtifacts } from '../package.ts';

/** What the test files read of the build. */
export interface SharedRelease {
  version: string;
  /** The extender image's OCI layout (an index under the tag `<version>`). */
  imageLayout: string;
  amd64: Pick<PlatformArtifacts, 'platform' | 'extenderTarball' | 'lifecycleTarball' | 'executables'>;
}

const ROOT = join(REPO_ROOT, 'out', 'shared-release');
/** What the release is made from: the apps and libraries, the release tool and its inputs, the dependencies. */
const SOURCES = ['apps', 'libs', 'tools/release', 'release', '.changeset', 'package.json', 'package-lock.json'];

/** A digest of the release's sources as they are on disk (tracked files and new ones). */
function sourceKey(): string {
  const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z', '--', ...SOURCES], { cwd: REPO_ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
    .split('\0')
    .filter(Boolean)
    .sort();
  // a file deleted but still in the index is left out (hash-object reads what is on disk)
  const present = files.filter((file) => existsSync(join(REPO_ROOT, file)));
  const objects = execFileSync('git', ['hash-object', '--stdin-paths'], { cwd: REPO_ROOT, input: present.join('\n'), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }).split('\n');
  const hash = createHash('sha256');
  for (const [i, file] of present.entries()) hash.update(`${file}\0${objects[i]}\n`);
  return hash.digest('hex').slice(0, 16);
}

/** The linux/amd64 release build (tarballs, executables, the extender image) of these sources. */
export async function sharedReleaseBuild(): Promise<SharedRelease> {
  const key = sourceKey();
  const dir = join(ROOT, key);
  // the first file builds under the lock; the others wait for its release.json
  await ensureCachedDir(dir, 'release.json', 'building the release the tests share', async () => {
    // builds of other sources are not read again (a build still running holds its lock)
    for (const entry of await readdir(ROOT)) if (!entry.startsWith(key) && !entry.endsWith('.lock')) await rm(join(ROOT, entry), { recursive: true, force: true });
    await buildAtomically(dir, async (staging) => {
      const artifacts = await buildRelease({ outDir: staging, platforms: ['amd64'] });
      const { platform, extenderTarball, lifecycleTarball, executables } = artifacts.platforms.amd64!;
      const release: SharedRelease = { version: artifacts.version, imageLayout: artifacts.imageLayout!, amd64: { platform, extenderTarball, lifecycleTarball, executables } };
      // the paths name the final directory once it is renamed
      await writeFile(join(staging, 'release.json'), JSON.stringify(release, null, 2).replaceAll(staging, dir));
    });
  });
  return JSON.parse(await readFile(join(dir, 'release.json'), 'utf8')) as SharedRelease;
}
