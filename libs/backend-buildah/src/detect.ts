/** Is buildah there, and new enough? (`-backend auto` asks this; so does the backend before its first build.) */
import { runTool } from '@cnb-extender/image-backend-kit';

/** Oldest buildah we build with: `FROM oci:` bases, `--timestamp`, `--pull-never`. */
export const MIN_BUILDAH_VERSION = '1.23.0';

export interface BuildahDetection {
  available: boolean;
  /** `1.28.2` when buildah answered. */
  version?: string;
  /** Why it cannot be used, when it cannot. */
  reason?: string;
}

/** `1.43.2` vs `1.35.0`: positive, 0 or negative. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map((n) => parseInt(n, 10) || 0);
  const pb = b.split('.').map((n) => parseInt(n, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** Run `buildah --version` with the given executable and environment (PATH decides where it is found). */
export async function detectBuildah(options: { buildah?: string; env?: NodeJS.ProcessEnv; signal?: AbortSignal } = {}): Promise<BuildahDetection> {
  const command = options.buildah ?? 'buildah';
  let result;
  try {
    result = await runTool(command, ['--version'], { env: options.env ?? process.env, ...(options.signal ? { signal: options.signal } : {}) });
  } catch (err) {
    if (options.signal?.aborted) throw err;
    const notFound = (err as { cause?: { code?: string } }).cause?.code === 'ENOENT';
    return { available: false, reason: notFound ? `${command} was not found in PATH` : `running ${command} --version: ${(err as Error).message}` };
  }
  const match = /version (\d+\.\d+(?:\.\d+)?)/.exec(result.stdout);
  if (result.code !== 0 || !match) return { available: false, reason: `${command} --version exited with ${result.code}: ${result.tail.join(' ').trim()}` };
  const version = match[1]!;
  if (compareVersions(version, MIN_BUILDAH_VERSION) < 0) return { available: false, version, reason: `buildah ${version} is too old (${MIN_BUILDAH_VERSION} or later is needed)` };
  return { available: true, version };
}

/** True when a usable buildah (≥ MIN_BUILDAH_VERSION) is in PATH. */
export async function isBuildahAvailable(options: { buildah?: string; env?: NodeJS.ProcessEnv } = {}): Promise<boolean> {
  return (await detectBuildah(options)).available;
}
