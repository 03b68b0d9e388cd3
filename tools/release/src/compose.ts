/**
 * A complete lifecycle with this project's extender: an upstream lifecycle release tarball
 * (`lifecycle-v<X>+linux.<arch>.tgz`, the Distribution spec's lifecycle artifact) and this
 * project's lifecycle overlay (`lifecycle-extender-v<Y>+linux.<arch>.tgz`) composed into
 * `lifecycle-v<X>+extender.<Y>+linux.<arch>.tgz`:
 *
 *   lifecycle.toml                 the APIs both support, version `<X>+extender.<Y>`
 *   lifecycle/lifecycle            the overlay's multi-call executable (extend; the other
 *                                  `lifecycle <verb>` subcommands go to upstream/lifecycle)
 *   lifecycle/extender -> lifecycle
 *   lifecycle/lib/…, lifecycle/node_modules/…   the overlay's loader, C libraries, xattr addon
 *   lifecycle/upstream/lifecycle   upstream's multi-call executable, unchanged
 *   lifecycle/analyzer -> upstream/lifecycle    every other phase reaches upstream directly,
 *   lifecycle/builder -> upstream/lifecycle     with its own name as argv[0], as before
 *   …
 *   lifecycle/launcher             upstream's, unchanged (as is anything else upstream ships)
 *
 * Reproducible: the entries sorted by name, the tarball writer of package.ts (uid/gid 0, one
 * mtime, gzip without a timestamp). Refused, before anything is written: a tarball that is
 * not an upstream lifecycle, a version that cannot be read, platforms that differ, no API both
 * support.
 */
import { createReadStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import semver from 'semver';
import { decompressLayer, readTar } from '@cnb-extender/oci';
import {
  ApiVersion,
  LIFECYCLE_LAUNCHER,
  LIFECYCLE_PHASE_NAMES,
  parseLifecycleDescriptor,
  stringifyLifecycleDescriptor,
  writeFileAtomic,
  type LifecycleDescriptor,
} from '@cnb-extender/platform';
import { releaseMtime, sha256Line, writeTarGz, type TarEntry } from './package.ts';
import { PLATFORMS, RELEASE_ARCHES, type ReleaseArch, type ReleasePlatform } from './platforms.ts';

/** Where the composed lifecycle keeps upstream's multi-call executable (apps/lifecycle's default). */
export const UPSTREAM_LIFECYCLE_PATH = 'lifecycle/upstream/lifecycle';

export type ComposeRefusal = 'not-upstream' | 'version' | 'architecture' | 'api-overlap' | 'overlay';

/** A tarball the composer will not use, and why. */
export class ComposeRefused extends Error {
  override name = 'ComposeRefused';
  readonly refusal: ComposeRefusal;
  constructor(refusal: ComposeRefusal, message: string) {
    super(message);
    this.refusal = refusal;
  }
}

type Entry = TarEntry & { mode?: number };

/** A lifecycle tarball read into memory. */
export interface LifecycleTarball {
  path: string;
  /** Entries by name (no leading `./`, no trailing `/`). */
  entries: Map<string, Entry>;
  descriptor: LifecycleDescriptor;
  version: string;
  platform: ReleasePlatform;
}

/** The entries of a lifecycle tarball (gzip or plain tar), by name. */
export async function readEntries(path: string): Promise<Map<string, Entry>> {
  const entries = new Map<string, Entry>();
  const { tar } = await decompressLayer(createReadStream(path));
  for await (const entry of readTar(tar)) {
    const name = entry.name.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
    if (name === '' || name === '.') {
      for await (const _ of entry.body());
      continue;
    }
    if (entry.type === 'file') {
      const chunks: Buffer[] = [];
      for await (const chunk of entry.body()) chunks.push(chunk);
      entries.set(name, { type: 'file', name, mode: entry.mode & 0o7777, content: Buffer.concat(chunks) });
    } else {
      for await (const _ of entry.body());
      if (entry.type === 'directory') entries.set(name, { type: 'directory', name, mode: entry.mode & 0o7777 });
      else if (entry.type === 'symlink') entries.set(name, { type: 'symlink', name, target: entry.linkTarget });
      else throw new Error(`${name} is a ${entry.type} entry; a lifecycle tarball holds only files, directories and symlinks`);
    }
  }
  return entries;
}

/** The release platform an ELF executable is built for (`undefined` when it is not an ELF file). */
export function elfArch(bytes: Buffer): ReleaseArch | 'unknown' | undefined {
  if (bytes.length < 20 || bytes.readUInt32BE(0) !== 0x7f454c46) return undefined;
  const machine = bytes[5] === 2 ? bytes.readUInt16BE(18) : bytes.readUInt16LE(18);
  return RELEASE_ARCHES.find((arch) => PLATFORMS[arch].elfMachine === machine) ?? 'unknown';
}

const SUFFIX_PATTERN = /\+(linux\.[a-z0-9_-]+)\.tgz$/;

/** The platform a tarball is for: the name's suffix (`+linux.x86-64.tgz`), checked against its `lifecycle/lifecycle` when that is an ELF file. */
export function tarballPlatform(path: string, entries: Map<string, Entry>, what: string): ReleasePlatform {
  const suffix = SUFFIX_PATTERN.exec(basename(path))?.[1];
  const fromName = suffix === undefined ? undefined : RELEASE_ARCHES.find((arch) => PLATFORMS[arch].suffix === suffix);
  const executable = entries.get('lifecycle/lifecycle');
  const fromElf = executable?.type === 'file' ? elfArch(executable.content) : undefined;
  if (suffix !== undefined && fromName === undefined) {
    throw new ComposeRefused('architecture', `${what} ${path} is for ${suffix}; lifecycles can be composed for ${RELEASE_ARCHES.map((a) => PLATFORMS[a].suffix).join(' and ')}`);
  }
  if (fromElf === 'unknown') throw new ComposeRefused('architecture', `${what} ${path}: lifecycle/lifecycle is an executable for a machine other than ${RELEASE_ARCHES.join(' or ')}`);
  if (fromName && fromElf && fromName !== fromElf) {
    throw new ComposeRefused('architecture', `${what} ${path} is named for ${PLATFORMS[fromName].suffix} but its lifecycle/lifecycle is a linux/${fromElf} executable`);
  }
  const arch = fromName ?? fromElf;
  if (!arch) throw new ComposeRefused('architecture', `${what} ${path}: cannot tell its platform (the name does not end in +linux.<arch>.tgz and lifecycle/lifecycle is not an ELF executable)`);
  return PLATFORMS[arch];
}

function readDescriptor(path: string, entries: Map<string, Entry>, what: string, refusal: ComposeRefusal): LifecycleDescriptor {
  const file = entries.get('lifecycle.toml');
  if (file?.type !== 'file') throw new ComposeRefused(refusal, `${what} ${path} has no lifecycle.toml at its top`);
  try {
    return parseLifecycleDescriptor(file.content.toString('utf8'), `${path}:lifecycle.toml`);
  } catch (cause) {
    throw new ComposeRefused(refusal, `${what} ${path}: reading its lifecycle.toml: ${(cause as Error).message}`);
  }
}

function readVersion(path: string, descriptor: LifecycleDescriptor, what: string, namePrefix: string): string {
  const version = descriptor.lifecycle.version;
  if (version === '') throw new ComposeRefused('version', `${what} ${path}: its lifecycle.toml has no [lifecycle] version`);
  if (semver.valid(version) === null) throw new ComposeRefused('version', `${what} ${path}: its lifecycle.toml's [lifecycle] version "${version}" is not a semantic version`);
  const fromName = new RegExp(`^${namePrefix}-v(.+)${SUFFIX_PATTERN.source}`).exec(basename(path))?.[1];
  if (fromName !== undefined && fromName !== version) {
    throw new ComposeRefused('version', `${what} ${path} is named for version ${fromName} but its lifecycle.toml says ${version}`);
  }
  return version;
}

/** The entries of the tarball at `path`; one that cannot be read is refused as `refusal`. */
async function readTarball(path: string, what: string, refusal: ComposeRefusal): Promise<Map<string, Entry>> {
  try {
    return await readEntries(path);
  } catch (cause) {
    throw new ComposeRefused(refusal, `${what} ${path} is not a lifecycle tarball: ${(cause as Error).message}`);
  }
}

/** Read and check an upstream lifecycle release tarball. */
export async function readUpstreamLifecycle(path: string): Promise<LifecycleTarball> {
  const what = 'the upstream lifecycle';
  const entries = await readTarball(path, what, 'not-upstream');
  if (entries.has(UPSTREAM_LIFECYCLE_PATH)) throw new ComposeRefused('not-upstream', `${what} ${path} is already composed (it has ${UPSTREAM_LIFECYCLE_PATH}); give the upstream release tarball`);
  const missing = ['lifecycle', LIFECYCLE_LAUNCHER, ...LIFECYCLE_PHASE_NAMES].filter((name) => !entries.has(`lifecycle/${name}`));
  if (!entries.has('lifecycle.toml')) missing.unshift('lifecycle.toml');
  if (missing.length > 0) {
    throw new ComposeRefused('not-upstream', `${what} ${path} is not an upstream lifecycle release: it lacks ${missing.map((m) => (m === 'lifecycle.toml' ? m : `lifecycle/${m}`)).join(', ')}`);
  }
  for (const name of ['lifecycle', LIFECYCLE_LAUNCHER]) {
    if (entries.get(`lifecycle/${name}`)!.type !== 'file') throw new ComposeRefused('not-upstream', `${what} ${path} is not an upstream lifecycle release: lifecycle/${name} is not a regular file`);
  }
  for (const name of LIFECYCLE_PHASE_NAMES) {
    const entry = entries.get(`lifecycle/${name}`)!;
    if (entry.type === 'directory' || (entry.type === 'symlink' && entry.target !== 'lifecycle')) {
      throw new ComposeRefused('not-upstream', `${what} ${path} is not an upstream lifecycle release: lifecycle/${name} is ${entry.type === 'directory' ? 'a directory' : `a symlink to ${entry.target}`}, not the lifecycle executable or a symlink to it`);
    }
  }
  const descriptor = readDescriptor(path, entries, what, 'not-upstream');
  if (descriptor.apis.platform.supported.length === 0 || descriptor.apis.buildpack.supported.length === 0) {
    throw new ComposeRefused('not-upstream', `${what} ${path}: its lifecycle.toml lists no [apis.platform] or [apis.buildpack] supported versions`);
  }
  const version = readVersion(path, descriptor, what, 'lifecycle');
  return { path, entries, descriptor, version, platform: tarballPlatform(path, entries, what) };
}

/** Read and check this project's lifecycle overlay (`lifecycle-extender-v<Y>+linux.<arch>.tgz`). */
export async function readLifecycleOverlay(path: string): Promise<LifecycleTarball> {
  const what = 'the lifecycle overlay';
  const entries = await readTarball(path, what, 'overlay');
  const executable = entries.get('lifecycle/lifecycle');
  const extender = entries.get('lifecycle/extender');
  if (executable?.type !== 'file' || extender?.type !== 'symlink' || extender.target !== 'lifecycle' || entries.has('lifecycle/analyzer')) {
    throw new ComposeRefused('overlay', `${what} ${path} is not this project's lifecycle overlay (lifecycle/lifecycle with lifecycle/extender -> lifecycle and no other phase)`);
  }
  const descriptor = readDescriptor(path, entries, what, 'overlay');
  const version = readVersion(path, descriptor, what, 'lifecycle-extender');
  return { path, entries, descriptor, version, platform: tarballPlatform(path, entries, what) };
}

/** The versions both lists hold, in the order of `ours` (sorted); deprecated in either stays deprecated. */
function overlap(kind: string, upstream: LifecycleDescriptor['apis']['platform'], ours: LifecycleDescriptor['apis']['platform']): { supported: string[]; deprecated: string[] } {
  const key = (v: string) => ApiVersion.parse(v).toString();
  const theirs = new Set(upstream.supported.map(key));
  const supported = ours.supported.map(key).filter((v) => theirs.has(v));
  const sorted = supported.map((v) => ApiVersion.parse(v)).sort((a, b) => a.compare(b)).map(String);
  const deprecatedEither = new Set([...upstream.deprecated, ...ours.deprecated].map(key));
  if (sorted.length === 0) {
    throw new ComposeRefused('api-overlap', `no ${kind} API is supported by both: the upstream lifecycle supports ${upstream.supported.join(', ')}, the extender ${ours.supported.join(', ')}`);
  }
  return { supported: sorted, deprecated: sorted.filter((v) => deprecatedEither.has(v)) };
}

/** `<X>+extender.<Y>`: both versions in one semantic version (upstream's build metadata kept first). */
export function composedVersion(upstream: string, extender: string): string {
  const metadata = `extender.${extender.replace(/\+/g, '.')}`;
  return upstream.includes('+') ? `${upstream}.${metadata}` : `${upstream}+${metadata}`;
}

export interface ComposePlan {
  upstream: LifecycleTarball;
  overlay: LifecycleTarball;
  version: string;
  descriptor: LifecycleDescriptor;
  /** `lifecycle-v<X>+extender.<Y>+linux.<arch>.tgz` */
  fileName: string;
}

/** Check the two tarballs against each other and work out the composed descriptor. */
export function planComposition(upstream: LifecycleTarball, overlay: LifecycleTarball): ComposePlan {
  if (upstream.platform.arch !== overlay.platform.arch) {
    throw new ComposeRefused(
      'architecture',
      `the upstream lifecycle ${upstream.path} is for ${upstream.platform.suffix} but the lifecycle overlay ${overlay.path} is for ${overlay.platform.suffix}; use the overlay of the same platform`,
    );
  }
  const platform = overlap('Platform', upstream.descriptor.apis.platform, overlay.descriptor.apis.platform);
  const buildpack = overlap('Buildpack', upstream.descriptor.apis.buildpack, overlay.descriptor.apis.buildpack);
  const version = composedVersion(upstream.version, overlay.version);
  const descriptor: LifecycleDescriptor = {
    apis: { buildpack, platform },
    api: { platform: platform.supported[0]!, buildpack: buildpack.supported[0]! },
    lifecycle: { version, ...(upstream.descriptor.lifecycle.sbomFormats ? { sbomFormats: upstream.descriptor.lifecycle.sbomFormats } : {}) },
  };
  return { upstream, overlay, version, descriptor, fileName: `lifecycle-v${version}+${upstream.platform.suffix}.tgz` };
}

/** The composed tarball's entries, sorted by name, every parent directory listed. */
export function composedEntries(plan: ComposePlan): TarEntry[] {
  const out = new Map<string, TarEntry>();
  for (const [name, entry] of plan.upstream.entries) {
    if (name === 'lifecycle.toml' || !name.startsWith('lifecycle/')) continue;
    if (name === 'lifecycle/lifecycle') out.set(UPSTREAM_LIFECYCLE_PATH, { ...entry, name: UPSTREAM_LIFECYCLE_PATH });
    else if (name === 'lifecycle/extender') continue;
    else if (entry.type === 'symlink' && entry.target === 'lifecycle' && (LIFECYCLE_PHASE_NAMES as readonly string[]).includes(name.slice('lifecycle/'.length))) {
      out.set(name, { type: 'symlink', name, target: 'upstream/lifecycle' });
    } else out.set(name, entry);
  }
  for (const [name, entry] of plan.overlay.entries) {
    if (name === 'lifecycle.toml' || entry.type === 'directory') continue;
    if (out.has(name)) throw new ComposeRefused('not-upstream', `the upstream lifecycle ${plan.upstream.path} has ${name}, which the extender's overlay ships too`);
    out.set(name, entry);
  }
  for (const name of [...out.keys()]) {
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (!out.has(dir)) out.set(dir, plan.upstream.entries.get(dir) ?? plan.overlay.entries.get(dir) ?? { type: 'directory', name: dir });
      else if (out.get(dir)!.type !== 'directory') throw new ComposeRefused('not-upstream', `the upstream lifecycle ${plan.upstream.path} has ${dir} as a ${out.get(dir)!.type}, where a directory is needed`);
    }
  }
  const sorted = [...out.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return [{ type: 'file', name: 'lifecycle.toml', content: Buffer.from(stringifyLifecycleDescriptor(plan.descriptor)) }, ...sorted];
}

export interface ComposeOptions {
  /** The upstream lifecycle release tarball. */
  upstream: string;
  /** This project's lifecycle overlay tarball for the same platform. */
  overlay: string;
  outDir: string;
  /** Default: SOURCE_DATE_EPOCH, else 1980-01-01T00:00:01Z. */
  mtime?: Date;
}

export interface ComposedLifecycle {
  /** The tarball written (with a `.sha256` file beside it). */
  path: string;
  version: string;
  upstreamVersion: string;
  extenderVersion: string;
  platform: ReleasePlatform;
  descriptor: LifecycleDescriptor;
}

/** Compose an upstream lifecycle and the overlay into one tarball in `outDir` (written atomically). */
export async function composeLifecycle(options: ComposeOptions): Promise<ComposedLifecycle> {
  const upstream = await readUpstreamLifecycle(options.upstream);
  const overlay = await readLifecycleOverlay(options.overlay);
  const plan = planComposition(upstream, overlay);
  const bytes = await writeTarGz(composedEntries(plan), options.mtime ?? releaseMtime());
  const path = join(options.outDir, plan.fileName);
  await mkdir(options.outDir, { recursive: true });
  await writeFileAtomic(path, bytes);
  await writeFileAtomic(`${path}.sha256`, sha256Line(bytes, plan.fileName));
  return { path, version: plan.version, upstreamVersion: upstream.version, extenderVersion: overlay.version, platform: upstream.platform, descriptor: plan.descriptor };
}

/** The platform an upstream tarball is for, without composing (the CLI builds the matching overlay). */
export async function upstreamPlatform(path: string): Promise<ReleasePlatform> {
  return (await readUpstreamLifecycle(path)).platform;
}
