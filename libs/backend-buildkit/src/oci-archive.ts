/**
 * Reads the tarball BuildKit's `oci` exporter streams over the session (an OCI
 * image layout: `oci-layout`, `index.json`, `blobs/<alg>/<hex>`) as the kit's
 * `BuiltImage`. Small blobs stay in memory, large ones go to `blobsDir`.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { BuiltImage } from '@cnb-extender/image-backend-kit';
import { readTar, type Digest, type ImageConfig } from '@cnb-extender/oci';

interface OciIndex {
  manifests?: { digest: string; platform?: { os?: string } }[];
}
interface OciManifest extends OciIndex {
  config?: { digest: string };
  layers?: { digest: string }[];
}

/** `exportFile` is removed once read. */
export async function readOciArchive(exportFile: string, name: string, blobsDir: string): Promise<BuiltImage> {
  await mkdir(blobsDir, { recursive: true });
  const small = new Map<string, Buffer>();
  for await (const entry of readTar(createReadStream(exportFile))) {
    const path = entry.name.replace(/^\.?\//, '');
    if (entry.type !== 'file') continue;
    if (path.startsWith('blobs/') && entry.size > 1 << 20) {
      await pipeline(Readable.from(entry.body()), createWriteStream(join(blobsDir, path.split('/').pop()!)));
    } else {
      const chunks: Buffer[] = [];
      for await (const c of entry.body()) chunks.push(c);
      small.set(path, Buffer.concat(chunks));
    }
  }
  await rm(exportFile, { force: true });
  const blob = (digest: string): Buffer => {
    const found = small.get(`blobs/${digest.replace(':', '/')}`);
    if (!found) throw new Error(`reading the oci export of ${name}: blob ${digest} is missing`);
    return found;
  };
  const index = JSON.parse((small.get('index.json') ?? Buffer.from('{}')).toString('utf8')) as OciIndex;
  let manifestDigest = index.manifests?.[0]?.digest;
  let manifest = manifestDigest ? (JSON.parse(blob(manifestDigest).toString('utf8')) as OciManifest) : undefined;
  if (manifest?.manifests) {
    // An index (with attestations): the image manifest is the one with a real platform.
    manifestDigest = manifest.manifests.find((m) => m.platform?.os !== 'unknown')?.digest;
    manifest = manifestDigest ? (JSON.parse(blob(manifestDigest).toString('utf8')) as OciManifest) : undefined;
  }
  if (!manifest?.config || !manifest.layers) throw new Error(`reading the oci export of ${name}: no image manifest in index.json`);
  const config = JSON.parse(blob(manifest.config.digest).toString('utf8')) as ImageConfig;
  const layers = manifest.layers;
  if (layers.length !== config.rootfs.diff_ids.length) {
    throw new Error(`reading the oci export of ${name}: ${layers.length} layers but ${config.rootfs.diff_ids.length} diff_ids`);
  }
  return {
    config,
    layers: config.rootfs.diff_ids.map((diffId, i) => ({
      diffId: diffId as Digest,
      open: () => {
        const digest = layers[i]!.digest;
        const inMemory = small.get(`blobs/${digest.replace(':', '/')}`);
        return inMemory ? Readable.from([inMemory]) : createReadStream(join(blobsDir, digest.split(':')[1] ?? ''));
      },
    })),
  };
}
