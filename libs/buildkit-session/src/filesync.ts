/**
 * The sending side of fsutil's DiffCopy, as BuildKit's `local` sources expect
 * it: one STAT per entry in Go `filepath.Walk` order (lexical by bytes,
 * directory before its children), Go `os.FileMode` bits, hard links named by
 * the first path of their inode, an empty STAT to end the list; then file
 * contents on request, by the 0-based index of the entry.
 *
 * Include / exclude patterns are read and walked as fsutil does, with the
 * context pattern rules of `@cnb-extender/dockerfile` (Docker's
 * `.dockerignore` rules); `followpaths` act as extra includes, and a symlink
 * named there also brings its target. Symlinks are never followed while
 * walking, so no entry ever comes from outside the directory.
 */
import { constants, type BigIntStats } from 'node:fs';
import { lstat, open, readlink } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { cleanPath, PatternMatcher, walkContextTree } from '@cnb-extender/dockerfile';
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

/** The os.FileMode type bits of each Unix file type (a regular file has none). */
const GO_TYPE_BITS = new Map<number, number>([
  [constants.S_IFDIR, GoMode.dir],
  [constants.S_IFLNK, GoMode.symlink],
  [constants.S_IFIFO, GoMode.namedPipe],
  [constants.S_IFSOCK, GoMode.socket],
  [constants.S_IFCHR, GoMode.device + GoMode.charDevice],
  [constants.S_IFBLK, GoMode.device],
]);

/** Unix st_mode → Go os.FileMode (as `uint32`). */
export function goFileMode(mode: number): number {
  let out = mode & 0o777;
  if (mode & 0o4000) out += GoMode.setuid;
  if (mode & 0o2000) out += GoMode.setgid;
  if (mode & 0o1000) out += GoMode.sticky;
  return out + (GO_TYPE_BITS.get(mode & constants.S_IFMT) ?? 0);
}

// Docker's patterns: the matcher every backend that filters a context shares, exported
// here under the names this package has always used for them.
export { ContextPattern as Pattern, PatternMatcher as PatternSet } from '@cnb-extender/dockerfile';

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

/** A followpath as fsutil reads it: cleaned, relative to the root ('' for the root itself). */
function cleanFollowPath(path: string): string {
  const p = cleanPath(path.trim()).replace(/^\/+/, '');
  return p === '.' ? '' : p;
}

async function resolveFollowPaths(root: string, followPaths: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const raw of followPaths) {
    let rel = cleanFollowPath(raw);
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
      rel = cleanFollowPath(target.startsWith('/') ? target : posix.join(posix.dirname(rel), target));
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
  const includes = [...(options.includePatterns ?? []), ...follow, ...(await resolveFollowPaths(root, follow))];
  const include = includes.length > 0 ? new PatternMatcher(includes) : undefined;
  const exclude = new PatternMatcher(options.excludePatterns ?? []);
  const seenInodes = new Map<string, string>();
  for await (const { path, abs, stat: st } of walkContextTree(root, { exclude, ...(include ? { include } : {}) })) {
    let linkname = '';
    if (st.isSymbolicLink()) linkname = await readlink(abs);
    else if (!st.isDirectory() && st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      const first = seenInodes.get(key);
      if (first !== undefined) linkname = first;
      else seenInodes.set(key, path);
    }
    const stat = toStat(path, st, linkname);
    if (linkname !== '' && !st.isSymbolicLink()) stat.size = 0;
    yield { path, abs, stat, regular: st.isFile() && linkname === '' };
  }
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
