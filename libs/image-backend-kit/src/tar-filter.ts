/**
 * A streaming filter over a plain tar: entries under ignored paths are dropped,
 * every other entry (its PAX/GNU extension headers included) is copied byte for
 * byte, so hardlinks, xattrs, owners and modes survive exactly as the tool wrote them.
 */
import { BLOCK_SIZE as BLOCK, decodeHeader, decodePax, TypeFlag } from '@cnb-extender/oci';

/** `./a/b/` → `a/b`. */
export function normalizeEntryPath(name: string): string {
  let p = name;
  while (p.startsWith('./')) p = p.slice(2);
  while (p.startsWith('/')) p = p.slice(1);
  while (p.endsWith('/')) p = p.slice(0, -1);
  return p;
}

/** The path a tar entry changes (a whiteout `.wh.x` changes `x`). */
export function effectivePath(name: string): string {
  const p = normalizeEntryPath(name);
  const slash = p.lastIndexOf('/');
  const base = p.slice(slash + 1);
  if (base.startsWith('.wh.') && base !== '.wh..wh..opq') return `${p.slice(0, slash + 1)}${base.slice(4)}`;
  if (base === '.wh..wh..opq') return p.slice(0, Math.max(slash, 0));
  return p;
}

/** Whether `path` (relative, normalised) is one of `ignored` (absolute paths) or below one. */
export function isIgnoredPath(path: string, ignored: readonly string[]): boolean {
  for (const raw of ignored) {
    const ig = normalizeEntryPath(raw);
    if (ig === '') continue;
    if (path === ig || path.startsWith(`${ig}/`)) return true;
  }
  return false;
}

/** A NUL-terminated name (a GNU long-name record). */
function cString(buf: Buffer): string {
  const nul = buf.indexOf(0);
  return buf.subarray(0, nul < 0 ? buf.length : nul).toString('utf8');
}

export interface TarFilterStats {
  kept: number;
  dropped: string[];
}

/**
 * Filter `input` (a plain tar stream) and yield the kept bytes, ending with the
 * two zero blocks. `stats` is filled in as the stream is read.
 */
export async function* filterTar(input: AsyncIterable<Uint8Array>, ignored: readonly string[], stats: TarFilterStats = { kept: 0, dropped: [] }): AsyncGenerator<Buffer> {
  const it = input[Symbol.asyncIterator]();
  let buffer = Buffer.alloc(0);
  let ended = false;
  async function fill(n: number): Promise<boolean> {
    while (buffer.length < n && !ended) {
      const r = await it.next();
      if (r.done) ended = true;
      else buffer = buffer.length === 0 ? Buffer.from(r.value) : Buffer.concat([buffer, r.value]);
    }
    return buffer.length >= n;
  }
  function take(n: number): Buffer {
    const out = buffer.subarray(0, n);
    buffer = buffer.subarray(n);
    return out;
  }
  let pending: Buffer[] = [];
  let longName: string | undefined;
  for (;;) {
    if (!(await fill(BLOCK))) break;
    const header = take(BLOCK);
    if (header.every((b) => b === 0)) break;
    const fields = decodeHeader(header);
    const type = fields.typeflag;
    const size = fields.size;
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (type === TypeFlag.paxLocal || type === TypeFlag.gnuLongName || type === TypeFlag.gnuLongLink || type === TypeFlag.paxGlobal) {
      if (!(await fill(padded))) throw new Error('reading a tar layer: unexpected end inside an extension header');
      const data = Buffer.from(take(padded));
      if (type === TypeFlag.paxGlobal) {
        yield Buffer.concat([header, data]);
        continue;
      }
      if (type === TypeFlag.paxLocal) longName = decodePax(data.subarray(0, size)).get('path')?.toString('utf8') ?? longName;
      if (type === TypeFlag.gnuLongName) longName = cString(data.subarray(0, size));
      pending.push(Buffer.from(header), data);
      continue;
    }
    const name = longName ?? fields.name;
    longName = undefined;
    const keep = !isIgnoredPath(effectivePath(name), ignored);
    if (keep) {
      stats.kept++;
      for (const part of pending) yield part;
      yield Buffer.from(header);
    } else {
      stats.dropped.push(normalizeEntryPath(name));
    }
    pending = [];
    let left = padded;
    while (left > 0) {
      if (buffer.length === 0 && !(await fill(1))) throw new Error(`reading a tar layer: unexpected end inside ${name}`);
      const part = take(Math.min(left, buffer.length));
      left -= part.length;
      if (keep) yield Buffer.from(part);
    }
  }
  yield Buffer.alloc(BLOCK * 2);
}
