import { defaultXattrFilter, xattrAccess, type XattrAccess } from '@cnb-extender/oci';

/**
 * Extended attributes through libs/oci's access (`@napi-rs/xattr`, the l*xattr
 * syscalls: symlinks are never followed), with the same filter the layer
 * writer and applier use: `security.selinux` and `system.*` never go into a
 * layer.
 */
let access: XattrAccess | undefined;

function xattrs(): XattrAccess {
  if (access) return access;
  const found = xattrAccess();
  if (found instanceof Error) throw new Error(`extended attributes: ${found.message}`, { cause: found });
  access = found;
  return access;
}

export const keepXattr = defaultXattrFilter;

/** The kept attributes of `path`, or undefined when there are none (or the filesystem has none, or the path is gone). */
export function readXattrs(path: string): Record<string, Uint8Array> | undefined {
  let names: string[];
  try {
    names = xattrs().list(path);
  } catch (cause) {
    const message = (cause as Error).message;
    if (/not supported|ENOTSUP|EOPNOTSUPP|ENOENT|No such file/i.test(message)) return undefined;
    throw new Error(`listing extended attributes of ${path}: ${message}`, { cause });
  }
  let out: Record<string, Uint8Array> | undefined;
  for (const name of names.sort()) {
    if (!keepXattr(name)) continue;
    const value = xattrs().get(path, name);
    if (value === null) continue;
    (out ??= {})[name] = new Uint8Array(value);
  }
  return out;
}

export function setXattr(path: string, name: string, value: Uint8Array): void {
  try {
    xattrs().set(path, name, value);
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
