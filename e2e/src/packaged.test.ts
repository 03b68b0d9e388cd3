/**
 * The packaged artifacts, run the way pack runs the extend phase.
 *
 * What is tested is what operators install: the release build (`tools/release`'s
 * `buildRelease`) of this checkout, never the sources. Its pieces go into images as
 * platforms put them there:
 *
 * - the extender image's last (only) layer, `/cnb/extender/extender` with its own loader
 *   and C libraries: the standalone entry point;
 * - the lifecycle overlay tarball extracted into `/cnb`, over a stand-in for the upstream
 *   Go lifecycle at `/cnb/lifecycle/upstream/lifecycle` with the `builder` phase symlink:
 *   the `/cnb/lifecycle/extender` entry point, and the build phase the extender hands over
 *   to (`/cnb/lifecycle/builder` → overlay → upstream stand-in);
 *
 * both layers on the busybox-static fixture build image (the builder); and, as pack grafts
 * an image's last layer onto the run image, the extender image's layer alone (it holds the
 * lifecycle overlay as well) on the fixture run image (which has no libc).
 *
 * Then, for every Platform API 0.10–0.15 and both entry points, with the Go lifecycle's
 * extender acceptance fixtures (../shared/conformance/lifecycle/extender: `generated/`
 * below 0.13, `generated-with-contexts/` from 0.13; the apt-get lines replaced by a
 * busybox stand-in that prints and writes the same way):
 *
 * 1. restorer-equivalent preparation: `analyzed.toml` with the digest references of the
 *    builder and the run image, the base images as OCI layouts in `<kaniko>/cache/base/`
 *    (full layouts as lifecycle 0.21.1+ writes them for the standalone entry point, sparse
 *    ones as older restorers do for the symlink), `/kaniko` and `/layers` owned by the CNB
 *    user as the restorer leaves them;
 * 2. the build kind in a builder container as root with `/layers`, `/workspace`,
 *    `/platform` and `/kaniko` mounted and no `-kind` (pack never passes it), side by side
 *    with the run kind (`-kind run`, from 0.12) in a run-image container on the same
 *    volumes, as pack runs them;
 * 3. the same again, now served from the layer cache.
 *
 * Checked: exit codes; the build phase stand-in ran as the CNB user with the extended
 * image's environment in the extended root filesystem; the run kind wrote one
 * `<extended>/run/sha256:<digest>` layout, read back with the Go exporter's rules, checked
 * with skopeo and unpacked with umoci, with nothing of `/cnb` or `/workspace` in it; the
 * deprecation notice of `/cnb/lifecycle/extender` exactly once per run through the
 * symlink and never through the standalone executable; only `cache/` left in `/kaniko`.
 */
import { spawnSync } from 'node:child_process';
import { access, chmod, copyFile, cp, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyLayoutImage } from '@cnb-extender/extender-core/testing';
import { buildImageFromDirectory, sha256, type Digest, type ImageConfig, type ImageIndex, type ImageManifest } from '@cnb-extender/oci';
import { eventLineValidator } from '@cnb-extender/extender-cli/testing';
import { REPO_ROOT } from '@cnb-extender/release';
import { sharedReleaseBuild } from '@cnb-extender/release/testing';
import { publishImage, type FixtureImage } from '@cnb-extender/testenv';
import type {} from '@cnb-extender/testenv';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { docker, type Result } from './docker-cli.ts';
import { graftLayers, lastLayer } from './graft.ts';

const FIXTURES = join(REPO_ROOT, '..', 'shared', 'conformance', 'lifecycle', 'extender', 'container', 'layers');
const PLATFORM_APIS = ['0.10', '0.11', '0.12', '0.13', '0.14', '0.15'] as const;
type PlatformApi = (typeof PLATFORM_APIS)[number];
/** All of them are 0.x: compare the minor version. */
const atLeast = (api: PlatformApi, min: PlatformApi): boolean => Number(api.split('.')[1]) >= Number(min.split('.')[1]);

interface EntryPoint {
  name: string;
  path: string;
  /** How the restorer stand-in writes the base layouts for this entry point's runs. */
  baseLayouts: 'full' | 'sparse';
}
const ENTRY_POINTS: readonly EntryPoint[] = [
  { name: 'the standalone extender (/cnb/extender/extender from the image layer)', path: '/cnb/extender/extender', baseLayouts: 'full' },
  { name: 'the lifecycle overlay symlink (/cnb/lifecycle/extender)', path: '/cnb/lifecycle/extender', baseLayouts: 'sparse' },
];

const CNB_USER = { uid: 1000, gid: 1000 };
const ENTRY_NOTICE = 'Warning: the /cnb/lifecycle/extender entry point';
const KANIKO_NOTICE = 'Warning: the implicit extend directory /kaniko';

/** The busybox stand-in for `apt-get update && apt-get install -y <pkg>`: prints, then installs a file. */
const installStandIn = (pkg: string) => `RUN mkdir -p /usr/share/doc/${pkg} && echo "Setting up ${pkg} (stand-in for apt-get)" && echo ${pkg} > /usr/share/doc/${pkg}/installed`;

/**
 * The upstream lifecycle's stand-in: every phase the overlay hands over lands here, and
 * only the build phase (after an in-place build extension) is expected. It reports what a
 * buildpack would see and writes the build phase's output.
 */
const UPSTREAM_STAND_IN = `#!/bin/sh
set -e
echo "build phase stand-in: uid=$(id -u) gid=$(id -g) HOME=$HOME USER=$USER"
echo "CNB_STACK_ID for buildpack: $CNB_STACK_ID"
echo "inputs: app=$CNB_APP_DIR layers=$CNB_LAYERS_DIR platform=$CNB_PLATFORM_DIR buildpacks=$CNB_BUILDPACKS_DIR group=$CNB_GROUP_PATH plan=$CNB_PLAN_PATH"
for pkg in curl tree; do echo "installed $pkg: $(cat /usr/share/doc/$pkg/installed)"; done
for f in /build-file /shared-build /run-file /shared-run; do if [ -e "$f" ]; then echo "context file $f"; fi; done
mkdir -p "$CNB_LAYERS_DIR/config"
printf '[[processes]]\\ntype = "web"\\ncommand = ["stand-in"]\\n' > "$CNB_LAYERS_DIR/config/metadata.toml"
`;


function runSync(cmd: string, args: string[]): Result {
  const r = spawnSync(cmd, args, { env: { PATH: process.env['PATH'] ?? '' }, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}


const lines = (text: string, prefix: string) => text.split('\n').filter((l) => l.startsWith(prefix));
const readJson = async <T>(path: string): Promise<T> => JSON.parse(await readFile(path, 'utf8')) as T;
const blob = (layout: string, digest: string) => join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length));
const exists = (path: string) => stat(path).then(() => true, () => false);

let scratch: string;
/** Fixture build image + extender layer + lifecycle layer: the builder pack runs the build-kind extender in. */
let builder: FixtureImage;
/** Fixture run image + the same layers: the container pack runs the run-kind extender in. */
let runWithLifecycle: FixtureImage;

beforeAll(async () => {
  await access(join(FIXTURES, 'group.toml')).catch((cause: unknown) => {
    throw new Error(`conformance fixtures missing: expected ${FIXTURES} (peer data beside the repository)`, { cause });
  });
  const env = inject('testenv');
  await mkdir(join(REPO_ROOT, 'out'), { recursive: true });
  scratch = await mkdtemp(join(REPO_ROOT, 'out', 'e2e-packaged-'));
  // pack runs linux/amd64 images here: the other platforms' artifacts are tools/release's tests' business
  const release = await sharedReleaseBuild();
  const amd64 = release.amd64;

  // The lifecycle layer: the overlay tarball extracted into /cnb over an upstream lifecycle (a stand-in).
  const rootfs = join(scratch, 'lifecycle-rootfs');
  await mkdir(join(rootfs, 'cnb'), { recursive: true });
  const extracted = runSync('tar', ['-xzf', amd64.lifecycleTarball, '-C', join(rootfs, 'cnb')]);
  expect(extracted, 'extracting the lifecycle overlay').toMatchObject({ code: 0, stderr: '' });
  await mkdir(join(rootfs, 'cnb', 'lifecycle', 'upstream'));
  await writeFile(join(rootfs, 'cnb', 'lifecycle', 'upstream', 'lifecycle'), UPSTREAM_STAND_IN);
  await chmod(join(rootfs, 'cnb', 'lifecycle', 'upstream', 'lifecycle'), 0o755);
  await symlink('lifecycle', join(rootfs, 'cnb', 'lifecycle', 'builder'));
  for (const dir of ['', 'cnb', 'cnb/lifecycle', 'cnb/lifecycle/upstream']) await chmod(join(rootfs, dir), 0o755);
  const lifecycleImage = join(scratch, 'lifecycle.oci');
  await buildImageFromDirectory({ rootfs, layoutDir: lifecycleImage, refName: 'latest', createdBy: 'e2e: lifecycle overlay over an upstream lifecycle stand-in', walk: { xattrs: false } });

  const extenderLayer = await lastLayer(release.imageLayout, { refName: release.version, platform: amd64.platform.oci });
  const target = { registryHost: env.registry.host, docker: env.docker, stateDir: env.stateDir };
  const builderLayout = await graftLayers(env.fixtures.build, [extenderLayer, await lastLayer(lifecycleImage)], { layoutDir: join(scratch, 'builder.oci'), refName: 'latest' });
  builder = await publishImage(builderLayout, 'e2e/builder', target);
  // pack grafts only the last layer of the image it runs the extender from: the extender image's layer brings both entry points
  const runLayout = await graftLayers(env.fixtures.run, [extenderLayer], { layoutDir: join(scratch, 'run-with-lifecycle.oci'), refName: 'latest' });
  runWithLifecycle = await publishImage(runLayout, 'e2e/run-with-lifecycle', target);
}, 600_000);

afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** The fixtures of one Dockerfile layout, apt-get replaced by the busybox stand-in. */
async function copyAdaptedFixtures(layout: 'generated' | 'generated-with-contexts', dest: string): Promise<void> {
  await cp(join(FIXTURES, layout), dest, { recursive: true });
  for (const rel of await readdir(dest, { recursive: true })) {
    if (!/(^|\/)(Dockerfile|(build|run)\.Dockerfile)$/.test(rel)) continue;
    const text = await readFile(join(dest, rel), 'utf8');
    const adapted = text.replace(/^RUN apt-get update && apt-get install -y (\S+)$/m, (_, pkg: string) => installStandIn(pkg));
    if (adapted === text) throw new Error(`adapting ${join(FIXTURES, layout, rel)}: no "RUN apt-get update && apt-get install -y <pkg>" line (did the fixtures change?)`);
    await writeFile(join(dest, rel), adapted);
  }
}

interface Volumes {
  root: string;
  layers: string;
  workspace: string;
  platform: string;
  kaniko: string;
}

/** What the analyzer and restorer leave for the extender. */
async function restorerHandOff(api: PlatformApi, entry: EntryPoint): Promise<Volumes> {
  const env = inject('testenv');
  const root = await mkdtemp(join(scratch, `api-${api}-`));
  const v: Volumes = { root, layers: join(root, 'layers'), workspace: join(root, 'workspace'), platform: join(root, 'platform'), kaniko: join(root, 'kaniko') };
  for (const dir of [v.layers, v.workspace, v.platform, v.kaniko]) await mkdir(dir);
  await copyAdaptedFixtures(atLeast(api, '0.13') ? 'generated-with-contexts' : 'generated', join(v.layers, 'generated'));
  for (const file of ['group.toml', 'plan.toml']) await copyFile(join(FIXTURES, file), join(v.layers, file));
  const run = env.fixtures.run;
  await writeFile(
    join(v.layers, 'analyzed.toml'),
    `[build-image]\n  reference = "${builder.registryRef}"\n\n[run-image]\n  reference = "${run.registryRef}"\n  image = "${run.dockerRef}"\n  extend = true\n`,
  );
  for (const image of [builder, run]) {
    await copyLayoutImage(image.layoutDir, image.manifestDigest as Digest, join(v.kaniko, 'cache', 'base', image.manifestDigest), entry.baseLayouts);
  }
  // The restorer chowns /kaniko to the CNB user; the layers and app volumes belong to it from the earlier phases.
  for (const dir of [v.layers, v.workspace, v.kaniko]) expect(runSync('chown', ['-R', `${CNB_USER.uid}:${CNB_USER.gid}`, dir]).code).toBe(0);
  return v;
}

/** One extender container as pack starts it: as root, the four volumes, the Platform API, `-app`. */
function extenderContainer(kind: 'build' | 'run', api: PlatformApi, entry: EntryPoint, v: Volumes): Promise<Result> {
  const image = kind === 'build' ? builder.dockerRef : runWithLifecycle.dockerRef;
  return docker([
    'run', '--rm', '--network', 'none', '--user', '0:0',
    '-v', `${v.layers}:/layers`, '-v', `${v.workspace}:/workspace`, '-v', `${v.platform}:/platform`, '-v', `${v.kaniko}:/kaniko`,
    '-e', `CNB_PLATFORM_API=${api}`,
    // the builder image's Env has CNB_USER_ID/CNB_GROUP_ID; pack sets them for the run image
    ...(kind === 'run' ? ['-e', `CNB_USER_ID=${CNB_USER.uid}`, '-e', `CNB_GROUP_ID=${CNB_USER.gid}`] : []),
    image,
    entry.path, '-app', '/workspace', ...(kind === 'run' ? ['-kind', 'run'] : []), '-log-level', 'debug',
  ]);
}

/** Expectations shared by both kinds: exit 0, the notices, the stand-in apt-get only when not cached. */
function expectExtenderRun(result: Result, kind: 'build' | 'run', entry: EntryPoint, cached: boolean): void {
  const output = `${kind} kind through ${entry.path}:\n${result.stdout}${result.stderr}`;
  expect(result.code, output).toBe(0);
  expect(result.stderr, output).not.toContain('ERROR');
  if (entry.path === '/cnb/lifecycle/extender') expect(lines(result.stderr, ENTRY_NOTICE), output).toHaveLength(1);
  else expect(result.stderr, output).not.toContain('/cnb/lifecycle/extender');
  expect(lines(result.stderr, KANIKO_NOTICE), output).toHaveLength(1);
  for (const pkg of ['curl', 'tree']) {
    // what the stand-in apt-get prints, as a line of RUN output (the instruction itself is logged too)
    expect(lines(result.stdout, `Setting up ${pkg} `), output).toEqual(cached ? [] : [`Setting up ${pkg} (stand-in for apt-get)`]);
    if (cached) expect(result.stdout, output).toContain(`${pkg}: using cached layer for ${installStandIn(pkg)}`);
  }
}

/** The build kind: the build phase (the upstream stand-in) ran after the extension, as the CNB user, on the extended root filesystem. */
async function expectBuild(result: Result, api: PlatformApi, entry: EntryPoint, v: Volumes, cached: boolean): Promise<void> {
  expectExtenderRun(result, 'build', entry, cached);
  const output = `build kind through ${entry.path}:\n${result.stdout}${result.stderr}`;
  expect(result.stdout, output).toContain(`Using build image ${builder.registryRef} from the extend directory (${entry.baseLayouts} layout)`);
  expect(result.stdout, output).toContain(`Running the build phase (/cnb/lifecycle/builder) as ${CNB_USER.uid}:${CNB_USER.gid}\n`);
  expect(result.stdout, output).toContain(`build phase stand-in: uid=${CNB_USER.uid} gid=${CNB_USER.gid} HOME=/home/cnb USER=cnb\n`);
  // the extended image's Env reaches the build (the tree extension sets CNB_STACK_ID)
  expect(result.stdout, output).toContain('CNB_STACK_ID for buildpack: stack-id-from-ext-tree\n');
  expect(result.stdout, output).toContain('inputs: app=/workspace layers=/layers platform=/platform buildpacks=/cnb/buildpacks group=/layers/group.toml plan=/layers/plan.toml\n');
  expect(result.stdout, output).toContain('installed curl: curl\ninstalled tree: tree\n');
  // COPY from the build contexts (≥ 0.13); run-kind files never reach the builder
  expect(lines(result.stdout, 'context file '), output).toEqual(atLeast(api, '0.13') ? ['context file /build-file', 'context file /shared-build'] : []);
  const metadata = join(v.layers, 'config', 'metadata.toml');
  expect((await stat(metadata)).uid).toBe(CNB_USER.uid);
}

/** `created_by` of the layers the run kind adds (as in the Go lifecycle's acceptance test), with their extension. */
function expectedRunLayers(api: PlatformApi): { createdBy: string; extension: string }[] {
  const layer = (instruction: string, extension: string) => ({ createdBy: `Layer: '${instruction}', Created by extension: ${extension}`, extension });
  return atLeast(api, '0.13')
    ? [layer(installStandIn('curl'), 'curl'), layer('COPY run-file /', 'curl'), layer(installStandIn('tree'), 'tree'), layer('COPY shared-file /shared-run', 'tree')]
    : [layer(installStandIn('curl'), 'curl'), layer(installStandIn('tree'), 'tree')];
}

/**
 * The run kind: no build phase, one `<extended>/run/sha256:<hex>` layout, read the way the
 * Go exporter reads it, accepted by skopeo, unpacked by umoci. Returns its manifest digest.
 */
async function expectRun(result: Result, api: PlatformApi, entry: EntryPoint, v: Volumes, pass: string): Promise<string> {
  expectExtenderRun(result, 'run', entry, pass !== 'first');
  const output = `run kind through ${entry.path}:\n${result.stdout}${result.stderr}`;
  const run = inject('testenv').fixtures.run;
  expect(result.stdout, output).toContain(`Using run image ${run.registryRef} from the extend directory (${entry.baseLayouts} layout)`);
  expect(result.stdout, output).not.toContain('build phase stand-in');

  // The exporter: exactly one entry, one manifest, the run image's layers unchanged and
  // absent, then every layer whose blob is there, its extension taken from the history.
  const entries = await readdir(join(v.layers, 'extended', 'run'));
  expect(entries).toHaveLength(1);
  const digest = entries[0]!;
  expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
  const layout = join(v.layers, 'extended', 'run', digest);
  const index = await readJson<ImageIndex>(join(layout, 'index.json'));
  expect(index.manifests.map((m) => m.digest)).toEqual([digest]);
  const manifestBytes = await readFile(blob(layout, digest));
  expect(sha256(manifestBytes)).toBe(digest);
  const manifest = JSON.parse(manifestBytes.toString()) as ImageManifest;
  const config = await readJson<ImageConfig>(blob(layout, manifest.config.digest));
  const base = await readJson<ImageManifest>(blob(run.layoutDir, run.manifestDigest));
  const n = base.layers.length;
  expect(manifest.layers.slice(0, n)).toEqual(base.layers);
  const appended: string[] = [];
  for (const [i, layer] of manifest.layers.entries()) {
    const present = await exists(blob(layout, layer.digest));
    expect(present, `blob of layer ${i} (${layer.digest})`).toBe(i >= n);
    if (present) appended.push(/Created by extension: (.+)$/.exec(config.history?.[i]?.created_by ?? '')?.[1] ?? '');
  }
  const expected = expectedRunLayers(api);
  expect(appended).toEqual(expected.map((l) => l.extension));
  expect(config.history?.slice(n).map((h) => h.created_by)).toEqual(expected.map((l) => l.createdBy));
  expect(config.history).toHaveLength(manifest.layers.length);
  expect(config.rootfs.diff_ids).toHaveLength(manifest.layers.length);
  expect(config.created).toBe('0001-01-01T00:00:00Z');
  expect(config.config?.Labels?.['io.buildpacks.rebasable']).toBe('false'); // only tree sets it
  expect(config.config?.User).toBe(String(CNB_USER.uid));
  expect(config.config?.Env).toContain('CNB_STACK_ID=stack-id-from-ext-tree');

  // skopeo reads the `:` of the directory name as a tag separator: inspect it through a symlink
  const link = join(v.root, `extended-run-${pass}`);
  await symlink(layout, link);
  const inspected = runSync('skopeo', ['inspect', '--config', `oci:${link}`]);
  expect(inspected.code, inspected.stderr).toBe(0);
  expect(JSON.parse(inspected.stdout)).toEqual(config);

  // umoci unpacks it once the run image's layers are beside the new ones (a scratch copy, named for umoci)
  const image = join(v.root, `umoci-image-${pass}`);
  await cp(layout, image, { recursive: true });
  for (const layer of base.layers) await copyFile(blob(run.layoutDir, layer.digest), blob(image, layer.digest));
  await writeFile(join(image, 'index.json'), JSON.stringify({ ...index, manifests: [{ ...index.manifests[0], annotations: { 'org.opencontainers.image.ref.name': 'extended' } }] }));
  const bundle = join(v.root, `umoci-bundle-${pass}`);
  const unpacked = runSync('umoci', ['unpack', '--image', `${image}:extended`, bundle]);
  expect(unpacked.code, unpacked.stderr).toBe(0);
  const rootfs = join(bundle, 'rootfs');
  for (const pkg of ['curl', 'tree']) expect(await readFile(join(rootfs, 'usr', 'share', 'doc', pkg, 'installed'), 'utf8')).toBe(`${pkg}\n`);
  for (const file of ['run-file', 'shared-run']) expect(await exists(join(rootfs, file)), file).toBe(atLeast(api, '0.13'));
  // the RUN wrote through to the app volume, and nothing of it, nor of /cnb, is in the image
  expect(await readFile(join(v.workspace, 'some-file'), 'utf8')).toBe('some-content\n');
  expect(await exists(join(rootfs, 'workspace', 'some-file'))).toBe(false);
  expect(await exists(join(rootfs, 'cnb'))).toBe(false);
  const runtime = await readJson<{ process: { env: string[]; user: { uid: number } } }>(join(bundle, 'config.json'));
  expect(runtime.process.user.uid).toBe(CNB_USER.uid);
  expect(runtime.process.env).toContain('CNB_STACK_ID=stack-id-from-ext-tree');
  return digest;
}

describe('packaged extender and lifecycle overlay in containers, as pack runs them', () => {
  for (const api of PLATFORM_APIS) {
    describe(`Platform API ${api}`, () => {
      const withRun = atLeast(api, '0.12');
      const what = withRun
        ? 'build kind in the builder and run kind in the run image side by side'
        : 'build kind in the builder (no run-image extension before 0.12)';
      for (const entry of ENTRY_POINTS) {
        it(`${entry.name}: ${what}, then again from the layer cache`, async () => {
          const v = await restorerHandOff(api, entry);
          const digests: string[] = [];
          for (const pass of ['first', 'cached'] as const) {
            const [build, run] = await Promise.all([extenderContainer('build', api, entry, v), withRun ? extenderContainer('run', api, entry, v) : undefined]);
            await expectBuild(build, api, entry, v, pass === 'cached');
            if (run) digests.push(await expectRun(run, api, entry, v, pass));
            // work directories gone, the layer cache kept
            expect(await readdir(v.kaniko)).toEqual(['cache']);
          }
          if (withRun) expect(digests[1], 'the cached run gives the same extended run image').toBe(digests[0]);
        });
      }
    });
  }
});

describe('packaged extender: backend settings and the RUN network', () => {
  it('refuses a setting of another backend and an unknown network with exit 3, before anything runs', async () => {
    const extender = (args: string[], vars: string[] = []) =>
      docker(['run', '--rm', '--network', 'none', '--user', '0:0', '-e', 'CNB_PLATFORM_API=0.13', ...vars, builder.dockerRef, '/cnb/extender/extender', '-extend-dir', '/kaniko', ...args]);
    const setting = await extender(['-backend-opt', 'no-cache=true']);
    expect(setting.code, setting.stderr).toBe(3);
    expect(setting.stderr).toBe('ERROR: failed to select backend: -backend-opt no-cache=true: no-cache is a setting of the buildkit backend, not of inplace (its settings: allow-remote, cache)\n');
    expect(setting.stdout).toBe('');
    const network = await extender([], ['-e', 'CNB_EXTEND_NETWORK=bridge']);
    expect(network.code, network.stderr).toBe(3);
    expect(network.stderr).toBe('ERROR: failed to resolve inputs: invalid value "bridge" for CNB_EXTEND_NETWORK: expected one of default, none, host\n');
  });
});

describe('packaged extender on a terminal, and its JSON events', () => {
  /** A RUN longer than the widest terminal here, in the curl extension's run.Dockerfile. */
  const LONG_RUN = `RUN mkdir -p /opt/long-run/${'sub-directory-'.repeat(6)}end && echo "${'a long line of a RUN instruction that no terminal row holds, '.repeat(3).trim()}" > /opt/long-run/note`;
  const STATUS = /^\s*… (curl|tree) \[\d+\]/;

  /** The fixtures for a run-kind extension, with LONG_RUN after curl's COPY. */
  async function longRunVolumes(): Promise<Volumes> {
    const v = await restorerHandOff('0.13', ENTRY_POINTS[0]!);
    const dockerfile = join(v.layers, 'generated', 'curl', 'run.Dockerfile');
    const text = await readFile(dockerfile, 'utf8');
    expect(text).toContain('COPY run-file /\n');
    await writeFile(dockerfile, text.replace('COPY run-file /\n', `COPY run-file /\n${LONG_RUN}\n`));
    return v;
  }

  /** `docker run` of the run-kind extender as pack starts it, with these docker and extender arguments. */
  function runKindArgs(v: Volumes, dockerArgs: string[], command: string[]): string[] {
    return [
      'run', '--rm', '--network', 'none', '--user', '0:0', ...dockerArgs,
      '-v', `${v.layers}:/layers`, '-v', `${v.workspace}:/workspace`, '-v', `${v.platform}:/platform`, '-v', `${v.kaniko}:/kaniko`,
      '-e', 'CNB_PLATFORM_API=0.13', '-e', `CNB_USER_ID=${CNB_USER.uid}`, '-e', `CNB_GROUP_ID=${CNB_USER.gid}`,
      runWithLifecycle.dockerRef, ...command,
    ];
  }

  /**
   * Runs `argv` in a tmux window of `columns` × 50 (a real pseudo-terminal and a real
   * terminal's screen) and returns its exit code and the final screen: `rows` as tmux shows
   * them (a long line takes several), `lines` with wrapped rows joined.
   */
  async function inTmux(columns: number, argv: string[]): Promise<{ code: number; rows: string[]; lines: string[] }> {
    const dir = await mkdtemp(join(scratch, `tmux-${columns}-`));
    const quote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;
    await writeFile(join(dir, 'run.sh'), `${argv.map(quote).join(' ')}\necho $? > ${quote(join(dir, 'exit'))}\nexec sleep 600\n`);
    // a server of its own, its socket in a short directory removed afterwards
    const socketDir = await mkdtemp(join(tmpdir(), 'e2e-tmux-'));
    const tmux = (args: string[]) => runSync('tmux', ['-S', join(socketDir, 'socket'), '-f', '/dev/null', ...args]);
    const started = tmux(['new-session', '-d', '-s', 'extender', '-x', String(columns), '-y', '50', 'sh', join(dir, 'run.sh')]);
    expect(started, 'starting tmux (Debian package tmux)').toMatchObject({ code: 0 });
    try {
      let code: string | undefined;
      for (let i = 0; i < 1800 && code === undefined; i++) {
        code = await readFile(join(dir, 'exit'), 'utf8').catch(() => undefined);
        if (code === undefined) await new Promise((r) => setTimeout(r, 100));
      }
      expect(code, 'the extender in tmux did not finish in 3 minutes').toBeDefined();
      const capture = (join: boolean) => {
        const shown = tmux(['capture-pane', '-p', '-t', 'extender', '-S', '-', '-E', '-', ...(join ? ['-J'] : [])]);
        expect(shown.code, shown.stderr).toBe(0);
        return shown.stdout.replace(/\n+$/, '').split('\n').map((row) => row.trimEnd());
      };
      return { code: Number(code!.trim()), rows: capture(false), lines: capture(true) };
    } finally {
      tmux(['kill-server']);
      await rm(socketDir, { recursive: true, force: true });
    }
  }

  it.each([40, 160])('in %i columns, the in-place extender\'s screen ends with every instruction finished once and no status line left', async (columns) => {
    const v = await longRunVolumes();
    const { code, rows, lines } = await inTmux(columns, [
      inject('testenv').docker.cli, '-H', inject('testenv').docker.host,
      ...runKindArgs(v, ['-t'], ['/bin/sh', '-c', `stty cols ${columns} rows 50 2>/dev/null; exec /cnb/extender/extender -app /workspace -kind run`]),
    ]);
    const screen = rows.join('\n');
    expect(code, screen).toBe(0);
    // no status line left behind, none over two rows, no escape sequence printed as text
    expect(rows.filter((row) => STATUS.test(row)), screen).toEqual([]);
    expect(screen).not.toMatch(/\[2K|\[\d*A|\[J|\r/);
    // each instruction finished once: curl has 9 after FROM (USER root, RUN, COPY, LONG_RUN, ARG, RUN, RUN, ARG, USER)
    const finished = lines.filter((line) => /^ {2}✔ /.test(line));
    const curl = finished.filter((line) => line.startsWith('  ✔ curl ['));
    expect(curl.map((line) => /\[(\d+)\]/.exec(line)![1]), screen).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(new Set(finished).size).toBe(finished.length);
    // the long RUN's finished line is whole (wrapping over rows at 40 and 160 columns), with its layer's size
    const long = finished.find((line) => line.includes('/opt/long-run/'));
    expect(long, screen).toMatch(new RegExp(`^ {2}✔ curl \\[4\\] ${LONG_RUN.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(done, layer \\d+(\\.\\d)? (B|kB)\\)$`));
    expect(rows.filter((row) => row.startsWith('  ✔ curl [4] ')), screen).toHaveLength(1);
    expect(rows.length).toBeGreaterThan(lines.length);
    // the RUN output and the result are on the screen too
    expect(lines, screen).toContain('Setting up curl (stand-in for apt-get)');
    expect(lines.some((line) => line.startsWith('Extended run image (rebasable: false)')), screen).toBe(true);
  });

  it('with -log-format json, every line validates against events.schema.json and the instructions come in order', async () => {
    const v = await longRunVolumes();
    const result = await docker(runKindArgs(v, [], ['/cnb/extender/extender', '-app', '/workspace', '-kind', 'run', '-log-format', 'json']));
    const output = `${result.stdout}${result.stderr}`;
    expect(result.code, output).toBe(0);
    const validate = eventLineValidator();
    const all = [...result.stdout.split('\n'), ...result.stderr.split('\n')].filter((line) => line !== '');
    expect(all.flatMap((line) => validate(line)), output).toEqual([]);
    const records = result.stdout.split('\n').filter((line) => line !== '').map((line) => JSON.parse(line) as { event?: string; extensionId?: string; index?: number; instruction?: string; size?: number });
    const trace = records.filter((r) => r.extensionId === 'curl' && r.index !== undefined).map((r) => `${r.index} ${r.event}`);
    expect(trace.slice(0, 10)).toEqual([
      '0 instruction-started', '0 instruction-finished',
      '1 instruction-started', '1 cache-miss', '1 layer-written', '1 instruction-finished',
      '2 instruction-started', '2 cache-miss', '2 layer-written', '2 instruction-finished',
    ]);
    const layer = records.find((r) => r.event === 'layer-written' && r.instruction === LONG_RUN);
    expect(layer?.index, output).toBe(3);
    expect(layer?.size).toBeGreaterThan(0);
  });
});
