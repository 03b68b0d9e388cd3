/**
 * The pending changesets of a repository, through the changesets CLI this repository
 * depends on (so the plan is exactly what `changeset version` applies): the release plan
 * (`changeset status --output`), applying it (`changeset version`), and the changelog lines
 * the configured changelog generator writes for each changeset.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { REPO_ROOT } from './bundle.ts';
import { commitsAdding } from './git.ts';

const exec = promisify(execFile);

export type BumpType = 'major' | 'minor' | 'patch';
const BUMPS: readonly BumpType[] = ['major', 'minor', 'patch'];

export interface PlannedChangeset {
  /** The file name without `.md`. */
  id: string;
  summary: string;
  releases: { name: string; type: BumpType | 'none' }[];
}

export interface PlannedRelease {
  name: string;
  type: BumpType | 'none';
  oldVersion: string;
  newVersion: string;
  changesets: string[];
}

export interface ReleasePlan {
  changesets: PlannedChangeset[];
  releases: PlannedRelease[];
}

/** The changesets CLI could not read or apply the pending changesets. */
export class ChangesetsError extends Error {
  override name = 'ChangesetsError';
}

function changesetBin(): string {
  return createRequire(join(REPO_ROOT, 'package.json')).resolve('@changesets/cli/bin.js');
}

/** What the CLI printed, without its colours and banner. */
function cliOutput(stdout: string, stderr: string): string {
  return `${stdout}\n${stderr}`
    // eslint-disable-next-line no-control-regex
    .replace(/\u001b\[[0-9;]*m/g, '')
    .split('\n')
    .map((l) => l.replace(/^[│◇■▲●◆└┌]\s*/u, '').trimEnd())
    // no banner, no stack frames, no exit code: the CLI's own message
    .filter((l) => l.trim() && !/^🦋\s+(changeset v|Exited with code)/u.test(l) && !/^\s+at /.test(l))
    .join('\n');
}

async function changeset(root: string, args: string[], what: string): Promise<void> {
  try {
    // Node 24 (this process's): the CLI needs it
    await exec(process.execPath, [changesetBin(), ...args], { cwd: root, env: { ...process.env, NO_COLOR: '1', CI: 'true' }, maxBuffer: 64 << 20 });
  } catch (cause) {
    const e = cause as { stdout?: string; stderr?: string; message: string };
    throw new ChangesetsError(`${what}: changeset ${args.join(' ')} failed: ${cliOutput(e.stdout ?? '', e.stderr ?? '') || e.message}`, { cause });
  }
}

/** The release plan of the pending changesets (`changeset status --output`): fails on changesets it cannot apply. */
export async function readReleasePlan(root: string): Promise<ReleasePlan> {
  const dir = await mkdtemp(join(tmpdir(), 'cnb-release-plan-'));
  try {
    const file = join(dir, 'plan.json');
    await changeset(root, ['status', '--output', file], 'reading the pending changesets');
    const plan = JSON.parse(await readFile(file, 'utf8')) as ReleasePlan;
    return { changesets: plan.changesets, releases: plan.releases.filter((r) => r.type !== 'none') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Apply the pending changesets: versions, CHANGELOG.md files, changesets consumed (`changeset version`). */
export async function applyReleasePlan(root: string): Promise<void> {
  await changeset(root, ['version'], 'applying the pending changesets');
}

/** The highest bump a changeset asks for. */
export function bumpOf(changeset: PlannedChangeset): BumpType | undefined {
  return BUMPS.find((bump) => changeset.releases.some((r) => r.type === bump));
}

interface ChangelogFunctions {
  getReleaseLine(changeset: PlannedChangeset & { commit?: string }, type: BumpType, options: unknown): string | Promise<string>;
}

/** The changelog generator `.changeset/config.json` names, resolved as changesets does (from `.changeset/`, else beside the CLI). */
async function changelogFunctions(root: string): Promise<{ functions: ChangelogFunctions; options: unknown } | undefined> {
  const config = JSON.parse(await readFile(join(root, '.changeset', 'config.json'), 'utf8')) as { changelog?: false | string | [string, unknown] };
  const setting = config.changelog ?? '@changesets/cli/changelog';
  if (setting === false) return undefined;
  const [spec, options] = Array.isArray(setting) ? setting : [setting, null];
  let path: string;
  try {
    path = createRequire(join(root, '.changeset', 'config.json')).resolve(spec);
  } catch {
    path = createRequire(changesetBin()).resolve(spec);
  }
  let mod = (await import(pathToFileURL(path).href)) as { default?: unknown };
  while (mod.default && typeof (mod as Partial<ChangelogFunctions>).getReleaseLine !== 'function') mod = mod.default as { default?: unknown };
  if (typeof (mod as Partial<ChangelogFunctions>).getReleaseLine !== 'function') throw new ChangesetsError(`reading the changelog generator ${spec}: it has no getReleaseLine function`);
  return { functions: mod as unknown as ChangelogFunctions, options };
}

export interface ChangelogEntry {
  id: string;
  type: BumpType;
  /** The line(s) the changelog generator writes for it (`- <commit>: <summary>`). */
  text: string;
}

/**
 * The changelog entries of the plan's changesets, as `changeset version` writes them into
 * CHANGELOG.md (each with the commit that added it), whichever packages they name; in the
 * plan's order.
 */
export async function changelogEntries(root: string, plan: ReleasePlan): Promise<ChangelogEntry[]> {
  const generator = await changelogFunctions(root);
  const commits = await commitsAdding(root, '.changeset');
  const entries: ChangelogEntry[] = [];
  for (const cs of plan.changesets) {
    const type = bumpOf(cs);
    if (!type) continue;
    const commit = commits.get(`.changeset/${cs.id}.md`);
    const text = generator ? await generator.functions.getReleaseLine({ ...cs, ...(commit ? { commit } : {}) }, type, generator.options) : `- ${cs.summary}`;
    entries.push({ id: cs.id, type, text: text.replace(/\s+$/, '') });
  }
  return entries;
}
