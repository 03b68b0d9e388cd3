import { describe, expect, it } from 'vitest';
import { sha256 } from './digest.ts';
import { MediaType } from './media-types.ts';
import { ShapeError, checkDescriptor, checkImageConfig, checkImageIndex, checkImageManifest, checkManifestDocument, parseJsonDocument } from './validate.ts';

const layer = { mediaType: MediaType.ociLayerGzip, digest: sha256('layer'), size: 5 };
const config = { mediaType: MediaType.ociConfig, digest: sha256('config'), size: 6 };
const manifest = { schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers: [layer] };
const index = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [{ ...config, mediaType: MediaType.ociManifest, platform: { os: 'linux', architecture: 'amd64' } }] };

function problem(check: () => unknown): string {
  try {
    check();
  } catch (error) {
    expect(error).toBeInstanceOf(ShapeError);
    return (error as Error).message;
  }
  throw new Error('the check passed');
}

describe('shape checks', () => {
  it('accepts well-formed documents of both families and keeps unknown fields', () => {
    expect(checkImageManifest({ ...manifest, annotations: { a: 'b' }, extra: 1 })).toMatchObject({ extra: 1 });
    expect(checkImageManifest({ schemaVersion: 2, mediaType: MediaType.dockerManifest, config, layers: [] }).layers).toEqual([]);
    expect(checkImageIndex({ schemaVersion: 2, mediaType: MediaType.dockerManifestList, manifests: [] }).manifests).toEqual([]);
    expect(checkImageConfig({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha256('tar')] }, history: [{ created_by: 'x' }] })).toBeTruthy();
    expect(checkImageConfig({ rootfs: { type: 'layers', diff_ids: [] }, history: null, config: null })).toBeTruthy();
  });

  it('tells manifests from indexes by mediaType, then Content-Type, then shape', () => {
    expect(checkManifestDocument(manifest).kind).toBe('manifest');
    expect(checkManifestDocument(index).kind).toBe('index');
    const { mediaType: _m, ...bare } = manifest;
    expect(checkManifestDocument(bare, MediaType.dockerManifest)).toMatchObject({ kind: 'manifest', mediaType: MediaType.dockerManifest });
    expect(checkManifestDocument(bare, 'application/json')).toMatchObject({ kind: 'manifest', mediaType: MediaType.ociManifest });
    const { mediaType: _i, ...bareIndex } = index;
    expect(checkManifestDocument(bareIndex)).toMatchObject({ kind: 'index', mediaType: MediaType.ociIndex });
    // The document's own mediaType wins over the header.
    expect(problem(() => checkManifestDocument({ ...index, mediaType: MediaType.ociManifest }, MediaType.ociIndex))).toBe('"config" is missing');
  });

  it('names the field and what is wrong with it', () => {
    const cases: [() => unknown, string][] = [
      [() => checkImageManifest({ ...manifest, layers: undefined }), '"layers" is missing'],
      [() => checkImageManifest({ ...manifest, config: undefined }), '"config" is missing'],
      [() => checkImageManifest({ ...manifest, config: 'sha256:x' }), '"config" is not an object'],
      [() => checkImageManifest({ ...manifest, layers: [layer, { ...layer, mediaType: '' }] }), '"layers[1].mediaType" is not a non-empty string'],
      [() => checkImageManifest({ ...manifest, layers: [{ ...layer, size: -1 }] }), '"layers[0].size" is not a non-negative integer'],
      [() => checkImageManifest({ ...manifest, layers: [{ ...layer, size: 1.5 }] }), '"layers[0].size" is not a non-negative integer'],
      [() => checkImageManifest({ ...manifest, layers: [{ ...layer, digest: 'md5:abc' }] }), '"layers[0].digest" is not a valid digest: unsupported digest algorithm "md5" in md5:abc'],
      [() => checkImageManifest({ ...manifest, layers: [{ ...layer, urls: 'http://x' }] }), '"layers[0].urls" is not an array of strings'],
      [() => checkImageManifest({ ...manifest, mediaType: MediaType.ociIndex }), '"mediaType" is "application/vnd.oci.image.index.v1+json", not an image manifest media type'],
      [() => checkImageManifest({ ...manifest, mediaType: 7 }), '"mediaType" is not a string'],
      [() => checkImageManifest({ ...manifest, schemaVersion: undefined }), '"schemaVersion" is missing'],
      [() => checkImageManifest({ ...manifest, schemaVersion: '2' }), '"schemaVersion" is "2", expected 2'],
      [() => checkImageManifest(null), 'not a JSON object'],
      [() => checkImageIndex({ ...index, manifests: undefined }), '"manifests" is missing'],
      [() => checkImageIndex({ ...index, manifests: [{ ...index.manifests[0], platform: { os: 'linux' } }] }), '"manifests[0].platform.architecture" is missing'],
      [() => checkImageIndex({ ...index, mediaType: MediaType.dockerManifest }), '"mediaType" is "application/vnd.docker.distribution.manifest.v2+json", not an image index media type'],
      [() => checkImageConfig({ architecture: 'amd64', os: 'linux' }), '"rootfs" is missing'],
      [() => checkImageConfig({ rootfs: { type: 'layers' } }), '"rootfs.diff_ids" is missing'],
      [() => checkImageConfig({ rootfs: { diff_ids: {} } }), '"rootfs.diff_ids" is not an array'],
      [() => checkImageConfig({ rootfs: { diff_ids: [sha256('a'), 'sha256:short'] } }), '"rootfs.diff_ids[1]" is not a valid digest: invalid sha256 digest "sha256:short": expected 64 lowercase hex characters'],
      [() => checkImageConfig({ rootfs: { diff_ids: [] }, history: {} }), '"history" is not an array'],
      [() => checkImageConfig({ rootfs: { diff_ids: [] }, history: ['x'] }), '"history[0]" is not an object'],
      [() => checkImageConfig({ rootfs: { diff_ids: [] }, config: [] }), '"config" is not an object'],
      [() => checkDescriptor({ mediaType: 'x', digest: sha256('x') }, 'subject'), '"subject.size" is missing'],
      [() => parseJsonDocument(new TextEncoder().encode('{')), expect.stringMatching(/^not JSON \(/) as unknown as string],
    ];
    for (const [check, message] of cases) expect(problem(check)).toEqual(message);
  });
});
