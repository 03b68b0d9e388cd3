/**
 * The tar format as layers use it: POSIX ustar headers, with PAX extended
 * headers when a value does not fit (long or non-ASCII names, sizes ≥ 8 GiB,
 * large ids, xattrs as `SCHILY.xattr.<name>`). Written by hand because it is a
 * few dozen lines and lets the writer put headers and small files into one
 * buffer without per-entry stream overhead.
 */

export const BLOCK_SIZE = 512;

/** ustar type flags. */
export const TypeFlag = {
  file: 0x30, // '0'
  oldFile: 0x00, // '\0'
  hardlink: 0x31, // '1'
  symlink: 0x32, // '2'
  charDevice: 0x33, // '3'
  blockDevice: 0x34, // '4'
  directory: 0x35, // '5'
  fifo: 0x36, // '6'
  contiguous: 0x37, // '7'
  paxLocal: 0x78, // 'x'
  paxGlobal: 0x67, // 'g'
  gnuLongName: 0x4c, // 'L'
  gnuLongLink: 0x4b, // 'K'
} as const;

const MAX_OCTAL_7 = 0o7777777; // 8-byte fields (mode, uid, gid, devmajor, devminor)
const MAX_OCTAL_11 = 0o77777777777; // 12-byte fields (size, mtime)

/** What one header block says, with the long/PAX values already folded in by the caller. */
export interface HeaderFields {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number; // seconds since the epoch
  typeflag: number;
  linkname: string;
  devmajor: number;
  devminor: number;
}

export function paddingFor(size: number): number {
  const rest = size % BLOCK_SIZE;
  return rest === 0 ? 0 : BLOCK_SIZE - rest;
}

// eslint-disable-next-line no-control-regex
const ASCII = /^[\x01-\x7f]*$/;

/** Split a name into ustar prefix + name, or undefined when it cannot be stored in ustar. */
function splitUstarName(name: string): { prefix: string; name: string } | undefined {
  if (!ASCII.test(name)) return undefined;
  if (name.length <= 100) return { prefix: '', name };
  // The prefix holds at most 155 bytes and is joined with '/' on read.
  const start = Math.max(0, name.length - 101);
  for (let i = name.indexOf('/', start); i !== -1 && i <= 155; i = name.indexOf('/', i + 1)) {
    const rest = name.length - i - 1;
    if (rest > 0 && rest <= 100) return { prefix: name.slice(0, i), name: name.slice(i + 1) };
  }
  return undefined;
}

function writeString(block: Uint8Array, offset: number, length: number, value: string): void {
  // ASCII only (checked by callers); written byte by byte to avoid allocations.
  const n = Math.min(value.length, length);
  for (let i = 0; i < n; i++) block[offset + i] = value.charCodeAt(i);
}

function writeOctal(block: Uint8Array, offset: number, length: number, value: number): void {
  // length-1 zero-padded octal digits followed by NUL.
  const digits = value.toString(8).padStart(length - 1, '0');
  writeString(block, offset, length - 1, digits);
  block[offset + length - 1] = 0;
}

/**
 * Encode the header block(s) for one entry: a PAX header plus its records when
 * needed, then the ustar block.
 */
export function encodeHeader(fields: HeaderFields, xattrs: Record<string, Uint8Array> | undefined): Uint8Array {
  const pax = paxRecords(fields, xattrs);
  if (!pax) {
    const out = new Uint8Array(BLOCK_SIZE);
    writeUstar(fields, out);
    return out;
  }
  const out = new Uint8Array(2 * BLOCK_SIZE + pax.length + paddingFor(pax.length));
  const baseName = fields.name.replace(/\/$/, '').split('/').pop() || 'entry';
  const paxName = asciiTail(`PaxHeaders.0/${baseName}`, 100);
  writeUstar(
    { name: paxName, mode: 0o644, uid: 0, gid: 0, size: pax.length, mtime: fields.mtime, typeflag: TypeFlag.paxLocal, linkname: '', devmajor: 0, devminor: 0 },
    out.subarray(0, BLOCK_SIZE),
  );
  out.set(pax, BLOCK_SIZE);
  // The ustar block gets whatever fits; readers take the PAX values.
  writeUstar(
    {
      ...fields,
      name: splitUstarName(fields.name) ? fields.name : asciiTail(fields.name, 100),
      linkname: fitsUstarLink(fields.linkname) ? fields.linkname : asciiTail(fields.linkname, 100),
      size: fields.size > MAX_OCTAL_11 ? 0 : fields.size,
      uid: fields.uid > MAX_OCTAL_7 ? 0 : fields.uid,
      gid: fields.gid > MAX_OCTAL_7 ? 0 : fields.gid,
    },
    out.subarray(out.length - BLOCK_SIZE),
  );
  return out;
}

function fitsUstarLink(linkname: string): boolean {
  return linkname.length <= 100 && ASCII.test(linkname);
}

function asciiTail(value: string, max: number): string {
  const ascii = value.replace(/[^\x01-\x7f]/g, '_');
  return ascii.length <= max ? ascii : ascii.slice(ascii.length - max);
}

function needsPax(fields: HeaderFields, xattrs: Record<string, Uint8Array> | undefined): boolean {
  return (
    !splitUstarName(fields.name) ||
    !fitsUstarLink(fields.linkname) ||
    fields.size > MAX_OCTAL_11 ||
    fields.uid > MAX_OCTAL_7 ||
    fields.gid > MAX_OCTAL_7 ||
    (xattrs !== undefined && Object.keys(xattrs).length > 0)
  );
}

const encoder = new TextEncoder();

/** PAX records for what ustar cannot hold, keys in a fixed order; undefined when none are needed. */
function paxRecords(fields: HeaderFields, xattrs: Record<string, Uint8Array> | undefined): Uint8Array | undefined {
  if (!needsPax(fields, xattrs)) return undefined;
  const records: Uint8Array[] = [];
  if (!splitUstarName(fields.name)) records.push(paxRecord('path', encoder.encode(fields.name)));
  if (!fitsUstarLink(fields.linkname)) records.push(paxRecord('linkpath', encoder.encode(fields.linkname)));
  if (fields.size > MAX_OCTAL_11) records.push(paxRecord('size', encoder.encode(String(fields.size))));
  if (fields.uid > MAX_OCTAL_7) records.push(paxRecord('uid', encoder.encode(String(fields.uid))));
  if (fields.gid > MAX_OCTAL_7) records.push(paxRecord('gid', encoder.encode(String(fields.gid))));
  if (xattrs) {
    for (const key of Object.keys(xattrs).sort()) records.push(paxRecord(`SCHILY.xattr.${key}`, xattrs[key]!));
  }
  let length = 0;
  for (const r of records) length += r.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const r of records) {
    out.set(r, at);
    at += r.length;
  }
  return out;
}

/** One `<length> <key>=<value>\n` record; the length counts itself. */
function paxRecord(key: string, value: Uint8Array): Uint8Array {
  const keyBytes = encoder.encode(key);
  const rest = 1 + keyBytes.length + 1 + value.length + 1; // ' ' key '=' value '\n'
  let length = rest + String(rest).length;
  if (String(length).length !== String(rest).length) length = rest + String(length).length;
  const head = encoder.encode(`${length} ${key}=`);
  const out = new Uint8Array(length);
  out.set(head, 0);
  out.set(value, head.length);
  out[length - 1] = 0x0a;
  return out;
}

function writeUstar(fields: HeaderFields, block: Uint8Array): void {
  const { prefix, name } = splitUstarName(fields.name) ?? { prefix: '', name: fields.name };
  writeString(block, 0, 100, name);
  writeOctal(block, 100, 8, fields.mode & 0o7777);
  writeOctal(block, 108, 8, fields.uid);
  writeOctal(block, 116, 8, fields.gid);
  writeOctal(block, 124, 12, fields.size);
  writeOctal(block, 136, 12, fields.mtime);
  block[156] = fields.typeflag;
  writeString(block, 157, 100, fields.linkname);
  writeString(block, 257, 6, 'ustar'); // "ustar\0"
  writeString(block, 263, 2, '00');
  // uname and gname stay empty: ownership is numeric.
  if (fields.typeflag === TypeFlag.charDevice || fields.typeflag === TypeFlag.blockDevice) {
    writeOctal(block, 329, 8, fields.devmajor);
    writeOctal(block, 337, 8, fields.devminor);
  }
  writeString(block, 345, 155, prefix);
  // Checksum: sum of all bytes with the checksum field read as spaces.
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (let i = 0; i < BLOCK_SIZE; i++) sum += block[i]!;
  writeString(block, 148, 6, sum.toString(8).padStart(6, '0'));
  block[154] = 0;
  block[155] = 0x20;
}

// ---------------------------------------------------------------------------
// Decoding

export class TarFormatError extends Error {
  override name = 'TarFormatError';
}

function readString(block: Uint8Array, offset: number, length: number): string {
  let end = offset;
  const limit = offset + length;
  while (end < limit && block[end] !== 0) end++;
  return Buffer.from(block.buffer, block.byteOffset + offset, end - offset).toString('utf8');
}

/** Numeric field: octal text (space/NUL padded) or GNU base-256 (high bit set). */
function readNumber(block: Uint8Array, offset: number, length: number): number {
  const first = block[offset]!;
  if (first & 0x80) {
    if (first === 0xff) throw new TarFormatError('negative base-256 number in tar header');
    let value = first & 0x7f;
    for (let i = 1; i < length; i++) value = value * 256 + block[offset + i]!;
    return value;
  }
  let value = 0;
  let seen = false;
  for (let i = offset; i < offset + length; i++) {
    const c = block[i]!;
    if (c >= 0x30 && c <= 0x37) {
      value = value * 8 + (c - 0x30);
      seen = true;
    } else if (c === 0 || c === 0x20) {
      if (seen) break;
    } else {
      throw new TarFormatError(`invalid octal digit ${JSON.stringify(String.fromCharCode(c))} in tar header`);
    }
  }
  return value;
}

export function isZeroBlock(block: Uint8Array): boolean {
  for (let i = 0; i < BLOCK_SIZE; i++) if (block[i] !== 0) return false;
  return true;
}

/** Decode one ustar/GNU/v7 header block, checking its checksum. */
export function decodeHeader(block: Uint8Array): HeaderFields {
  const stored = readNumber(block, 148, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK_SIZE; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  if (stored !== unsigned && stored !== signed) throw new TarFormatError('tar header checksum mismatch (not a tar stream, or corrupted)');
  let name = readString(block, 0, 100);
  const magic = readString(block, 257, 6);
  if (magic === 'ustar') {
    // POSIX ustar (magic "ustar\0"); GNU's "ustar  " has no prefix field.
    const prefix = readString(block, 345, 155);
    if (prefix) name = `${prefix}/${name}`;
  }
  return {
    name,
    mode: readNumber(block, 100, 8),
    uid: readNumber(block, 108, 8),
    gid: readNumber(block, 116, 8),
    size: readNumber(block, 124, 12),
    mtime: readNumber(block, 136, 12),
    typeflag: block[156]!,
    linkname: readString(block, 157, 100),
    devmajor: readNumber(block, 329, 8),
    devminor: readNumber(block, 337, 8),
  };
}

/** Parse PAX records; values stay bytes (xattr values are binary). */
export function decodePax(data: Uint8Array): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const buf = Buffer.from(data.buffer, data.byteOffset, data.length);
  let at = 0;
  while (at < buf.length) {
    if (buf[at] === 0) break; // padding
    const space = buf.indexOf(0x20, at);
    if (space === -1) throw new TarFormatError('malformed PAX record: no length');
    const length = Number(buf.toString('latin1', at, space));
    if (!Number.isInteger(length) || length <= 0 || at + length > buf.length) throw new TarFormatError('malformed PAX record length');
    const record = buf.subarray(space + 1, at + length - 1); // without the trailing '\n'
    const eq = record.indexOf(0x3d);
    if (eq === -1) throw new TarFormatError('malformed PAX record: no "="');
    out.set(record.toString('utf8', 0, eq), Buffer.from(record.subarray(eq + 1)));
    at += length;
  }
  return out;
}
