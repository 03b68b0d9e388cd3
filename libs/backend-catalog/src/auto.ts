/**
 * `-backend auto`: the first backend of the catalog whose definition's `detect` finds it
 * usable here, in catalog order. With the built-in catalog:
 *
 * 1. `inplace` when running as root inside a container: the kaniko model, where the
 *    container's root filesystem is the image to extend (the platform runs the extender in
 *    the build or run image, as the lifecycle does);
 * 2. else `buildah` when a usable buildah is in `PATH`;
 * 3. else `docker` when a Docker daemon answers at `DOCKER_HOST` (default socket; TLS as
 *    `DOCKER_TLS_VERIFY` / `DOCKER_TLS` / `DOCKER_CERT_PATH` say);
 * 4. else a `BackendSelectionError` (exit 3) that says what each candidate needed.
 *
 * `buildkit` declares no detection: it is used only when asked for. Tests hand in a catalog
 * of their own definitions.
 */
import type { BackendDefinition, BackendDetection, BackendEnv } from '@cnb-extender/extender-core';
import { BACKEND_CATALOG, BackendSelectionError, type BackendCatalog, type CatalogEntry } from './catalog.ts';

/** The id that asks for automatic selection. */
export const AUTO_BACKEND_ID = 'auto';

export interface BackendChoice {
  /** The backend to load. */
  id: string;
  /** Why, for the info line (`auto` only; empty when the id was given). */
  reason: string;
  auto: boolean;
}

export interface ChooseBackendOptions {
  env?: BackendEnv;
  catalog?: BackendCatalog;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** What `entry`'s detection says; a definition that cannot be loaded or whose detection fails is not usable. */
async function detectEntry(entry: CatalogEntry, env: BackendEnv): Promise<BackendDetection | undefined> {
  let definition: BackendDefinition;
  try {
    definition = await entry.definition();
  } catch {
    return { usable: false, reason: `${entry.id} is not in this build`, needs: `its package ${entry.packageName}, which is not in this build` };
  }
  if (!definition.detect) return undefined;
  return definition.detect(env).catch((err: unknown) => ({ usable: false, reason: `no usable ${entry.id}`, needs: `a detection that works (${messageOf(err)})` }));
}

/**
 * Resolve `-backend`: any id but `auto` is returned as given (`selectBackend` validates it);
 * `auto` is decided as the module doc says. The reason of the choice names why each backend
 * before it was passed over.
 */
export async function chooseBackend(id: string, options: ChooseBackendOptions = {}): Promise<BackendChoice> {
  if (id !== AUTO_BACKEND_ID) return { id, reason: '', auto: false };
  const env = options.env ?? {};
  const passedOver: string[] = [];
  const needs: string[] = [];
  for (const entry of options.catalog ?? BACKEND_CATALOG) {
    const found = await detectEntry(entry, env);
    if (!found) continue;
    if (found.usable) return { id: entry.id, auto: true, reason: [...passedOver, found.reason].join('; ') };
    passedOver.push(found.reason);
    needs.push(`${entry.id} needs ${found.needs}`);
  }
  throw new BackendSelectionError(AUTO_BACKEND_ID, 'unavailable', `-backend auto found no usable backend: ${needs.join(', ') || 'none declares how to detect it'}; pass -backend explicitly`);
}
