/**
 * WORKDIR as Docker does it. The Dockerfile reference says a missing working
 * directory "will be created even if it's not used in any subsequent Dockerfile
 * instruction"; buildah (1.28, still 1.43) only records it in the config and creates it
 * when a later RUN or COPY works in it, so a WORKDIR nothing uses leaves no
 * directory. After the build, each such WORKDIR gets a layer at its place with
 * the directories Docker would have created there (mode 755, owned by the USER
 * in effect, as BuildKit and the in-place backend do), and its empty history
 * entry becomes that layer's.
 *
 * A WORKDIR needs that layer when, at its place in buildah's layers, its
 * directory or a parent is missing and no later layer of buildah's writes it
 * (a later RUN in it already created it: no layer is added then).
 */
import { createReadStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { DockerfileSpec, ImageDescription } from '@cnb-extender/extender-core';
import { evaluate, type ImageConfig as PlanConfig, type WorkdirStep } from '@cnb-extender/dockerfile';
import { normalizeEntryPath, type BuiltImage, type BuiltLayer } from '@cnb-extender/image-backend-kit';
import { OPAQUE_WHITEOUT, WHITEOUT_PREFIX, decompressLayer, readTar, resolveImageUser, writeLayer, type HistoryEntry, type LayerEntry, type LayerEntryType } from '@cnb-extender/oci';

export interface AddWorkdirLayersOptions {
  built: BuiltImage;
  base: ImageDescription;
  dockerfile: DockerfileSpec;
  /** Where the added layers' tars are written (the caller removes it). */
  dir: string;
  /** File time of the added directories. */
  mtime: Date;
  signal?: AbortSignal;
}

export interface AddedWorkdirLayer {
  /** The WORKDIR line as written. */
  instruction: string;
  /** Image paths created (`/a`, `/a/b`), parents first. */
  paths: string[];
  uid: number;
  gid: number;
}

export type AddWorkdirLayersResult =
  | { built: BuiltImage; added: AddedWorkdirLayer[] }
  /** The directories could not be checked (why); `built` is buildah's result as is. */
  | { built: BuiltImage; added: []; unchecked: string };

/** A WORKDIR's directory could not be given the USER's owner. */
export class WorkdirOwnerError extends Error {
  override name = 'WorkdirOwnerError';
  readonly instruction: string;
  constructor(instruction: string, message: string) {
    super(message);
    this.instruction = instruction;
  }
}

/** `/a/b/c` → `a`, `a/b`, `a/b/c` (layer paths). */
function components(path: string): string[] {
  const out: string[] = [];
  let at = '';
  for (const part of path.split('/').filter((p) => p !== '' && p !== '.')) {
    at = at === '' ? part : `${at}/${part}`;
    out.push(at);
  }
  return out;
}

/** buildah's history text for a WORKDIR (`/bin/sh -c #(nop) WORKDIR rel`, the line as written). */
const WORKDIR_HISTORY = /^\/bin\/sh -c #\(nop\) WORKDIR\s/i;

const PASSWD = 'etc/passwd';
const GROUP = 'etc/group';

interface PathState {
  type: LayerEntryType | 'other';
  /** /etc/passwd and /etc/group: the bytes. */
  content?: Buffer;
}

/** What one layer does to the tracked paths. */
interface LayerRecord {
  /** Whiteouts of tracked paths. */
  removed: string[];
  /** Directories (tracked, or '' for the root) whose lower contents an opaque marker hides. */
  opaque: string[];
  entries: Map<string, PathState>;
  /** Tracked paths the layer has an entry or a whiteout for. */
  writes: Set<string>;
}

async function scanLayer(layer: BuiltLayer, tracked: ReadonlySet<string>): Promise<LayerRecord> {
  const record: LayerRecord = { removed: [], opaque: [], entries: new Map(), writes: new Set() };
  const { tar } = await decompressLayer(await layer.open());
  for await (const entry of readTar(tar)) {
    const path = normalizeEntryPath(entry.name);
    const slash = path.lastIndexOf('/');
    const dir = slash < 0 ? '' : path.slice(0, slash);
    const name = path.slice(slash + 1);
    if (name === OPAQUE_WHITEOUT) {
      if (dir === '' || tracked.has(dir)) record.opaque.push(dir);
    } else if (name.startsWith(WHITEOUT_PREFIX)) {
      const target = dir === '' ? name.slice(WHITEOUT_PREFIX.length) : `${dir}/${name.slice(WHITEOUT_PREFIX.length)}`;
      if (tracked.has(target)) {
        record.removed.push(target);
        record.writes.add(target);
      }
    } else if (tracked.has(path)) {
      const state: PathState = { type: entry.type };
      if ((path === PASSWD || path === GROUP) && entry.type === 'file') {
        const chunks: Buffer[] = [];
        for await (const chunk of entry.body()) chunks.push(chunk);
        state.content = Buffer.concat(chunks);
      }
      record.entries.set(path, state);
      record.writes.add(path);
    }
  }
  return record;
}

/** The tracked paths of the image as layers are applied bottom to top. */
class TrackedTree {
  readonly #paths = new Map<string, PathState>();

  #removeBelow(dir: string): void {
    for (const path of [...this.#paths.keys()]) if (dir === '' || path.startsWith(`${dir}/`)) this.#paths.delete(path);
  }

  apply(record: LayerRecord): void {
    for (const path of record.removed) {
      this.#paths.delete(path);
      this.#removeBelow(path);
    }
    for (const dir of record.opaque) this.#removeBelow(dir);
    for (const [path, state] of record.entries) {
      if (state.type !== 'directory') this.#removeBelow(path);
      this.#paths.set(path, state);
    }
  }

  get(path: string): PathState | undefined {
    return this.#paths.get(path);
  }

  addDirectory(path: string): void {
    this.#paths.set(path, { type: 'directory' });
  }
}

interface PlacedWorkdir {
  step: WorkdirStep;
  /** Index of its entry in the built config's history. */
  historyIndex: number;
  /** How many of buildah's new layers come before it. */
  position: number;
}

/** Pair the Dockerfile's WORKDIRs with buildah's history entries for them; a reason when they do not pair up. */
function placeWorkdirs(options: AddWorkdirLayersOptions): PlacedWorkdir[] | string {
  const { built, base, dockerfile } = options;
  let steps: WorkdirStep[];
  try {
    const buildArgs = new Map(dockerfile.args.map((a) => [a.name, a.value]));
    const plan = evaluate(dockerfile.content, { buildArgs, baseConfig: (base.config.config ?? {}) as PlanConfig, file: dockerfile.path });
    steps = plan.stages[plan.target]!.steps.filter((s): s is WorkdirStep => s.kind === 'workdir');
  } catch (err) {
    return `evaluating the Dockerfile: ${err instanceof Error ? err.message : String(err)}`;
  }
  if (!steps.some((s) => s.changesFilesystem)) return [];
  const history = built.config.history ?? [];
  const first = (base.config.history ?? []).length;
  const newLayers = built.layers.length - base.layers.length;
  const own = history.slice(first);
  if (own.filter((h) => !h.empty_layer).length !== newLayers) {
    return `buildah's history has ${own.filter((h) => !h.empty_layer).length} entries for its ${newLayers} new layers`;
  }
  const placed: PlacedWorkdir[] = [];
  let position = 0;
  own.forEach((h, i) => {
    if (WORKDIR_HISTORY.test(h.created_by ?? '')) placed.push({ step: steps[placed.length]!, historyIndex: first + i, position });
    if (!h.empty_layer) position++;
  });
  if (placed.length !== steps.length || placed.some((p) => p.step === undefined)) {
    return `the Dockerfile has ${steps.length} WORKDIR instructions and buildah's history ${placed.length}`;
  }
  return placed.filter((p) => p.step.changesFilesystem);
}

/** See module doc. */
export async function addWorkdirLayers(options: AddWorkdirLayersOptions): Promise<AddWorkdirLayersResult> {
  const { built, base, signal } = options;
  const placed = placeWorkdirs(options);
  if (typeof placed === 'string') return { built, added: [], unchecked: placed };
  if (placed.length === 0) return { built, added: [] };

  const tracked = new Set(['etc', PASSWD, GROUP, ...placed.flatMap((p) => components(p.step.workdir))]);
  const baseCount = base.layers.length;
  const records: LayerRecord[] = [];
  for (const layer of built.layers.slice(baseCount)) {
    signal?.throwIfAborted();
    records.push(await scanLayer(layer, tracked));
  }
  /** Tracked paths buildah's new layers from `position` on write. */
  const writtenFrom = (position: number) => new Set(records.slice(position).flatMap((r) => [...r.writes]));
  // Usually a RUN in the WORKDIR created it: the base is read only when some WORKDIR may need a layer.
  if (placed.every((p) => components(p.step.workdir).every((c) => writtenFrom(p.position).has(c)))) return { built, added: [] };

  const tree = new TrackedTree();
  for (const layer of built.layers.slice(0, baseCount)) {
    signal?.throwIfAborted();
    tree.apply(await scanLayer(layer, tracked));
  }
  await mkdir(options.dir, { recursive: true });
  const added: AddedWorkdirLayer[] = [];
  /** Added layers by the number of buildah's new layers before them. */
  const inserts = new Map<number, BuiltLayer[]>();
  let applied = 0;
  /** History entries of the WORKDIRs that got a layer. */
  const made = new Set<number>();
  for (const { step, position, historyIndex } of placed) {
    while (applied < position) tree.apply(records[applied++]!);
    const missing: string[] = [];
    for (const path of components(step.workdir)) {
      const state = tree.get(path);
      if (missing.length > 0 || state === undefined) missing.push(path);
      // A file or a symlink on the way: Docker follows or fails; nothing is made here.
      else if (state.type !== 'directory') break;
    }
    const later = writtenFrom(position);
    if (missing.length === 0 || missing.every((p) => later.has(p))) continue;
    let owner;
    try {
      // the USER's ids as the in-place backend resolves them (numeric ids need no entry; the gid is then the entry's or 0)
      const { uid, gid } = resolveImageUser(step.user, tree.get(PASSWD)?.content?.toString('utf8') ?? '', tree.get(GROUP)?.content?.toString('utf8') ?? '');
      owner = { uid, gid };
    } catch (err) {
      throw new WorkdirOwnerError(step.original, `creating ${step.workdir}: ${(err as Error).message}`);
    }
    const entries: LayerEntry[] = missing.map((path) => ({ path, type: 'directory', mode: 0o755, uid: owner.uid, gid: owner.gid }));
    const file = join(options.dir, `workdir-${added.length + 1}.tar`);
    const written = await writeLayer(entries, file, { compression: 'none', mtime: options.mtime, ...(signal ? { signal } : {}) });
    const list = inserts.get(position) ?? [];
    list.push({ diffId: written.diffId, open: () => createReadStream(file) });
    inserts.set(position, list);
    for (const path of missing) tree.addDirectory(path);
    made.add(historyIndex);
    added.push({ instruction: step.original, paths: missing.map((p) => `/${p}`), ...owner });
  }
  if (added.length === 0) return { built, added };

  const layers: BuiltLayer[] = built.layers.slice(0, baseCount);
  built.layers.slice(baseCount).forEach((layer, k) => {
    layers.push(...(inserts.get(k) ?? []), layer);
  });
  layers.push(...(inserts.get(built.layers.length - baseCount) ?? []));
  // The WORKDIRs that got a layer are no longer empty ones.
  const history: HistoryEntry[] = (built.config.history ?? []).map((h, i) => {
    if (!made.has(i)) return h;
    const { empty_layer: _, ...rest } = h;
    return rest;
  });
  const config = { ...built.config, history, rootfs: { type: 'layers' as const, diff_ids: layers.map((l) => l.diffId) } };
  return { built: { config, layers }, added };
}
