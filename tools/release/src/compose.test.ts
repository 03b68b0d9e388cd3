/**
 * `npm run lifecycle:compose`: an upstream lifecycle (a stand-in with upstream's layout and
 * metadata, see testing/upstream-stand-in.ts) and this checkout's lifecycle overlay (a real
 * linux/amd64 release build) composed by the CLI, run in a chroot that holds only busybox,
 * composed twice for the same bytes; and each refusal, with nothing written.
 */
import { spawnSync } from 'node:child_process';
import { copyFile, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'smol-toml';
import { ensurePackages } from '@cnb-extender/testenv';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type {} from '@cnb-extender/testenv';
import { OciLayout } from '@cnb-extender/oci';
import { REPO_ROOT } from './bundle.ts';
import { buildRelease } from './package.ts';
import { sharedReleaseBuild } from './testing/shared-build.ts';
import { STAND_IN_PREFIX, writeStandInUpstream, type StandInOptions } from './testing/upstream-stand-in.ts';

const CLI = join(REPO_ROOT, 'tools', 'release', 'src', 'compose-cli.ts');
const VERSION = (JSON.parse(await readFile(join(REPO_ROOT, 'apps', 'lifecycle', 'package.json'), 'utf8')) as { version: string }).version;
const UPSTREAM_VERSION = '0.20.99';
const COMPOSED = `lifecycle-v${UPSTREAM_VERSION}+extender.${VERSION}+linux.x86-64.tgz`;

function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(cmd, args, { env: { PATH: process.env['PATH'] ?? '', ...env }, encoding: 'utf8', cwd: REPO_ROOT });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

let scratch: string;
let overlay: string;
let overlayArm64: string;
let counter = 0;

beforeAll(async () => {
  await ensurePackages({ packages: ['patchelf', 'busybox-static'] });
  await mkdir(join(REPO_ROOT, 'out'), { recursive: true });
  scratch = await mkdtemp(join(REPO_ROOT, 'out', 'compose-test-'));
  // linux/amd64: the build the test files share; linux/arm64 from the downloads an earlier build cached (tools/release's inputs)
  overlay = (await sharedReleaseBuild()).amd64.lifecycleTarball;
  overlayArm64 = (await buildRelease({ outDir: join(scratch, 'release'), platforms: ['arm64'], image: false })).platforms.arm64!.lifecycleTarball;
}, 600_000);

afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** A fresh directory holding a stand-in upstream tarball named `name`. */
async function upstream(options: StandInOptions = {}, name = `lifecycle-v${options.version ?? UPSTREAM_VERSION}+linux.x86-64.tgz`): Promise<string> {
  const dir = join(scratch, `case-${++counter}`);
  await mkdir(dir);
  return writeStandInUpstream(join(dir, name), options);
}

function compose(upstreamPath: string, out: string, extra: string[] = []) {
  return run(process.execPath, [CLI, '--upstream', upstreamPath, '--overlay', overlay, '--out', out, ...extra]);
}

describe('a composed lifecycle', () => {
  let out: string;
  let root: string;
  let stdout: string;

  beforeAll(async () => {
    out = join(scratch, 'composed');
    const result = compose(await upstream(), out);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    stdout = result.stdout;
    // a root filesystem with only busybox and the composed lifecycle in /cnb
    root = join(scratch, 'root');
    await mkdir(join(root, 'cnb'), { recursive: true });
    await mkdir(join(root, 'bin'));
    await copyFile('/bin/busybox', join(root, 'bin', 'busybox'));
    for (const tool of ['sh', 'env', 'sort', 'sed', 'basename', 'echo']) await run('ln', ['-s', 'busybox', join(root, 'bin', tool)]);
    expect(run('tar', ['-xzf', join(out, COMPOSED), '-C', join(root, 'cnb')])).toMatchObject({ code: 0, stderr: '' });
  });

  const inRoot = (args: string[], env: Record<string, string> = {}) =>
    run('chroot', [root, '/bin/busybox', 'env', '-i', 'PATH=/bin', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...args]);
  const record = (text: string) => text.split('\n').filter((l) => l.startsWith(`${STAND_IN_PREFIX} `)).map((l) => l.slice(STAND_IN_PREFIX.length + 1));

  it('is named after both versions and the platform, with a checksum file', async () => {
    expect(stdout.split('\n')[0]).toBe(join(out, COMPOSED));
    expect(stdout).toContain(`lifecycle ${UPSTREAM_VERSION}+extender.${VERSION}: upstream ${UPSTREAM_VERSION} with extender ${VERSION} for linux/amd64`);
    expect((await readdir(out)).sort()).toEqual([COMPOSED, `${COMPOSED}.sha256`]);
    expect(spawnSync('sha256sum', ['-c', `${COMPOSED}.sha256`], { cwd: out, encoding: 'utf8' }).stdout).toBe(`${COMPOSED}: OK\n`);
  });

  it("declares only the APIs both support, and a version naming both", async () => {
    const descriptor = parse(await readFile(join(root, 'cnb', 'lifecycle.toml'), 'utf8'));
    expect(descriptor).toEqual({
      apis: {
        // upstream 0.7–0.14, the extender 0.10–0.15
        platform: { deprecated: [], supported: ['0.10', '0.11', '0.12', '0.13', '0.14'] },
        // upstream 0.7–0.11, the extender 0.7–0.12
        buildpack: { deprecated: [], supported: ['0.7', '0.8', '0.9', '0.10', '0.11'] },
      },
      api: { platform: '0.10', buildpack: '0.7' },
      lifecycle: { version: `${UPSTREAM_VERSION}+extender.${VERSION}` },
    });
  });

  it("has the Distribution spec's layout: every phase upstream's, the extender this project's", async () => {
    const dir = join(root, 'cnb', 'lifecycle');
    for (const phase of ['analyzer', 'builder', 'creator', 'detector', 'exporter', 'rebaser', 'restorer']) expect(await readlink(join(dir, phase))).toBe('upstream/lifecycle');
    expect(await readlink(join(dir, 'extender'))).toBe('lifecycle');
    expect((await lstat(join(dir, 'upstream', 'lifecycle'))).isFile()).toBe(true);
    expect((await lstat(join(dir, 'launcher'))).isFile()).toBe(true);
    // the overlay's executable, with its own loader and libraries
    expect((await lstat(join(dir, 'lib', 'ld-linux-x86-64.so.2'))).isFile()).toBe(true);
    const ours = join(scratch, 'overlay-extracted');
    await mkdir(ours);
    run('tar', ['-xzf', overlay, '-C', ours]);
    expect((await readFile(join(dir, 'lifecycle'))).equals(await readFile(join(ours, 'lifecycle', 'lifecycle')))).toBe(true);
  });

  it('hands every phase but extend to upstream with its argv[0], arguments and environment', () => {
    for (const phase of ['analyzer', 'builder', 'creator', 'detector', 'exporter', 'rebaser', 'restorer']) {
      const result = inRoot([`/cnb/lifecycle/${phase}`, '-log-level', 'debug', 'an arg'], { CNB_PLATFORM_API: '0.13', CNB_LAYERS_DIR: '/layers' });
      expect(result.code, `${phase}: ${result.stderr}`).toBe(0);
      const lines = record(result.stdout);
      expect(lines.slice(0, 4)).toEqual([`argv0=/cnb/lifecycle/${phase}`, 'arg=-log-level', 'arg=debug', 'arg=an arg']);
      expect(lines).toContain('env CNB_PLATFORM_API=0.13');
      expect(lines).toContain('env CNB_LAYERS_DIR=/layers');
    }
    // lifecycle <verb> goes through this project's executable to upstream's, arguments kept
    const verb = inRoot(['/cnb/lifecycle/lifecycle', 'detect', '-app', '/workspace'], { CNB_PLATFORM_API: '0.13' });
    expect(verb.code, verb.stderr).toBe(0);
    expect(record(verb.stdout).slice(0, 4)).toEqual(['argv0=/cnb/lifecycle/upstream/lifecycle', 'arg=detect', 'arg=-app', 'arg=/workspace']);
    expect(record(verb.stdout)).toContain('env CNB_PLATFORM_API=0.13');
    expect(inRoot(['/cnb/lifecycle/launcher', 'web']).stdout).toBe(`${STAND_IN_PREFIX} launcher web\n`);
  });

  it("runs this project's extender as /cnb/lifecycle/extender and lifecycle extend", () => {
    expect(inRoot(['/cnb/lifecycle/lifecycle', '-version'])).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
    for (const args of [['/cnb/lifecycle/extender'], ['/cnb/lifecycle/lifecycle', 'extend']]) {
      const result = inRoot(args, { CNB_DEPRECATION_MODE: 'quiet' });
      expect(result.code, result.stderr).toBe(11);
      expect(result.stderr).toContain("failed to get platform API version; please set 'CNB_PLATFORM_API'");
      expect(record(result.stdout)).toEqual([]);
    }
  });

  it('is the same bytes when composed again', async () => {
    const again = join(scratch, 'composed-again');
    expect(compose(await upstream(), again).code).toBe(0);
    expect((await readFile(join(again, COMPOSED))).equals(await readFile(join(out, COMPOSED)))).toBe(true);
    expect(await readFile(join(again, `${COMPOSED}.sha256`), 'utf8')).toBe(await readFile(join(out, `${COMPOSED}.sha256`), 'utf8'));
  });
});

describe('refusals (exit 1, nothing written)', () => {
  async function refused(upstreamPath: string, message: string | RegExp) {
    const out = join(scratch, `refused-${++counter}`);
    const result = compose(upstreamPath, out);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(typeof message === 'string' ? new RegExp(`^refused: ${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`) : message);
    await expect(readdir(out)).rejects.toThrow(/ENOENT/);
  }

  it('refuses a tarball that is not an upstream lifecycle', async () => {
    await refused(await upstream({ omit: ['analyzer', 'launcher'] }), /it lacks lifecycle\/launcher, lifecycle\/analyzer\n$/);
    // this project's overlay is no upstream lifecycle
    await refused(overlay, /is not an upstream lifecycle release: it lacks lifecycle\/launcher, lifecycle\/analyzer, lifecycle\/builder/);
    const notTar = join(scratch, 'lifecycle-v0.20.99+linux.x86-64.tgz');
    await writeFile(notTar, 'not a tarball at all, just text that is long enough to fill a tar header block or two '.repeat(20));
    await refused(notTar, /is not a lifecycle tarball: /);
  });

  it("refuses a version it cannot read", async () => {
    await refused(await upstream({ version: 'latest' }, 'lifecycle-vlatest+linux.x86-64.tgz'), /its lifecycle\.toml's \[lifecycle\] version "latest" is not a semantic version/);
    await refused(await upstream({ descriptorText: '[apis.platform]\nsupported = ["0.13"]\n[apis.buildpack]\nsupported = ["0.10"]\n' }), /its lifecycle\.toml has no \[lifecycle\] version/);
    await refused(await upstream({ version: '0.21.0' }, 'lifecycle-v0.20.0+linux.x86-64.tgz'), /is named for version 0\.20\.0 but its lifecycle\.toml says 0\.21\.0/);
  });

  it('refuses an architecture other than the overlay’s, by name or by executable', async () => {
    await refused(await upstream({}, `lifecycle-v${UPSTREAM_VERSION}+linux.arm64.tgz`), /is for linux\.arm64 but the lifecycle overlay .* is for linux\.x86-64; use the overlay of the same platform/);
    // an x86-64 executable in a tarball named for arm64
    await refused(await upstream({ executable: await readFile('/bin/busybox') }, `lifecycle-v${UPSTREAM_VERSION}+linux.arm64.tgz`), /is named for linux\.arm64 but its lifecycle\/lifecycle is a linux\/amd64 executable/);
    await refused(await upstream({}, `lifecycle-v${UPSTREAM_VERSION}+linux.ppc64le.tgz`), /is for linux\.ppc64le; lifecycles can be composed for linux\.x86-64 and linux\.arm64/);
  });

  it('refuses APIs with no overlap', async () => {
    await refused(await upstream({ platformApis: ['0.3', '0.4', '0.9'] }), /no Platform API is supported by both: the upstream lifecycle supports 0\.3, 0\.4, 0\.9, the extender 0\.10, 0\.11/);
    await refused(await upstream({ buildpackApis: ['0.2', '0.6'] }), /no Buildpack API is supported by both: the upstream lifecycle supports 0\.2, 0\.6/);
  });
});

describe('the composed lifecycle image', () => {
  let out: string;
  let first: { code: number | null; stdout: string; stderr: string };
  const VERSION_TAG = `${UPSTREAM_VERSION}_extender.${VERSION}`;
  const layoutOf = (dir: string) => join(dir, `lifecycle-v${UPSTREAM_VERSION}+extender.${VERSION}.oci`);
  const composeImage = async (dir: string) =>
    run(process.execPath, [
      CLI,
      '--upstream', await upstream(),
      '--upstream', await upstream({}, `lifecycle-v${UPSTREAM_VERSION}+linux.arm64.tgz`),
      '--overlay', overlay,
      '--overlay', overlayArm64,
      '--image',
      '--out', dir,
    ]);

  beforeAll(async () => {
    out = join(scratch, 'image');
    first = await composeImage(out);
  });

  it('is one index of a linux/amd64 and a linux/arm64 image, each one layer with /cnb/lifecycle and the labels of upstream lifecycle images', async () => {
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`${layoutOf(out)} (sha256:`);
    const layout = await OciLayout.open(layoutOf(out));
    const platforms = [
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ];
    const apis = JSON.stringify({
      buildpack: { deprecated: [], supported: ['0.7', '0.8', '0.9', '0.10', '0.11'] },
      platform: { deprecated: [], supported: ['0.10', '0.11', '0.12', '0.13', '0.14'] },
    });
    for (const platform of platforms) {
      const image = await layout.image({ refName: VERSION_TAG, platform });
      expect(image.manifest.layers).toHaveLength(1);
      expect(image.config.config?.WorkingDir).toBe('/layers');
      expect(image.config.config?.Labels).toEqual({
        'io.buildpacks.lifecycle.apis': apis,
        'io.buildpacks.lifecycle.version': `${UPSTREAM_VERSION}+extender.${VERSION}`,
        'io.buildpacks.builder.metadata': JSON.stringify({ lifecycle: { version: `${UPSTREAM_VERSION}+extender.${VERSION}` }, api: { buildpack: '0.7', platform: '0.10' } }),
      });
      const listing = run('tar', ['-tvzf', layout.blobPath(image.manifest.layers[0]!.digest)]).stdout;
      expect(listing).toMatch(/cnb\/lifecycle\.toml\n/);
      expect(listing).toMatch(/cnb\/lifecycle\/extender -> lifecycle\n/);
      expect(listing).toMatch(/cnb\/lifecycle\/analyzer -> upstream\/lifecycle\n/);
      expect(listing).toMatch(/ 0\/0 .* cnb\/lifecycle\/upstream\/lifecycle\n/);
    }
    // the arm64 image holds the arm64 overlay
    const arm = await layout.image({ refName: VERSION_TAG, platform: platforms[1]! });
    const extracted = join(scratch, 'arm64-layer');
    await mkdir(extracted);
    expect(run('tar', ['-xzf', layout.blobPath(arm.manifest.layers[0]!.digest), '-C', extracted]).code).toBe(0);
    const { elfArch } = await import('./compose.ts');
    expect(elfArch(await readFile(join(extracted, 'cnb', 'lifecycle', 'lifecycle')))).toBe('arm64');
  });

  it('is the same index when built again', async () => {
    const again = join(scratch, 'image-again');
    const second = await composeImage(again);
    expect(second.code).toBe(0);
    const digest = (text: string) => /\((sha256:[0-9a-f]{64}),/.exec(text)?.[1];
    expect(digest(second.stdout)).toBeDefined();
    expect(digest(second.stdout)).toBe(digest(first.stdout));
  });

  it('pushed with both platforms and pulled into dockerd, runs the extender as /cnb/lifecycle/extender', () => {
    const env = inject('testenv');
    const ref = `${env.registry.host}/lifecycle:${VERSION_TAG}`;
    const copied = run('skopeo', ['copy', '--all', '--dest-tls-verify=false', `oci:${layoutOf(out)}:${VERSION_TAG}`, `docker://${ref}`]);
    expect(copied.stderr).toBe('');
    expect(copied.code).toBe(0);
    const raw = JSON.parse(run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]).stdout) as { manifests: { platform: { architecture: string } }[] };
    expect(raw.manifests.map((m) => m.platform.architecture)).toEqual(['amd64', 'arm64']);
    const docker = (args: string[]) => run(env.docker.cli, ['-H', env.docker.host, ...args]);
    expect(docker(['pull', ref]).code).toBe(0);
    expect(docker(['run', '--rm', '--entrypoint', '/cnb/lifecycle/lifecycle', ref, '-version'])).toMatchObject({ code: 0, stdout: `${VERSION}\n` });
    const extender = docker(['run', '--rm', '-e', 'CNB_DEPRECATION_MODE=quiet', '--entrypoint', '/cnb/lifecycle/extender', ref]);
    expect(extender.code).toBe(11);
    expect(extender.stderr).toContain("failed to get platform API version; please set 'CNB_PLATFORM_API'");
  });
});
