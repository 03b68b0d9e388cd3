/**
 * An image config's `User` (`name`, `uid`, `name:group`, `uid:gid`) resolved against the
 * image's `/etc/passwd` and `/etc/group`, as container runtimes resolve it.
 */

/** A line of `/etc/passwd`. */
export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** A line of `/etc/group`. */
export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

/** `/etc/passwd` text → entries; comments, lines of fewer than seven fields and lines without a numeric uid are skipped. */
export function parsePasswd(text: string): PasswdEntry[] {
  return text.split('\n').flatMap((line) => {
    const f = line.split(':');
    if (f.length < 7 || line.startsWith('#')) return [];
    const uid = Number(f[2]);
    if (!Number.isInteger(uid)) return [];
    return [{ name: f[0]!, uid, gid: Number(f[3]), home: f[5]! }];
  });
}

/** `/etc/group` text → entries; comments and lines of fewer than four fields are skipped. */
export function parseGroup(text: string): GroupEntry[] {
  return text.split('\n').flatMap((line) => {
    const f = line.split(':');
    if (f.length < 4 || line.startsWith('#')) return [];
    return [{ name: f[0]!, gid: Number(f[2]), members: f[3]!.split(',').filter((m) => m !== '') }];
  });
}

export class UserResolutionError extends Error {
  override name = 'UserResolutionError';
}

/** A user as a process runs with it. */
export interface ResolvedUser {
  uid: number;
  gid: number;
  /** Supplementary groups (from /etc/group when the value names no group), primary group included. */
  groups: number[];
  /** Home directory from /etc/passwd, `/` when unknown. */
  home: string;
  name?: string;
}

const NUMERIC = /^[0-9]+$/;

/**
 * Resolves a `User` value (empty means `root`) against the text of `/etc/passwd` and
 * `/etc/group`: numeric ids need no entry (gid then defaults to 0, home to `/`); names must
 * exist. Supplementary groups come from /etc/group only when no group is given.
 */
export function resolveImageUser(spec: string, passwd: string, group: string): ResolvedUser {
  const value = spec === '' ? 'root' : spec;
  const colon = value.indexOf(':');
  const userPart = colon === -1 ? value : value.slice(0, colon);
  const groupPart = colon === -1 ? undefined : value.slice(colon + 1);
  const users = parsePasswd(passwd);
  const entry = NUMERIC.test(userPart) ? users.find((u) => u.uid === Number(userPart)) : users.find((u) => u.name === userPart);
  if (!entry && !NUMERIC.test(userPart)) {
    throw new UserResolutionError(`resolving user ${JSON.stringify(spec)}: no user ${JSON.stringify(userPart)} in /etc/passwd of the image`);
  }
  const uid = NUMERIC.test(userPart) ? Number(userPart) : entry!.uid;
  const groups = parseGroup(group);
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
