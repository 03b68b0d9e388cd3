import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { OciLayout, type ImageConfig } from '@cnb-extender/oci';

/** What an extension changed, read back from `<layers>/extended/run/` the way the exporter reads it. */
export interface ExtensionReport {
  layoutDir: string;
  manifestDigest: string;
  newLayers: { digest: string; size: number; createdBy: string }[];
  baseLayers: number;
  changes: string[];
}

function envMap(config: ImageConfig): Map<string, string> {
  const map = new Map<string, string>();
  for (const entry of config.config?.Env ?? []) {
    const at = entry.indexOf('=');
    map.set(at < 0 ? entry : entry.slice(0, at), at < 0 ? '' : entry.slice(at + 1));
  }
  return map;
}

/** Config differences a platform operator cares about: user, env, labels, working dir. */
export function describeConfigChanges(before: ImageConfig, after: ImageConfig): string[] {
  const changes: string[] = [];
  const was = before.config ?? {};
  const now = after.config ?? {};
  if ((was.User ?? '') !== (now.User ?? '')) changes.push(`User: ${JSON.stringify(was.User ?? '')} -> ${JSON.stringify(now.User ?? '')}`);
  if ((was.WorkingDir ?? '') !== (now.WorkingDir ?? '')) changes.push(`WorkingDir: ${JSON.stringify(was.WorkingDir ?? '')} -> ${JSON.stringify(now.WorkingDir ?? '')}`);
  const envBefore = envMap(before);
  for (const [name, value] of envMap(after)) {
    if (envBefore.get(name) !== value) changes.push(`Env ${name}=${value}`);
  }
  const labelsBefore = was.Labels ?? {};
  for (const [name, value] of Object.entries(now.Labels ?? {})) {
    if (labelsBefore[name] !== value) changes.push(`Label ${name}=${value}`);
  }
  return changes;
}

export async function readExtendedRun(layersDir: string, base: ImageConfig): Promise<ExtensionReport> {
  const runDir = join(layersDir, 'extended', 'run');
  const entries = await readdir(runDir);
  if (entries.length !== 1) throw new Error(`reading ${runDir}: expected exactly one image layout, found ${entries.length}`);
  const layoutDir = join(runDir, entries[0]!);
  const image = await (await OciLayout.open(layoutDir)).image();
  const baseLayers = base.rootfs.diff_ids.length;
  const history = (image.config.history ?? []).filter((h) => !h.empty_layer);
  const newLayers = image.layers.slice(baseLayers).map((layer, i) => ({
    digest: layer.descriptor.digest,
    size: layer.descriptor.size,
    createdBy: history[baseLayers + i]?.created_by ?? '',
  }));
  return {
    layoutDir,
    manifestDigest: image.descriptor.digest,
    newLayers,
    baseLayers,
    changes: describeConfigChanges(base, image.config),
  };
}

export function formatReport(report: ExtensionReport): string {
  const lines = [
    `Extended run image: ${report.layoutDir}`,
    `  manifest ${report.manifestDigest}`,
    `  ${report.baseLayers} base layer(s) kept as they were, ${report.newLayers.length} new layer(s):`,
    ...report.newLayers.map((l) => `    ${l.digest} ${l.size} bytes  ${l.createdBy}`),
    '  config changes:',
    ...report.changes.map((c) => `    ${c}`),
  ];
  return lines.join('\n');
}
