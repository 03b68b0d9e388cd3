/**
 * What a release needs from git: the repository around a directory, whether its work tree
 * is clean, the versions already released (tags `v<version>`) and the commit that added a
 * file.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import semver from 'semver';

const exec = promisify(execFile);

export async function git(root: string, args: string[]): Promise<string> {
  try {
    return (await exec('git', args, { cwd: root, maxBuffer: 64 << 20 })).stdout;
  } catch (cause) {
    const e = cause as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new Error(`git ${args.join(' ')}: git is not installed`, { cause });
    throw new Error(`git ${args.join(' ')} in ${root}: ${(e.stderr ?? '').trim() || e.message}`, { cause });
  }
}

/** The top directory of the repository `dir` is in. */
export async function repositoryRoot(dir: string): Promise<string> {
  return (await git(dir, ['rev-parse', '--show-toplevel'])).trim();
}

/** `git status --porcelain` lines: changed, staged and untracked files (ignored ones excluded). */
export async function uncommittedChanges(root: string): Promise<string[]> {
  return (await git(root, ['status', '--porcelain=v1', '--untracked-files=all'])).split('\n').filter(Boolean);
}

/** The tag a release of `version` gets. */
export function releaseTag(version: string): string {
  return `v${version}`;
}

/** Versions released so far: the tags `v<semver>`, in ascending order. */
export async function releasedVersions(root: string): Promise<string[]> {
  const tags = (await git(root, ['tag', '--list', 'v*'])).split('\n').filter(Boolean);
  return tags
    .map((tag) => tag.slice(1))
    .filter((version) => semver.valid(version) === version)
    .sort(semver.compare);
}

/**
 * The commit that last added each file below `dir` (as changesets finds the commit of a
 * changeset), by path relative to the root: one `git log` for all of them.
 */
export async function commitsAdding(root: string, dir: string): Promise<Map<string, string>> {
  const out = await git(root, ['log', '--diff-filter=AC', '--name-only', '--format=commit %H', '--', dir]);
  const commits = new Map<string, string>();
  let commit = '';
  for (const line of out.split('\n')) {
    if (line.startsWith('commit ')) commit = line.slice('commit '.length);
    else if (line && !commits.has(line)) commits.set(line, commit);
  }
  return commits;
}
