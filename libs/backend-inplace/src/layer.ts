import { writeLayer, type LayerWriteResult, type WriteLayerOptions } from '@cnb-extender/oci';
import { settleHashes } from './snapshot/walk.ts';
import type { ChangeSet, Snapshot } from './snapshot/types.ts';

/**
 * Writes the layer of `changes` (the diff that ends in `next`) to `path`. Racy files of
 * `next` still waiting for their content hash get it from the writer's own read of them, so
 * a new or rewritten file is read once, for the layer and its hash together; those not in
 * the layer stay for `settleHashes` before the root changes again.
 */
export async function writeChangeLayer(changes: ChangeSet, next: Snapshot, path: string, options: Omit<WriteLayerOptions, 'hashContent'> = {}): Promise<LayerWriteResult> {
  const waiting = next.unhashed ? new Set(next.unhashed) : undefined;
  const written = await writeLayer(changes.entries, path, waiting ? { ...options, hashContent: (entry) => waiting.has(entry.path) } : options);
  if (waiting) settleHashes(next, written.contentHashes);
  return written;
}
