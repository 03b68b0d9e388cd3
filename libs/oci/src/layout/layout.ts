import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Readable } from 'node:stream';
import { type Digest, hashingStream, isDigest, parseDigest } from '../digest.ts';
import { isIndexMediaType, isManifestMediaType } from '../media-types.ts';
import { type Descriptor, type ImageConfig, type ImageIndex, type ImageManifest, type Platform, REF_NAME_ANNOTATION } from '../model.ts';
import { hostPlatform } from '../platform.ts';
import { ShapeError, checkImageConfig, checkImageIndex, checkImageManifest } from '../validate.ts';

export class LayoutError extends Error {
  override name = 'LayoutError';
}

/** Something tolerated while reading a layout that a strict reader would refuse. */
export interface LayoutWarning {
  kind: 'size-mismatch' | 'missing-oci-layout';
  message: string;
  digest?: Digest;
}

export interface OpenLayoutOptions {
  /**
   * Refuse blobs whose size differs from their descriptor (default false: the
   * lifecycle's extended layouts carry wrong sizes, so a mismatch is reported
   * through onWarning and the digest alone decides).
   */
  strictSizes?: boolean;
  onWarning?: (warning: LayoutWarning) => void;
}

/** Which image of a layout to read. */
export interface ImageSelector {
  /** `org.opencontainers.image.ref.name` in index.json (e.g. `latest`, or a full reference as buildah writes). */
  refName?: string;
  /** Manifest (or nested index) digest. */
  digest?: Digest;
  /** For multi-platform indexes (default: the running platform, linux). */
  platform?: Pick<Platform, 'os' | 'architecture' | 'variant'>;
}

/** An image read from a layout. Layer blobs may be absent (sparse layouts). */
export interface LayoutImage {
  /** Descriptor of the manifest, as index.json (or a nested index) gives it. */
  descriptor: Descriptor;
  manifest: ImageManifest;
  /** The manifest exactly as stored; its sha256 is descriptor.digest. */
  manifestBytes: Buffer;
  config: ImageConfig;
  configBytes: Buffer;
  /** Per layer: whether its blob is in the layout. */
  layers: { descriptor: Descriptor; present: boolean }[];
}

/**
 * A directory in the OCI image layout (image-spec image-layout.md): reading.
 * Every blob read is checked against its digest. Works on full layouts and on
 * sparse ones that hold only manifests and configs.
 */
export class OciLayout {
  readonly dir: string;
  readonly index: ImageIndex;
  /** index.json exactly as stored. */
  readonly indexBytes: Buffer;
  private readonly options: OpenLayoutOptions;

  private constructor(dir: string, index: ImageIndex, indexBytes: Buffer, options: OpenLayoutOptions) {
    this.dir = dir;
    this.index = index;
    this.indexBytes = indexBytes;
    this.options = options;
  }

  /** Whether `dir` holds a layout (its `index.json` exists). */
  static async exists(dir: string): Promise<boolean> {
    return (await stat(join(dir, 'index.json')).catch(() => undefined)) !== undefined;
  }

  static async open(dir: string, options: OpenLayoutOptions = {}): Promise<OciLayout> {
    const layoutFile = await readFile(join(dir, 'oci-layout'), 'utf8').catch((cause: NodeJS.ErrnoException) => {
      if (cause.code === 'ENOENT') return undefined;
      throw new LayoutError(`reading OCI layout ${dir}: ${cause.message}`, { cause });
    });
    if (layoutFile === undefined) {
      options.onWarning?.({ kind: 'missing-oci-layout', message: `${dir} has no oci-layout file` });
    } else {
      let version: unknown;
      try {
        version = (JSON.parse(layoutFile) as { imageLayoutVersion?: unknown }).imageLayoutVersion;
      } catch (cause) {
        throw new LayoutError(`reading OCI layout ${dir}: oci-layout is not JSON`, { cause });
      }
      if (typeof version !== 'string' || !version.startsWith('1.')) {
        throw new LayoutError(`reading OCI layout ${dir}: unsupported imageLayoutVersion ${JSON.stringify(version)}`);
      }
    }
    let indexBytes: Buffer;
    try {
      indexBytes = await readFile(join(dir, 'index.json'));
    } catch (cause) {
      throw new LayoutError(`reading OCI layout ${dir}: ${(cause as Error).message}`, { cause });
    }
    const index = checked(() => checkImageIndex(parseJson<unknown>(indexBytes, `${dir}/index.json`)), `reading OCI layout ${dir}: index.json`);
    return new OciLayout(dir, index, indexBytes, options);
  }

  /** Where a blob lives (whether or not it is there). */
  blobPath(digest: Digest): string {
    const { algorithm, hex } = parseDigest(digest);
    return join(this.dir, 'blobs', algorithm, hex);
  }

  async hasBlob(digest: Digest): Promise<boolean> {
    try {
      return (await stat(this.blobPath(digest))).isFile();
    } catch {
      return false;
    }
  }

  /** A blob's bytes, checked against the descriptor's digest (and size, see strictSizes). */
  async readBlob(descriptor: Pick<Descriptor, 'digest' | 'size'>): Promise<Buffer> {
    const path = this.blobPath(descriptor.digest);
    let bytes: Buffer;
    try {
      bytes = await readFile(path);
    } catch (cause) {
      const absent = (cause as NodeJS.ErrnoException).code === 'ENOENT';
      throw new LayoutError(`reading blob ${descriptor.digest} from ${this.dir}: ${absent ? 'not in the layout (sparse layout?)' : (cause as Error).message}`, {
        cause,
      });
    }
    const { algorithm, hex } = parseDigest(descriptor.digest);
    const actual = createHash(algorithm).update(bytes).digest('hex');
    if (actual !== hex) throw new LayoutError(`reading blob ${descriptor.digest} from ${this.dir}: content has digest ${algorithm}:${actual}`);
    this.checkSize(descriptor, bytes.length);
    return bytes;
  }

  /**
   * A blob as a stream; the stream fails at its end if the content does not
   * match the digest, so a consumer never finishes with unverified bytes.
   */
  openBlob(descriptor: Pick<Descriptor, 'digest' | 'size'>): Readable {
    const { algorithm, hex } = parseDigest(descriptor.digest);
    const check = hashingStream(algorithm, (actual, size) => {
      if (actual !== hex) throw new LayoutError(`reading blob ${descriptor.digest} from ${this.dir}: content has digest ${algorithm}:${actual}`);
      this.checkSize(descriptor, size);
    });
    const source = createReadStream(this.blobPath(descriptor.digest), { highWaterMark: 1 << 20 });
    source.on('error', (cause) => {
      const absent = (cause as NodeJS.ErrnoException).code === 'ENOENT';
      check.destroy(new LayoutError(`reading blob ${descriptor.digest} from ${this.dir}: ${absent ? 'not in the layout (sparse layout?)' : cause.message}`, { cause }));
    });
    return source.pipe(check);
  }

  private checkSize(descriptor: Pick<Descriptor, 'digest' | 'size'>, actual: number): void {
    if (descriptor.size === actual) return;
    const message = `blob ${descriptor.digest} in ${this.dir} has ${actual} bytes, its descriptor says ${descriptor.size}`;
    if (this.options.strictSizes) throw new LayoutError(`reading ${message}`);
    this.options.onWarning?.({ kind: 'size-mismatch', message, digest: descriptor.digest });
  }

  async readJson<T>(descriptor: Pick<Descriptor, 'digest' | 'size'>): Promise<{ value: T; bytes: Buffer }> {
    const bytes = await this.readBlob(descriptor);
    return { value: parseJson<T>(bytes, `blob ${descriptor.digest} in ${this.dir}`), bytes };
  }

  /** A JSON blob checked for shape: a ShapeError becomes a LayoutError naming what was read. */
  private async readChecked<T>(descriptor: Pick<Descriptor, 'digest' | 'size'>, what: string, check: (value: unknown) => T): Promise<{ value: T; bytes: Buffer }> {
    const { value, bytes } = await this.readJson<unknown>(descriptor);
    return { value: checked(() => check(value), `reading ${what} ${descriptor.digest} from ${this.dir}`), bytes };
  }

  /** The manifests index.json lists, with their ref names. */
  refs(): { refName: string | undefined; descriptor: Descriptor }[] {
    return this.index.manifests.map((descriptor) => ({ refName: descriptor.annotations?.[REF_NAME_ANNOTATION], descriptor }));
  }

  /**
   * One image: by ref name, by digest, or the only one. Nested indexes (multi-
   * platform images) are followed to the manifest for the selected platform.
   */
  async image(selector: ImageSelector = {}): Promise<LayoutImage> {
    const top = this.select(selector);
    const descriptor = await this.resolveManifest(top, selector.platform ?? defaultPlatform(), 0);
    const { value: manifest, bytes: manifestBytes } = await this.readChecked(descriptor, 'image', checkImageManifest);
    const { value: config, bytes: configBytes } = await this.readChecked(manifest.config, 'config', checkImageConfig);
    const layers = await Promise.all(manifest.layers.map(async (d) => ({ descriptor: d, present: await this.hasBlob(d.digest) })));
    return { descriptor, manifest, manifestBytes, config, configBytes, layers };
  }

  private select(selector: ImageSelector): Descriptor {
    const all = this.index.manifests;
    let found: Descriptor[];
    let what: string;
    if (selector.digest) {
      found = all.filter((d) => d.digest === selector.digest);
      what = `digest ${selector.digest}`;
    } else if (selector.refName !== undefined) {
      found = all.filter((d) => d.annotations?.[REF_NAME_ANNOTATION] === selector.refName);
      what = `ref name ${JSON.stringify(selector.refName)}`;
    } else {
      if (all.length === 1) return all[0]!;
      const names = this.refs().map((r) => r.refName ?? r.descriptor.digest);
      throw new LayoutError(`reading OCI layout ${this.dir}: it holds ${all.length} images (${names.join(', ') || 'none'}); say which`);
    }
    if (found.length === 0) throw new LayoutError(`reading OCI layout ${this.dir}: no image with ${what}`);
    return found[found.length - 1]!;
  }

  private async resolveManifest(descriptor: Descriptor, platform: Pick<Platform, 'os' | 'architecture' | 'variant'>, depth: number): Promise<Descriptor> {
    if (isManifestMediaType(descriptor.mediaType)) return descriptor;
    if (!isIndexMediaType(descriptor.mediaType)) {
      throw new LayoutError(`reading ${descriptor.digest} from ${this.dir}: unsupported media type ${JSON.stringify(descriptor.mediaType)}`);
    }
    if (depth > 4) throw new LayoutError(`reading ${descriptor.digest} from ${this.dir}: indexes nested too deeply`);
    const { value: index } = await this.readChecked(descriptor, 'index', checkImageIndex);
    const candidates = index.manifests.filter(
      (m) =>
        m.platform?.os === platform.os &&
        m.platform.architecture === platform.architecture &&
        (platform.variant === undefined || m.platform.variant === undefined || m.platform.variant === platform.variant),
    );
    const chosen = candidates[0] ?? (index.manifests.length === 1 ? index.manifests[0] : undefined);
    if (!chosen) {
      throw new LayoutError(`reading index ${descriptor.digest} from ${this.dir}: no manifest for ${platform.os}/${platform.architecture}`);
    }
    return this.resolveManifest(chosen, platform, depth + 1);
  }
}

function checked<T>(check: () => T, what: string): T {
  try {
    return check();
  } catch (error) {
    if (error instanceof ShapeError) throw new LayoutError(`${what}: ${error.message}`);
    throw error;
  }
}

function parseJson<T>(bytes: Buffer, what: string): T {
  try {
    return JSON.parse(bytes.toString('utf8')) as T;
  } catch (cause) {
    throw new LayoutError(`parsing ${what}: ${(cause as Error).message}`, { cause });
  }
}

/** The platform of this process in OCI terms, without a variant. */
export function defaultPlatform(): { os: string; architecture: string } {
  const { os, architecture } = hostPlatform();
  return { os, architecture };
}

/**
 * The digest a directory's name stands for: `sha256:<hex>` (the restorer's
 * `/kaniko/cache/base/sha256:<hex>`) or `sha256_<hex>` (the lifecycle's
 * extended run layouts, where ':' is not allowed). Undefined for other names.
 */
export function digestFromLayoutDirName(path: string): Digest | undefined {
  const candidate = basename(path).replace(/^([a-z0-9]+)_/, '$1:');
  return isDigest(candidate) ? (candidate as Digest) : undefined;
}
