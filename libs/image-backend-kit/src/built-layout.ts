/** Read a tool's output written as an OCI layout (buildah `oci:`, BuildKit's oci exporter) as a `BuiltImage`. */
import { OciLayout, type Digest } from '@cnb-extender/oci';
import type { BuiltImage } from './assemble.ts';
import { ImageBackendError, messageOf } from './errors.ts';

export async function readBuiltLayout(dir: string, refName?: string): Promise<BuiltImage> {
  try {
    const layout = await OciLayout.open(dir);
    const image = await layout.image(refName ? { refName } : {});
    const diffIds = image.config.rootfs?.diff_ids ?? [];
    if (diffIds.length !== image.layers.length) throw new Error(`manifest has ${image.layers.length} layers but the config lists ${diffIds.length} diff_ids`);
    return {
      config: image.config,
      layers: image.layers.map(({ descriptor }, i) => ({ diffId: diffIds[i]! as Digest, open: () => layout.openBlob(descriptor) })),
    };
  } catch (err) {
    throw new ImageBackendError(`reading the built image from ${dir}: ${messageOf(err)}`, { cause: err });
  }
}
