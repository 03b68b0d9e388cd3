/**
 * A small proto3 wire-format codec: enough for the BuildKit control, session,
 * health and fsutil messages this package exchanges. Messages are described in
 * `messages.ts` with upstream field numbers; this file knows only the wire.
 */

/** Builds one message; fields are appended in the order they are written. */
export class ProtoWriter {
  private readonly parts: Buffer[] = [];

  private varint(value: bigint | number): void {
    let v = BigInt.asUintN(64, BigInt(value));
    const bytes: number[] = [];
    while (v >= 0x80n) {
      bytes.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    bytes.push(Number(v));
    this.parts.push(Buffer.from(bytes));
  }

  private tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  /** int32/int64/uint32/uint64/enum; zero is omitted as proto3 does. */
  int(field: number, value: number | bigint | undefined): this {
    if (value === undefined || value === 0 || value === 0n) return this;
    this.tag(field, 0);
    this.varint(value);
    return this;
  }

  bool(field: number, value: boolean | undefined): this {
    if (!value) return this;
    this.tag(field, 0);
    this.varint(1);
    return this;
  }

  bytes(field: number, value: Uint8Array | undefined, keepEmpty = false): this {
    if (value === undefined || (value.length === 0 && !keepEmpty)) return this;
    this.tag(field, 2);
    this.varint(value.length);
    this.parts.push(Buffer.from(value.buffer, value.byteOffset, value.length));
    return this;
  }

  string(field: number, value: string | undefined): this {
    if (value === undefined || value === '') return this;
    return this.bytes(field, Buffer.from(value, 'utf8'));
  }

  strings(field: number, values: readonly string[] | undefined): this {
    for (const value of values ?? []) this.bytes(field, Buffer.from(value, 'utf8'), true);
    return this;
  }

  message(field: number, value: ProtoWriter | undefined, keepEmpty = false): this {
    if (value === undefined) return this;
    return this.bytes(field, value.finish(), keepEmpty);
  }

  /** `map<string,string>` (or bytes values): one entry message per key, key = 1, value = 2. */
  map(field: number, entries: Record<string, string | Uint8Array> | undefined): this {
    for (const [key, value] of Object.entries(entries ?? {})) {
      const entry = new ProtoWriter().string(1, key);
      if (typeof value === 'string') entry.string(2, value);
      else entry.bytes(2, value);
      this.message(field, entry, true);
    }
    return this;
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** One decoded field: varints as bigint, length-delimited as bytes. */
export type ProtoField = { field: number; wire: 0; value: bigint } | { field: number; wire: 2; value: Buffer } | { field: number; wire: 1 | 5; value: Buffer };

export class ProtoDecodeError extends Error {
  override name = 'ProtoDecodeError';
}

function readVarint(buf: Buffer, pos: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new ProtoDecodeError('truncated varint');
    const byte = buf[pos++]!;
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [result, pos];
    shift += 7n;
    if (shift > 63n) throw new ProtoDecodeError('varint too long');
  }
}

/** The fields of one message, in wire order. */
export function* fields(buf: Buffer): Generator<ProtoField> {
  let pos = 0;
  while (pos < buf.length) {
    const [key, next] = readVarint(buf, pos);
    pos = next;
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      const [value, after] = readVarint(buf, pos);
      pos = after;
      yield { field, wire: 0, value };
    } else if (wire === 2) {
      const [length, after] = readVarint(buf, pos);
      const end = after + Number(length);
      if (end > buf.length) throw new ProtoDecodeError('truncated length-delimited field');
      yield { field, wire: 2, value: buf.subarray(after, end) };
      pos = end;
    } else if (wire === 1 || wire === 5) {
      const size = wire === 1 ? 8 : 4;
      if (pos + size > buf.length) throw new ProtoDecodeError('truncated fixed field');
      yield { field, wire, value: buf.subarray(pos, pos + size) };
      pos += size;
    } else {
      throw new ProtoDecodeError(`unsupported wire type ${wire}`);
    }
  }
}

/** Decodes a `map<string,string|bytes>` entry. */
export function mapEntry(buf: Buffer): [string, Buffer] {
  let key = '';
  let value: Buffer = Buffer.alloc(0);
  for (const f of fields(buf)) {
    if (f.wire !== 2) continue;
    if (f.field === 1) key = f.value.toString('utf8');
    else if (f.field === 2) value = f.value;
  }
  return [key, value];
}

export function asString(f: ProtoField): string {
  return f.wire === 2 ? f.value.toString('utf8') : '';
}

export function asNumber(f: ProtoField): number {
  return f.wire === 0 ? Number(BigInt.asIntN(64, f.value)) : 0;
}
