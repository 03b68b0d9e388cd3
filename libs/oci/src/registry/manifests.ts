/**
 * Manifest operations of the registry client: HEAD, GET (size-limited,
 * digest-checked and shape-checked), PUT, following an index to the image for
 * a platform, and listing tags.
 */
import { sha256, type Digest } from '../digest.ts';
import { MediaType, isIndexMediaType } from '../media-types.ts';
import type { Descriptor, ImageIndex, ImageManifest, Platform } from '../model.ts';
import { formatReference, type ImageReference, type RepositoryRef } from '../reference.ts';
import { ShapeError, checkManifestDocument, parseJsonDocument } from '../validate.ts';
import { DigestMismatchError, MalformedContentError, NotFoundError, RegistryError, describeNetworkError } from './errors.ts';
import { errorInfo, inRepository, type RegistryResponse } from './request.ts';
import { readAll } from './streams.ts';
import type { RegistryTransport } from './transport.ts';

/** Every manifest media type we understand, most preferred first. */
export const MANIFEST_ACCEPT = [
  MediaType.ociIndex,
  MediaType.ociManifest,
  MediaType.dockerManifestList,
  MediaType.dockerManifest,
] as const;

/** Largest manifest we read (distribution's own limit is 4 MiB). */
export const MANIFEST_SIZE_LIMIT = 4 * 1024 * 1024;

/** A manifest as fetched: its exact bytes, its descriptor, and the parsed JSON. */
export interface ManifestResult {
  descriptor: Descriptor;
  bytes: Uint8Array;
  manifest: ImageManifest | ImageIndex;
}

/** An image manifest reached from a reference, through an index when there was one. */
export interface ResolvedImage extends ManifestResult {
  manifest: ImageManifest;
  /** The index the reference pointed at, when it pointed at one. */
  index?: ManifestResult;
}

interface ManifestOptions {
  accept?: readonly string[];
}

function defaultVariant(architecture: string): string | undefined {
  return architecture === 'arm64' ? 'v8' : architecture === 'arm' ? 'v7' : undefined;
}

/** Whether an index entry's platform satisfies the wanted one (os, architecture, variant with arm defaults). */
export function platformMatches(candidate: Platform | undefined, wanted: Platform): boolean {
  if (!candidate) return false;
  if (candidate.os !== wanted.os || candidate.architecture !== wanted.architecture) return false;
  if (wanted.variant === undefined) return true;
  const have = candidate.variant ?? defaultVariant(candidate.architecture);
  return have === wanted.variant;
}

function platformString(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

function manifestReference(ref: ImageReference): string {
  const reference = ref.digest ?? ref.tag;
  if (!reference) throw new RegistryError(`${ref.registry}/${ref.repository}: reference has neither tag nor digest`, errorInfo(ref));
  return reference;
}

/** HEAD (a 404 is an answer) or GET a manifest by `ref`'s digest or tag; what it was doing, for messages. */
async function requestManifest(
  transport: RegistryTransport,
  ref: ImageReference,
  options: ManifestOptions,
  method: 'HEAD' | 'GET',
): Promise<{ what: string; response: RegistryResponse }> {
  const reference = manifestReference(ref);
  const where = `${ref.registry}/${ref.repository}`;
  const what = method === 'HEAD' ? `checking manifest ${reference} in ${where}` : `pulling manifest ${reference} from ${where}`;
  const response = await transport.request({
    what,
    method,
    ...inRepository(ref, `manifests/${reference}`, ['pull']),
    headers: { accept: (options.accept ?? MANIFEST_ACCEPT).join(', ') },
    expect: method === 'HEAD' ? [200, 404] : [200],
  });
  return { what, response };
}

export async function headManifest(transport: RegistryTransport, ref: ImageReference, options: ManifestOptions): Promise<Descriptor | undefined> {
  const { what, response } = await requestManifest(transport, ref, options, 'HEAD');
  await response.body?.cancel().catch(() => {});
  if (response.status === 404) return undefined;
  const digest = response.headers.get('docker-content-digest');
  const size = Number(response.headers.get('content-length'));
  const mediaType = response.headers.get('content-type')?.split(';')[0]?.trim();
  if (!digest || !Number.isFinite(size) || !mediaType) {
    // Some registries omit these on HEAD; fall back to GET.
    return (await getManifest(transport, ref, options)).descriptor;
  }
  if (ref.digest && digest !== ref.digest) {
    throw new DigestMismatchError(`${what}: registry reports digest ${digest}`, errorInfo(ref));
  }
  return { mediaType, digest: digest as Digest, size };
}

export async function getManifest(transport: RegistryTransport, ref: ImageReference, options: ManifestOptions): Promise<ManifestResult> {
  const { what, response } = await requestManifest(transport, ref, options, 'GET');
  let bytes: Uint8Array;
  try {
    bytes = await readAll(response.body, MANIFEST_SIZE_LIMIT);
  } catch (error) {
    throw new RegistryError(`${what}: ${describeNetworkError(error)}`, errorInfo(ref), { cause: transport.redactor.sanitize(error) });
  }
  const digest = sha256(bytes);
  if (ref.digest && digest !== ref.digest) {
    throw new DigestMismatchError(`${what}: content has digest ${digest}`, errorInfo(ref));
  }
  try {
    const headerType = response.headers.get('content-type')?.split(';')[0]?.trim();
    const { mediaType, manifest } = checkManifestDocument(parseJsonDocument(bytes), headerType);
    return { descriptor: { mediaType, digest, size: bytes.byteLength }, bytes, manifest };
  } catch (error) {
    if (!(error instanceof ShapeError)) throw error;
    throw new MalformedContentError(`reading manifest of ${formatReference(ref)}: ${error.message}`, errorInfo(ref));
  }
}

export async function putManifest(
  transport: RegistryTransport,
  repo: RepositoryRef,
  reference: string,
  bytes: Uint8Array,
  mediaType: string,
): Promise<Descriptor> {
  const digest = sha256(bytes);
  const what = `pushing manifest ${digest} as ${reference} to ${repo.registry}/${repo.repository}`;
  const response = await transport.request({
    what,
    method: 'PUT',
    ...inRepository(repo, `manifests/${reference}`, ['pull', 'push']),
    headers: { 'content-type': mediaType },
    body: () => bytes,
    expect: [201, 200],
  });
  await response.body?.cancel().catch(() => {});
  const reported = response.headers.get('docker-content-digest');
  if (reported && reported !== digest) {
    throw new DigestMismatchError(`${what}: registry stored it as ${reported}`, errorInfo(repo));
  }
  return { mediaType, digest, size: bytes.byteLength };
}

/** Follow a reference through indexes (at most five deep) to the image manifest for `platform`. */
export async function resolveImage(transport: RegistryTransport, ref: ImageReference, platform: Platform): Promise<ResolvedImage> {
  let current = await getManifest(transport, ref, {});
  let index: ManifestResult | undefined;
  for (let depth = 0; isIndexMediaType(current.descriptor.mediaType) || 'manifests' in current.manifest; depth++) {
    if (depth > 4) throw new RegistryError(`resolving ${formatReference(ref)}: indexes nested too deeply`, errorInfo(ref));
    index ??= current;
    const chosen = chooseIndexEntry(ref, current.manifest as ImageIndex, platform);
    current = await getManifest(transport, { registry: ref.registry, repository: ref.repository, digest: chosen.digest }, {});
    current.descriptor = {
      ...current.descriptor,
      mediaType: chosen.mediaType || current.descriptor.mediaType,
      ...(chosen.platform ? { platform: chosen.platform } : {}),
    };
  }
  const result: ResolvedImage = { ...current, manifest: current.manifest as ImageManifest };
  if (index) result.index = index;
  return result;
}

/** The index entry for a platform, preferring an exact variant over an arm default. */
function chooseIndexEntry(ref: ImageReference, index: ImageIndex, platform: Platform): Descriptor {
  const entries = index.manifests ?? [];
  const candidates = entries.filter((d) => platformMatches(d.platform, platform));
  const chosen = candidates.find((d) => (d.platform?.variant ?? undefined) === platform.variant) ?? candidates[0];
  if (!chosen) {
    const available = entries.map((d) => (d.platform ? platformString(d.platform) : 'unknown')).join(', ');
    throw new NotFoundError(
      `resolving ${formatReference(ref)}: no manifest for platform ${platformString(platform)} (index has: ${available || 'nothing'})`,
      errorInfo(ref),
    );
  }
  return chosen;
}

/** Tags of a repository (`GET /v2/<name>/tags/list`), following pagination. */
export async function listTags(transport: RegistryTransport, repo: RepositoryRef): Promise<string[]> {
  const tags: string[] = [];
  let next: string | undefined = `/v2/${repo.repository}/tags/list`;
  while (next) {
    const response: RegistryResponse = await transport.request({
      what: `listing tags of ${repo.registry}/${repo.repository}`,
      registry: repo.registry,
      repository: repo.repository,
      method: 'GET',
      url: next,
      expect: [200, 404],
      scopes: [{ repository: repo.repository, actions: ['pull'] }],
    });
    if (response.status === 404) {
      await response.body?.cancel().catch(() => {});
      return [];
    }
    const parsed = JSON.parse(new TextDecoder().decode(await readAll(response.body, 16 << 20))) as { tags?: string[] | null };
    tags.push(...(parsed.tags ?? []));
    const link = response.headers.get('link');
    const match = link ? /<([^>]+)>;\s*rel="?next"?/.exec(link) : null;
    next = match ? new URL(match[1]!, response.url).toString() : undefined;
  }
  return tags;
}
