/**
 * Publishing the extended build image for the CLI, without the CLI importing the
 * image-backend kit: the kit (and its registry client) is loaded only when an
 * image-producing backend finished a build-kind run (or a run-kind run in the run-image
 * reference mode).
 */
import type { PublishBuildImageOptions, PublishedBuildImage, PublishRunImageOptions, PublishedRunImage } from '@cnb-extender/image-backend-kit';

export type { BuildImageTarget, PublishBuildImageOptions, PublishedBuildImage, PublishRunImageOptions, PublishedRunImage } from '@cnb-extender/image-backend-kit';

/**
 * Push the extended build image to a registry or write it as an OCI layout, and record its
 * digest reference as `[build-image] reference` in analyzed.toml (see image-backend-kit's
 * `publishBuildImage`).
 */
export async function publishBuildImage(options: PublishBuildImageOptions): Promise<PublishedBuildImage> {
  return (await loadPublishing()).publishBuildImage(options);
}

/**
 * The run-image reference mode: push the extended run image and record its digest reference
 * as `[run-image.extended] reference` in analyzed.toml (see image-backend-kit's `publishRunImage`).
 */
export async function publishRunImage(options: PublishRunImageOptions): Promise<PublishedRunImage> {
  return (await loadPublishing()).publishRunImage(options);
}

let kit: Promise<typeof import('@cnb-extender/image-backend-kit')> | undefined;

/** Loads the kit once; later calls reuse the module without reading the filesystem again. */
export function loadPublishing(): Promise<typeof import('@cnb-extender/image-backend-kit')> {
  kit ??= import('@cnb-extender/image-backend-kit');
  return kit;
}
