/**
 * CycloneDX 1.6 SBOMs (JSON) of the release artifacts, one per artifact, written next to it
 * as `<artifact>.cdx.json`:
 *
 *   extender-v<version>+<suffix>.tgz.cdx.json            the standalone extender
 *   lifecycle-extender-v<version>+<suffix>.tgz.cdx.json  the self-contained lifecycle overlay
 *   extender-v<version>+<suffix>.oci.cdx.json            that platform's image of extender-v<version>.oci
 *
 * Each lists what the artifact is made of: the npm packages bundled into its executables
 * (this repository's own with the version this release gives them), the Node runtime the
 * executables embed (the `node-linux-*` package their Node binary comes from), the xattr
 * addon's files, and for the self-contained forms (the overlay and the image) the Debian
 * packages of the loader and C libraries shipped, each with its files and their sha256.
 * Everything is sorted and the timestamp is the release's mtime, so the same inputs give
 * the same bytes.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { AppName, BundledPackage } from './bundle.ts';
import { IMAGE_LIFECYCLE_PREFIX, IMAGE_PREFIX } from './image.ts';
import type { PlatformArtifacts, ReleaseArtifacts } from './package.ts';
import { LIBRARY_PACKAGE_LICENSES, libraryPackage, type ReleasePlatform } from './platforms.ts';

export const CYCLONEDX_SPEC_VERSION = '1.6';

/** A file an artifact ships, at its path inside the artifact. */
export interface ShippedFile {
  path: string;
  sha256: string;
}

/** What one artifact is, and what it holds. */
export interface SbomSubject {
  /** File name of the artifact (`extender-v0.2.0+linux.x86-64.tgz`), or the image's name. */
  name: string;
  type: 'application' | 'container';
  version: string;
  /** sha256 (hex) of the tarball, or of the image's manifest. */
  sha256: string;
  platform: ReleasePlatform;
  /** The npm packages the executables were bundled from. */
  packages: BundledPackage[];
  /** The npm package of the Node binary the executables are made from, and that binary's sha256. */
  node: { name: string; version: string; license?: string; sha256: string };
  /** `@napi-rs/xattr` and its platform package, with the files of each shipped. */
  addons: NpmPackageFiles[];
  /** The Debian packages of the shipped loader and libraries, with their files (self-contained forms only). */
  libraries: { name: string; version: string; arch: string; license: string; files: ShippedFile[] }[];
  mtime: Date;
}

/** An npm package some of whose files are shipped as they are. */
export interface NpmPackageFiles {
  name: string;
  version: string;
  license?: string;
  files: ShippedFile[];
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

function npmPurl(name: string, version: string): string {
  return `pkg:npm/${name.replace(/^@/, '%40')}@${encodeURIComponent(version)}`;
}

function debPurl(name: string, version: string, arch: string): string {
  return `pkg:deb/debian/${name}@${encodeURIComponent(version)}?arch=${arch}&distro=debian-12`;
}

function licenses(expression: string | undefined): { licenses?: Json } {
  return expression ? { licenses: [{ expression }] } : {};
}

/** `@scope/name` as CycloneDX's group and name. */
function groupAndName(name: string): { group?: string; name: string } {
  const m = /^(@[^/]+)\/(.+)$/.exec(name);
  return m ? { group: m[1]!, name: m[2]! } : { name };
}

/** The files of a component shipped as they are, as nested `file` components (nothing when there are none). */
function fileComponents(files: readonly ShippedFile[]): { components?: Json[] } {
  if (files.length === 0) return {};
  const sorted = [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { components: sorted.map((f) => ({ type: 'file', 'bom-ref': `file:${f.path}`, name: f.path, hashes: [{ alg: 'SHA-256', content: f.sha256 }] })) };
}

/** A UUID made from the artifact's name and digest (version 5 layout), so a rebuild gives the same serial number. */
function serialNumber(subject: SbomSubject): string {
  const hex = createHash('sha256').update(`${subject.name}\n${subject.sha256}`).digest('hex').slice(0, 32).split('');
  hex[12] = '5';
  hex[16] = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  const h = hex.join('');
  return `urn:uuid:${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The CycloneDX document of one artifact. */
export function cyclonedxSbom(subject: SbomSubject): Record<string, Json> {
  const components: { ref: string; json: Record<string, Json> }[] = [];
  const add = (ref: string, json: Record<string, Json>) => components.push({ ref, json: { 'bom-ref': ref, ...json } });

  const nodeRef = npmPurl(subject.node.name, subject.node.version);
  add(nodeRef, {
    type: 'platform',
    name: 'node',
    version: subject.node.version,
    description: `the Node.js runtime the single executables embed (bin/node of the npm package ${subject.node.name}@${subject.node.version})`,
    ...licenses(subject.node.license),
    purl: nodeRef,
    hashes: [{ alg: 'SHA-256', content: subject.node.sha256 }],
  });
  for (const addon of subject.addons) {
    const ref = npmPurl(addon.name, addon.version);
    add(ref, { type: 'library', ...groupAndName(addon.name), version: addon.version, ...licenses(addon.license), purl: ref, ...fileComponents(addon.files) });
  }
  const shipped = new Set(components.map((c) => c.ref));
  for (const pkg of subject.packages) {
    const ref = npmPurl(pkg.name, pkg.version);
    if (shipped.has(ref)) continue;
    shipped.add(ref);
    add(ref, {
      type: 'library',
      ...groupAndName(pkg.name),
      version: pkg.version,
      description: pkg.workspace ? 'bundled into the executables (a package of this repository)' : 'bundled into the executables',
      ...licenses(pkg.license),
      purl: ref,
    });
  }
  for (const lib of subject.libraries) {
    const ref = debPurl(lib.name, lib.version, lib.arch);
    add(ref, {
      type: 'library',
      publisher: 'Debian',
      name: lib.name,
      version: lib.version,
      description: `Debian 12 package of the loader and C libraries shipped for ${subject.platform.oci.os}/${subject.platform.arch}`,
      ...licenses(lib.license),
      purl: ref,
      ...fileComponents(lib.files),
    });
  }
  components.sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0));

  const platform = `${subject.platform.oci.os}/${subject.platform.arch}${subject.platform.oci.variant ? `/${subject.platform.oci.variant}` : ''}`;
  return {
    $schema: `http://cyclonedx.org/schema/bom-${CYCLONEDX_SPEC_VERSION}.schema.json`,
    bomFormat: 'CycloneDX',
    specVersion: CYCLONEDX_SPEC_VERSION,
    serialNumber: serialNumber(subject),
    version: 1,
    metadata: {
      timestamp: subject.mtime.toISOString().replace(/\.000Z$/, 'Z'),
      lifecycles: [{ phase: 'build' }],
      tools: { components: [{ type: 'application', name: 'cnb-extender release', version: subject.version }] },
      component: {
        type: subject.type,
        'bom-ref': 'artifact',
        name: subject.name,
        version: subject.version,
        hashes: [{ alg: 'SHA-256', content: subject.sha256 }],
        properties: [{ name: 'cnb-extender:platform', value: platform }],
      },
    },
    components: components.map((c) => c.json),
    dependencies: [{ ref: 'artifact', dependsOn: components.map((c) => c.ref) }],
  };
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex');
}

async function manifestOf(dir: string): Promise<{ name: string; version: string; license?: string }> {
  const manifest = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { name: string; version: string; license?: unknown };
  return { name: manifest.name, version: manifest.version, ...(typeof manifest.license === 'string' ? { license: manifest.license } : {}) };
}

/** What every artifact of a platform shares: the Node binary and the addon's packages, their files placed below `dirs`. */
interface PlatformParts {
  node: SbomSubject['node'];
  /** The addon's packages, each with its files as [path relative to an executable's directory, sha256]. */
  addons: (Omit<NpmPackageFiles, 'files'> & { files: [string, string][] })[];
  libraries: { name: string; version: string; arch: string; license: string; files: [string, string][] }[];
}

async function platformParts(built: PlatformArtifacts): Promise<PlatformParts> {
  const { inputs } = built;
  // node-linux-*/bin/node and <xattr platform package>/xattr.*.node: their package.json is beside them
  const node = { ...(await manifestOf(dirname(dirname(inputs.node)))), sha256: await sha256File(inputs.node) };
  const platformAddonDir = dirname(inputs.xattrAddon);
  const byPackage = new Map<string, Omit<NpmPackageFiles, 'files'> & { files: [string, string][] }>();
  for (const [source, rel] of built.addon) {
    const dir = source === inputs.xattrAddon ? platformAddonDir : dirname(source);
    const manifest = await manifestOf(dir);
    const key = `${manifest.name}@${manifest.version}`;
    if (!byPackage.has(key)) byPackage.set(key, { ...manifest, files: [] });
    byPackage.get(key)!.files.push([rel, await sha256File(source)]);
  }
  const libraries = inputs.libraryPackages.map((pkg) => ({
    ...pkg,
    license: LIBRARY_PACKAGE_LICENSES[pkg.name],
    files: inputs.libraries
      .filter(([name]) => libraryPackage(name) === pkg.name)
      .map(([name, bytes]): [string, string] => [`lib/${name}`, createHash('sha256').update(bytes).digest('hex')]),
  }));
  return { node, addons: [...byPackage.values()], libraries };
}

/** Place the parts' files below the executables' directories of one artifact. */
function subjectParts(parts: PlatformParts, dirs: readonly string[], selfContained: boolean): Pick<SbomSubject, 'node' | 'addons' | 'libraries'> {
  const place = (files: [string, string][]) => dirs.flatMap((dir) => files.map(([rel, sha256]) => ({ path: `${dir}/${rel}`, sha256 })));
  return {
    node: parts.node,
    addons: parts.addons.map((a) => ({ name: a.name, version: a.version, ...(a.license ? { license: a.license } : {}), files: place(a.files) })),
    libraries: selfContained ? parts.libraries.map((l) => ({ ...l, files: place(l.files) })) : [],
  };
}

function unionPackages(lists: BundledPackage[][]): BundledPackage[] {
  const all = new Map<string, BundledPackage>();
  for (const p of lists.flat()) all.set(`${p.name}@${p.version}`, p);
  return [...all.values()].sort((a, b) => (a.name === b.name ? a.version.localeCompare(b.version) : a.name < b.name ? -1 : 1));
}

export interface WriteSbomsOptions {
  /** Versions this release gives the repository's own packages (they replace the ones bundled). */
  workspaceVersions?: ReadonlyMap<string, string>;
}

/**
 * Write the SBOM of every artifact of a release build (tarballs, and each platform's image
 * when the image was built): the files written, in a fixed order.
 */
export async function writeSboms(artifacts: ReleaseArtifacts, options: WriteSbomsOptions = {}): Promise<string[]> {
  const relabel = (packages: BundledPackage[]) =>
    packages.map((p) => (p.workspace && options.workspaceVersions?.has(p.name) ? { ...p, version: options.workspaceVersions.get(p.name)! } : p));
  const packages = (app: AppName) => relabel(artifacts.bundles.packages[app]);
  const written: string[] = [];
  for (const built of Object.values(artifacts.platforms)) {
    const parts = await platformParts(built);
    const common = { version: artifacts.version, platform: built.platform, mtime: artifacts.mtime };
    const subjects: [string, SbomSubject][] = [];
    for (const [tarball, app, selfContained] of [
      [built.extenderTarball, 'extender', false],
      [built.lifecycleTarball, 'lifecycle', true],
    ] as const) {
      subjects.push([
        `${tarball}.cdx.json`,
        { ...common, name: basename(tarball), type: 'application', sha256: await sha256File(tarball), packages: packages(app), ...subjectParts(parts, [app], selfContained) },
      ]);
    }
    if (artifacts.imageLayout && built.imageManifestDigest) {
      const name = `${basename(artifacts.imageLayout, '.oci')}+${built.platform.suffix}.oci`;
      subjects.push([
        join(dirname(artifacts.imageLayout), `${name}.cdx.json`),
        {
          ...common,
          name,
          type: 'container',
          sha256: built.imageManifestDigest.replace(/^sha256:/, ''),
          packages: unionPackages([packages('extender'), packages('lifecycle')]),
          ...subjectParts(parts, [IMAGE_PREFIX.slice(1), IMAGE_LIFECYCLE_PREFIX.slice(1)], true),
        },
      ]);
    }
    for (const [file, subject] of subjects) {
      await writeFile(file, `${JSON.stringify(cyclonedxSbom(subject), null, 2)}\n`);
      written.push(file);
    }
  }
  return written;
}
