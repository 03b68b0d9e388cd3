/**
 * pack's flow with a composed lifecycle (`npm run lifecycle:compose`), in containers on the
 * test environment's dockerd.
 *
 * The upstream lifecycle cannot be downloaded here: a stand-in with upstream's layout and
 * metadata (tools/release's testing/upstream-stand-in.ts) records how each phase was called
 * (argv[0], arguments, environment) and does the least of what the phase does:
 *   analyzer  writes analyzed.toml with the run image's digest reference;
 *   detector  writes group.toml, plan.toml and the extension's generated Dockerfiles;
 *   restorer  records the build image in analyzed.toml and puts both base images into the
 *             extend directory, as OCI layouts, as the restorer does for extensions;
 *   builder   (run by the extender after the build-image extension) writes the build metadata;
 *   exporter  reads <extended>/run.
 * It is composed with this checkout's lifecycle overlay (a linux/amd64 release build); the
 * tarball goes into a builder (the fixture build image plus the tarball under /cnb, as
 * `pack builder create` puts a builder's [lifecycle]), and the lifecycle image's last layer is
 * grafted onto the fixture run image, as pack does with `--lifecycle-image` for run-image
 * extension. Then the phases run as pack runs them, with the volumes pack uses, the build and
 * run extension side by side on the same /kaniko volume.
 */
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { copyLayoutImage } from '@cnb-extender/extender-core/testing';
import { buildImageFromDirectory, type Digest } from '@cnb-extender/oci';
import { buildLifecycleImage, composeLifecycle, PLATFORMS, REPO_ROOT } from '@cnb-extender/release';
import { sharedReleaseBuild, STAND_IN_PREFIX, writeStandInUpstream } from '@cnb-extender/release/testing';
import { publishImage, type FixtureImage } from '@cnb-extender/testenv';
import type {} from '@cnb-extender/testenv';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { docker, type Result } from './docker-cli.ts';
import { graftLayers, lastLayer } from './graft.ts';

const API = '0.13';
const CNB_USER = { uid: 1000, gid: 1000 };
const EXTENSION = 'acme/ext';

/** What each upstream phase does after recording its call (busybox sh in the builder image). */
const HOOKS: Record<string, string> = {
  analyzer: `printf '[run-image]\\n  reference = "%s"\\n  extend = true\\n' "$STANDIN_RUN_REF" > /layers/analyzed.toml`,
  detector: 'cp -r /standin/detect/. /layers/',
  restorer: `printf '\\n[build-image]\\n  reference = "%s"\\n' "$STANDIN_BUILD_REF" >> /layers/analyzed.toml\nmkdir -p /kaniko/cache\ncp -r /standin/restore/base /kaniko/cache/`,
  builder: `echo "build phase stand-in: uid=$(id -u) $(cat /build-ext)"\nmkdir -p /layers/config\nprintf '[[processes]]\\ntype = "web"\\ncommand = ["app"]\\n' > /layers/config/metadata.toml`,
  exporter: 'for d in /layers/extended/run/*; do echo "exporter stand-in: $(basename "$d") $(cat "$d/index.json")"; done',
};



const record = (text: string) => text.split('\n').filter((l) => l.startsWith(`${STAND_IN_PREFIX} `)).map((l) => l.slice(STAND_IN_PREFIX.length + 1));

let scratch: string;
let builder: FixtureImage;
let runWithLifecycle: FixtureImage;
let root: string;
const volumes = () => ['-v', `${root}/layers:/layers`, '-v', `${root}/workspace:/workspace`, '-v', `${root}/platform:/platform`, '-v', `${root}/kaniko:/kaniko`];

beforeAll(async () => {
  const env = inject('testenv');
  await mkdir(join(REPO_ROOT, 'out'), { recursive: true });
  scratch = await mkdtemp(join(REPO_ROOT, 'out', 'e2e-composed-'));
  const release = await sharedReleaseBuild();
  const upstream = await writeStandInUpstream(join(scratch, `lifecycle-v0.20.99+${PLATFORMS.amd64.suffix}.tgz`), { hooks: HOOKS });
  const composed = await composeLifecycle({ upstream, overlay: release.amd64.lifecycleTarball, outDir: join(scratch, 'composed') });

  // the builder: the composed tarball under /cnb, as pack builder create installs [lifecycle]
  const rootfs = join(scratch, 'builder-lifecycle');
  await mkdir(join(rootfs, 'cnb'), { recursive: true });
  const extracted = spawnSync('tar', ['-xzf', composed.path, '-C', join(rootfs, 'cnb')], { encoding: 'utf8' });
  expect(extracted.status, extracted.stderr).toBe(0);
  for (const dir of ['', 'cnb']) await chmod(join(rootfs, dir), 0o755);
  const tarballLayer = join(scratch, 'builder-lifecycle.oci');
  await buildImageFromDirectory({ rootfs, layoutDir: tarballLayer, refName: 'latest', createdBy: 'e2e: the composed lifecycle as a builder installs it', walk: { xattrs: false } });
  const target = { registryHost: env.registry.host, docker: env.docker, stateDir: env.stateDir };
  builder = await publishImage(await graftLayers(env.fixtures.build, [await lastLayer(tarballLayer)], { layoutDir: join(scratch, 'builder.oci'), refName: 'latest' }), 'e2e/composed-builder', target);

  // the run image with the lifecycle image's last layer grafted on, as pack does for run-image extension
  const image = await buildLifecycleImage({ tarballs: [composed.path], layoutDir: join(scratch, 'lifecycle.oci'), workDir: join(scratch, 'lifecycle-image-work') });
  const imageLayer = await lastLayer(image.layoutDir, { refName: image.refName, platform: PLATFORMS.amd64.oci });
  runWithLifecycle = await publishImage(await graftLayers(env.fixtures.run, [imageLayer], { layoutDir: join(scratch, 'run.oci'), refName: 'latest' }), 'e2e/composed-run', target);

  // the volumes pack uses, and what the detector and restorer stand-ins hand over
  root = join(scratch, 'build');
  for (const dir of ['layers', 'workspace', 'platform', 'kaniko']) await mkdir(join(root, dir), { recursive: true });
  const generated = join(root, 'standin', 'detect', 'generated', EXTENSION.replace('/', '_'));
  await mkdir(generated, { recursive: true });
  await writeFile(join(root, 'standin', 'detect', 'group.toml'), `[[group-extensions]]\n  id = "${EXTENSION}"\n  version = "1.0.0"\n  api = "0.10"\n`);
  await writeFile(join(root, 'standin', 'detect', 'plan.toml'), '');
  const dockerfile = (kind: string) => `ARG base_image\nFROM \${base_image}\nUSER root\nRUN echo ${kind}-extended > /${kind}-ext\nUSER ${CNB_USER.uid}:${CNB_USER.gid}\n`;
  await writeFile(join(generated, 'build.Dockerfile'), dockerfile('build'));
  await writeFile(join(generated, 'run.Dockerfile'), dockerfile('run'));
  for (const image of [builder, env.fixtures.run]) {
    await copyLayoutImage(image.layoutDir, image.manifestDigest as Digest, join(root, 'standin', 'restore', 'base', image.manifestDigest), 'full');
  }
  const chowned = spawnSync('chown', ['-R', `${CNB_USER.uid}:${CNB_USER.gid}`, join(root, 'layers'), join(root, 'workspace'), join(root, 'kaniko'), join(root, 'standin')]);
  expect(chowned.status).toBe(0);
}, 900_000);

afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe("pack's flow with the composed lifecycle", () => {
  const phases: Record<string, Result> = {};

  /** An upstream phase in the builder as the CNB user, as pack runs it. */
  async function phase(name: string, args: string[]): Promise<Result> {
    const env = inject('testenv');
    const result = await docker([
      'run', '--rm', '--network', 'none', '--user', `${CNB_USER.uid}:${CNB_USER.gid}`, ...volumes(), '-v', `${root}/standin:/standin`,
      '-e', `CNB_PLATFORM_API=${API}`, '-e', `STANDIN_RUN_REF=${env.fixtures.run.registryRef}`, '-e', `STANDIN_BUILD_REF=${builder.registryRef}`,
      builder.dockerRef, `/cnb/lifecycle/${name}`, ...args,
    ]);
    phases[name] = result;
    return result;
  }

  it('analyze, detect and restore reach the upstream lifecycle with their argv[0], arguments and environment', async () => {
    const calls: [string, string[]][] = [
      ['analyzer', ['-layers', '/layers', '-run-image', inject('testenv').fixtures.run.dockerRef, 'registry.example/app']],
      ['detector', ['-app', '/workspace', '-layers', '/layers']],
      ['restorer', ['-layers', '/layers', '-build-image', builder.registryRef]],
    ];
    for (const [name, args] of calls) {
      const result = await phase(name, args);
      expect(result.code, `${name}: ${result.stdout}${result.stderr}`).toBe(0);
      const lines = record(result.stdout);
      expect(lines.slice(0, args.length + 1)).toEqual([`argv0=/cnb/lifecycle/${name}`, ...args.map((a) => `arg=${a}`)]);
      expect(lines).toContain(`env CNB_PLATFORM_API=${API}`);
    }
    expect(await readFile(join(root, 'layers', 'analyzed.toml'), 'utf8')).toContain(`reference = "${builder.registryRef}"`);
    expect(await readdir(join(root, 'kaniko', 'cache', 'base'))).toHaveLength(2);
  });

  it('extends the build image (in the builder) and the run image (the lifecycle layer on the run image) side by side with this project’s extender', async () => {
    const extender = (image: FixtureImage, kind: 'build' | 'run') =>
      docker([
        'run', '--rm', '--network', 'none', '--user', '0:0', ...volumes(),
        '-e', `CNB_PLATFORM_API=${API}`,
        ...(kind === 'run' ? ['-e', `CNB_USER_ID=${CNB_USER.uid}`, '-e', `CNB_GROUP_ID=${CNB_USER.gid}`] : []),
        image.dockerRef, '/cnb/lifecycle/extender', '-app', '/workspace', ...(kind === 'run' ? ['-kind', 'run'] : []),
      ]);
    const [build, run] = await Promise.all([extender(builder, 'build'), extender(runWithLifecycle, 'run')]);
    for (const [kind, result] of [['build', build], ['run', run]] as const) {
      expect(result.code, `${kind}: ${result.stdout}${result.stderr}`).toBe(0);
      expect(result.stderr).not.toContain('ERROR');
      // this project's extender, not kaniko
      expect(result.stderr).toContain('Warning: the /cnb/lifecycle/extender entry point');
    }
    // the build phase the extender hands over to is upstream's, on the extended image, as the CNB user
    expect(build.stdout).toContain(`build phase stand-in: uid=${CNB_USER.uid} build-extended\n`);
    const builderCall = record(build.stdout);
    expect(builderCall[0]).toBe('argv0=/cnb/lifecycle/builder');
    expect(builderCall).toContain(`env CNB_PLATFORM_API=${API}`);
    expect(await readFile(join(root, 'layers', 'config', 'metadata.toml'), 'utf8')).toContain('type = "web"');
    expect(record(run.stdout)).toEqual([]);
    expect(await readdir(join(root, 'layers', 'extended', 'run'))).toHaveLength(1);
  });

  it('export reads <extended>/run through the upstream lifecycle', async () => {
    const result = await phase('exporter', ['-app', '/workspace', '-layers', '/layers', 'registry.example/app']);
    expect(result.code, result.stdout + result.stderr).toBe(0);
    expect(record(result.stdout)[0]).toBe('argv0=/cnb/lifecycle/exporter');
    const [digest] = await readdir(join(root, 'layers', 'extended', 'run'));
    expect(result.stdout).toContain(`exporter stand-in: ${digest} {"manifests":[{"digest":"${digest}"`);
  });
});
