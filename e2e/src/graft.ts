/**
 * Images for the pack-style end-to-end test, made the way platforms make them: an
 * image's last layer put on top of another image (pack grafts the lifecycle image's
 * last layer onto the run image for run-image extension; builders carry the lifecycle
 * as a layer of their own). Pure OCI layout work with libs/oci: the layer blobs are
 * copied byte for byte, the base's manifest and config are kept, and the result is an
 * OCI layout that `publishImage` (tools/testenv) pushes and pulls into dockerd.
 */
import { extendImage, OciLayout, OciLayoutWriter, type AddedLayer, type Digest, type ImageSelector } from '@cnb-extender/oci';

/** One layer of an image in a layout, with what it takes to put it on another image. */
export interface LayoutLayer extends AddedLayer {
  /** The layer's blob file. */
  blob: string;
}

/** The last layer of an image of `layoutDir` (the only image, or the one `selector` names). */
export async function lastLayer(layoutDir: string, selector: ImageSelector = {}): Promise<LayoutLayer> {
  const layout = await OciLayout.open(layoutDir);
  const image = await layout.image(selector);
  const descriptor = image.manifest.layers.at(-1);
  const diffId = image.config.rootfs.diff_ids.at(-1);
  if (!descriptor || !diffId) throw new Error(`taking the last layer of ${image.descriptor.digest} in ${layoutDir}: the image has no layers`);
  const history = (image.config.history ?? []).filter((h) => !h.empty_layer).at(-1);
  return { blob: layout.blobPath(descriptor.digest), descriptor, diffId, history };
}

/** An image written to an OCI layout, as tools/testenv's `publishImage` takes it. */
export interface GraftedImage {
  layoutDir: string;
  layoutTag: string;
  manifestDigest: Digest;
}

/**
 * Write `base` with `layers` on top of it to a new full layout at `out.layoutDir`
 * (ref name `out.refName`). The base keeps its manifest and config fields, media type
 * family and layer blobs; each added layer keeps its blob and history entry.
 */
export async function graftLayers(base: { layoutDir: string; manifestDigest: string }, layers: readonly LayoutLayer[], out: { layoutDir: string; refName: string }): Promise<GraftedImage> {
  const baseLayout = await OciLayout.open(base.layoutDir);
  const image = await baseLayout.image({ digest: base.manifestDigest as Digest });
  const docs = extendImage({ manifest: image.manifest, config: image.config }, [...layers]);
  const writer = await OciLayoutWriter.create(out.layoutDir);
  try {
    for (const layer of image.manifest.layers) await writer.putBlob(baseLayout.blobPath(layer.digest), layer.mediaType, layer);
    for (const layer of layers) await writer.putBlob(layer.blob, layer.descriptor.mediaType, layer.descriptor);
    await writer.putBytes(docs.configBytes, docs.configDescriptor.mediaType);
    await writer.putBytes(docs.manifestBytes, docs.manifestDescriptor.mediaType);
    writer.addManifest(docs.manifestDescriptor, out.refName);
    await writer.commit();
  } catch (cause) {
    await writer.abort();
    throw new Error(`putting ${layers.length} layer(s) on ${base.manifestDigest} from ${base.layoutDir} into ${out.layoutDir}: ${(cause as Error).message}`, { cause });
  }
  return { layoutDir: out.layoutDir, layoutTag: out.refName, manifestDigest: docs.manifestDescriptor.digest };
}
