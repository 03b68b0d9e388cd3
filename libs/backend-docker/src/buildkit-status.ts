/**
 * BuildKit progress through the Engine API: `/build?version=2` streams JSON
 * messages whose `moby.buildkit.trace` `aux` is a base64 protobuf
 * `moby.buildkit.v1.StatusResponse`. We decode only what we report: vertex
 * names (`[2/3] RUN echo hi`), their errors, and log lines.
 */

interface Field {
  no: number;
  wire: number;
  value: number | Buffer;
}

function varint(buf: Buffer, pos: number): [number, number] {
  let result = 0;
  let shift = 0;
  for (;;) {
    if (pos >= buf.length) throw new Error('truncated varint');
    const byte = buf[pos++]!;
    result += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return [result, pos];
    shift += 7;
  }
}

function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [key, p1] = varint(buf, pos);
    pos = p1;
    const no = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === 0) {
      const [v, p2] = varint(buf, pos);
      pos = p2;
      out.push({ no, wire, value: v });
    } else if (wire === 2) {
      const [len, p2] = varint(buf, pos);
      out.push({ no, wire, value: buf.subarray(p2, p2 + len) });
      pos = p2 + len;
    } else if (wire === 1) {
      pos += 8;
    } else if (wire === 5) {
      pos += 4;
    } else {
      throw new Error(`unsupported wire type ${wire}`);
    }
  }
  return out;
}

export interface BuildkitVertex {
  digest: string;
  name: string;
  cached: boolean;
  started: boolean;
  completed: boolean;
  error?: string;
}

export interface BuildkitStatus {
  vertexes: BuildkitVertex[];
  logs: { vertex: string; text: string }[];
}

/** Decode one `moby.buildkit.trace` aux value (base64). */
export function decodeStatus(base64: string): BuildkitStatus {
  const status: BuildkitStatus = { vertexes: [], logs: [] };
  for (const f of fields(Buffer.from(base64, 'base64'))) {
    if (!(f.value instanceof Buffer)) continue;
    if (f.no === 1) {
      const v: BuildkitVertex = { digest: '', name: '', cached: false, started: false, completed: false };
      for (const g of fields(f.value)) {
        if (g.no === 1 && g.value instanceof Buffer) v.digest = g.value.toString('utf8');
        else if (g.no === 3 && g.value instanceof Buffer) v.name = g.value.toString('utf8');
        else if (g.no === 4) v.cached = g.value === 1;
        else if (g.no === 5) v.started = true;
        else if (g.no === 6) v.completed = true;
        else if (g.no === 7 && g.value instanceof Buffer) v.error = g.value.toString('utf8');
      }
      status.vertexes.push(v);
    } else if (f.no === 3) {
      let vertex = '';
      let text = '';
      for (const g of fields(f.value)) {
        if (g.no === 1 && g.value instanceof Buffer) vertex = g.value.toString('utf8');
        else if (g.no === 4 && g.value instanceof Buffer) text = g.value.toString('utf8');
      }
      status.logs.push({ vertex, text });
    }
  }
  return status;
}
