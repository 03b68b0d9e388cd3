/**
 * Copies a tar stream byte for byte, dropping the entries under given paths
 * (with their PAX / GNU long-name headers), and hashes what is written.
 */
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { posix } from 'node:path';

class Blocks {
  private readonly it: AsyncIterator<Uint8Array>;
  private buf: Buffer = Buffer.alloc(0);
  constructor(input: AsyncIterable<Uint8Array>) {
    this.it = input[Symbol.asyncIterator]();
  }
  async read(n: number): Promise<Buffer> {
    const parts: Buffer[] = [this.buf];
    let have = this.buf.length;
    while (have < n) {
      const r = await this.it.next();
      if (r.done) break;
      const chunk = Buffer.from(r.value.buffer, r.value.byteOffset, r.value.length);
      parts.push(chunk);
      have += chunk.length;
    }
    const all = parts.length === 1 ? this.buf : Buffer.concat(parts);
    this.buf = all.subarray(Math.min(n, all.length));
    return all.subarray(0, Math.min(n, all.length));
  }
  async rest(): Promise<Buffer[]> {
    const out = [this.buf];
    for (;;) {
      const r = await this.it.next();
      if (r.done) return out;
      out.push(Buffer.from(r.value));
    }
  }
}

function octal(field: Buffer): number {
  if ((field[0]! & 0x80) !== 0) {
    let v = 0;
    for (let i = 1; i < field.length; i++) v = v * 256 + field[i]!;
    return v;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  return text === '' ? 0 : parseInt(text, 8);
}

function cstring(field: Buffer): string {
  const end = field.indexOf(0);
  return field.subarray(0, end < 0 ? field.length : end).toString('utf8');
}

function paxPath(body: Buffer): string | undefined {
  let pos = 0;
  let found: string | undefined;
  while (pos < body.length) {
    const space = body.indexOf(0x20, pos);
    if (space < 0) break;
    const length = parseInt(body.subarray(pos, space).toString('latin1'), 10);
    if (!Number.isFinite(length) || length <= 0) break;
    const record = body.subarray(space + 1, pos + length - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (record.slice(0, eq) === 'path') found = record.slice(eq + 1);
    pos += length;
  }
  return found;
}

/** Normalised entry name (`./a/b/` → `a/b`). */
export function entryPath(name: string): string {
  const p = posix.normalize(`/${name}`).replace(/\/+$/, '');
  return p.slice(1);
}

/** True when `name` is one of the ignored paths or below one (whiteouts included). */
export function underIgnored(name: string, ignored: readonly string[]): boolean {
  const p = `/${entryPath(name)}`;
  const base = posix.basename(p);
  const real = base.startsWith('.wh.') && base !== '.wh..wh..opq' ? posix.join(posix.dirname(p), base.slice(4)) : p;
  return ignored.some((i) => {
    const ig = i.replace(/\/+$/, '');
    return ig !== '' && (real === ig || real.startsWith(`${ig}/`));
  });
}

export interface FilterResult {
  digest: `sha256:${string}`;
  size: number;
  dropped: number;
  entries: number;
}

/** Writes `input` (an uncompressed tar) to `target` without the entries under `ignored`. */
export async function filterTar(input: AsyncIterable<Uint8Array>, target: string, ignored: readonly string[]): Promise<FilterResult> {
  const src = new Blocks(input);
  const out = createWriteStream(target);
  const hash = createHash('sha256');
  let size = 0;
  let dropped = 0;
  let entries = 0;
  const write = async (data: Buffer) => {
    if (data.length === 0) return;
    hash.update(data);
    size += data.length;
    if (!out.write(data)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  };
  try {
    let pending: Buffer[] = [];
    let longName: string | undefined;
    for (;;) {
      const header = await src.read(512);
      if (header.length < 512 || header.every((b) => b === 0)) {
        // End of archive: write the terminator as it was (plus anything after it).
        for (const b of pending) await write(b);
        await write(header);
        for (const b of await src.rest()) await write(b);
        break;
      }
      const type = String.fromCharCode(header[156]!);
      const bodySize = octal(header.subarray(124, 136));
      const padded = Math.ceil(bodySize / 512) * 512;
      if (type === 'x' || type === 'L' || type === 'K' || type === 'g') {
        const body = await src.read(padded);
        if (type === 'x') longName = paxPath(body.subarray(0, bodySize)) ?? longName;
        if (type === 'L') longName = cstring(body.subarray(0, bodySize));
        if (type === 'g') {
          await write(header);
          await write(body);
        } else pending.push(header, body);
        continue;
      }
      const prefix = cstring(header.subarray(345, 500));
      const shortName = cstring(header.subarray(0, 100));
      const name = longName ?? (prefix ? `${prefix}/${shortName}` : shortName);
      longName = undefined;
      const drop = underIgnored(name, ignored);
      entries++;
      if (drop) {
        dropped++;
        pending = [];
        let left = padded;
        while (left > 0) left -= (await src.read(Math.min(left, 1 << 20))).length || left;
        continue;
      }
      for (const b of pending) await write(b);
      pending = [];
      await write(header);
      let left = padded;
      while (left > 0) {
        const chunk = await src.read(Math.min(left, 1 << 20));
        if (chunk.length === 0) throw new Error('tar stream ends inside an entry');
        await write(chunk);
        left -= chunk.length;
      }
    }
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  } catch (err) {
    out.destroy();
    throw err;
  }
  return { digest: `sha256:${hash.digest('hex')}`, size, dropped, entries };
}
