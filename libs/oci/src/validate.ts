/**
 * Shape checks for the JSON documents of an image: manifests, indexes and
 * configs. Each `check…` returns its input typed, or throws a ShapeError whose
 * message says what is wrong (`"layers" is missing`, `"layers[1].size" is not a
 * non-negative integer`); callers put the action and the reference in front.
 * Only what our code relies on is checked; unknown fields are left alone.
 */
import { DigestError, parseDigest } from './digest.ts';
import { MediaType, isIndexMediaType, isManifestMediaType } from './media-types.ts';
import type { Descriptor, ImageConfig, ImageIndex, ImageManifest } from './model.ts';

/** A document without the shape its kind requires; the message names the field and the problem. */
export class ShapeError extends Error {
  override name = 'ShapeError';
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function field(parent: Json, name: string, path: string): unknown {
  if (!(name in parent) || parent[name] === undefined) throw new ShapeError(`"${path}" is missing`);
  return parent[name];
}

function object(parent: Json, name: string, path: string): Json {
  const value = field(parent, name, path);
  if (!isObject(value)) throw new ShapeError(`"${path}" is not an object`);
  return value;
}

function array(parent: Json, name: string, path: string): unknown[] {
  const value = field(parent, name, path);
  if (!Array.isArray(value)) throw new ShapeError(`"${path}" is not an array`);
  return value;
}

function string(parent: Json, name: string, path: string): string {
  const value = field(parent, name, path);
  if (typeof value !== 'string' || value === '') throw new ShapeError(`"${path}" is not a non-empty string`);
  return value;
}

function digest(value: unknown, path: string): void {
  if (typeof value !== 'string') throw new ShapeError(`"${path}" is not a digest string`);
  try {
    parseDigest(value);
  } catch (error) {
    if (error instanceof DigestError) throw new ShapeError(`"${path}" is not a valid digest: ${error.message}`);
    throw error;
  }
}

/** Parse JSON text, failing with a ShapeError (`not JSON (…)`). */
export function parseJsonDocument(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (error) {
    throw new ShapeError(`not JSON (${(error as Error).message})`);
  }
}

/** A content descriptor: media type, digest, size; a platform, when present, with os and architecture. */
export function checkDescriptor(value: unknown, path: string): Descriptor {
  if (!isObject(value)) throw new ShapeError(`"${path}" is not an object`);
  string(value, 'mediaType', `${path}.mediaType`);
  digest(field(value, 'digest', `${path}.digest`), `${path}.digest`);
  const size = field(value, 'size', `${path}.size`);
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) throw new ShapeError(`"${path}.size" is not a non-negative integer`);
  if (value.platform !== undefined) {
    const platform = object(value, 'platform', `${path}.platform`);
    string(platform, 'os', `${path}.platform.os`);
    string(platform, 'architecture', `${path}.platform.architecture`);
  }
  if (value.urls !== undefined && (!Array.isArray(value.urls) || value.urls.some((u) => typeof u !== 'string'))) {
    throw new ShapeError(`"${path}.urls" is not an array of strings`);
  }
  return value as unknown as Descriptor;
}

function checkTop(value: unknown): Json {
  if (!isObject(value)) throw new ShapeError('not a JSON object');
  const version = field(value, 'schemaVersion', 'schemaVersion');
  if (version !== 2) {
    const schema1 = version === 1 ? ' (Docker schema 1 manifests are not supported)' : '';
    throw new ShapeError(`"schemaVersion" is ${JSON.stringify(version)}, expected 2${schema1}`);
  }
  if (value.mediaType !== undefined && typeof value.mediaType !== 'string') throw new ShapeError('"mediaType" is not a string');
  return value;
}

/** An image manifest (OCI, or Docker v2 schema 2): config and layers descriptors. */
export function checkImageManifest(value: unknown): ImageManifest {
  const doc = checkTop(value);
  if (doc.mediaType !== undefined && !isManifestMediaType(doc.mediaType as string)) {
    throw new ShapeError(`"mediaType" is ${JSON.stringify(doc.mediaType)}, not an image manifest media type`);
  }
  checkDescriptor(field(doc, 'config', 'config'), 'config');
  array(doc, 'layers', 'layers').forEach((layer, i) => checkDescriptor(layer, `layers[${i}]`));
  if (doc.subject !== undefined) checkDescriptor(doc.subject, 'subject');
  return doc as unknown as ImageManifest;
}

/** An image index (OCI, or a Docker manifest list): manifest descriptors. */
export function checkImageIndex(value: unknown): ImageIndex {
  const doc = checkTop(value);
  if (doc.mediaType !== undefined && !isIndexMediaType(doc.mediaType as string)) {
    throw new ShapeError(`"mediaType" is ${JSON.stringify(doc.mediaType)}, not an image index media type`);
  }
  array(doc, 'manifests', 'manifests').forEach((entry, i) => checkDescriptor(entry, `manifests[${i}]`));
  return doc as unknown as ImageIndex;
}

/**
 * A manifest or an index, told apart by its `mediaType` field, else by a
 * manifest or index `contentType` (the response's Content-Type), else by
 * whether it lists `manifests`. Returns it with the media type it has.
 */
export function checkManifestDocument(
  value: unknown,
  contentType?: string,
): { mediaType: string; kind: 'index'; manifest: ImageIndex } | { mediaType: string; kind: 'manifest'; manifest: ImageManifest } {
  const doc = checkTop(value);
  const known = (type: unknown): type is string => typeof type === 'string' && (isIndexMediaType(type) || isManifestMediaType(type));
  if (doc.mediaType !== undefined && !known(doc.mediaType)) {
    throw new ShapeError(`"mediaType" is ${JSON.stringify(doc.mediaType)}, not a manifest or index media type`);
  }
  const mediaType = known(doc.mediaType)
    ? doc.mediaType
    : known(contentType)
      ? contentType
      : 'manifests' in doc
        ? MediaType.ociIndex
        : MediaType.ociManifest;
  return isIndexMediaType(mediaType)
    ? { mediaType, kind: 'index', manifest: checkImageIndex(doc) }
    : { mediaType, kind: 'manifest', manifest: checkImageManifest(doc) };
}

/** An image config: `rootfs.diff_ids` a list of digests; `history` and `config`, when present, of the right type. */
export function checkImageConfig(value: unknown): ImageConfig {
  if (!isObject(value)) throw new ShapeError('not a JSON object');
  const rootfs = object(value, 'rootfs', 'rootfs');
  array(rootfs, 'diff_ids', 'rootfs.diff_ids').forEach((d, i) => digest(d, `rootfs.diff_ids[${i}]`));
  if (value.history !== undefined && value.history !== null) {
    const history = array(value, 'history', 'history');
    history.forEach((entry, i) => {
      if (!isObject(entry)) throw new ShapeError(`"history[${i}]" is not an object`);
    });
  }
  if (value.config !== undefined && value.config !== null && !isObject(value.config)) throw new ShapeError('"config" is not an object');
  return value as unknown as ImageConfig;
}
