/** Media types of OCI and Docker v2 schema 2 artifacts. */
export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerLayerForeignGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

export type MediaTypeName = (typeof MediaType)[keyof typeof MediaType];

export type LayerCompression = 'none' | 'gzip' | 'zstd';

/** Which manifest family a media type belongs to, so extending keeps the base's family. */
export type MediaTypeFamily = 'oci' | 'docker';

export function isIndexMediaType(mediaType: string | undefined): boolean {
  return mediaType === MediaType.ociIndex || mediaType === MediaType.dockerManifestList;
}

export function isManifestMediaType(mediaType: string | undefined): boolean {
  return mediaType === MediaType.ociManifest || mediaType === MediaType.dockerManifest;
}

export function familyOf(mediaType: string | undefined): MediaTypeFamily {
  return mediaType?.startsWith('application/vnd.docker.') ? 'docker' : 'oci';
}

/** The compression a layer media type declares (`+gzip`, `.gzip`, `+zstd`, or none). */
export function layerCompressionOf(mediaType: string): LayerCompression {
  if (mediaType.endsWith('+zstd') || mediaType.endsWith('.zstd')) return 'zstd';
  if (mediaType.endsWith('+gzip') || mediaType.endsWith('.gzip')) return 'gzip';
  return 'none';
}

/** The layer media type for a compression in a manifest family. */
export function layerMediaType(family: MediaTypeFamily, compression: LayerCompression): string {
  if (family === 'docker') {
    // Docker schema 2 has only the gzip layer type; other compressions use OCI types.
    if (compression === 'gzip') return MediaType.dockerLayerGzip;
  }
  switch (compression) {
    case 'gzip':
      return MediaType.ociLayerGzip;
    case 'zstd':
      return MediaType.ociLayerZstd;
    case 'none':
      return MediaType.ociLayer;
  }
}
