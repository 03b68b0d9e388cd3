import type { Digest } from './digest.ts';

/** OCI content descriptor (image-spec descriptor.md). Also used for Docker v2 descriptors. */
export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
  [extra: string]: unknown;
}

export interface Platform {
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
}

/** OCI image manifest or Docker v2 schema 2 manifest. Unknown fields survive a round trip. */
export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  artifactType?: string;
  config: Descriptor;
  layers: Descriptor[];
  subject?: Descriptor;
  annotations?: Record<string, string>;
  [extra: string]: unknown;
}

/** OCI image index or Docker manifest list. */
export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
  [extra: string]: unknown;
}

/** Docker's `Healthcheck` in a container config (durations in nanoseconds). */
export interface HealthcheckConfig {
  Test: string[];
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

/**
 * The runtime part of an image config (`config` in the image config JSON);
 * unknown fields are carried through. Docker writes `"Env": null` for none.
 */
export interface ContainerConfig {
  User?: string;
  ExposedPorts?: Record<string, object>;
  Env?: string[] | null;
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, object>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  Shell?: string[];
  Healthcheck?: HealthcheckConfig | Record<string, unknown>;
  OnBuild?: string[] | null;
  ArgsEscaped?: boolean;
  [extra: string]: unknown;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

/** OCI image config (image-spec config.md); Docker's config is a superset we preserve. */
export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  'os.version'?: string;
  'os.features'?: string[];
  variant?: string;
  config?: ContainerConfig;
  rootfs: { type: 'layers'; diff_ids: Digest[] };
  history?: HistoryEntry[];
  [extra: string]: unknown;
}

/** Annotation naming an image inside an OCI layout's index.json. */
export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

/** The zero time the lifecycle writes for reproducible images. */
export const ZERO_TIME = '0001-01-01T00:00:00Z';

/** Layer file timestamps the lifecycle normalises to. */
export const NORMALIZED_LAYER_TIME = new Date('1980-01-01T00:00:01Z');

/**
 * JSON as we write it (manifests, indexes, configs, `index.json`): object keys
 * sorted by UTF-16 code unit at every depth, arrays in their order, no
 * insignificant whitespace, `undefined` members dropped.
 *
 * Why sorted rather than insertion order: the same image must get the same
 * digest however its objects were assembled (a config merged from a base image,
 * labels added by several extensions, env maps built in different orders). Go's
 * encoder — which produced most configs we extend — sorts map keys (Labels,
 * ExposedPorts, Volumes, annotations) too, so sorted keys also agree with it
 * where Go's output is canonical. Key order carries no meaning in OCI JSON, and
 * content we read is never re-serialised: its digest is always that of the bytes
 * we were given.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, sortKeysReplacer);
}

function sortKeysReplacer(_key: string, value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  if (ArrayBuffer.isView(value)) return value;
  const sorted: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) sorted[key] = (value as Record<string, unknown>)[key];
  return sorted;
}
