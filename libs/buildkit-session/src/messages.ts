/**
 * The BuildKit, fsutil and gRPC health messages this package uses, written
 * against the upstream field numbers (moby/buildkit `api/services/control`,
 * tonistiigi/fsutil `types`, grpc `health/v1`). Only the fields we read or set.
 */
import { ProtoWriter, asNumber, asString, fields, mapEntry } from './proto.ts';

export interface ExporterEntry {
  type: string;
  attrs: Record<string, string>;
}

export interface CacheEntry {
  type: string;
  attrs: Record<string, string>;
}

export interface SolveRequest {
  ref: string;
  session: string;
  frontend: string;
  frontendAttrs: Record<string, string>;
  /** Written to the old single-exporter fields (3, 4) and to the repeated field (13). */
  exporters: ExporterEntry[];
  /** Old daemons read only fields 3/4; new ones prefer 13 and ignore 3/4 when 13 is set. */
  exporterFields: 'old' | 'new' | 'both';
  cacheImports: CacheEntry[];
  cacheExports: CacheEntry[];
  entitlements: string[];
}

export function encodeSolveRequest(req: SolveRequest): Buffer {
  const w = new ProtoWriter().string(1, req.ref);
  const first = req.exporters[0];
  if (first && req.exporterFields !== 'new') {
    w.string(3, first.type).map(4, first.attrs);
  }
  w.string(5, req.session).string(6, req.frontend).map(7, req.frontendAttrs);
  if (req.cacheImports.length > 0 || req.cacheExports.length > 0) {
    const cache = new ProtoWriter();
    for (const e of req.cacheExports) cache.message(4, new ProtoWriter().string(1, e.type).map(2, e.attrs), true);
    for (const e of req.cacheImports) cache.message(5, new ProtoWriter().string(1, e.type).map(2, e.attrs), true);
    w.message(8, cache);
  }
  w.strings(9, req.entitlements);
  if (req.exporterFields !== 'old') {
    for (const e of req.exporters) w.message(13, new ProtoWriter().string(1, e.type).map(2, e.attrs), true);
  }
  return w.finish();
}

export function decodeSolveResponse(buf: Buffer): { exporterResponse: Record<string, string> } {
  const exporterResponse: Record<string, string> = {};
  for (const f of fields(buf)) {
    if (f.field === 1 && f.wire === 2) {
      const [k, v] = mapEntry(f.value);
      exporterResponse[k] = v.toString('utf8');
    }
  }
  return { exporterResponse };
}

export function encodeStatusRequest(ref: string): Buffer {
  return new ProtoWriter().string(1, ref).finish();
}

export interface Vertex {
  digest: string;
  name: string;
  cached: boolean;
  started: boolean;
  completed: boolean;
  error: string;
}

export interface VertexLog {
  vertex: string;
  stream: number;
  msg: Buffer;
}

export interface StatusResponse {
  vertexes: Vertex[];
  logs: VertexLog[];
  warnings: { vertex: string; short: string }[];
}

function decodeVertex(buf: Buffer): Vertex {
  const v: Vertex = { digest: '', name: '', cached: false, started: false, completed: false, error: '' };
  for (const f of fields(buf)) {
    if (f.field === 1) v.digest = asString(f);
    else if (f.field === 3) v.name = asString(f);
    else if (f.field === 4) v.cached = asNumber(f) !== 0;
    else if (f.field === 5) v.started = true;
    else if (f.field === 6) v.completed = true;
    else if (f.field === 7) v.error = asString(f);
  }
  return v;
}

export function decodeStatusResponse(buf: Buffer): StatusResponse {
  const out: StatusResponse = { vertexes: [], logs: [], warnings: [] };
  for (const f of fields(buf)) {
    if (f.wire !== 2) continue;
    if (f.field === 1) out.vertexes.push(decodeVertex(f.value));
    else if (f.field === 3) {
      const log: VertexLog = { vertex: '', stream: 0, msg: Buffer.alloc(0) };
      for (const g of fields(f.value)) {
        if (g.field === 1) log.vertex = asString(g);
        else if (g.field === 3) log.stream = asNumber(g);
        else if (g.field === 4 && g.wire === 2) log.msg = g.value;
      }
      out.logs.push(log);
    } else if (f.field === 4) {
      const warning = { vertex: '', short: '' };
      for (const g of fields(f.value)) {
        if (g.field === 1) warning.vertex = asString(g);
        else if (g.field === 3) warning.short = asString(g);
      }
      out.warnings.push(warning);
    }
  }
  return out;
}

export interface WorkerRecord {
  id: string;
  labels: Record<string, string>;
  platforms: { os: string; architecture: string; variant: string }[];
  /** `WorkerRecord.BuildkitVersion.Version` (BuildKit ≥ 0.11; dockerd's worker appends `-moby`); empty before. */
  buildkitVersion: string;
}

export function decodeListWorkersResponse(buf: Buffer): WorkerRecord[] {
  const records: WorkerRecord[] = [];
  for (const f of fields(buf)) {
    if (f.field !== 1 || f.wire !== 2) continue;
    const record: WorkerRecord = { id: '', labels: {}, platforms: [], buildkitVersion: '' };
    for (const g of fields(f.value)) {
      if (g.field === 1) record.id = asString(g);
      else if (g.field === 2 && g.wire === 2) {
        const [k, v] = mapEntry(g.value);
        record.labels[k] = v.toString('utf8');
      } else if (g.field === 3 && g.wire === 2) {
        const p = { os: '', architecture: '', variant: '' };
        for (const h of fields(g.value)) {
          if (h.field === 1) p.architecture = asString(h);
          else if (h.field === 2) p.os = asString(h);
          else if (h.field === 3) p.variant = asString(h);
        }
        record.platforms.push(p);
      } else if (g.field === 5 && g.wire === 2) {
        for (const h of fields(g.value)) if (h.field === 2) record.buildkitVersion = asString(h);
      }
    }
    records.push(record);
  }
  return records;
}

/** `Control/Info` (new daemons only): the BuildKit version. */
export function decodeInfoResponse(buf: Buffer): { version: string; revision: string } {
  const out = { version: '', revision: '' };
  for (const f of fields(buf)) {
    if (f.field === 1 && f.wire === 2) {
      for (const g of fields(f.value)) {
        if (g.field === 2) out.version = asString(g);
        else if (g.field === 3) out.revision = asString(g);
      }
    }
  }
  return out;
}

export function encodeBytesMessage(data: Uint8Array): Buffer {
  return new ProtoWriter().bytes(1, data).finish();
}

export function decodeBytesMessage(buf: Buffer): Buffer {
  for (const f of fields(buf)) if (f.field === 1 && f.wire === 2) return f.value;
  return Buffer.alloc(0);
}

// ---- fsutil ----

export const PacketType = { stat: 0, req: 1, data: 2, fin: 3, err: 4 } as const;

export interface FsStat {
  path: string;
  /** Go `os.FileMode` bits. */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Nanoseconds since the epoch. */
  modTime: bigint;
  linkname: string;
  devMajor: number;
  devMinor: number;
  xattrs?: Record<string, Buffer>;
}

export interface Packet {
  type: number;
  stat?: FsStat;
  id: number;
  data?: Buffer;
}

export function encodePacket(p: Packet): Buffer {
  const w = new ProtoWriter().int(1, p.type);
  if (p.stat) {
    const s = p.stat;
    const stat = new ProtoWriter()
      .string(1, s.path)
      .int(2, s.mode)
      .int(3, s.uid)
      .int(4, s.gid)
      .int(5, s.size)
      .int(6, s.modTime)
      .string(7, s.linkname)
      .int(8, s.devMajor)
      .int(9, s.devMinor)
      .map(10, s.xattrs);
    w.message(2, stat, true);
  }
  w.int(3, p.id);
  w.bytes(4, p.data);
  return w.finish();
}

export function decodePacket(buf: Buffer): Packet {
  const p: Packet = { type: 0, id: 0 };
  for (const f of fields(buf)) {
    if (f.field === 1) p.type = asNumber(f);
    else if (f.field === 3) p.id = asNumber(f);
    else if (f.field === 4 && f.wire === 2) p.data = f.value;
    else if (f.field === 2 && f.wire === 2) {
      const s: FsStat = { path: '', mode: 0, uid: 0, gid: 0, size: 0, modTime: 0n, linkname: '', devMajor: 0, devMinor: 0 };
      for (const g of fields(f.value)) {
        if (g.field === 1) s.path = asString(g);
        else if (g.field === 2) s.mode = asNumber(g);
        else if (g.field === 3) s.uid = asNumber(g);
        else if (g.field === 4) s.gid = asNumber(g);
        else if (g.field === 5) s.size = asNumber(g);
        else if (g.field === 6 && g.wire === 0) s.modTime = BigInt.asIntN(64, g.value);
        else if (g.field === 7) s.linkname = asString(g);
      }
      p.stat = s;
    }
  }
  return p;
}

// ---- grpc.health.v1 ----
export const HEALTH_SERVING = 1;
export function encodeHealthResponse(status: number): Buffer {
  return new ProtoWriter().int(1, status).finish();
}

// ---- moby.filesync.v1.Auth ----
export function decodeCredentialsRequest(buf: Buffer): { host: string } {
  for (const f of fields(buf)) if (f.field === 1) return { host: asString(f) };
  return { host: '' };
}
export function encodeCredentialsResponse(username: string, secret: string): Buffer {
  return new ProtoWriter().string(1, username).string(2, secret).finish();
}
