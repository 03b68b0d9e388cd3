/**
 * `RUN --mount=…` and `RUN --device=…` specifications as BuildKit reads them
 * (`instructions/commands_runmount.go`, `commands_rundevice.go`): one CSV
 * record of `key=value` fields.
 */
import { withSuggestion } from '../go.ts';

export type MountType = 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';
export type MountSharing = 'shared' | 'private' | 'locked';

export interface Mount {
  type: MountType;
  /** Stage, image or context to mount from (`from=`); empty for the build context. */
  from: string;
  source: string;
  target: string;
  readOnly: boolean;
  /** tmpfs size in bytes (0: unlimited). */
  sizeLimit: number;
  /** `id=`: cache id or secret/ssh id. */
  cacheId: string;
  cacheSharing: MountSharing | '';
  required: boolean;
  /** Secret exposed as this environment variable (`env=`). */
  env?: string;
  mode?: number;
  uid?: number;
  gid?: number;
}

export interface Device {
  name: string;
  required: boolean;
}

const MOUNT_TYPES: readonly MountType[] = ['bind', 'cache', 'tmpfs', 'secret', 'ssh'];
const SHARING_MODES: readonly MountSharing[] = ['shared', 'private', 'locked'];
const MOUNT_KEYS = ['type', 'from', 'source', 'target', 'readonly', 'id', 'sharing', 'required', 'size', 'mode', 'uid', 'gid', 'src', 'dst', 'destination', 'ro', 'rw', 'readwrite', 'env'];

/** `csvvalue.Fields`: the fields of one CSV record (comma separated, `"` quoting). */
export function csvFields(input: string): string[] {
  let line = input;
  if (line.endsWith('\r\n')) line = line.slice(0, -2);
  else if (line.endsWith('\n')) line = line.slice(0, -1);
  if (line.length === 0) throw new Error('EOF');
  const fields: string[] = [];
  const bytePos = (i: number): number => Buffer.byteLength(input.slice(0, i), 'utf8');
  const parseErr = (i: number, what: string): Error => new Error(`parse error on line 1, column ${bytePos(i) + 1}: ${what}`);
  let pos = 0;
  for (;;) {
    if (pos >= line.length || line[pos] !== '"') {
      const comma = line.indexOf(',', pos);
      const field = comma >= 0 ? line.slice(pos, comma) : line.slice(pos);
      const quote = field.indexOf('"');
      if (quote >= 0) throw parseErr(pos + quote, 'bare " in non-quoted-field');
      fields.push(field);
      if (comma < 0) return fields;
      pos = comma + 1;
      continue;
    }
    pos++;
    let value = '';
    for (;;) {
      const q = line.indexOf('"', pos);
      if (q < 0) throw parseErr(pos, 'extraneous or missing " in quoted-field');
      value += line.slice(pos, q);
      pos = q + 1;
      if (line[pos] === '"') {
        value += '"';
        pos++;
        continue;
      }
      if (line[pos] === ',') {
        fields.push(value);
        pos++;
        break;
      }
      if (pos >= line.length) {
        fields.push(value);
        return fields;
      }
      throw parseErr(pos - 1, 'extraneous or missing " in quoted-field');
    }
  }
}

/** Go's `strconv.ParseBool`. */
export function parseGoBool(value: string): boolean | undefined {
  switch (value) {
    case '1':
    case 't':
    case 'T':
    case 'true':
    case 'TRUE':
    case 'True':
      return true;
    case '0':
    case 'f':
    case 'F':
    case 'false':
    case 'FALSE':
    case 'False':
      return false;
  }
  return undefined;
}

/** Go's `strconv.ParseUint(value, base, 32)`. */
function parseUint32(value: string, base: 8 | 10): number | undefined {
  const digits = base === 8 ? /^[0-7]+$/ : /^[0-9]+$/;
  if (!digits.test(value)) return undefined;
  const n = parseInt(value, base);
  return n <= 0xffffffff ? n : undefined;
}

/** docker/go-units `RAMInBytes` (binary multipliers). */
export function ramInBytes(size: string): number | undefined {
  let sep = -1;
  for (let i = size.length - 1; i >= 0; i--) {
    if ('01234567890. '.includes(size[i]!)) {
      sep = i;
      break;
    }
  }
  if (sep < 0) return undefined;
  const num = size[sep] === ' ' ? size.slice(0, sep) : size.slice(0, sep + 1);
  let sfx = size.slice(sep + 1);
  if (!/^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/.test(num)) return undefined;
  let value = Number(num);
  if (!Number.isFinite(value) || value < 0) return undefined;
  if (sfx.length === 0) return Math.trunc(value);
  if (sfx.length > 3) return undefined;
  sfx = sfx.toLowerCase();
  if (sfx[0] === 'b') return sfx.length > 1 ? undefined : Math.trunc(value);
  const exp = 'kmgtp'.indexOf(sfx[0]!);
  if (exp < 0) return undefined;
  value *= 1024 ** (exp + 1);
  if (sfx.length === 2 && sfx[1] !== 'i' && sfx[1] !== 'b') return undefined;
  if (sfx.length === 3 && sfx.slice(1) !== 'ib') return undefined;
  return Math.trunc(value);
}

/**
 * `parseMount`. Without `expand` (when parsing the Dockerfile) only the CSV
 * syntax and `from=` are checked, values are evaluated later; with it (when
 * evaluating with build args) every value is expanded and validated.
 */
export function parseMount(spec: string, expand?: (word: string) => string): Mount {
  let fields: string[];
  try {
    fields = csvFields(spec);
  } catch (err) {
    throw new Error(`failed to parse csv mounts: ${(err as Error).message}`, { cause: err });
  }
  const m: Mount = { type: 'bind', from: '', source: '', target: '', readOnly: false, sizeLimit: 0, cacheId: '', cacheSharing: '', required: false };
  let roAuto = true;
  for (const field of fields) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    let value = eq < 0 ? '' : field.slice(eq + 1);
    if (eq < 0) {
      if (!expand) continue;
      switch (key) {
        case 'readonly':
        case 'ro':
          m.readOnly = true;
          roAuto = false;
          continue;
        case 'readwrite':
        case 'rw':
          m.readOnly = false;
          roAuto = false;
          continue;
        case 'required':
          if (m.type === 'secret' || m.type === 'ssh') {
            m.required = true;
            continue;
          }
          throw new Error(`unexpected key '${key}' for mount type '${m.type}'`);
        default:
          throw new Error(`invalid field '${field}' must be a key=value pair`);
      }
    }
    if (expand) {
      value = expand(value);
    } else if (key === 'from') {
      const idx = value.indexOf('$');
      if (idx !== -1 && idx !== value.length - 1) throw new Error(`'${key}' doesn't support variable expansion, define alias stage instead`);
    } else {
      continue;
    }
    switch (key) {
      case 'type': {
        const v = value.toLowerCase() as MountType;
        if (!MOUNT_TYPES.includes(v)) throw new Error(withSuggestion(`unsupported mount type "${value}"`, value, MOUNT_TYPES, true));
        m.type = v;
        break;
      }
      case 'from':
        m.from = value;
        break;
      case 'source':
      case 'src':
        m.source = value;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        m.target = value;
        break;
      case 'readonly':
      case 'ro':
      case 'readwrite':
      case 'rw': {
        const b = parseGoBool(value);
        if (b === undefined) throw new Error(`invalid value for ${key}: ${value}`);
        m.readOnly = key === 'readonly' || key === 'ro' ? b : !b;
        roAuto = false;
        break;
      }
      case 'required': {
        if (m.type !== 'secret' && m.type !== 'ssh') throw new Error(`unexpected key '${key}' for mount type '${m.type}'`);
        const b = parseGoBool(value);
        if (b === undefined) throw new Error(`invalid value for ${key}: ${value}`);
        m.required = b;
        break;
      }
      case 'size': {
        if (m.type !== 'tmpfs') throw new Error(`unexpected key '${key}' for mount type '${m.type}'`);
        const size = ramInBytes(value);
        if (size === undefined) throw new Error(`invalid value for ${key}: ${value}`);
        m.sizeLimit = size;
        break;
      }
      case 'id':
        m.cacheId = value;
        break;
      case 'sharing': {
        const v = value.toLowerCase() as MountSharing;
        if (!SHARING_MODES.includes(v)) throw new Error(withSuggestion(`unsupported sharing value "${value}"`, value, SHARING_MODES, true));
        m.cacheSharing = v;
        break;
      }
      case 'mode': {
        const mode = parseUint32(value, 8);
        if (mode === undefined) throw new Error(`invalid value ${value} for mode`);
        m.mode = mode;
        break;
      }
      case 'uid':
      case 'gid': {
        const id = parseUint32(value, 10);
        if (id === undefined) throw new Error(`invalid value ${value} for ${key}`);
        m[key] = id;
        break;
      }
      case 'env':
        m.env = value;
        break;
      default:
        throw new Error(withSuggestion(`unexpected key '${key}' in '${field}'`, key, MOUNT_KEYS, true));
    }
  }
  const fileInfoAllowed = m.type === 'secret' || m.type === 'ssh' || m.type === 'cache';
  if (!fileInfoAllowed) {
    if (m.mode !== undefined) throw new Error(`mode not allowed for "${m.type}" type mounts`);
    if (m.uid !== undefined) throw new Error(`uid not allowed for "${m.type}" type mounts`);
    if (m.gid !== undefined) throw new Error(`gid not allowed for "${m.type}" type mounts`);
  }
  if (roAuto) m.readOnly = !(m.type === 'cache' || m.type === 'tmpfs');
  if (m.type === 'secret') {
    if (m.from !== '') throw new Error('secret mount should not have a from');
    if (m.cacheSharing !== '') throw new Error('secret mount should not define sharing');
    if (m.source === '' && m.target === '' && m.cacheId === '') throw new Error('invalid secret mount. one of source, target required');
    if (m.source !== '' && m.cacheId !== '') throw new Error("both source and id can't be set");
  }
  if (m.cacheSharing !== '' && m.type !== 'cache') throw new Error(`invalid cache sharing set for ${m.type} mount`);
  return m;
}

/** `ParseDevice`: `name[,required[=bool]]` or `name=…,required=…`. */
export function parseDevice(spec: string): Device {
  let fields: string[];
  try {
    fields = csvFields(spec);
  } catch (err) {
    throw new Error(`failed to parse csv devices: ${(err as Error).message}`, { cause: err });
  }
  const d: Device = { name: '', required: false };
  for (const field of fields) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    const value = eq < 0 ? '' : field.slice(eq + 1);
    if (eq < 0) {
      if (key === 'required') {
        d.required = true;
        continue;
      }
      if (d.name === '') {
        d.name = field;
        continue;
      }
      throw new Error(`invalid field '${field}' must be a key=value pair`);
    }
    switch (key) {
      case 'name':
        if (d.name !== '') throw new Error(`device name already set to ${d.name}`);
        d.name = value;
        break;
      case 'required': {
        const b = parseGoBool(value);
        if (b === undefined) throw new Error(`invalid value for ${key}: ${value}`);
        d.required = b;
        break;
      }
      default:
        if (d.name === '') {
          d.name = field;
          continue;
        }
        throw new Error(withSuggestion(`unexpected key '${key}' in '${field}'`, key, ['name', 'required'], true));
    }
  }
  return d;
}
