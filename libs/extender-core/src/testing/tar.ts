/**
 * Layer helpers for the fake backend and the contract kit, on libs/oci's tar
 * reader: list a layer blob (plain, gzip or zstd) as path → content.
 */
import { decompressLayer, readTar } from '@cnb-extender/oci';
import type { BlobSource } from '../backend.ts';
import { openBlob } from '../output.ts';

export interface LayerFile {
  /** Layer path without a leading `/` (`contract/args`). */
  path: string;
  /** Default `file`. */
  type?: 'file' | 'directory';
  /** File content (files only). */
  content?: Uint8Array | string;
  mode?: number;
  uid?: number;
  gid?: number;
}

/** Every regular file of a layer blob, path without leading `/` or `./` → content. */
export async function readLayerFiles(source: BlobSource): Promise<Map<string, Buffer>> {
  const { tar } = await decompressLayer(await openBlob(source));
  const files = new Map<string, Buffer>();
  for await (const entry of readTar(tar)) {
    const chunks: Buffer[] = [];
    for await (const chunk of entry.body()) chunks.push(chunk);
    if (entry.type === 'file') files.set(entry.name.replace(/^\.?\//, ''), Buffer.concat(chunks));
  }
  return files;
}

/** Every entry path of a layer blob (files, directories, links, whiteouts), without leading `/`. */
export async function readLayerPaths(source: BlobSource): Promise<string[]> {
  const { tar } = await decompressLayer(await openBlob(source));
  const paths: string[] = [];
  for await (const entry of readTar(tar)) {
    for await (const _chunk of entry.body()) {
      // drain
    }
    paths.push(entry.name.replace(/^\.?\//, ''));
  }
  return paths;
}
