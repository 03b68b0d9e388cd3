/**
 * What the extend phase records about each applied extension, as pure functions over plain
 * values: the rebasable label (AND over every extension), the history (one entry per new layer,
 * naming the extension), and the user (a warning when an extension leaves root).
 */
import type { HistoryEntry, ImageConfig } from '@cnb-extender/oci';
import type { ImageDescription } from './backend.ts';
import { isRootUser, userFrom } from './discovery.ts';
import type { ExtenderEvent } from './events.ts';

export const REBASABLE_LABEL = 'io.buildpacks.rebasable';

/** The image being extended and what the extensions applied so far left. */
export interface ExtensionRecord {
  image: ImageDescription;
  /** One entry per layer (imgutil's normalized history). */
  history: HistoryEntry[];
  /** AND over every applied extension's label; the original base need not be rebasable. */
  rebasable: boolean;
  userId: string;
}

/** `KEY=value` → map, split on the first `=` (the Go extender fails on values with `=`; we do not). */
export function envToMap(env: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of env) {
    const eq = entry.indexOf('=');
    if (eq <= 0) continue;
    out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return out;
}

/** Go's `strconv.ParseBool` truth values. */
function parseBool(value: string | undefined): boolean {
  return value !== undefined && ['1', 't', 'T', 'TRUE', 'true', 'True'].includes(value);
}

/** History with entries for empty layers removed and padded to `layerCount` (imgutil's NormalizedHistory). */
export function normalizedHistory(history: readonly HistoryEntry[] | undefined, layerCount: number): HistoryEntry[] {
  if (!history) return Array.from({ length: layerCount }, () => ({}));
  const kept = history.filter((h) => !h.empty_layer);
  while (kept.length < layerCount) kept.push({});
  return kept;
}

/** The history line for one layer added by an extension. */
export function extensionLayerHistory(createdBy: string | undefined, extensionId: string): string {
  return `Layer: '${createdBy ?? ''}', Created by extension: ${extensionId}`;
}

function cloneConfig(config: ImageConfig): ImageConfig {
  return structuredClone(config);
}

/** The record before the first extension: the base, its history normalized. */
export function startRecord(base: ImageDescription): ExtensionRecord {
  const config = cloneConfig(base.config);
  const history = normalizedHistory(config.history, config.rootfs.diff_ids.length);
  config.history = history;
  return { image: { ...base, config }, history, rebasable: true, userId: userFrom(config.config?.User).userId };
}

export interface ExtensionRecorded {
  record: ExtensionRecord;
  newLayers: number;
  /** Warnings to emit (an extension that leaves the user root). */
  warnings: ExtenderEvent[];
}

/** The record after the extension `extensionId` (Dockerfile `path`) turned `record.image` into `result`. */
export function recordExtension(record: ExtensionRecord, result: ImageDescription, extensionId: string, path: string): ExtensionRecorded {
  const config = cloneConfig(result.config);
  config.config ??= {};
  const rebasable = record.rebasable && parseBool(config.config.Labels?.[REBASABLE_LABEL]);
  config.config.Labels = { ...config.config.Labels, [REBASABLE_LABEL]: String(rebasable) };

  const resultHistory = normalizedHistory(config.history, config.rootfs.diff_ids.length);
  const history = [...record.history];
  for (let i = record.history.length; i < resultHistory.length; i++) {
    history.push({ created_by: extensionLayerHistory(resultHistory[i]!.created_by, extensionId) });
  }
  config.history = history;

  const userId = userFrom(config.config.User).userId;
  const warnings: ExtenderEvent[] = [];
  if (isRootUser(userId)) {
    warnings.push({
      type: 'warning',
      level: 'warn',
      code: 'user-root',
      extensionId,
      message: `Extension from ${path} changed the user ID from ${record.userId} to ${userId}; this must not be the final user ID (a following extension must reset the user).`,
    });
  }
  return {
    record: { image: { ...result, config }, history, rebasable, userId },
    newLayers: result.layers.length - record.image.layers.length,
    warnings,
  };
}
