import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MediaType, pullImage, RegistryClient, type ImageIndex } from '@cnb-extender/oci';
import type {} from '@cnb-extender/testenv';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { REPO_ROOT } from './bundle.ts';
import { nodeVersion } from './sea.ts';
import { cyclonedxValidator } from './testing/cyclonedx.ts';

/**
 * `npm run release` on a clone of this repository, with the clone's changesets, schedule,
 * versions and tags written by the test: every guard refuses before anything is built;
 * one dry run and one real release of the same commit (linux/amd64 only) write the same
 * bytes, and the real one is pushed to the test environment's registry.
 */

const CLI = join(REPO_ROOT, 'tools', 'release', 'src', 'release-cli.ts');

interface Surface {
  id: string;
  surface: string;
  warn: string;
  fail: string;
  remove: string;
  replacement: string;
}

/**
 * The schedule of the normal release (0.1.0 released, 0.2.0 next): -kaniko-cache-ttl starts
 * failing, build chaining starts warning, a surface the code no longer has is removed, the
 * rest stays as it was.
 */
const SURFACES: Surface[] = [
  { id: 'lifecycle-extender-entry', surface: 'the /cnb/lifecycle/extender entry point', warn: '0.1.0', fail: '1.0.0', remove: '2.0.0', replacement: '/cnb/extender/extender' },
  { id: 'kaniko-cache-ttl-flag', surface: 'flag -kaniko-cache-ttl', warn: '0.1.0', fail: '0.2.0', remove: '2.0.0', replacement: '-extend-cache-ttl' },
  { id: 'kaniko-cache-ttl-env', surface: 'environment variable CNB_KANIKO_CACHE_TTL', warn: '0.1.0', fail: '1.0.0', remove: '2.0.0', replacement: 'CNB_EXTEND_CACHE_TTL' },
  { id: 'implicit-kaniko-dir', surface: 'the implicit extend directory /kaniko', warn: '0.1.0', fail: '1.0.0', remove: '2.0.0', replacement: '-extend-dir' },
  { id: 'inplace-build-chaining', surface: 'build chaining', warn: '0.2.0', fail: '1.0.0', remove: '2.0.0', replacement: 'a separate builder call' },
  { id: 'legacy-layout', surface: 'the legacy layout', warn: '0.0.1', fail: '0.1.0', remove: '0.2.0', replacement: 'the new layout' },
];

function schedule(change: Record<string, Partial<Surface>> = {}): string {
  return SURFACES.map((s) => ({ ...s, ...change[s.id] }))
    .map((s) => `[[deprecation]]\nid = "${s.id}"\nsurface = "${s.surface}"\nwarn = "${s.warn}"\nfail = "${s.fail}"\nremove = "${s.remove}"\nreplacement = "${s.replacement}"\ndocs = "docs/cli.md#deprecations"\n`)
    .join('\n');
}

const changeset = (bump: string, packages = ['@cnb-extender/extender', '@cnb-extender/lifecycle']) =>
  `---\n${packages.map((p) => `"${p}": ${bump}`).join('\n')}\n---\n\nExtension Dockerfiles may now use \`RUN --mount\`.\n`;

let scratch: string;
/** The clone the releases run in. */
let repo: string;

function run(cmd: string, args: string[], cwd: string) {
  const result = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

function git(...args: string[]): string {
  const result = run('git', args, repo);
  if (result.code !== 0) throw new Error(`git ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

function release(...args: string[]) {
  return run(process.execPath, [CLI, ...args], repo);
}

/** Put the clone at the base state, apply `files` (null removes one) and commit. */
async function commitState(name: string, files: Record<string, string | null> = {}): Promise<void> {
  git('reset', '-q', '--hard', 'base');
  git('clean', '-qfdx');
  for (const [path, content] of Object.entries(files)) {
    if (content === null) await rm(join(repo, path), { force: true });
    else await writeFile(join(repo, path), content);
  }
  git('add', '-A');
  git('commit', '-q', '--allow-empty', '-m', name);
}

beforeAll(async () => {
  await mkdir(join(REPO_ROOT, 'out'), { recursive: true });
  scratch = await mkdtemp(join(REPO_ROOT, 'out', 'release-cli-test-'));
  repo = join(scratch, 'repo');
  // a clone of the committed tree: the test's changesets and tags never touch this checkout
  const cloned = run('git', ['clone', '-q', '--shared', '--no-tags', REPO_ROOT, repo], scratch);
  expect(cloned.stderr).toBe('');
  git('checkout', '-q', '-B', 'main');
  git('config', 'user.name', 'Release Test');
  git('config', 'user.email', 'release-test@example.invalid');
  for (const tag of git('tag', '--list').split('\n').filter(Boolean)) git('tag', '-d', tag);
  // the apps at 0.1.0, released (tagged); one pending minor changeset; the test schedule
  for (const app of ['extender', 'lifecycle']) {
    const file = join(repo, 'apps', app, 'package.json');
    const manifest = JSON.parse(await readFile(file, 'utf8')) as { version: string };
    manifest.version = '0.1.0';
    await writeFile(file, `${JSON.stringify(manifest, null, 2)}\n`);
  }
  for (const file of await readdir(join(repo, '.changeset'))) {
    if (file.endsWith('.md') && file !== 'README.md') await rm(join(repo, '.changeset', file));
  }
  git('add', '-A');
  git('commit', '-q', '--allow-empty', '-m', 'released 0.1.0');
  git('tag', 'v0.1.0');
  await writeFile(join(repo, '.changeset', 'run-mount.md'), changeset('minor'));
  await writeFile(join(repo, 'release', 'deprecations.toml'), schedule());
  git('add', '-A');
  git('commit', '-q', '-m', 'base');
  git('tag', 'base');
}, 60_000);

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('npm run release refuses, before building anything,', () => {
  const out = () => join(scratch, 'refused');

  async function expectRefused(args: string[], message: string) {
    const result = release('--platform', 'linux/amd64', '--out', out(), ...args);
    expect(result.stderr).toBe(`${message}\n`);
    expect(result.stdout).toBe('');
    expect(result.code).toBe(1);
    await expect(stat(out())).rejects.toThrow(/ENOENT/);
  }

  it('a work tree with uncommitted changes', async () => {
    await commitState('clean');
    await writeFile(join(repo, 'notes.txt'), 'draft\n');
    await writeFile(join(repo, 'release', 'deprecations.toml'), schedule({ 'kaniko-cache-ttl-flag': { fail: '0.3.0' } }));
    await expectRefused(
      [],
      `refusing to release: the work tree of ${repo} has uncommitted changes (commit or remove them; a release is built from a commit):\n` +
        '   M release/deprecations.toml\n  ?? notes.txt',
    );
  });

  it('a pending changeset it cannot apply', async () => {
    await commitState('unknown package', { '.changeset/typo.md': changeset('patch', ['@cnb-extender/extendr']) });
    const result = release('--dry-run', '--out', out());
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /^refusing to release: the pending changesets cannot be applied: reading the pending changesets: changeset status --output \S+ failed: Error: Found changeset typo for package @cnb-extender\/extendr which is not in the workspace\n$/,
    );
    await expect(stat(out())).rejects.toThrow(/ENOENT/);
  });

  it('an inconsistent deprecation schedule', async () => {
    await commitState('inconsistent', { 'release/deprecations.toml': schedule({ 'kaniko-cache-ttl-flag': { fail: '3.0.0' }, 'legacy-layout': { warn: 'soon' } }) });
    await expectRefused(
      ['--dry-run'],
      'refusing to release 0.2.0: the deprecation schedule release/deprecations.toml is inconsistent:\n' +
        '  - kaniko-cache-ttl-flag: fail version 3.0.0 must be lower than remove version 2.0.0\n' +
        '  - legacy-layout: warn version "soon" is not a valid semver version',
    );
  });

  it('a version that reaches the remove step of a surface the code still implements', async () => {
    await commitState('removes an implemented surface', { 'release/deprecations.toml': schedule({ 'kaniko-cache-ttl-env': { warn: '0.0.1', fail: '0.1.0', remove: '0.2.0' } }) });
    await expectRefused(
      ['--dry-run'],
      'refusing to release 0.2.0: the deprecation schedule release/deprecations.toml and the deprecated surfaces the code implements (SURFACE_IDS in libs/extender-cli/src/deprecation/schedule.ts) disagree:\n' +
        '  - kaniko-cache-ttl-env: still shipped in 0.2.0, but the schedule removes it in 0.2.0',
    );
  });

  it('a version that jumps over the fail step of a surface whose warn step was never released', async () => {
    // 0.1.0 → 1.0.0: build chaining would warn from 0.2.0 and fail from 1.0.0, and no 0.2.x–0.x was released
    await commitState('major', { '.changeset/run-mount.md': changeset('major') });
    await expectRefused(
      [],
      'refusing to release 1.0.0: it would make surfaces fail that no released version warned about:\n' +
        '  - inplace-build-chaining: 1.0.0 reaches its fail step (1.0.0), but its warn step (0.2.0) was never released (released: 0.1.0); release a version from 0.2.0 up to 1.0.0 first, or move the steps',
    );
  });

  it('a version already released', async () => {
    await commitState('already released');
    git('tag', 'v0.2.0');
    try {
      await expectRefused(['--dry-run'], 'refusing to release 0.2.0: it is already released (tag v0.2.0); the pending changesets take the apps from 0.1.0 to it again');
    } finally {
      git('tag', '-d', 'v0.2.0');
    }
  });
});

describe('npm run release, a dry run and then the release of the same commit', () => {
  let dryOut: string;
  let out: string;
  let dry: ReturnType<typeof release>;
  let real: ReturnType<typeof release>;
  let target: string;
  /** The files SHA256SUMS lists. */
  let listed: string[];

  beforeAll(async () => {
    await commitState('release 0.2.0');
    target = `${inject('testenv').registry.host}/release-test/extender`;
    dryOut = join(scratch, 'dry-run');
    out = join(scratch, 'release');
    dry = release('--dry-run', '--platform', 'linux/amd64', '--out', dryOut, '--push', target);
    expect(dry.stderr).not.toMatch(/refusing|failed/);
    expect(dry.code).toBe(0);
    expect(git('status', '--porcelain')).toBe('');
    real = release('--platform', 'linux/amd64', '--out', out, '--push', target);
    expect(real.stderr).not.toMatch(/refusing|failed/);
    expect(real.code).toBe(0);
    listed = (await readFile(join(out, 'SHA256SUMS'), 'utf8')).trim().split('\n').map((l) => l.slice(66));
  }, 600_000);

  it('the dry run prints the plan, writes no version and pushes nothing', async () => {
    expect(dry.stdout).toContain('planned: cnb-extender 0.2.0 (extender and lifecycle 0.1.0 → 0.2.0; previous release 0.1.0)\n');
    expect(dry.stdout).toContain('changesets: 1 (2 packages versioned)\n');
    expect(dry.stdout).toContain(
      'deprecation steps reached in 0.2.0 (release/deprecations.toml):\n' +
        '  starts warning  inplace-build-chaining: build chaining (fails from 1.0.0, removed in 2.0.0)\n' +
        '  STARTS FAILING  kaniko-cache-ttl-flag: flag -kaniko-cache-ttl (exit 3 unless CNB_DEPRECATION_MODE=warn or quiet; removed in 2.0.0)\n' +
        '  removed         legacy-layout: the legacy layout (use the new layout)\n',
    );
    expect(dry.stdout).toContain(`not pushed (dry run): would push ${target}:0.2.0\n`);
    expect(dry.stdout).toMatch(/dry run: no version written, nothing pushed\ntag to create when released: v0\.2\.0\n$/);
    expect(dry.stderr).toContain('WARNING: 0.2.0 makes flag -kaniko-cache-ttl fail (exit 3) for everyone who does not set CNB_DEPRECATION_MODE=warn or quiet; its replacement: -extend-cache-ttl\n');
  });

  it('the release writes the versions and changelogs, consumes the changeset and prints the tag to create', async () => {
    for (const app of ['extender', 'lifecycle']) {
      expect((JSON.parse(await readFile(join(repo, 'apps', app, 'package.json'), 'utf8')) as { version: string }).version).toBe('0.2.0');
      expect(await readFile(join(repo, 'apps', app, 'CHANGELOG.md'), 'utf8')).toMatch(/## 0\.2\.0\n\n### Minor Changes\n\n- [0-9a-f]{7}: Extension Dockerfiles may now use `RUN --mount`\./);
    }
    await expect(stat(join(repo, '.changeset', 'run-mount.md'))).rejects.toThrow(/ENOENT/);
    expect(real.stdout).toContain('released: cnb-extender 0.2.0 (extender and lifecycle 0.1.0 → 0.2.0; previous release 0.1.0)\n');
    expect(real.stdout).toContain('tag to create: v0.2.0\n');
    expect(real.stdout).toContain('  git tag -a v0.2.0 -m "cnb-extender 0.2.0" && git push origin v0.2.0\n');
    expect(real.stdout).toMatch(/ {2}git add -A -- \S*\.changeset\/run-mount\.md .*apps\/extender\/CHANGELOG\.md.* && git commit -m "cnb-extender 0\.2\.0"\n/);
  });

  it('both runs write byte-identical artifacts, SBOMs, notes and SHA256SUMS', async () => {
    expect(listed).toEqual([
      'extender-v0.2.0+linux.x86-64.oci.cdx.json',
      'extender-v0.2.0+linux.x86-64.tgz',
      'extender-v0.2.0+linux.x86-64.tgz.cdx.json',
      'extender-v0.2.0.oci/index.json',
      'lifecycle-extender-v0.2.0+linux.x86-64.tgz',
      'lifecycle-extender-v0.2.0+linux.x86-64.tgz.cdx.json',
      'release-notes-v0.2.0.md',
    ]);
    for (const file of [...listed, 'SHA256SUMS']) {
      const [a, b] = [await readFile(join(dryOut, file)), await readFile(join(out, file))];
      expect(a.equals(b), `${file} differs between the dry run and the release`).toBe(true);
    }
    expect(run('sha256sum', ['--check', '--strict', 'SHA256SUMS'], out)).toMatchObject({ code: 0 });
  });

  it('pushes the image index, which pulls back with the digests of the layout', async () => {
    const layoutDir = join(out, 'extender-v0.2.0.oci');
    const layoutIndex = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8')) as ImageIndex;
    const indexDescriptor = layoutIndex.manifests[0]!;
    expect(indexDescriptor.mediaType).toBe(MediaType.ociIndex);
    expect(real.stdout).toContain(`pushed: ${target}:0.2.0@${indexDescriptor.digest}\n`);
    const client = new RegistryClient();
    try {
      const [registry, ...path] = target.split('/');
      const ref = { registry: registry!, repository: path.join('/'), tag: '0.2.0' };
      const pushed = await client.getManifest(ref);
      expect(pushed.descriptor.digest).toBe(indexDescriptor.digest);
      const indexBlob = await readFile(join(layoutDir, 'blobs', 'sha256', indexDescriptor.digest.slice('sha256:'.length)));
      expect(Buffer.from(pushed.bytes).equals(indexBlob)).toBe(true);
      const listedManifests = (JSON.parse(indexBlob.toString('utf8')) as ImageIndex).manifests;
      expect(listedManifests.map((m) => m.platform)).toEqual([{ architecture: 'amd64', os: 'linux' }]);
      const pulledDir = join(scratch, 'pulled');
      const pulled = await pullImage(client, ref, { platform: { os: 'linux', architecture: 'amd64' }, layoutDir: pulledDir });
      expect(pulled.descriptor.digest).toBe(listedManifests[0]!.digest);
      for (const blob of [pulled.manifest.config, ...pulled.manifest.layers]) {
        const local = await readFile(join(layoutDir, 'blobs', 'sha256', blob.digest.slice('sha256:'.length)));
        expect(`sha256:${createHash('sha256').update(local).digest('hex')}`).toBe(blob.digest);
        expect((await stat(join(pulledDir, 'blobs', 'sha256', blob.digest.slice('sha256:'.length)))).size).toBe(local.length);
      }
    } finally {
      await client.close();
    }
  });

  it('writes release notes whose Deprecations section says what the schedule does in this version', async () => {
    const notes = await readFile(join(out, 'release-notes-v0.2.0.md'), 'utf8');
    expect(notes).toMatch(/^# cnb-extender 0\.2\.0\n\n## Changes\n\n### Minor Changes\n\n- [0-9a-f]{7}: Extension Dockerfiles may now use `RUN --mount`\.\n/);
    const deprecations = notes.slice(notes.indexOf('## Deprecations'), notes.indexOf('## Artifacts'));
    expect(deprecations).toBe(
      [
        '## Deprecations',
        '',
        'Compared with 0.1.0, the release before this one.',
        '',
        '### Starts warning in 0.2.0',
        '',
        '- **build chaining** (`inplace-build-chaining`): logs a deprecation notice from 0.2.0 (`CNB_DEPRECATION_MODE=quiet` silences it, `error` makes it fail); fails from 1.0.0; removed in 2.0.0. Use a separate builder call instead (see docs/cli.md#deprecations).',
        '',
        '### Starts failing in 0.2.0',
        '',
        '- **flag -kaniko-cache-ttl** (`kaniko-cache-ttl-flag`): stops with exit code 3 from 0.2.0 unless `CNB_DEPRECATION_MODE=warn` (a notice) or `quiet` is set; removed in 2.0.0. Use -extend-cache-ttl instead (see docs/cli.md#deprecations).',
        '',
        '### Removed in 0.2.0',
        '',
        '- **the legacy layout** (`legacy-layout`): removed in 0.2.0; deprecated since 0.0.1, failing since 0.1.0. Use the new layout instead (see docs/cli.md#deprecations).',
        '',
        '### Still deprecated',
        '',
        '- **the /cnb/lifecycle/extender entry point** (`lifecycle-extender-entry`): warns since 0.1.0; fails from 1.0.0; removed in 2.0.0. Use /cnb/extender/extender instead (see docs/cli.md#deprecations).',
        '- **environment variable CNB_KANIKO_CACHE_TTL** (`kaniko-cache-ttl-env`): warns since 0.1.0; fails from 1.0.0; removed in 2.0.0. Use CNB_EXTEND_CACHE_TTL instead (see docs/cli.md#deprecations).',
        '- **the implicit extend directory /kaniko** (`implicit-kaniko-dir`): warns since 0.1.0; fails from 1.0.0; removed in 2.0.0. Use -extend-dir instead (see docs/cli.md#deprecations).',
        '',
        '',
      ].join('\n'),
    );
  });

  it('writes SBOMs that validate against the CycloneDX schema and list the Node version the executables embed', async () => {
    const validate = await cyclonedxValidator();
    // not named by the changeset: it keeps its version
    const extenderCliVersion = (JSON.parse(await readFile(join(repo, 'libs', 'extender-cli', 'package.json'), 'utf8')) as { version: string }).version;
    // what the single executable runs on: a preloaded script prints it (NODE_OPTIONS reaches the embedded Node)
    const extracted = join(scratch, 'extracted');
    await mkdir(extracted);
    expect(run('tar', ['-xzf', join(out, 'extender-v0.2.0+linux.x86-64.tgz'), '-C', extracted], scratch).code).toBe(0);
    await writeFile(join(scratch, 'node-version.cjs'), 'process.stdout.write(`node ${process.versions.node}\\n`)\n');
    const probe = spawnSync(join(extracted, 'extender', 'extender'), ['-version'], { encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '', NODE_OPTIONS: `--require ${join(scratch, 'node-version.cjs')}` } });
    const embedded = /^node (\S+)\n/.exec(probe.stdout)?.[1];
    expect(embedded).toBe(await nodeVersion());

    for (const file of listed.filter((f) => f.endsWith('.cdx.json'))) {
      const sbom = JSON.parse(await readFile(join(out, file), 'utf8')) as {
        metadata: { component: { name: string; version: string; hashes: { content: string }[] } };
        components: { type: string; name: string; group?: string; version: string; licenses?: { expression: string }[]; components?: { name: string }[] }[];
      };
      expect(validate(sbom), file).toEqual([]);
      expect(sbom.metadata.component.version).toBe('0.2.0');
      const node = sbom.components.filter((c) => c.type === 'platform');
      expect(node.map((c) => [c.name, c.version]), file).toEqual([['node', embedded]]);
      const named = (name: string) => sbom.components.find((c) => (c.group ? `${c.group}/${c.name}` : c.name) === name);
      // bundled npm packages with versions and licenses; the repository's own at the version of this release
      expect(named('smol-toml')).toMatchObject({ type: 'library', licenses: [{ expression: 'BSD-3-Clause' }] });
      expect(named('@cnb-extender/extender-cli')).toMatchObject({ version: extenderCliVersion, licenses: [{ expression: 'Apache-2.0' }] });
      expect(named(file.startsWith('lifecycle') ? '@cnb-extender/lifecycle' : '@cnb-extender/extender')?.version).toBe('0.2.0');
      const libc = named('libc6');
      if (file.startsWith('extender-v0.2.0+linux.x86-64.tgz')) {
        // the standalone extender uses the system's C library
        expect(libc).toBeUndefined();
      } else {
        const version = run('dpkg-query', ['-W', '-f', '${Version}', 'libc6:amd64'], scratch).stdout;
        expect(libc).toMatchObject({ version, licenses: [{ expression: 'LGPL-2.1-or-later' }] });
        expect(libc!.components!.map((c) => c.name)).toContain(file.startsWith('lifecycle') ? 'lifecycle/lib/libc.so.6' : 'cnb/extender/lib/libc.so.6');
        expect(named('libstdc++6')?.licenses).toEqual([{ expression: 'GPL-3.0-or-later WITH GCC-exception-3.1' }]);
      }
    }
  });
});
