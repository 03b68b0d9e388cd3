/**
 * Push the release's image index from its OCI layout with libs/oci's registry client: each
 * platform's image (blobs, then its manifest by digest), then the index under the tag,
 * exact bytes throughout, so the registry holds the digests the layout has.
 */
import { layoutBlobSource, MediaType, OciLayout, pushImage, type ImageIndex, type RegistryClient, type RepositoryRef } from '@cnb-extender/oci';

export interface PushedIndex {
  /** `<registry>/<repository>:<tag>`. */
  reference: string;
  /** The index's digest, as the layout and the registry have it. */
  digest: string;
  /** The manifests the index lists, pushed by digest. */
  manifests: string[];
}

export async function pushImageIndex(client: RegistryClient, layoutDir: string, tag: string, target: RepositoryRef): Promise<PushedIndex> {
  const reference = `${target.registry}/${target.repository}:${tag}`;
  try {
    const layout = await OciLayout.open(layoutDir);
    const entry = layout.refs().find((r) => r.refName === tag);
    if (!entry) throw new Error(`the layout lists no image ${tag}`);
    if (entry.descriptor.mediaType !== MediaType.ociIndex) throw new Error(`${tag} is a ${entry.descriptor.mediaType}, not an image index`);
    const indexBytes = await layout.readBlob(entry.descriptor);
    const index = JSON.parse(indexBytes.toString('utf8')) as ImageIndex;
    const manifests: string[] = [];
    for (const manifest of index.manifests) {
      if (!manifest.platform) throw new Error(`manifest ${manifest.digest} of the index has no platform`);
      const image = await layout.image({ refName: tag, platform: manifest.platform });
      if (image.descriptor.digest !== manifest.digest) throw new Error(`the layout gives ${image.descriptor.digest} for the platform of ${manifest.digest}`);
      // no tag: the manifest goes in by digest, and only the index gets the tag
      await pushImage(client, { registry: target.registry, repository: target.repository }, {
        manifest: { bytes: image.manifestBytes, mediaType: manifest.mediaType },
        source: layoutBlobSource(layout),
      });
      manifests.push(manifest.digest);
    }
    const pushed = await client.putManifest(target, tag, indexBytes, entry.descriptor.mediaType);
    if (pushed.digest !== entry.descriptor.digest) throw new Error(`the registry took the index as ${pushed.digest}, the layout has ${entry.descriptor.digest}`);
    return { reference, digest: pushed.digest, manifests };
  } catch (cause) {
    throw new Error(`pushing the image index ${layoutDir}:${tag} to ${reference}: ${(cause as Error).message}`, { cause });
  }
}
