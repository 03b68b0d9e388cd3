/**
 * Walking a build context with include and exclude patterns, as the builders
 * that send a context do: BuildKit's fsutil (what a BuildKit build sees) and
 * the Docker CLI's context tar for the classic builder.
 */
import type { BigIntStats } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { MatchInfo, PatternMatcher, WalkRule } from './patterns.ts';

export interface ContextWalkOptions {
  /** Entries these patterns match are left out (`.dockerignore`, BuildKit's `excludepatterns`). */
  exclude?: PatternMatcher;
  /** Only entries these patterns match are kept (BuildKit's `includepatterns`). */
  include?: PatternMatcher;
  /**
   * `buildkit` (default): excluded directories are entered as fsutil enters them,
   * and a directory left out itself is still given, just before the first entry
   * below it that is kept. `docker-cli`: as the Docker CLI's tar, which enters
   * fewer excluded directories and never gives the excluded directory itself.
   */
  rule?: WalkRule;
  signal?: AbortSignal;
}

export interface ContextWalkEntry {
  /** Relative to the root, `/`-separated. */
  path: string;
  abs: string;
  stat: BigIntStats;
}

function byteOrder(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

interface Held {
  entry: ContextWalkEntry;
  given: boolean;
}

/**
 * The entries of `root` a build sees, in Go `filepath.Walk` order (names in
 * byte order, a directory before its entries). Symlinks are given as they are,
 * never followed. Throws `PatternSyntaxError` when a pattern Docker cannot
 * compile is met.
 */
export async function* walkContextTree(root: string, options: ContextWalkOptions = {}): AsyncGenerator<ContextWalkEntry> {
  const include = options.include !== undefined && !options.include.empty ? options.include : undefined;
  const exclude = options.exclude !== undefined && !options.exclude.empty ? options.exclude : undefined;
  const rule = options.rule ?? 'buildkit';
  const held: Held[] = [];

  async function* visit(dirAbs: string, dirRel: string, includeInfo: MatchInfo | undefined, excludeInfo: MatchInfo | undefined): AsyncGenerator<ContextWalkEntry> {
    const names = (await readdir(dirAbs)).sort(byteOrder);
    for (const name of names) {
      options.signal?.throwIfAborted();
      const path = dirRel === '' ? name : `${dirRel}/${name}`;
      const abs = join(dirAbs, name);
      const stat = await lstat(abs, { bigint: true });
      const isDir = stat.isDirectory();
      let skip = false;
      let nextInclude: MatchInfo | undefined;
      let nextExclude: MatchInfo | undefined;
      if (include) {
        const m = include.matchesWithParents(path, includeInfo);
        nextInclude = m.info;
        if (!m.matched) {
          if (isDir && !include.mayIncludeBelow(path)) continue;
          skip = true;
        }
      }
      if (exclude) {
        const m = exclude.matchesWithParents(path, excludeInfo);
        nextExclude = m.info;
        if (m.matched) {
          if (isDir && !exclude.mayReincludeBelow(path, rule)) continue;
          skip = true;
        }
      }
      const entry = { path, abs, stat };
      if (!skip) {
        if (rule === 'buildkit') {
          for (const h of held) {
            if (h.given) continue;
            h.given = true;
            yield h.entry;
          }
        }
        yield entry;
      }
      if (isDir) {
        held.push({ entry, given: !skip });
        try {
          yield* visit(abs, path, nextInclude, nextExclude);
        } finally {
          held.pop();
        }
      }
    }
  }
  yield* visit(root, '', undefined, undefined);
}

/**
 * The paths of `root` a build sees with these patterns (directories that hold
 * a kept entry included), for callers that look paths up rather than walk.
 */
export async function contextPaths(root: string, options: ContextWalkOptions = {}): Promise<Set<string>> {
  const out = new Set<string>();
  for await (const entry of walkContextTree(root, options)) out.add(entry.path);
  return out;
}
