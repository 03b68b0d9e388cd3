/**
 * The release build the test files share: one linux/amd64 build (tarballs and the extender
 * image) per source tree, made by the first file that asks and read by the others (each vitest
 * file runs in its own process), so a run pays for one build instead of one per file. The build is reproducible, so a cached one is
 * the build these sources give; a change to any source the release is made from makes a new one.
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
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
const BUILD_WAIT_MS = 20 * 60_000;

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

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function readBuilt(dir: string): Promise<SharedRelease | undefined> {
  const text = await readFile(join(dir, 'release.json'), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : (JSON.parse(text) as SharedRelease);
}

/** Build into `dir` under a lock; the other files wait for its `release.json`. */
async function buildOnce(dir: string): Promise<SharedRelease> {
  const lock = `${dir}.lock`;
  const deadline = Date.now() + BUILD_WAIT_MS;
  for (;;) {
    const built = await readBuilt(dir);
    if (built) return built;
    const owned = await mkdir(lock).then(
      () => true,
      () => false,
    );
    if (owned) break;
    const holder = Number(await readFile(join(lock, 'pid'), 'utf8').catch(() => '0'));
    // a build whose process is gone (killed run) leaves its lock: take it over
    if (holder > 0 && !isAlive(holder)) await rm(lock, { recursive: true, force: true });
    if (Date.now() > deadline) throw new Error(`waiting for the shared release build in ${dir}: not done after ${BUILD_WAIT_MS / 60_000} minutes (lock ${lock}, held by pid ${holder})`);
    await sleep(1000);
  }
  try {
    await writeFile(join(lock, 'pid'), String(process.pid));
    // older builds of other sources are not read again
    for (const entry of await readdir(ROOT)) {
      if (!entry.startsWith(dir.split('/').at(-1)!) && !entry.endsWith('.lock')) await rm(join(ROOT, entry), { recursive: true, force: true });
    }
    const staging = `${dir}.building`;
    await rm(staging, { recursive: true, force: true });
    const artifacts = await buildRelease({ outDir: staging, platforms: ['amd64'] });
    const { platform, extenderTarball, lifecycleTarball, executables } = artifacts.platforms.amd64!;
    const release: SharedRelease = { version: artifacts.version, imageLayout: artifacts.imageLayout!, amd64: { platform, extenderTarball, lifecycleTarball, executables } };
    // the paths name the final directory once it is renamed
    await writeFile(join(staging, 'release.json'), JSON.stringify(release, null, 2).replaceAll(staging, dir));
    await rename(staging, dir);
    return (await readBuilt(dir))!;
  } finally {
    await rm(lock, { recursive: true, force: true });
  }
}

/** The linux/amd64 release build (tarballs, executables, the extender image) of these sources. */
export async function sharedReleaseBuild(): Promise<SharedRelease> {
  await mkdir(ROOT, { recursive: true });
  return buildOnce(join(ROOT, sourceKey()));
}
