import { createRequire } from 'node:module';

/**
 * Extended attributes through `@napi-rs/xattr` (prebuilt N-API binaries, the
 * l*xattr syscalls: symlinks are never followed). Loaded on first use.
 */
interface NapiXattr {
  listAttributesSync(path: string): string[];
  getAttributeSync(path: string, name: string): Buffer | null;
  setAttributeSync(path: string, name: string, value: Uint8Array | string): void;
}

let loaded: NapiXattr | undefined;

function mod(): NapiXattr {
  loaded ??= createRequire(import.meta.url)('@napi-rs/xattr') as NapiXattr;
  return loaded;
}

/**
 * Attributes that never go into a layer: SELinux labels belong to the host that
 * wrote the files, POSIX ACLs (`system.*`) are not carried by image layers.
 */
export function keepXattr(name: string): boolean {
  return name !== 'security.selinux' && !name.startsWith('system.');
}

/** The kept attributes of `path` (not following symlinks), or undefined when there are none. */
export function readXattrs(path: string): Record<string, Uint8Array> | undefined {
  let names: string[];
  try {
    names = mod().listAttributesSync(path);
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    // Filesystems without xattr support, or a file gone in between.
    if (code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENOENT') return undefined;
    throw new Error(`listing extended attributes of ${path}: ${(cause as Error).message}`, { cause });
  }
  let out: Record<string, Uint8Array> | undefined;
  for (const name of names.sort()) {
    if (!keepXattr(name)) continue;
    const value = mod().getAttributeSync(path, name);
    if (value === null) continue;
    (out ??= {})[name] = new Uint8Array(value);
  }
  return out;
}

export function setXattr(path: string, name: string, value: Uint8Array): void {
  try {
    mod().setAttributeSync(path, name, value);
  } catch (cause) {
    throw new Error(`setting extended attribute ${name} on ${path}: ${(cause as Error).message}`, { cause });
  }
}

export function sameXattrs(a: Record<string, Uint8Array> | undefined, b: Record<string, Uint8Array> | undefined): boolean {
  const ka = a ? Object.keys(a) : [];
  const kb = b ? Object.keys(b) : [];
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    const x = a![k]!;
    const y = b?.[k];
    if (!y || Buffer.compare(x, y) !== 0) return false;
  }
  return true;
}
