/**
 * How a BuildKit daemon gets the base and gives the result back (the export
 * mode), the exporters each mode asks for, and reading an `oci` export that was
 * written into the session's store.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ExporterEntry } from '@cnb-extender/buildkit-session';
import { readBuiltLayout, type BuiltImage } from '@cnb-extender/image-backend-kit';
import { MediaType, canonicalJson, type Descriptor, type Digest } from '@cnb-extender/oci';
import { LAYOUT_CONTEXT_MIN_VERSION, takesLayoutContexts } from './base-context.ts';
import type { DaemonInfo } from './client.ts';

export type ExportMode = 'moby' | 'store' | 'tar';

/**
 * How this daemon gets the base and gives the result back:
 * - `moby`: dockerd's BuildKit; the base is loaded into the Docker image store, the result read back through the Engine API;
 * - `store`: BuildKit v0.11+; the base is an OCI-layout named context served by the session, the `oci` export written
 *   into the same session store (only new blobs cross);
 * - `tar`: older daemons, or `baseFrom: 'registry'`; the daemon pulls `base_image` from its registry and streams an
 *   `oci` tarball back.
 */
export function chooseExportMode(info: DaemonInfo, haveEngine: boolean, baseFrom: 'session' | 'registry'): { mode: ExportMode; warning?: string } | { error: string } {
  if (info.exporters.includes('moby') && haveEngine) return { mode: 'moby' };
  if (!info.exporters.includes('oci')) {
    return { error: `this daemon has neither the oci exporter nor a Docker Engine to read the moby export back (set the engine option); exporters here: ${info.exporters.join(', ')}` };
  }
  if (baseFrom === 'registry') return { mode: 'tar' };
  if (takesLayoutContexts(info.version)) return { mode: 'store' };
  return {
    mode: 'tar',
    warning: `this BuildKit is older than v${LAYOUT_CONTEXT_MIN_VERSION} (it has no Control/Info), so it cannot take the base from the extender: it pulls the base image from its registry itself, and needs a route and credentials to it`,
  };
}

/** The exporters of a build whose result is called `name`; with `push`, a standalone daemon also pushes it there. */
export function exportersFor(mode: ExportMode, name: string, push: boolean): ExporterEntry[] {
  if (mode === 'moby') return [{ type: 'moby', attrs: { name } }];
  const pushed = push ? [{ type: 'image', attrs: { name, push: 'true' } }] : [];
  return [{ type: 'oci', attrs: { name, tar: mode === 'store' ? 'false' : 'true' } }, ...pushed];
}

/**
 * The image an `oci` export (tar=false) wrote into the session store: the
 * exporter names its descriptor in the solve response; an index.json naming it
 * makes the store an ordinary layout to read.
 */
export async function readStoreExport(dir: string, exporterResponse: Record<string, string>, name: string): Promise<BuiltImage> {
  const encoded = exporterResponse['containerimage.descriptor'];
  const digest = exporterResponse['containerimage.digest'];
  let descriptor: Descriptor;
  if (encoded) {
    descriptor = JSON.parse(Buffer.from(encoded, 'base64').toString('utf8')) as Descriptor;
  } else if (digest) {
    const bytes = await readFile(join(dir, 'blobs', ...digest.split(':')));
    const mediaType = (JSON.parse(bytes.toString('utf8')) as { mediaType?: string }).mediaType ?? MediaType.ociManifest;
    descriptor = { mediaType, digest: digest as Digest, size: bytes.length };
  } else {
    throw new Error(`reading the oci export of ${name}: the daemon named no image in its response (keys: ${Object.keys(exporterResponse).join(', ') || 'none'})`);
  }
  const index = { schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [{ ...descriptor, annotations: { 'org.opencontainers.image.ref.name': 'result' } }] };
  await writeFile(join(dir, 'index.json'), canonicalJson(index));
  return readBuiltLayout(dir, 'result');
}
