import { type Digest, sha256 } from './digest.ts';
import { defaultLayerTime } from './layer/entry.ts';
import { walkDirectory, type WalkOptions } from './layer/walk.ts';
import type { LayerWriteResult, WriteLayerOptions } from './layer/writer.ts';
import { defaultPlatform } from './layout/layout.ts';
import { OciLayoutWriter } from './layout/writer.ts';
import { familyOf, layerCompressionOf, layerMediaType, MediaType } from './media-types.ts';
import {
  canonicalJson,
  type ContainerConfig,
  type Descriptor,
  type HistoryEntry,
  type ImageConfig,
  type ImageIndex,
  type ImageManifest,
  type Platform,
} from './model.ts';

/** A manifest and config serialised as we write them, with their descriptors. */
export interface ImageDocuments {
  manifest: ImageManifest;
  manifestBytes: Buffer;
  manifestDescriptor: Descriptor;
  config: ImageConfig;
  configBytes: Buffer;
  configDescriptor: Descriptor;
}

/** A layer to put on top of an image. */
export interface AddedLayer {
  diffId: Digest;
  /** digest, size and mediaType of the blob (the mediaType's compression is kept, its family follows the image). */
  descriptor: Descriptor;
  history?: HistoryEntry;
}

export interface ExtendImageOptions {
  /** Changes to the runtime config (merged over the base's `config`). */
  config?: Partial<ContainerConfig>;
  /** `created` of the new config (default: the base's). */
  created?: string;
  /** Annotations of the new manifest (merged over the base's). */
  annotations?: Record<string, string>;
}

/**
 * Put layers on top of an image (pure: no I/O). The result keeps the base's
 * media type family: a Docker v2 base gets a Docker manifest, Docker config
 * type and Docker layer types for the new layers; an OCI base stays OCI. Every
 * field of the base manifest and config that we do not change survives.
 */
export function extendImage(base: { manifest: ImageManifest; config: ImageConfig }, added: AddedLayer[], options: ExtendImageOptions = {}): ImageDocuments {
  const family = familyOf(base.manifest.mediaType ?? base.manifest.config.mediaType);
  const config: ImageConfig = {
    ...base.config,
    rootfs: { type: 'layers', diff_ids: [...base.config.rootfs.diff_ids, ...added.map((l) => l.diffId)] },
  };
  if (options.created !== undefined) config.created = options.created;
  if (options.config) config.config = { ...base.config.config, ...options.config };
  const history = [...(base.config.history ?? [])];
  for (const layer of added) history.push(layer.history ?? { created: config.created ?? defaultCreated() });
  if (history.length > 0) config.history = history;

  const manifest: ImageManifest = {
    ...base.manifest,
    layers: [
      ...base.manifest.layers,
      ...added.map((l) => ({ ...l.descriptor, mediaType: layerMediaType(family, layerCompressionOf(l.descriptor.mediaType)) })),
    ],
  };
  if (options.annotations) manifest.annotations = { ...base.manifest.annotations, ...options.annotations };
  return documents(manifest, config, base.manifest.config.mediaType);
}

/** Serialise a manifest + config pair: the config descriptor is filled in from the config's bytes. */
export function documents(manifest: ImageManifest, config: ImageConfig, configMediaType: string): ImageDocuments {
  const configBytes = Buffer.from(canonicalJson(config));
  const configDescriptor: Descriptor = { mediaType: configMediaType, digest: sha256(configBytes), size: configBytes.length };
  const finalManifest: ImageManifest = { ...manifest, config: configDescriptor };
  const manifestBytes = Buffer.from(canonicalJson(finalManifest));
  const manifestMediaType = finalManifest.mediaType ?? MediaType.ociManifest;
  return {
    manifest: finalManifest,
    manifestBytes,
    manifestDescriptor: { mediaType: manifestMediaType, digest: sha256(manifestBytes), size: manifestBytes.length },
    config,
    configBytes,
    configDescriptor,
  };
}

function defaultCreated(): string {
  return defaultLayerTime().toISOString().replace(/\.000Z$/, 'Z');
}

export interface BuildImageOptions {
  /** The directory whose content becomes the image's single layer. */
  rootfs: string;
  /** The OCI layout to write (created, or updated with keepExisting). */
  layoutDir: string;
  /** `org.opencontainers.image.ref.name` in index.json. */
  refName?: string;
  /** Add to the layout's existing images instead of replacing the layout. */
  keepExisting?: boolean;
  platform?: Pick<Platform, 'os' | 'architecture' | 'variant'>;
  /** The runtime config (Env, Entrypoint, User, Labels, …). */
  config?: ContainerConfig;
  /** `created` of the config and history (default: the layer time, 1980-01-01T00:00:01Z or SOURCE_DATE_EPOCH). */
  created?: string;
  /** `created_by` of the layer's history entry. */
  createdBy?: string;
  layer?: Omit<WriteLayerOptions, 'family' | 'signal'>;
  walk?: WalkOptions;
}

export interface BuiltImage extends ImageDocuments {
  layer: LayerWriteResult;
}

/**
 * Build an image from a directory: rootfs → one reproducible layer → config →
 * OCI manifest, written to an OCI layout. The same directory (content, modes,
 * owners, xattrs) always gives the same manifest digest.
 */
export async function buildImageFromDirectory(options: BuildImageOptions): Promise<BuiltImage> {
  const writer = await OciLayoutWriter.create(options.layoutDir, { keepExisting: options.keepExisting ?? false });
  try {
    const image = await writeImageFromDirectory(writer, options);
    writer.addManifest(image.manifestDescriptor, options.refName);
    await writer.commit();
    return image;
  } catch (cause) {
    await writer.abort();
    throw cause;
  }
}

/** What `writeImageFromDirectory` needs: `buildImageFromDirectory`'s options without the layout's. */
export type DirectoryImageOptions = Omit<BuildImageOptions, 'layoutDir' | 'refName' | 'keepExisting'>;

/**
 * Write the blobs of an image made from a directory (layer, config, manifest) with
 * `writer`, without listing it in index.json: for images that an index refers to.
 */
export async function writeImageFromDirectory(writer: OciLayoutWriter, options: DirectoryImageOptions): Promise<BuiltImage> {
  const created = options.created ?? (options.layer?.mtime ? options.layer.mtime.toISOString().replace(/\.000Z$/, 'Z') : defaultCreated());
  const entries = await walkDirectory(options.rootfs, options.walk);
  const layer = await writer.writeLayer(entries, options.layer);
  const platform: Pick<Platform, 'os' | 'architecture' | 'variant'> = options.platform ?? defaultPlatform();
  const config: ImageConfig = {
    created,
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config: options.config ?? {},
    rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    history: [{ created, created_by: options.createdBy ?? 'cnb-extender: layer from a directory' }],
  };
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: sha256(''), size: 0 },
    layers: [layer.descriptor],
  };
  const docs = documents(manifest, config, MediaType.ociConfig);
  await writer.putBytes(docs.configBytes, docs.configDescriptor.mediaType);
  await writer.putBytes(docs.manifestBytes, docs.manifestDescriptor.mediaType);
  return { ...docs, layer };
}

export interface BuildImageIndexOptions {
  /** The OCI layout to write (created, or updated with keepExisting). */
  layoutDir: string;
  /** `org.opencontainers.image.ref.name` of the index in index.json. */
  refName?: string;
  keepExisting?: boolean;
  /** One image per platform, listed in the index in this order. */
  images: (DirectoryImageOptions & { platform: Pick<Platform, 'os' | 'architecture' | 'variant'> })[];
  /** Annotations of the index. */
  annotations?: Record<string, string>;
}

export interface BuiltImageIndex {
  index: ImageIndex;
  indexBytes: Buffer;
  indexDescriptor: Descriptor;
  /** The images, in the order of `options.images`. */
  images: BuiltImage[];
}

/**
 * A multi-platform image: one image per directory (as `buildImageFromDirectory`
 * makes them), listed with its platform in an OCI image index, which index.json
 * lists under `refName`. Reproducible like the images it holds.
 */
export async function buildImageIndexFromDirectories(options: BuildImageIndexOptions): Promise<BuiltImageIndex> {
  const seen = new Set<string>();
  for (const { platform } of options.images) {
    const key = [platform.os, platform.architecture, platform.variant ?? ''].join('/');
    if (seen.has(key)) throw new Error(`building an image index in ${options.layoutDir}: two images for platform ${key.replace(/\/$/, '')}`);
    seen.add(key);
  }
  if (options.images.length === 0) throw new Error(`building an image index in ${options.layoutDir}: no images`);
  const writer = await OciLayoutWriter.create(options.layoutDir, { keepExisting: options.keepExisting ?? false });
  try {
    const images: BuiltImage[] = [];
    for (const image of options.images) images.push(await writeImageFromDirectory(writer, image));
    const index: ImageIndex = {
      schemaVersion: 2,
      mediaType: MediaType.ociIndex,
      manifests: images.map((image, i) => {
        const { os, architecture, variant } = options.images[i]!.platform;
        return { ...image.manifestDescriptor, platform: { architecture, os, ...(variant ? { variant } : {}) } };
      }),
      ...(options.annotations ? { annotations: options.annotations } : {}),
    };
    const indexBytes = Buffer.from(canonicalJson(index));
    const indexDescriptor = await writer.putBytes(indexBytes, MediaType.ociIndex);
    writer.addManifest(indexDescriptor, options.refName);
    await writer.commit();
    return { index, indexBytes, indexDescriptor, images };
  } catch (cause) {
    await writer.abort();
    throw cause;
  }
}
