/**
 * The layer cache: one entry per filesystem-changing step, keyed by a chain
 * of everything that decides the step's result (the base layers, every
 * earlier step's result, the step's expanded command, env, user, working
 * directory, and for COPY/ADD the build context's content) and the bytes of
 * its layer (the file time, the compression and the library doing it, the
 * media type; see `layerFormatKey`). Entries live in
 * `<extend-dir>/cache/inplace/<key>/` (`meta.json`, `layer.tar.gz`), are
 * written under a temporary name and renamed into place (several extenders
 * may share the dir), and expire after the TTL. An entry that is damaged (no
 * readable `meta.json`, or a blob whose size or sha256 is not the recorded
 * one) is removed when it is looked up, and the step runs again.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { currentPidNamespace, processAlive } from '@cnb-extender/extender-core';
import { layerMediaType, type Descriptor, type Digest, type LayerCompression, type MediaTypeFamily } from '@cnb-extender/oci';
import { hashFile } from './snapshot/walk.ts';

export interface CacheEntry {
  key: string;
  /** The step changed nothing: no layer. */
  empty: boolean;
  diffId?: Digest;
  descriptor?: Descriptor;
  /** The layer blob inside the entry. */
  blobPath?: string;
}

interface Meta {
  version: 1;
  createdMs: number;
  empty: boolean;
  diffId?: Digest;
  descriptor?: Descriptor;
  blob?: string;
}

export function sha256(value: unknown): string {
  return createHash('sha256').update(typeof value === 'string' ? value : JSON.stringify(value)).digest('hex');
}

/** What decides a layer blob's bytes besides its entries. */
export interface LayerFormat {
  /** The time every entry gets (SOURCE_DATE_EPOCH, else 1980-01-01T00:00:01Z). */
  mtime: Date;
  compression: LayerCompression;
  /** Decides the descriptor's media type. */
  family: MediaTypeFamily;
}

/**
 * The part of every cache key that stands for the layer format: two extenders
 * sharing an extend dir with other settings never serve each other's layers.
 * The compression library's version is in it because it decides the
 * compressed bytes (and so the blob digest) as much as the level does.
 */
export function layerFormatKey(format: LayerFormat): unknown {
  const library = format.compression === 'gzip' ? `zlib ${process.versions.zlib}` : format.compression === 'zstd' ? `zstd ${process.versions['zstd'] ?? 'unknown'}` : 'none';
  return { mtime: Math.floor(format.mtime.getTime() / 1000), compression: format.compression, library, mediaType: layerMediaType(format.family, format.compression) };
}

/** Called when a damaged entry is found and removed. */
export type DiscardListener = (key: string, reason: string) => void;

export class LayerCache {
  readonly dir: string;
  readonly ttlMs: number;
  readonly #onDiscard: DiscardListener | undefined;
  constructor(dir: string, ttlMs: number, onDiscard?: DiscardListener) {
    this.dir = dir;
    this.ttlMs = ttlMs;
    this.#onDiscard = onDiscard;
  }

  /**
   * The entry for `key` when present, intact and not expired. An expired entry
   * is removed; so is a damaged one (reported to the discard listener).
   */
  get(key: string, now = Date.now()): CacheEntry | undefined {
    return this.#read(key, now, true);
  }

  #discard(key: string, reason: string): undefined {
    rmSync(join(this.dir, key), { recursive: true, force: true });
    this.#onDiscard?.(key, reason);
    return undefined;
  }

  #read(key: string, now: number | undefined, verify: boolean): CacheEntry | undefined {
    const entryDir = join(this.dir, key);
    let meta: Meta;
    try {
      meta = JSON.parse(readFileSync(join(entryDir, 'meta.json'), 'utf8')) as Meta;
    } catch (error) {
      // Entries are published complete (renamed into place), so a dir without a readable meta.json is damaged.
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && !existsSync(entryDir)) return undefined;
      return this.#discard(key, `reading meta.json: ${(error as Error).message}`);
    }
    if (meta.version !== 1 || (now !== undefined && now - meta.createdMs > this.ttlMs)) {
      rmSync(entryDir, { recursive: true, force: true });
      return undefined;
    }
    const entry: CacheEntry = { key, empty: meta.empty };
    if (!meta.empty) {
      if (!meta.blob || !meta.descriptor || !meta.diffId || meta.blob.includes('/')) return this.#discard(key, 'meta.json names no layer blob, digest or diff id');
      entry.blobPath = join(entryDir, meta.blob);
      entry.descriptor = meta.descriptor;
      entry.diffId = meta.diffId;
      if (verify) {
        const problem = blobProblem(entry.blobPath, meta.descriptor);
        if (problem) return this.#discard(key, problem);
      }
    }
    return entry;
  }

  /** A fresh directory to write a new entry's blob into (then `commit` it). */
  staging(): string {
    mkdirSync(this.dir, { recursive: true });
    const dir = join(this.dir, `.tmp-${process.pid}-${currentPidNamespace() || 'unknown'}-${randomBytes(6).toString('hex')}`);
    mkdirSync(dir);
    return dir;
  }

  /**
   * Publishes a staged entry under `key`. When another process published the
   * same key first, that entry wins and the staged one is dropped.
   */
  commit(staging: string, key: string, result: { empty: true } | { empty: false; blob: string; diffId: Digest; descriptor: Descriptor }): CacheEntry {
    const meta: Meta = { version: 1, createdMs: Date.now(), empty: result.empty };
    if (!result.empty) {
      meta.blob = result.blob;
      meta.diffId = result.diffId;
      meta.descriptor = result.descriptor;
    }
    writeFileSync(join(staging, 'meta.json'), `${JSON.stringify(meta)}\n`);
    for (let attempt = 0; ; attempt++) {
      try {
        renameSync(staging, join(this.dir, key));
        break;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') {
          rmSync(staging, { recursive: true, force: true });
          throw error;
        }
        // Another process published this key first: its entry wins unless it is damaged.
        if (attempt === 0 && this.#read(key, undefined, true) === undefined) continue;
        rmSync(staging, { recursive: true, force: true });
        break;
      }
    }
    // Read back without the TTL check: a zero TTL still hands out what was just written.
    const entry = this.#read(key, undefined, false);
    if (!entry) throw new Error(`layer cache ${this.dir}: entry ${key} vanished right after it was written`);
    return entry;
  }

  /** Removes expired entries and staging leftovers of processes (of this pid namespace) that are gone. */
  prune(now = Date.now()): void {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return;
    }
    const here = currentPidNamespace();
    for (const name of names) {
      if (name.startsWith('.tmp-')) {
        // A pid says whether its process is gone only in the pid namespace it was taken in;
        // extenders in other containers share the dir, so their staging dirs are left alone.
        // Past a day, no extender is still writing it, whichever container it was in.
        const [, pidText, namespace] = name.split('-');
        const pid = Number(pidText);
        const gone = here !== '' && namespace === here && Number.isInteger(pid) && !processAlive(pid);
        if (gone || ageMs(join(this.dir, name), now) > STAGING_MAX_AGE_MS) rmSync(join(this.dir, name), { recursive: true, force: true });
        continue;
      }
      // expiry only: verifying every blob here would read the whole cache on each run
      this.#read(name, now, false);
    }
  }
}

/** Staging dirs older than this are leftovers of crashed extenders in any container. */
export const STAGING_MAX_AGE_MS = 24 * 60 * 60 * 1000;

function ageMs(path: string, now: number): number {
  try {
    return now - lstatSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

/** Why a cached layer blob cannot be used (size or sha256 not the recorded ones), or undefined. */
function blobProblem(path: string, descriptor: Descriptor): string | undefined {
  let size: number;
  try {
    size = lstatSync(path).size;
  } catch (error) {
    return `reading the layer blob: ${(error as Error).message}`;
  }
  if (size !== descriptor.size) return `the layer blob has ${size} bytes, not the recorded ${descriptor.size}`;
  const digest = `sha256:${hashFile(path)}`;
  if (digest !== descriptor.digest) return `the layer blob's digest is ${digest}, not the recorded ${descriptor.digest}`;
  return undefined;
}

/**
 * A digest of a build context: every path (sorted) with its type, mode and
 * content or link target. Any change to the context changes it, so COPY/ADD
 * steps re-run whenever the context changed.
 */
export function contextDigest(dir: string): string {
  const hash = createHash('sha256');
  const visit = (abs: string, rel: string): void => {
    let names: string[];
    try {
      names = readdirSync(abs).sort();
    } catch {
      return;
    }
    for (const name of names) {
      const p = join(abs, name);
      const r = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(p);
      if (st.isDirectory()) {
        hash.update(`d ${r} ${st.mode}\n`);
        visit(p, r);
      } else if (st.isSymbolicLink()) hash.update(`l ${r} ${readlinkSync(p)}\n`);
      else if (st.isFile()) hash.update(`f ${r} ${st.mode} ${hashFile(p)}\n`);
      else hash.update(`o ${r} ${st.mode}\n`);
    }
  };
  visit(dir, '');
  return hash.digest('hex');
}
