/**
 * The sending side of fsutil's DiffCopy, as BuildKit's `local` sources expect
 * it: one STAT per entry in Go `filepath.Walk` order (lexical by bytes,
 * directory before its children), Go `os.FileMode` bits, hard links named by
 * the first path of their inode, an empty STAT to end the list; then file
 * contents on request, by the 0-based index of the entry.
 *
 * Include / exclude patterns follow Docker's `.dockerignore` rules (`*`, `?`,
 * `[…]`, `**`, `!` exceptions, a match on a parent directory matches its
 * contents); `followpaths` act as extra includes, and a symlink named there
 * also brings its target. Symlinks are never followed while walking, so no
 * entry ever comes from outside the directory.
 */
import { constants, type BigIntStats } from 'node:fs';
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { PacketType, decodePacket, encodePacket, type FsStat } from './messages.ts';

// Go os.FileMode bits.
export const GoMode = {
  dir: 2 ** 31,
  symlink: 2 ** 27,
  device: 2 ** 26,
  namedPipe: 2 ** 25,
  socket: 2 ** 24,
  setuid: 2 ** 23,
  setgid: 2 ** 22,
  charDevice: 2 ** 21,
  sticky: 2 ** 20,
} as const;

/** Unix st_mode → Go os.FileMode (as `uint32`). */
export function goFileMode(mode: number): number {
  let out = mode & 0o777;
  if (mode & 0o4000) out += GoMode.setuid;
  if (mode & 0o2000) out += GoMode.setgid;
  if (mode & 0o1000) out += GoMode.sticky;
  switch (mode & constants.S_IFMT) {
    case constants.S_IFDIR:
      out += GoMode.dir;
      break;
    case constants.S_IFLNK:
      out += GoMode.symlink;
      break;
    case constants.S_IFIFO:
      out += GoMode.namedPipe;
      break;
    case constants.S_IFSOCK:
      out += GoMode.socket;
      break;
    case constants.S_IFCHR:
      out += GoMode.device + GoMode.charDevice;
      break;
    case constants.S_IFBLK:
      out += GoMode.device;
      break;
    default:
      break;
  }
  return out;
}

// ---- Docker patterns ----

function segmentRegex(segment: string): string {
  let out = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i]!;
    if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else if (c === '\\' && i + 1 < segment.length) out += escapeChar(segment[++i]!);
    else if (c === '[') {
      const end = segment.indexOf(']', i + 2);
      if (end < 0) {
        out += '\\[';
        continue;
      }
      let body = segment.slice(i + 1, end);
      if (body.startsWith('!') || body.startsWith('^')) body = `^${body.slice(1)}`;
      out += `[${body.replace(/\\(.)/g, '\\$1')}]`;
      i = end;
    } else out += escapeChar(c);
  }
  return out;
}

function escapeChar(c: string): string {
  return /[.*+?^${}()|[\]\\/]/.test(c) ? `\\${c}` : c;
}

/** `path.Clean`-like cleanup of a pattern; leading `/` and `./` removed. */
export function cleanPattern(pattern: string): string {
  let p = posix.normalize(pattern.trim());
  while (p.startsWith('/')) p = p.slice(1);
  if (p === '.' || p === './') return '';
  if (p.endsWith('/')) p = p.slice(0, -1);
  return p;
}

export class Pattern {
  readonly source: string;
  readonly exclusion: boolean;
  readonly segments: string[];
  private readonly regex: RegExp;

  constructor(raw: string) {
    let p = raw.trim();
    this.exclusion = p.startsWith('!');
    if (this.exclusion) p = p.slice(1);
    this.source = cleanPattern(p);
    this.segments = this.source === '' ? [] : this.source.split('/');
    let out = '';
    let skipSep = false;
    this.segments.forEach((seg, i) => {
      const last = i === this.segments.length - 1;
      if (seg === '**') {
        if (i === 0) {
          out += last ? '.*' : '(?:.*/)?';
          skipSep = !last;
        } else out += last ? '(?:/.*)?' : '(?:/.*)?';
        return;
      }
      out += (i > 0 && !skipSep ? '/' : '') + segmentRegex(seg);
      skipSep = false;
    });
    this.regex = new RegExp(`^${out}$`, 's');
  }

  matches(path: string): boolean {
    return this.regex.test(path);
  }

  /** True when the path or one of its parents matches. */
  matchesOrParent(path: string): boolean {
    if (this.matches(path)) return true;
    let parent = posix.dirname(path);
    while (parent !== '.' && parent !== '/' && parent !== '') {
      if (this.matches(parent)) return true;
      parent = posix.dirname(parent);
    }
    return false;
  }

  /** True when something below directory `dir` could match. */
  couldMatchBelow(dir: string): boolean {
    const parts = dir.split('/');
    for (let i = 0; i < parts.length; i++) {
      const seg = this.segments[i];
      if (seg === undefined) return false;
      if (seg === '**') return true;
      if (!new RegExp(`^${segmentRegex(seg)}$`, 's').test(parts[i]!)) return false;
    }
    return this.segments.length > parts.length;
  }
}

/** Docker's exclude semantics: the last matching pattern decides; `!` re-includes. */
export class PatternSet {
  readonly patterns: Pattern[];
  readonly hasExceptions: boolean;
  constructor(patterns: readonly string[]) {
    this.patterns = patterns.filter((p) => p.trim() !== '' && cleanPattern(p.replace(/^!/, '')) !== '').map((p) => new Pattern(p));
    this.hasExceptions = this.patterns.some((p) => p.exclusion);
  }
  get empty(): boolean {
    return this.patterns.length === 0;
  }
  excludes(path: string): boolean {
    let matched = false;
    for (const p of this.patterns) {
      if (p.matchesOrParent(path)) matched = !p.exclusion;
    }
    return matched;
  }
}

export interface WalkOptions {
  includePatterns?: readonly string[];
  excludePatterns?: readonly string[];
  followPaths?: readonly string[];
}

export interface WalkEntry {
  /** Path relative to the root, `/`-separated. */
  path: string;
  abs: string;
  stat: FsStat;
  regular: boolean;
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

async function resolveFollowPaths(root: string, followPaths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const raw of followPaths) {
    let rel = cleanPattern(raw);
    for (let depth = 0; depth < 40 && rel !== '' && !rel.startsWith('..'); depth++) {
      let st;
      try {
        st = await lstat(join(root, rel));
      } catch {
        break;
      }
      if (!st.isSymbolicLink()) break;
      const target = await readlink(join(root, rel));
      // Resolved inside the root: an absolute target is taken relative to the root, as fsutil does.
      rel = cleanPattern(target.startsWith('/') ? target : posix.join(posix.dirname(rel), target));
      if (rel.startsWith('..')) break;
      out.push(rel);
    }
  }
  return out;
}

function toStat(path: string, st: BigIntStats, linkname: string): FsStat {
  const mode = Number(st.mode);
  const isDir = st.isDirectory();
  const isLink = st.isSymbolicLink();
  return {
    path,
    mode: goFileMode(mode),
    // Sent as root's, as buildctl and buildx do (their resetUIDAndGID map): ownership in the image comes from
    // the Dockerfile (COPY --chown), never from who owns the files on the client.
    uid: 0,
    gid: 0,
    size: isDir || isLink ? 0 : Number(st.size),
    modTime: st.mtimeNs,
    linkname,
    devMajor: st.isCharacterDevice() || st.isBlockDevice() ? Number(st.rdev >> 8n) & 0xfff : 0,
    devMinor: st.isCharacterDevice() || st.isBlockDevice() ? Number((st.rdev & 0xffn) | ((st.rdev >> 12n) & 0xfff00n)) : 0,
  };
}

/** The entries fsutil would send for `root` with these filters, in order. */
export async function* walkContext(root: string, options: WalkOptions = {}): AsyncGenerator<WalkEntry> {
  const follow = options.followPaths ?? [];
  const includeList = [...(options.includePatterns ?? []), ...follow, ...(await resolveFollowPaths(root, follow))];
  const includes = includeList.filter((p) => cleanPattern(p) !== '').map((p) => new Pattern(p));
  const hasIncludes = (options.includePatterns?.length ?? 0) > 0 || follow.length > 0;
  const excludes = new PatternSet(options.excludePatterns ?? []);
  const seenInodes = new Map<string, string>();
  const pending: WalkEntry[] = [];

  async function* visit(dirAbs: string, dirRel: string, parentIncluded: boolean): AsyncGenerator<WalkEntry> {
    const names = (await readdir(dirAbs)).sort(byteOrder);
    for (const name of names) {
      const rel = dirRel === '' ? name : `${dirRel}/${name}`;
      const abs = join(dirAbs, name);
      const st = await lstat(abs, { bigint: true });
      const isDir = st.isDirectory();
      const included = !hasIncludes || parentIncluded || includes.some((p) => p.matches(rel));
      if (!excludes.empty && excludes.excludes(rel)) {
        if (isDir && excludes.hasExceptions) {
          // An exception may re-include something below: walk it, emit it only as a parent.
          const marker = { path: rel, abs, stat: toStat(rel, st, ''), regular: false };
          pending.push(marker);
          yield* visit(abs, rel, included);
          if (pending.at(-1) === marker) pending.pop();
        }
        continue;
      }
      if (!included) {
        if (isDir && includes.some((p) => p.couldMatchBelow(rel))) {
          const marker = { path: rel, abs, stat: toStat(rel, st, ''), regular: false };
          pending.push(marker);
          yield* visit(abs, rel, false);
          if (pending.at(-1) === marker) pending.pop();
        }
        continue;
      }
      // Emit directories that were held back because nothing in them was included yet.
      for (const parent of pending.splice(0)) yield parent;
      let linkname = '';
      if (st.isSymbolicLink()) linkname = await readlink(abs);
      else if (!isDir && st.nlink > 1n) {
        const key = `${st.dev}:${st.ino}`;
        const first = seenInodes.get(key);
        if (first !== undefined) linkname = first;
        else seenInodes.set(key, rel);
      }
      const stat = toStat(rel, st, linkname);
      if (linkname !== '' && !st.isSymbolicLink()) stat.size = 0;
      yield { path: rel, abs, stat, regular: st.isFile() && linkname === '' };
      if (isDir) yield* visit(abs, rel, included);
    }
  }
  yield* visit(root, '', false);
}

/** A bidirectional message channel (one gRPC call). */
export interface MessageChannel {
  messages(): AsyncIterable<Buffer>;
  send(message: Uint8Array): Promise<void>;
}

// fsutil itself reads 32 KiB at a time; the receiver takes any size, and fewer, larger packets cost less here.
const CHUNK = 512 * 1024;

/** Serves one DiffCopy call as the sender; resolves when the daemon sends FIN. */
export async function sendDiffCopy(root: string, options: WalkOptions, channel: MessageChannel, signal?: AbortSignal): Promise<{ entries: number; bytes: number }> {
  const files = new Map<number, string>();
  let writeChain = Promise.resolve();
  const write = (message: Buffer) => (writeChain = writeChain.then(() => channel.send(message)));
  let id = 0;
  let bytes = 0;
  let entries = 0;

  const walking = (async () => {
    for await (const entry of walkContext(root, options)) {
      signal?.throwIfAborted();
      if (entry.regular) files.set(id, entry.abs);
      id++;
      entries++;
      await write(encodePacket({ type: PacketType.stat, stat: entry.stat, id: 0 }));
    }
    await write(encodePacket({ type: PacketType.stat, id: 0 }));
  })();
  walking.catch(() => undefined);

  for await (const raw of channel.messages()) {
    const packet = decodePacket(raw);
    if (packet.type === PacketType.req) {
      await walking;
      const path = files.get(packet.id);
      if (path === undefined) throw new Error(`sending the build context: the daemon asked for entry ${packet.id}, which is not a regular file`);
      const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        const buffer = Buffer.alloc(CHUNK);
        for (;;) {
          signal?.throwIfAborted();
          const { bytesRead } = await handle.read(buffer, 0, CHUNK, null);
          if (bytesRead === 0) break;
          bytes += bytesRead;
          await write(encodePacket({ type: PacketType.data, id: packet.id, data: Buffer.from(buffer.subarray(0, bytesRead)) }));
        }
      } finally {
        await handle.close();
      }
      await write(encodePacket({ type: PacketType.data, id: packet.id }));
    } else if (packet.type === PacketType.fin) {
      await walking;
      await write(encodePacket({ type: PacketType.fin, id: 0 }));
      await writeChain;
      return { entries, bytes };
    } else if (packet.type === PacketType.err) {
      throw new Error(`sending the build context: the daemon reported: ${packet.data?.toString('utf8') ?? 'an error'}`);
    }
  }
  await walking;
  return { entries, bytes };
}
