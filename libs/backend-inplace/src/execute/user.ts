import { readFileSync } from 'node:fs';
import { resolveInRoot } from './paths.ts';

export class UserResolutionError extends Error {
  override name = 'UserResolutionError';
}

/** A user as a process runs with it. */
export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Supplementary groups (from /etc/group when USER names no group), primary group included. */
  groups: number[];
  /** Home directory from /etc/passwd, `/` when unknown. */
  home: string;
  name?: string;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}
interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

function readLines(root: string, file: string): string[] {
  try {
    return readFileSync(resolveInRoot(root, file), 'utf8').split('\n');
  } catch {
    return [];
  }
}

function passwd(root: string): PasswdEntry[] {
  return readLines(root, '/etc/passwd').flatMap((line) => {
    const f = line.split(':');
    if (f.length < 7 || line.startsWith('#')) return [];
    return [{ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]), home: f[5]! }];
  });
}

function groupFile(root: string): GroupEntry[] {
  return readLines(root, '/etc/group').flatMap((line) => {
    const f = line.split(':');
    if (f.length < 4 || line.startsWith('#')) return [];
    return [{ name: f[0]!, gid: Number(f[2]), members: f[3]!.split(',').filter((m) => m !== '') }];
  });
}

const NUMERIC = /^[0-9]+$/;

/**
 * Resolves a Dockerfile `USER` value (`name`, `uid`, `name:group`, `uid:gid`)
 * against the root filesystem's /etc/passwd and /etc/group, as container
 * runtimes do: numeric ids need no entry (gid then defaults to 0, home to `/`);
 * names must exist. Supplementary groups come from /etc/group only when no
 * group is given.
 */
export function resolveUser(root: string, spec: string): ResolvedUser {
  const value = spec === '' ? 'root' : spec;
  const colon = value.indexOf(':');
  const userPart = colon === -1 ? value : value.slice(0, colon);
  const groupPart = colon === -1 ? undefined : value.slice(colon + 1);
  const users = passwd(root);
  const entry = NUMERIC.test(userPart) ? users.find((u) => u.uid === Number(userPart)) : users.find((u) => u.name === userPart);
  if (!entry && !NUMERIC.test(userPart)) {
    throw new UserResolutionError(`resolving user ${JSON.stringify(spec)}: no user ${JSON.stringify(userPart)} in /etc/passwd of the image`);
  }
  const uid = NUMERIC.test(userPart) ? Number(userPart) : entry!.uid;
  const groups = groupFile(root);
  let gid = entry?.gid ?? 0;
  let supplementary: number[] = [];
  if (groupPart !== undefined && groupPart !== '') {
    if (NUMERIC.test(groupPart)) gid = Number(groupPart);
    else {
      const g = groups.find((x) => x.name === groupPart);
      if (!g) throw new UserResolutionError(`resolving user ${JSON.stringify(spec)}: no group ${JSON.stringify(groupPart)} in /etc/group of the image`);
      gid = g.gid;
    }
  } else if (entry) {
    supplementary = groups.filter((g) => g.members.includes(entry.name)).map((g) => g.gid);
  }
  const all = [gid, ...supplementary.filter((g) => g !== gid)];
  const out: ResolvedUser = { uid, gid, groups: [...new Set(all)], home: entry?.home || '/' };
  if (entry) out.name = entry.name;
  return out;
}

/**
 * `--chown` values: names resolve like USER; as Docker documents, a user
 * without a group gets the user's numeric id as gid too.
 */
export function resolveOwner(root: string, spec: string): { uid: number; gid: number } {
  const u = resolveUser(root, spec);
  return { uid: u.uid, gid: spec.includes(':') ? u.gid : u.uid };
}
