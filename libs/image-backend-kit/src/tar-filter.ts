/**
 * A streaming filter over a plain tar: entries under ignored paths are dropped,
 * every other entry (its PAX/GNU extension headers included) is copied byte for
 * byte, so hardlinks, xattrs, owners and modes survive exactly as the tool wrote them.
 */

const BLOCK = 512;

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

function parseNumber(field: Buffer): number {
  if ((field[0]! & 0x80) !== 0) {
    // GNU base-256
    let n = 0;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!;
    return n;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  return text === '' ? 0 : parseInt(text, 8);
}

function cString(buf: Buffer): string {
  const nul = buf.indexOf(0);
  return buf.subarray(0, nul < 0 ? buf.length : nul).toString('utf8');
}

function paxPath(data: Buffer): string | undefined {
  let offset = 0;
  let path: string | undefined;
  while (offset < data.length) {
    const space = data.indexOf(0x20, offset);
    if (space < 0) break;
    const length = parseInt(data.subarray(offset, space).toString('latin1'), 10);
    if (!Number.isFinite(length) || length <= 0) break;
    const record = data.subarray(space + 1, offset + length - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0 && record.slice(0, eq) === 'path') path = record.slice(eq + 1);
    offset += length;
  }
  return path;
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
    const type = String.fromCharCode(header[156]!);
    const size = parseNumber(header.subarray(124, 136));
    const padded = Math.ceil(size / BLOCK) * BLOCK;
    if (type === 'x' || type === 'L' || type === 'K' || type === 'g') {
      if (!(await fill(padded))) throw new Error('reading a tar layer: unexpected end inside an extension header');
      const data = Buffer.from(take(padded));
      if (type === 'g') {
        yield Buffer.concat([header, data]);
        continue;
      }
      if (type === 'x') longName = paxPath(data.subarray(0, size)) ?? longName;
      if (type === 'L') longName = cString(data.subarray(0, size));
      pending.push(Buffer.from(header), data);
      continue;
    }
    const magic = header.subarray(257, 263).toString('latin1');
    const prefix = magic.startsWith('ustar') && magic !== 'ustar ' ? cString(header.subarray(345, 500)) : '';
    const name = longName ?? (prefix ? `${prefix}/${cString(header.subarray(0, 100))}` : cString(header.subarray(0, 100)));
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
