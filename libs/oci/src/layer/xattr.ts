import { createRequire } from 'node:module';
import { LayerError } from './entry.ts';

/**
 * Extended attributes. Node has no xattr API, so this uses `@napi-rs/xattr`: a
 * small N-API module whose prebuilt binaries come from the npm registry as
 * optional dependencies (no compiler, no install script). Its calls are the
 * l*xattr syscalls: symlinks are never followed. The module is loaded on first
 * use, so code that never touches xattrs does not need it.
 */
export interface XattrAccess {
  list(path: string): string[];
  get(path: string, name: string): Buffer | null;
  set(path: string, name: string, value: Uint8Array): void;
}

interface NapiXattr {
  listAttributesSync(path: string): string[];
  getAttributeSync(path: string, name: string): Buffer | null;
  setAttributeSync(path: string, name: string, value: Uint8Array | string): void;
}

let loaded: XattrAccess | Error | undefined;

/** The xattr functions, or the reason they cannot be had on this platform. */
export function xattrAccess(): XattrAccess | Error {
  if (loaded) return loaded;
  try {
    const mod = createRequire(import.meta.url)('@napi-rs/xattr') as NapiXattr;
    loaded = {
      list: (path) => mod.listAttributesSync(path),
      get: (path, name) => mod.getAttributeSync(path, name),
      set: (path, name, value) => mod.setAttributeSync(path, name, value),
    };
  } catch (cause) {
    loaded = new LayerError(`loading @napi-rs/xattr for extended attributes (${process.platform}-${process.arch}): ${(cause as Error).message}`, { cause });
  }
  return loaded;
}

export function requireXattrAccess(action: string): XattrAccess {
  const access = xattrAccess();
  if (access instanceof Error) throw new LayerError(`${action}: ${access.message}`, { cause: access });
  return access;
}

/**
 * Attributes left out of layers by default: SELinux labels belong to the host
 * that wrote the files, and POSIX ACLs (`system.posix_acl_*`) are not carried
 * by image layers.
 */
export function defaultXattrFilter(name: string): boolean {
  return name !== 'security.selinux' && !name.startsWith('system.');
}

/** All kept attributes of `path` (not following symlinks), or undefined when there are none. */
export function readXattrs(access: XattrAccess, path: string, filter: (name: string) => boolean = defaultXattrFilter): Record<string, Uint8Array> | undefined {
  let names: string[];
  try {
    names = access.list(path);
  } catch (cause) {
    // Filesystems without xattr support answer ENOTSUP: that is "none".
    if (/not supported|ENOTSUP|EOPNOTSUPP/i.test((cause as Error).message)) return undefined;
    throw new LayerError(`reading extended attributes of ${path}: ${(cause as Error).message}`, { cause });
  }
  let out: Record<string, Uint8Array> | undefined;
  for (const name of names.sort()) {
    if (!filter(name)) continue;
    const value = access.get(path, name);
    if (value === null) continue;
    (out ??= {})[name] = value;
  }
  return out;
}
