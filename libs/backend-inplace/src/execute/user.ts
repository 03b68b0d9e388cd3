import { readFileSync } from 'node:fs';
import { resolveImageUser, type ResolvedUser } from '@cnb-extender/oci';
import { resolveInRoot } from './paths.ts';

function readText(root: string, file: string): string {
  try {
    return readFileSync(resolveInRoot(root, file), 'utf8');
  } catch {
    return '';
  }
}

/**
 * Resolves a Dockerfile `USER` value against the root filesystem's /etc/passwd and
 * /etc/group (libs/oci's `resolveImageUser`).
 */
export function resolveUser(root: string, spec: string): ResolvedUser {
  return resolveImageUser(spec, readText(root, '/etc/passwd'), readText(root, '/etc/group'));
}

/**
 * `--chown` values: names resolve like USER; as Docker documents, a user
 * without a group gets the user's numeric id as gid too.
 */
export function resolveOwner(root: string, spec: string): { uid: number; gid: number } {
  const u = resolveUser(root, spec);
  return { uid: u.uid, gid: spec.includes(':') ? u.gid : u.uid };
}
