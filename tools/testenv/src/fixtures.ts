/**
 * The fixture images: a build and a run image on a busybox-static base with a
 * `cnb` user (1000:1000), written as OCI image layouts that come out byte for
 * byte the same on every run and machine with the same busybox, tar and gzip.
 * Cached under `.cache/testenv/fixtures/<key>/`, keyed by a hash of those inputs.
 */
import { createHash } from 'node:crypto';
import { chmod, chown, copyFile, lchown, mkdir, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { addTarLayer, buildAtomically, createTar, readTaggedManifest, sha256File, shareBlob, writeImage, type Layer } from './layout.ts';
import { chainError, run } from './proc.ts';

/** Bump when the recipe below changes what the images contain. */
export const FIXTURE_RECIPE_VERSION = 1;
/** 1980-01-01T00:00:01Z: every mtime and `created` in the fixture images. */
export const FIXTURE_EPOCH = 315532801;
export const FIXTURE_CREATED = new Date(FIXTURE_EPOCH * 1000).toISOString().replace('.000Z', 'Z');
export const FIXTURE_STACK_ID = 'io.cnb-extender.testenv.busybox';
export const FIXTURE_TAG = 'latest';
export const CNB_UID = 1000;
export const CNB_GID = 1000;
export const FIXTURE_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const BUSYBOX = '/bin/busybox';

export interface LayoutImage {
  /** OCI image layout directory (treat as read-only). */
  layoutDir: string;
  /** `org.opencontainers.image.ref.name` of the image inside the layout. */
  layoutTag: string;
  /** `sha256:…` of the image manifest. */
  manifestDigest: string;
}

export interface FixtureLayouts {
  /** Hash of the inputs; names the cache entry. */
  key: string;
  dir: string;
  build: LayoutImage;
  run: LayoutImage;
}

/** `<repository>/.cache/testenv` unless CNB_TESTENV_CACHE names another directory. */
export function defaultCacheRoot(): string {
  const fromEnv = process.env.CNB_TESTENV_CACHE;
  if (fromEnv) return fromEnv;
  return fileURLToPath(new URL('../../../.cache/testenv', import.meta.url));
}

export function ociArchitecture(): string {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };
  return map[process.arch] ?? process.arch;
}

async function firstLine(cmd: string, args: string[]): Promise<string> {
  return (await run(cmd, args)).stdout.split('\n')[0]?.trim() ?? '';
}

/** Everything that decides the bytes of the fixture images. */
export async function fixtureInputs(): Promise<Record<string, string | number>> {
  const busyboxSha = await sha256File(BUSYBOX).catch((error: unknown) => {
    throw chainError(`reading ${BUSYBOX} (Debian package busybox-static) for the fixture images`, error);
  });
  return {
    recipe: FIXTURE_RECIPE_VERSION,
    architecture: ociArchitecture(),
    busybox: busyboxSha,
    busyboxVersion: await firstLine(BUSYBOX, ['--help']).catch(() => ''),
    tar: await firstLine('tar', ['--version']),
    gzip: await firstLine('gzip', ['--version']),
  };
}

export function inputsKey(inputs: unknown): string {
  return createHash('sha256').update(JSON.stringify(inputs)).digest('hex').slice(0, 20);
}

export async function mkdirMode(path: string, mode: number, uid = 0, gid = 0): Promise<void> {
  await mkdir(path, { recursive: true });
  await chmod(path, mode);
  await chown(path, uid, gid);
}

async function writeFileMode(path: string, content: string, mode = 0o644): Promise<void> {
  await writeFile(path, content);
  await chmod(path, mode);
  await chown(path, 0, 0);
}

/** The base rootfs: busybox and its applet links, users, and the CNB directories. */
async function makeBaseRootfs(root: string): Promise<void> {
  await mkdirMode(root, 0o755);
  const applets = (await run(BUSYBOX, ['--list-full'])).stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.includes('..') && !l.startsWith('/'));
  const dirs = new Set<string>(['bin', 'etc', 'usr', 'usr/bin', 'usr/sbin', 'sbin', 'usr/local', 'usr/local/bin', 'usr/local/sbin']);
  for (const applet of applets) {
    for (let d = dirname(applet); d !== '.'; d = dirname(d)) dirs.add(d);
  }
  for (const d of [...dirs].sort()) await mkdirMode(join(root, d), 0o755);
  await copyFile(BUSYBOX, join(root, 'bin/busybox'));
  await chmod(join(root, 'bin/busybox'), 0o755);
  await chown(join(root, 'bin/busybox'), 0, 0);
  for (const applet of new Set(applets)) {
    if (applet === 'bin/busybox') continue;
    const link = join(root, applet);
    await symlink('/bin/busybox', link);
    await lchown(link, 0, 0);
  }
  await writeFileMode(
    join(root, 'etc/passwd'),
    `root:x:0:0:root:/root:/bin/sh\ncnb:x:${CNB_UID}:${CNB_GID}:cnb:/home/cnb:/bin/sh\n`,
  );
  await writeFileMode(join(root, 'etc/group'), `root:x:0:\ncnb:x:${CNB_GID}:\n`);
  await writeFileMode(join(root, 'etc/os-release'), 'NAME="cnb-extender testenv busybox"\nID=busybox\n');
  await mkdirMode(join(root, 'root'), 0o700);
  await mkdirMode(join(root, 'home'), 0o755);
  await mkdirMode(join(root, 'home/cnb'), 0o755, CNB_UID, CNB_GID);
  await mkdirMode(join(root, 'tmp'), 0o1777);
  await mkdirMode(join(root, 'workspace'), 0o755, CNB_UID, CNB_GID);
  await mkdirMode(join(root, 'layers'), 0o755, CNB_UID, CNB_GID);
}

/** The small layer that tells the build and run images apart (`/etc/cnb-fixture` holds the name). */
export async function makeMarkerRootfs(root: string, name: string): Promise<void> {
  await mkdirMode(root, 0o755);
  await mkdirMode(join(root, 'etc'), 0o755);
  await writeFileMode(join(root, 'etc/cnb-fixture'), `${name}\n`);
}

/** Tars the whole of `rootDir` reproducibly into a gzip layer blob of the layout. */
export async function tarLayer(layoutDir: string, rootDir: string, work: string, name: string): Promise<Layer> {
  const tarFile = join(work, `${name}.tar`);
  await createTar(rootDir, await readdir(rootDir), tarFile, FIXTURE_EPOCH);
  return addTarLayer(layoutDir, tarFile);
}

/** What tells one pair of build/run images (busybox, Debian) from another. */
export interface ImagePairSpec {
  stackId: string;
  /** Put before `build`/`run` in `/etc/cnb-fixture`, the image label and the marker's history. */
  namePrefix: string;
  /** `created_by` of the base layer. */
  baseHistory: string;
  cmd: string[];
}

/**
 * Writes the build and the run image into `<dir>/build` and `<dir>/run`: the base
 * layer (already a blob of `<dir>/build`), a marker layer each, and their configs.
 */
export async function writeImagePair(dir: string, work: string, baseLayer: Layer, spec: ImagePairSpec): Promise<void> {
  const env = {
    build: [FIXTURE_PATH, `CNB_USER_ID=${CNB_UID}`, `CNB_GROUP_ID=${CNB_GID}`, `CNB_STACK_ID=${spec.stackId}`],
    run: [FIXTURE_PATH],
  };
  for (const kind of ['build', 'run'] as const) {
    const name = `${spec.namePrefix}${kind}`;
    const layoutDir = join(dir, kind);
    await shareBlob(join(dir, 'build'), layoutDir, baseLayer.descriptor.digest);
    const marker = join(work, `${kind}-marker`);
    await makeMarkerRootfs(marker, name);
    const layers = [baseLayer, await tarLayer(layoutDir, marker, work, kind)];
    const config = {
      created: FIXTURE_CREATED,
      architecture: ociArchitecture(),
      os: 'linux',
      config: {
        User: `${CNB_UID}:${CNB_GID}`,
        Env: env[kind],
        Cmd: spec.cmd,
        WorkingDir: '/',
        Labels: { 'io.buildpacks.stack.id': spec.stackId, 'io.cnb-extender.testenv.image': name },
      },
      history: [
        { created: FIXTURE_CREATED, created_by: spec.baseHistory },
        { created: FIXTURE_CREATED, created_by: `cnb-extender testenv: ${name} image marker` },
      ],
    };
    await writeImage(layoutDir, { config, layers, tag: FIXTURE_TAG });
  }
}

async function buildInto(dir: string): Promise<void> {
  const work = join(dir, '.work');
  await mkdir(work, { recursive: true });
  const base = join(work, 'base');
  await makeBaseRootfs(base);
  const baseLayer = await tarLayer(join(dir, 'build'), base, work, 'base');
  await writeImagePair(dir, work, baseLayer, {
    stackId: FIXTURE_STACK_ID,
    namePrefix: '',
    baseHistory: 'cnb-extender testenv: busybox-static base with a cnb user',
    cmd: ['/bin/sh'],
  });
  await rm(work, { recursive: true, force: true });
}

/**
 * Returns the fixture layouts, building them first when the cache has no entry
 * for the current inputs. Safe when several processes do it at once.
 */
export async function buildFixtureLayouts(options: { cacheRoot?: string } = {}): Promise<FixtureLayouts> {
  const cacheRoot = options.cacheRoot ?? defaultCacheRoot();
  const inputs = await fixtureInputs();
  const key = inputsKey(inputs);
  const dir = join(cacheRoot, 'fixtures', key);
  if (!(await stat(dir).catch(() => undefined))?.isDirectory()) {
    await mkdir(dirname(dir), { recursive: true });
    await buildAtomically(dir, async (tmp) => {
      await buildInto(tmp);
      await writeFile(join(tmp, 'inputs.json'), `${JSON.stringify(inputs, null, 2)}\n`);
    }).catch((error: unknown) => {
      throw chainError(`building the fixture images into ${dir}`, error);
    });
  }
  return { key, dir, build: await readLayoutImage(join(dir, 'build')), run: await readLayoutImage(join(dir, 'run')) };
}

/** The image tagged `tag` in a layout directory. */
export async function readLayoutImage(layoutDir: string, tag = FIXTURE_TAG): Promise<LayoutImage> {
  const manifest = await readTaggedManifest(layoutDir, tag);
  return { layoutDir, layoutTag: tag, manifestDigest: manifest.digest };
}
