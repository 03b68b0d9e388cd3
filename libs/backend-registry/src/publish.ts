/**
 * Publishing the extended build image for the CLI, without the CLI importing the
 * image-backend kit: the kit (and its registry client) is loaded only when an
 * image-producing backend finished a build-kind run.
 */
import type { PublishBuildImageOptions, PublishedBuildImage } from '@cnb-extender/image-backend-kit';

export type { BuildImageTarget, PublishBuildImageOptions, PublishedBuildImage } from '@cnb-extender/image-backend-kit';

/**
 * Push the extended build image to a registry or write it as an OCI layout, and record its
 * digest reference as `[build-image] reference` in analyzed.toml (see image-backend-kit's
 * `publishBuildImage`).
 */
export async function publishBuildImage(options: PublishBuildImageOptions): Promise<PublishedBuildImage> {
  return (await loadPublishing()).publishBuildImage(options);
}

let kit: Promise<typeof import('@cnb-extender/image-backend-kit')> | undefined;

/** Loads the kit once; later calls reuse the module without reading the filesystem again. */
export function loadPublishing(): Promise<typeof import('@cnb-extender/image-backend-kit')> {
  kit ??= import('@cnb-extender/image-backend-kit');
  return kit;
}
