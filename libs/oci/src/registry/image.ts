/**
 * Whole-image operations on top of RegistryClient: push an image (blobs, then
 * the manifest, then tags), pull one (into a blob sink or an OCI layout), and
 * resolve a reference to a digest.
 */
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { sha256, type Digest } from '../digest.ts';
import { LayoutError, OciLayout, type ImageSelector } from '../layout/layout.ts';
import { OciLayoutWriter } from '../layout/writer.ts';
import { MediaType } from '../media-types.ts';
import { canonicalJson, type Descriptor, type ImageConfig, type ImageManifest, type Platform } from '../model.ts';
import { formatReference, withDigest, withTag, type ImageReference } from '../reference.ts';
import { ShapeError, checkImageConfig, checkImageManifest, parseJsonDocument } from '../validate.ts';
import { MalformedContentError, NotFoundError, RegistryError } from './errors.ts';
import type { BlobPushResult, RegistryClient, ManifestResult } from './client.ts';
import { toWebStream, type BlobData } from './streams.ts';

/** Where pushImage reads blobs from. `open` is called again for every upload attempt. */
export interface BlobSource {
  open(descriptor: Descriptor): BlobData | Promise<BlobData>;
}

/** Where pullImage writes blobs to. Streams handed to `write` are digest-verified as they are read. */
export interface BlobSink {
  /** True when the sink already holds the blob (it is then not downloaded). */
  has?(descriptor: Descriptor): Promise<boolean>;
  write(descriptor: Descriptor, data: ReadableStream<Uint8Array>): Promise<void>;
  /** Called last, with the image manifest's descriptor, once every blob is written. */
  finish?(manifest: Descriptor, reference: ImageReference): Promise<void>;
}

/** Blobs held in memory, keyed by their sha256 digest. */
export function memoryBlobSource(blobs: Iterable<Uint8Array> | Map<string, Uint8Array>): BlobSource {
  const map = new Map<string, Uint8Array>();
  if (blobs instanceof Map) for (const [digest, bytes] of blobs) map.set(digest, bytes);
  else for (const bytes of blobs) map.set(sha256(bytes), bytes);
  return {
    open(descriptor) {
      const bytes = map.get(descriptor.digest);
      if (!bytes) throw new Error(`blob ${descriptor.digest} is not in the source`);
      return bytes;
    },
  };
}

/** Blobs of an OCI image layout (a directory or an opened OciLayout); every read is digest-checked. */
export function layoutBlobSource(layout: string | OciLayout): BlobSource {
  let opened: Promise<OciLayout> | undefined;
  const get = () => (opened ??= typeof layout === 'string' ? OciLayout.open(layout) : Promise.resolve(layout));
  return {
    async open(descriptor) {
      return Readable.toWeb((await get()).openBlob(descriptor)) as ReadableStream<Uint8Array>;
    },
  };
}

/** Blobs collected in memory (tests, small images). */
export function memoryBlobSink(): BlobSink & { blobs: Map<string, Uint8Array> } {
  const blobs = new Map<string, Uint8Array>();
  return {
    blobs,
    async has(descriptor) {
      return blobs.has(descriptor.digest);
    },
    async write(descriptor, data) {
      const chunks: Uint8Array[] = [];
      for await (const chunk of data) chunks.push(chunk);
      blobs.set(descriptor.digest, Buffer.concat(chunks));
    },
  };
}

/**
 * A sink that stages blobs in an OciLayoutWriter (verified against their
 * descriptors) and lists the manifest under `refName` on `finish`. The caller
 * commits or aborts the writer.
 */
export function layoutWriterSink(writer: OciLayoutWriter, options: { refName?: string } = {}): BlobSink {
  return {
    async has(descriptor) {
      return writer.hasBlob(descriptor.digest);
    },
    async write(descriptor, data) {
      try {
        await writer.putBlob(Readable.fromWeb(data as NodeReadableStream<Uint8Array>), descriptor.mediaType, descriptor);
      } catch (error) {
        // The download failed, not the write: say so (nothing was stored).
        if (error instanceof LayoutError && error.cause instanceof RegistryError) throw error.cause;
        throw error;
      }
    },
    async finish(manifest, reference) {
      const entry: Descriptor = { mediaType: manifest.mediaType, digest: manifest.digest, size: manifest.size };
      if (manifest.platform) entry.platform = manifest.platform;
      writer.addManifest(entry, options.refName ?? reference.tag);
    },
  };
}

export type PushEvent =
  | { type: 'blob'; descriptor: Descriptor; result: BlobPushResult | 'skipped-foreign' }
  | { type: 'manifest'; descriptor: Descriptor; reference: string };

export interface PushImageOptions {
  /** The image manifest, as an object (written as canonical JSON) or as exact bytes. */
  manifest: ImageManifest | { bytes: Uint8Array; mediaType?: string };
  /** Where the config and layer blobs come from. */
  source: BlobSource;
  /** More tags to point at the manifest, besides the reference's own tag. */
  tags?: string[];
  /** Repositories of the same registry to mount blobs from before uploading. */
  mountFrom?: string[];
  /** Blobs in flight at once. Default 3. */
  concurrency?: number;
  /** Told about each blob and manifest once it is in the registry, never before. */
  onProgress?: (event: PushEvent) => void;
}

export interface PushImageResult {
  /** The manifest as stored. */
  descriptor: Descriptor;
  /** The pushed reference pinned to the manifest digest. */
  reference: ImageReference;
  /** Tags now pointing at the manifest. */
  tags: string[];
  blobs: { digest: Digest; size: number; result: BlobPushResult | 'skipped-foreign' }[];
}

/**
 * Push an image: every blob (config and layers, skipping ones the repository
 * has), then the manifest under the reference's tag (or its digest), then any
 * extra tags. Nothing is reported done before the registry confirmed it; when a
 * blob fails the manifest is not pushed.
 */
export async function pushImage(client: RegistryClient, ref: ImageReference, options: PushImageOptions): Promise<PushImageResult> {
  const given = 'bytes' in options.manifest && options.manifest.bytes instanceof Uint8Array ? (options.manifest as { bytes: Uint8Array; mediaType?: string }) : undefined;
  const bytes = given?.bytes ?? new TextEncoder().encode(canonicalJson(options.manifest));
  const manifest = checked(ref, `pushing the manifest to ${ref.registry}/${ref.repository}`, () => checkImageManifest(parseJsonDocument(bytes)));
  const mediaType = given?.mediaType ?? manifest.mediaType ?? MediaType.ociManifest;
  const blobs = dedupe([manifest.config, ...manifest.layers]);
  const results: PushImageResult['blobs'] = [];
  await mapLimit(blobs, options.concurrency ?? 3, async (descriptor) => {
    let result: BlobPushResult | 'skipped-foreign';
    const foreign = descriptor.mediaType.includes('nondistributable') || descriptor.mediaType === MediaType.dockerLayerForeignGzip;
    if (foreign && descriptor.urls?.length) {
      result = 'skipped-foreign';
    } else {
      const pushOptions: { mountFrom?: string[] } = {};
      if (options.mountFrom) pushOptions.mountFrom = options.mountFrom;
      result = await client.pushBlob(ref, descriptor, () => options.source.open(descriptor), pushOptions);
    }
    results.push({ digest: descriptor.digest, size: descriptor.size, result });
    options.onProgress?.({ type: 'blob', descriptor, result });
  });

  const tags = [...new Set([...(ref.tag ? [ref.tag] : []), ...(options.tags ?? [])])];
  const digest = sha256(bytes);
  let descriptor: Descriptor | undefined;
  for (const reference of tags.length ? tags : [digest]) {
    const target = reference === digest ? ref : withTag(ref, reference);
    descriptor = await client.putManifest(target, reference, bytes, mediaType);
    options.onProgress?.({ type: 'manifest', descriptor, reference });
  }
  return { descriptor: descriptor!, reference: withDigest(ref, digest), tags, blobs: results };
}

export interface PullImageOptions {
  /** Platform to pick from an index. Default: this host's. */
  platform?: Platform;
  /** Where the blobs go. Give this or `layoutDir`. */
  sink?: BlobSink;
  /** Pull into this OCI image layout (created when missing; written atomically, other images kept). */
  layoutDir?: string | undefined;
  /** `org.opencontainers.image.ref.name` for the layout's index.json. Default: the reference's tag. */
  refName?: string;
  concurrency?: number;
}

export interface PullImageResult {
  descriptor: Descriptor;
  manifest: ImageManifest;
  manifestBytes: Uint8Array;
  config: ImageConfig;
  /** The index the reference pointed at, if any. */
  index?: ManifestResult;
}

/** Pull an image (the platform's manifest of an index): config, layers and manifest into a sink or layout. */
export async function pullImage(client: RegistryClient, ref: ImageReference, options: PullImageOptions = {}): Promise<PullImageResult> {
  if (!options.sink && options.layoutDir) {
    // Into a layout: stage everything, then swap it in atomically (other images in it are kept).
    const writer = await OciLayoutWriter.create(options.layoutDir, { keepExisting: true });
    const sinkOptions: { refName?: string } = {};
    if (options.refName) sinkOptions.refName = options.refName;
    try {
      const result = await pullImage(client, ref, { ...options, layoutDir: undefined, sink: layoutWriterSink(writer, sinkOptions) });
      await writer.commit();
      return result;
    } catch (error) {
      await writer.abort();
      throw error;
    }
  }
  const sink = options.sink;
  if (!sink) throw new Error('pullImage needs a sink or a layoutDir');
  const resolved = await client.resolveImage(ref, options.platform);
  const { manifest } = resolved;
  const configBytes = await client.getBlobBytes(ref, manifest.config);
  const config = checked(ref, `reading config ${manifest.config.digest} of ${formatReference(ref)}`, () => checkImageConfig(parseJsonDocument(configBytes)));
  if (!(await sink.has?.(manifest.config))) await sink.write(manifest.config, toWebStream(configBytes));
  await mapLimit(dedupe(manifest.layers), options.concurrency ?? 3, async (layer) => {
    if (await sink.has?.(layer)) return;
    await sink.write(layer, await client.getBlob(ref, layer));
  });
  await sink.write(resolved.descriptor, toWebStream(resolved.bytes));
  await sink.finish?.(resolved.descriptor, ref);
  const result: PullImageResult = { descriptor: resolved.descriptor, manifest, manifestBytes: resolved.bytes, config };
  if (resolved.index) result.index = resolved.index;
  return result;
}

/**
 * The digest a reference points at (what `crane digest` prints): the manifest or
 * index as stored. With a platform, an index is followed to that platform's manifest.
 */
export async function resolveDigest(client: RegistryClient, ref: ImageReference, options: { platform?: Platform } = {}): Promise<Digest> {
  if (options.platform) return (await client.resolveImage(ref, options.platform)).descriptor.digest;
  const descriptor = await client.headManifest(ref);
  if (!descriptor) {
    throw new NotFoundError(`resolving ${formatReference(ref)}: manifest unknown`, {
      registry: ref.registry,
      repository: ref.repository,
      status: 404,
    });
  }
  return descriptor.digest;
}

/** Run a shape check; its complaint becomes a MalformedContentError after `what`. */
function checked<T>(ref: ImageReference, what: string, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (!(error instanceof ShapeError)) throw error;
    throw new MalformedContentError(`${what}: ${error.message}`, { registry: ref.registry, repository: ref.repository });
  }
}

function dedupe(descriptors: Descriptor[]): Descriptor[] {
  const seen = new Set<string>();
  return descriptors.filter((d) => !seen.has(d.digest) && (seen.add(d.digest), true));
}

/** Run `fn` over items, `limit` at a time; after the first failure start nothing new, wait, and throw it. */
async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async () => {
    while (!failure && next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (error) {
        failure ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failure) throw failure.error;
}

export interface PushLayoutImageOptions extends Omit<PushImageOptions, 'manifest' | 'source'> {
  /** Which image of the layout (ref name, digest, platform); default: the only one. */
  selector?: ImageSelector;
}

/**
 * Push an image from an OCI layout, manifest bytes exactly as stored. Works on
 * sparse layouts too: a layer missing from the layout must already be in the
 * repository or mountable from `mountFrom`, else the push fails naming it.
 */
export async function pushLayoutImage(
  client: RegistryClient,
  ref: ImageReference,
  layout: string | OciLayout,
  options: PushLayoutImageOptions = {},
): Promise<PushImageResult> {
  const opened = typeof layout === 'string' ? await OciLayout.open(layout) : layout;
  const image = await opened.image(options.selector ?? {});
  const { selector: _selector, ...rest } = options;
  return pushImage(client, ref, {
    ...rest,
    manifest: { bytes: image.manifestBytes, mediaType: image.descriptor.mediaType },
    source: layoutBlobSource(opened),
  });
}
