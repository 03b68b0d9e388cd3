/**
 * A Debian bookworm minbase build/run pair (mmdebstrap from the machine's apt
 * sources) with the same `cnb` user as the busybox fixtures, for tests and
 * benchmarks that need a realistic glibc base. Not part of the global setup:
 * call `ensureDebianImages()` where it is needed (about 25 s the first time on
 * a machine, then reused from `.cache/testenv/debian/<key>` while the inputs
 * stay the same).
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CNB_GID,
  CNB_UID,
  defaultCacheRoot,
  FIXTURE_EPOCH,
  inputsKey,
  ociArchitecture,
  readLayoutImage,
  writeImagePair,
  type LayoutImage,
} from './fixtures.ts';
import { addTarLayer, buildAtomically, withLock } from './layout.ts';
import { chainError, run } from './proc.ts';
import { publishImage } from './publish.ts';
import type { FixtureImage, TestEnv } from './types.ts';

/** Bump when the recipe below changes what the images contain. */
export const DEBIAN_RECIPE_VERSION = 2;
export const DEBIAN_SUITE = 'bookworm';
export const DEBIAN_STACK_ID = 'io.cnb-extender.testenv.debian';

export interface DebianImagesOptions {
  /** Fixture cache root (default: `<repo>/.cache/testenv`, or CNB_TESTENV_CACHE). */
  cacheRoot?: string;
  /** Also push the images to this environment's plain registry (`debian/build`, `debian/run`) and pull them into its dockerd. */
  env?: TestEnv;
  /** Progress lines (the first build takes a while). */
  log?: (line: string) => void;
}

export interface DebianLayouts {
  key: string;
  dir: string;
  build: LayoutImage;
  run: LayoutImage;
}

export interface DebianImages {
  key: string;
  dir: string;
  build: FixtureImage;
  run: FixtureImage;
}

/** Files of the machine's apt sources that point at Debian's own archive (third-party repositories left out). */
async function debianSourceFiles(): Promise<string[]> {
  const candidates: string[] = [];
  if (existsSync('/etc/apt/sources.list')) candidates.push('/etc/apt/sources.list');
  const dir = '/etc/apt/sources.list.d';
  if (existsSync(dir)) {
    for (const name of (await readdir(dir)).sort()) {
      if (name.endsWith('.list') || name.endsWith('.sources')) candidates.push(join(dir, name));
    }
  }
  const chosen: string[] = [];
  for (const file of candidates) {
    const text = await readFile(file, 'utf8');
    const active = text.split('\n').filter((l) => !l.trimStart().startsWith('#'));
    if (active.some((l) => /^\s*(URIs:|deb\s)/.test(l) && /\/debian(-security)?(\/|\s|$)/.test(l))) chosen.push(file);
  }
  return chosen;
}

async function debianInputs(sources: string[]): Promise<Record<string, unknown>> {
  const version = async (cmd: string, args: string[]): Promise<string> =>
    (await run(cmd, args).then((r) => `${r.stdout}${r.stderr}`, () => '')).split('\n')[0]?.trim() ?? '';
  return {
    recipe: DEBIAN_RECIPE_VERSION,
    suite: DEBIAN_SUITE,
    variant: 'minbase',
    architecture: ociArchitecture(),
    sources: await Promise.all(sources.map(async (f) => ({ file: f, text: await readFile(f, 'utf8') }))),
    mmdebstrap: await version('mmdebstrap', ['--version']),
    tar: await version('tar', ['--version']),
    gzip: await version('gzip', ['--version']),
  };
}

async function buildDebianInto(dir: string, sources: string[]): Promise<void> {
  const work = join(dir, '.work');
  await mkdir(work, { recursive: true });
  const rootfsTar = join(work, 'rootfs.tar');
  await run(
    'mmdebstrap',
    [
      '--quiet',
      '--variant=minbase',
      '--format=tar',
      `--customize-hook=chroot "$1" groupadd --gid ${CNB_GID} cnb`,
      `--customize-hook=chroot "$1" useradd --uid ${CNB_UID} --gid ${CNB_GID} --create-home --home-dir /home/cnb --shell /bin/sh cnb`,
      `--customize-hook=mkdir -p "$1/workspace" "$1/layers" && chown ${CNB_UID}:${CNB_GID} "$1/workspace" "$1/layers" && chmod 1777 "$1/tmp"`,
      DEBIAN_SUITE,
      rootfsTar,
      ...sources,
    ],
    { env: { ...process.env, SOURCE_DATE_EPOCH: String(FIXTURE_EPOCH) }, timeoutMs: 15 * 60_000 },
  );
  const baseLayer = await addTarLayer(join(dir, 'build'), rootfsTar);
  await rm(rootfsTar);
  await writeImagePair(dir, work, baseLayer, {
    stackId: DEBIAN_STACK_ID,
    namePrefix: 'debian-',
    baseHistory: `cnb-extender testenv: debian ${DEBIAN_SUITE} minbase (mmdebstrap) with a cnb user`,
    cmd: ['/bin/bash'],
  });
  await rm(work, { recursive: true, force: true });
}

/** Removes cache entries of earlier inputs (each is a few hundred MB). */
async function pruneOthers(parent: string, keep: string): Promise<void> {
  for (const entry of await readdir(parent).catch(() => [] as string[])) {
    if (entry !== keep && !entry.includes('.tmp-') && !entry.endsWith('.lock')) {
      await rm(join(parent, entry), { recursive: true, force: true });
    }
  }
}

/** Builds the Debian layouts when the cache has none for the current inputs; returns them. */
export async function ensureDebianLayouts(options: Omit<DebianImagesOptions, 'env'> = {}): Promise<DebianLayouts> {
  const cacheRoot = options.cacheRoot ?? defaultCacheRoot();
  const sources = await debianSourceFiles();
  const inputs = await debianInputs(sources);
  const key = inputsKey(inputs);
  const parent = join(cacheRoot, 'debian');
  const dir = join(parent, key);
  const present = async (): Promise<boolean> => (await stat(dir).catch(() => undefined))?.isDirectory() === true;
  if (!(await present())) {
    await mkdir(parent, { recursive: true });
    // One builder at a time: the others wait and then find the entry built.
    await withLock(`${dir}.lock`, async () => {
      if (await present()) return;
      options.log?.(`testenv: building the Debian ${DEBIAN_SUITE} minbase images into ${dir} (mmdebstrap, about 30 s)`);
      await buildAtomically(dir, async (tmp) => {
        await buildDebianInto(tmp, sources);
        await writeFile(join(tmp, 'inputs.json'), `${JSON.stringify(inputs, null, 2)}\n`);
      });
      await pruneOthers(parent, key);
    }).catch((error: unknown) => {
      throw chainError(`building the Debian ${DEBIAN_SUITE} minbase images into ${dir}`, error);
    });
  }
  return { key, dir, build: await readLayoutImage(join(dir, 'build')), run: await readLayoutImage(join(dir, 'run')) };
}

/**
 * The Debian build/run pair, built or reused from the cache, and pushed to the
 * environment's registry as `debian/build` and `debian/run` and pulled into its
 * dockerd.
 */
export async function ensureDebianImages(options: DebianImagesOptions & { env: TestEnv }): Promise<DebianImages> {
  const layouts = await ensureDebianLayouts(options);
  const { env } = options;
  const target = { registryHost: env.registry.host, docker: env.docker, stateDir: env.stateDir };
  const [build, runImage] = await Promise.all([
    publishImage(layouts.build, 'debian/build', target),
    publishImage(layouts.run, 'debian/run', target),
  ]);
  return { key: layouts.key, dir: layouts.dir, build, run: runImage };
}
