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

/** A mount being read, and whether its read-only flag is still the type's default. */
interface MountDraft {
  mount: Mount;
  roAuto: boolean;
}

type MountField = (draft: MountDraft, value: string, key: string) => void;

function unexpectedKey(key: string, mount: Mount): Error {
  return new Error(`unexpected key '${key}' for mount type '${mount.type}'`);
}

function goBoolValue(key: string, value: string): boolean {
  const b = parseGoBool(value);
  if (b === undefined) throw new Error(`invalid value for ${key}: ${value}`);
  return b;
}

const setSource: MountField = ({ mount }, value) => {
  mount.source = value;
};
const setTarget: MountField = ({ mount }, value) => {
  mount.target = value;
};
const setReadOnly: MountField = (draft, value, key) => {
  const b = goBoolValue(key, value);
  draft.mount.readOnly = key === 'readonly' || key === 'ro' ? b : !b;
  draft.roAuto = false;
};
const setId: MountField = ({ mount }, value, key) => {
  const id = parseUint32(value, 10);
  if (id === undefined) throw new Error(`invalid value ${value} for ${key}`);
  mount[key as 'uid' | 'gid'] = id;
};

/** What each `key=value` field of a mount sets (a Map: field names are user input). */
const MOUNT_FIELDS = new Map<string, MountField>([
  [
    'type',
    ({ mount }, value) => {
      const v = value.toLowerCase() as MountType;
      if (!MOUNT_TYPES.includes(v)) throw new Error(withSuggestion(`unsupported mount type "${value}"`, value, MOUNT_TYPES, true));
      mount.type = v;
    },
  ],
  [
    'from',
    ({ mount }, value) => {
      mount.from = value;
    },
  ],
  ['source', setSource],
  ['src', setSource],
  ['target', setTarget],
  ['dst', setTarget],
  ['destination', setTarget],
  ['readonly', setReadOnly],
  ['ro', setReadOnly],
  ['readwrite', setReadOnly],
  ['rw', setReadOnly],
  [
    'required',
    ({ mount }, value, key) => {
      if (mount.type !== 'secret' && mount.type !== 'ssh') throw unexpectedKey(key, mount);
      mount.required = goBoolValue(key, value);
    },
  ],
  [
    'size',
    ({ mount }, value, key) => {
      if (mount.type !== 'tmpfs') throw unexpectedKey(key, mount);
      const size = ramInBytes(value);
      if (size === undefined) throw new Error(`invalid value for ${key}: ${value}`);
      mount.sizeLimit = size;
    },
  ],
  [
    'id',
    ({ mount }, value) => {
      mount.cacheId = value;
    },
  ],
  [
    'sharing',
    ({ mount }, value) => {
      const v = value.toLowerCase() as MountSharing;
      if (!SHARING_MODES.includes(v)) throw new Error(withSuggestion(`unsupported sharing value "${value}"`, value, SHARING_MODES, true));
      mount.cacheSharing = v;
    },
  ],
  [
    'mode',
    ({ mount }, value) => {
      const mode = parseUint32(value, 8);
      if (mode === undefined) throw new Error(`invalid value ${value} for mode`);
      mount.mode = mode;
    },
  ],
  ['uid', setId],
  ['gid', setId],
  [
    'env',
    ({ mount }, value) => {
      mount.env = value;
    },
  ],
]);

/** A field without `=`: the read-only flags and `required` may stand alone. */
function applyBareKey(draft: MountDraft, key: string, field: string): void {
  const { mount } = draft;
  switch (key) {
    case 'readonly':
    case 'ro':
      mount.readOnly = true;
      draft.roAuto = false;
      return;
    case 'readwrite':
    case 'rw':
      mount.readOnly = false;
      draft.roAuto = false;
      return;
    case 'required':
      if (mount.type === 'secret' || mount.type === 'ssh') {
        mount.required = true;
        return;
      }
      throw unexpectedKey(key, mount);
    default:
      throw new Error(`invalid field '${field}' must be a key=value pair`);
  }
}

/** mode, uid and gid only make sense for mounts that create files (secret, ssh, cache). */
function checkFileInfoAllowed(m: Mount): void {
  const fileInfoAllowed = m.type === 'secret' || m.type === 'ssh' || m.type === 'cache';
  if (!fileInfoAllowed) {
    if (m.mode !== undefined) throw new Error(`mode not allowed for "${m.type}" type mounts`);
    if (m.uid !== undefined) throw new Error(`uid not allowed for "${m.type}" type mounts`);
    if (m.gid !== undefined) throw new Error(`gid not allowed for "${m.type}" type mounts`);
  }
}

function checkSecretAndSharing(m: Mount): void {
  if (m.type === 'secret') {
    if (m.from !== '') throw new Error('secret mount should not have a from');
    if (m.cacheSharing !== '') throw new Error('secret mount should not define sharing');
    if (m.source === '' && m.target === '' && m.cacheId === '') throw new Error('invalid secret mount. one of source, target required');
    if (m.source !== '' && m.cacheId !== '') throw new Error("both source and id can't be set");
  }
  if (m.cacheSharing !== '' && m.type !== 'cache') throw new Error(`invalid cache sharing set for ${m.type} mount`);
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
  const draft: MountDraft = { mount: m, roAuto: true };
  for (const field of fields) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    let value = eq < 0 ? '' : field.slice(eq + 1);
    if (eq < 0) {
      if (expand) applyBareKey(draft, key, field);
      continue;
    }
    if (expand) {
      value = expand(value);
    } else if (key === 'from') {
      const idx = value.indexOf('$');
      if (idx !== -1 && idx !== value.length - 1) throw new Error(`'${key}' doesn't support variable expansion, define alias stage instead`);
    } else {
      continue;
    }
    const apply = MOUNT_FIELDS.get(key);
    if (!apply) throw new Error(withSuggestion(`unexpected key '${key}' in '${field}'`, key, MOUNT_KEYS, true));
    apply(draft, value, key);
  }
  checkFileInfoAllowed(m);
  if (draft.roAuto) m.readOnly = !(m.type === 'cache' || m.type === 'tmpfs');
  checkSecretAndSharing(m);
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
