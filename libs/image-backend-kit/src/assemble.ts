/**
 * Turn what a tool built into the core's `ImageDescription`: the base's layers
 * keep their original descriptors (matched by diff_id, whatever the tool did to
 * their compression), each new layer is filtered and re-encoded (see layer.ts),
 * the history names each new layer by its Dockerfile line, and the config is the
 * base's with the tool's runtime config (`config.config`) on top.
 */
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { DockerfileSpec, EventSink, ImageDescription, LayerDescription } from '@cnb-extender/extender-core';
import { familyOf, layerMediaType, type Digest, type HistoryEntry, type ImageConfig } from '@cnb-extender/oci';
import { ImageBackendError, messageOf } from './errors.ts';
import { attributeLayerInstructions, layerInstructions } from './instructions.ts';
import { normalizeLayer } from './layer.ts';

/** One layer of the tool's result, bottom to top. */
export interface BuiltLayer {
  /** The tool's diff_id for it (from its config). */
  diffId: Digest;
  /** Opens the blob as the tool stored it (plain tar, gzip or zstd). */
  open(): Promise<Readable | AsyncIterable<Uint8Array>> | Readable | AsyncIterable<Uint8Array>;
}

/** The image a tool produced. */
export interface BuiltImage {
  config: ImageConfig;
  layers: BuiltLayer[];
}

export interface AssembleOptions {
  base: ImageDescription;
  built: BuiltImage;
  dockerfile: DockerfileSpec;
  ignorePaths: readonly string[];
  /** Directory the new layers' gzip blobs go to (readable until the backend's cleanup). */
  blobDir: string;
  events: EventSink;
  signal?: AbortSignal;
  /** Labels a tool adds on its own (`io.buildah.version`): dropped unless the base had them. */
  toolLabels?: readonly string[];
}

/** Keys the classic builder fills with zero values; dropped unless the base had them. */
function cleanRuntimeConfig(tool: Record<string, unknown> | undefined, base: Record<string, unknown> | undefined, toolLabels: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(tool ?? {})) {
    const inBase = base !== undefined && key in base;
    const zero = value === null || value === '' || value === false || (Array.isArray(value) && value.length === 0) || (typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0);
    if (!inBase && (zero || key === 'Image' || key === 'ArgsEscaped')) continue;
    out[key] = value;
  }
  const labels = out['Labels'] as Record<string, string> | undefined;
  if (labels) {
    const baseLabels = (base?.['Labels'] ?? {}) as Record<string, string>;
    for (const label of toolLabels) if (!(label in baseLabels)) delete labels[label];
  }
  return out;
}

/** See module doc. */
export async function assembleImage(options: AssembleOptions): Promise<ImageDescription> {
  const { base, built, dockerfile, events } = options;
  const baseCount = base.layers.length;
  if (built.layers.length < baseCount) {
    throw new ImageBackendError(`reading the built image: it has ${built.layers.length} layers, fewer than the base's ${baseCount}`);
  }
  for (let i = 0; i < baseCount; i++) {
    if (built.layers[i]!.diffId !== base.layers[i]!.diffId) {
      throw new ImageBackendError(`reading the built image: layer ${i} has diff_id ${built.layers[i]!.diffId} where the base has ${base.layers[i]!.diffId}`);
    }
  }
  // The tool's history for its new layers (entries of empty layers left out).
  const toolHistory = (built.config.history ?? []).filter((h) => !h.empty_layer);
  const newCount = built.layers.length - baseCount;
  const toolTexts = Array.from({ length: newCount }, (_, k) => toolHistory[toolHistory.length - newCount + k]?.created_by);
  const attributed = attributeLayerInstructions(toolTexts, layerInstructions(dockerfile.content));
  const family = familyOf(base.manifestMediaType);

  const layers: LayerDescription[] = [...base.layers];
  const history: HistoryEntry[] = [...(base.config.history ?? []).filter((h) => !h.empty_layer)];
  while (history.length < baseCount) history.push({});
  history.length = baseCount;
  for (let k = 0; k < newCount; k++) {
    options.signal?.throwIfAborted();
    const source = built.layers[baseCount + k]!;
    const step = attributed[k];
    const instruction = step?.text ?? toolTexts[k] ?? '';
    let layer;
    try {
      layer = await normalizeLayer(await source.open(), { blobDir: options.blobDir, ignorePaths: options.ignorePaths, ...(options.signal ? { signal: options.signal } : {}) });
    } catch (err) {
      if (options.signal?.aborted) throw err;
      throw new ImageBackendError(`reading new layer ${k + 1} (${instruction}) of the built image: ${messageOf(err)}`, { cause: err });
    }
    if (layer.dropped.length > 0) {
      events.emit({ type: 'debug', level: 'debug', message: `${dockerfile.extensionId}: ${instruction}: left out of the layer (ignore paths): ${layer.dropped.slice(0, 20).join(', ')}${layer.dropped.length > 20 ? ', …' : ''}` });
    }
    layers.push({
      descriptor: { mediaType: layerMediaType(family, 'gzip'), digest: layer.digest, size: layer.size },
      diffId: layer.diffId,
      blob: { kind: 'file', path: layer.path },
    });
    const tool = toolHistory[toolHistory.length - newCount + k];
    history.push({ ...(tool?.created ? { created: tool.created } : {}), created_by: instruction });
    if (step) events.emit({ type: 'layer-written', level: 'info', extensionId: dockerfile.extensionId, instruction, index: step.index, digest: layer.digest, diffId: layer.diffId, size: layer.size });
    else events.emit({ type: 'debug', level: 'debug', message: `${dockerfile.extensionId}: layer ${layer.digest} (${layer.size} bytes), ${instruction || 'which the tool does not name'}, matches no instruction of the Dockerfile` });
  }

  const config: ImageConfig = structuredClone(base.config);
  if (built.config.created) config.created = built.config.created;
  config.config = cleanRuntimeConfig(
    built.config.config as Record<string, unknown> | undefined,
    base.config.config as Record<string, unknown> | undefined,
    options.toolLabels ?? [],
  ) as ImageConfig['config'];
  config.rootfs = { type: 'layers', diff_ids: layers.map((l) => l.diffId) };
  config.history = history;
  const image: ImageDescription = { manifestMediaType: base.manifestMediaType, config, layers };
  if (base.reference) image.reference = base.reference;
  if (base.annotations) image.annotations = base.annotations;
  return image;
}

/** `<workDir>/<backend>-layers`: where a backend keeps new layer blobs by default. */
export function defaultBlobDir(workDir: string, backendId: string): string {
  return join(workDir, `${backendId}-layers`);
}
