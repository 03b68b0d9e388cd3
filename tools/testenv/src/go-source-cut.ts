/**
 * Cutting what Debian cannot provide out of BuildKit's `cmd/buildkitd`: Go
 * sources edited line by line (imports, map entries, snapshotter `case`s, `if`
 * statements and declarations that name a package Debian does not have), so
 * the packaged sources build offline.
 */

/** What `cmd/buildkitd` imports that Debian does not package: cut out before building. */
export const UNPACKAGED_IMPORTS: readonly RegExp[] = [
  /\/cache\/remotecache\/(?:gha|azblob)$/,
  /^github\.com\/containerd\/fuse-overlayfs-snapshotter(?:\/|$)/,
  /^github\.com\/containerd\/stargz-snapshotter(?:\/|$)/,
];
/** Snapshotter names whose `case` goes with them. */
export const UNPACKAGED_SNAPSHOTTERS: readonly string[] = ['fuse-overlayfs', 'stargz'];

/** The name a Go import is referred to by: its alias, else its last path element without a `/vN` suffix or `go-` prefix. */
function importName(alias: string | undefined, path: string): string {
  if (alias) return alias;
  const parts = path.split('/');
  let last = parts.pop() ?? path;
  if (/^v\d+$/.test(last) && parts.length > 0) last = parts.pop() ?? last;
  return last.replace(/^go-/, '').replace(/[-.]/g, '_');
}

function indentOf(line: string): string {
  return /^\s*/.exec(line)?.[0] ?? '';
}

/** Index of the line holding the `}` that closes the block opened at the end of line `start` (counting braces outside strings). */
function blockEnd(lines: readonly string[], start: number): number {
  let depth = 0;
  for (let i = start; i < lines.length; i++) {
    const code = (lines[i] ?? '').replace(/"(?:[^"\\]|\\.)*"|`[^`]*`|'(?:[^'\\]|\\.)*'/g, '""').replace(/\/\/.*$/, '');
    for (const ch of code) {
      if (ch === '{') depth++;
      else if (ch === '}') {
        depth--;
        if (depth === 0) return i;
      }
    }
  }
  throw new Error(`no closing brace for the block at line ${start + 1}`);
}

/** The lines without the unpackaged imports (grouped or single), and the names those imports were used by. */
function cutImports(source: string): { lines: string[]; removed: Set<string> } {
  const removed = new Set<string>();
  let inImports = false;
  const lines = source.split('\n').filter((line) => {
    if (/^import \($/.test(line)) inImports = true;
    else if (inImports && /^\)$/.test(line)) inImports = false;
    const m = inImports ? /^\s*(?:([A-Za-z_]\w*)\s+)?"([^"]+)"\s*$/.exec(line) : /^import\s+(?:([A-Za-z_]\w*)\s+)?"([^"]+)"\s*$/.exec(line);
    if (!m || !UNPACKAGED_IMPORTS.some((re) => re.test(m[2]!))) return true;
    removed.add(importName(m[1], m[2]!));
    return false;
  });
  return { lines, removed };
}

/** `case "stargz":` … up to the next case/default at the same indentation. */
function cutSnapshotterCases(lines: string[]): void {
  for (const name of UNPACKAGED_SNAPSHOTTERS) {
    const at = lines.findIndex((l) => l.trim() === `case "${name}":`);
    if (at < 0) continue;
    const indent = indentOf(lines[at]!);
    let end = at + 1;
    while (end < lines.length && !(indentOf(lines[end]!) === indent && /^\s*(?:case\b|default:|\})/.test(lines[end]!))) end++;
    lines.splice(at, end - at);
  }
}

/** `if … pkg.X … {` [`} else {` …] `}`: keep only the else branch. */
function cutIfStatements(lines: string[], uses: RegExp, file: string): void {
  for (let guard = 0; guard < 100; guard++) {
    const at = lines.findIndex((l) => /^\s*if\s.*\{\s*$/.test(l) && uses.test(l));
    if (at < 0) break;
    const thenEnd = blockEnd(lines, at);
    const closing = lines[thenEnd]!;
    if (/^\s*\}\s*else\s*\{\s*$/.test(closing)) {
      keepElseBranch(lines, at, thenEnd, file);
    } else if (/^\s*\}\s*$/.test(closing)) {
      lines.splice(at, thenEnd - at + 1);
    } else {
      throw new Error(`${file}:${at + 1}: cannot cut an if statement ending in "${closing.trim()}"`);
    }
  }
}

/** Replace the if statement at `at` (its then-block ending at `thenEnd`) with its else branch, one indent out. */
function keepElseBranch(lines: string[], at: number, thenEnd: number, file: string): void {
  const indent = indentOf(lines[at]!);
  const elseEnd = blockEnd([`${indent}{`, ...lines.slice(thenEnd + 1)], 0) + thenEnd;
  // variables the if statement declared (`if err2 := pkg.X(); err2 == nil {`) are gone with it:
  // statements of the else branch that use them go too
  const init = /^\s*if\s+(.*?)\s*:=[^;]*;/.exec(lines[at]!)?.[1];
  const declared = init ? init.split(',').map((v) => v.trim()).filter((v) => v !== '_') : [];
  const usesDeclared = declared.length > 0 ? new RegExp(`\\b(?:${declared.join('|')})\\b`) : undefined;
  const body = lines.slice(thenEnd + 1, elseEnd).filter((l) => {
    if (!usesDeclared?.test(l)) return true;
    if (/[{(]\s*$/.test(l)) throw new Error(`${file}:${at + 1}: the else branch uses ${declared.join(', ')} in a block: ${l.trim()}`);
    return false;
  });
  lines.splice(at, elseEnd - at + 1, ...body.map((l) => (l.startsWith(`${indent}\t`) ? `${indent}${l.slice(indent.length + 1)}` : l)));
}

/** Top-level declarations typed with a removed import, with their doc comments. */
function cutDeclarations(lines: string[], uses: RegExp, file: string): void {
  for (let guard = 0; guard < 100; guard++) {
    if (!cutOneDeclaration(lines, uses, file)) break;
  }
}

function cutOneDeclaration(lines: string[], uses: RegExp, file: string): boolean {
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    let end: number;
    if (/^(?:func|type|var|const)\s.*\{\s*$/.test(line)) end = blockEnd(lines, i);
    else if (/^(?:var|const)\s+\($/.test(line)) end = lines.indexOf(')', i);
    else continue;
    if (end < 0) throw new Error(`${file}:${i + 1}: no end to the declaration "${line.trim()}"`);
    // only declarations whose header names a removed package (a type in a signature): a use
    // deeper inside a body is left for the final check to report
    if (!uses.test(line)) {
      i = end;
      continue;
    }
    let start = i;
    while (start > 0 && lines[start - 1]!.startsWith('//') && !lines[start - 1]!.startsWith('//go:')) start--;
    lines.splice(start, end - start + 1);
    return true;
  }
  return false;
}

/**
 * Cuts the parts of a `cmd/buildkitd` Go file that need packages Debian does
 * not have: their imports, map entries naming them, the `case`s of the
 * snapshotters they provide, `if` statements that test them (the `else`
 * branch stays), and top-level declarations whose signature names them. Imports that only
 * the cut code used are left for the compiler to name (see `buildkit-build.ts`'s
 * build loop). Throws when anything still refers to a removed import.
 */
export function cutUnpackaged(source: string, file = 'source'): string {
  const { lines: kept, removed } = cutImports(source);
  if (removed.size === 0) return source;
  const names = [...removed].map((n) => n.replace(/[$()*+.?[\\\]^{|}]/g, '\\$&')).join('|');
  const uses = new RegExp(`(?<![\\w.])(?:${names})\\.`);
  // single-line map entries: `"name": pkg.Func(),`
  const lines = kept.filter((line) => !(uses.test(line) && /^\s*"[^"]*":\s.*,\s*$/.test(line) && !/[{(]\s*,?\s*$/.test(line)));
  cutSnapshotterCases(lines);
  cutIfStatements(lines, uses, file);
  cutDeclarations(lines, uses, file);
  const left = lines.findIndex((l) => uses.test(l.replace(/\/\/.*$/, '').replace(/"(?:[^"\\]|\\.)*"/g, '""')));
  if (left >= 0) throw new Error(`${file}:${left + 1}: still uses a package Debian does not provide (${[...removed].join(', ')}): ${lines[left]!.trim()}`);
  return lines.join('\n');
}

/** `path:line:col: "pkg" imported and not used` (also `imported as x and not used`) → file and line. */
export function unusedImports(output: string): { file: string; line: number }[] {
  const found: { file: string; line: number }[] = [];
  for (const m of output.matchAll(/^(?:\.\/)?(\S+\.go):(\d+):\d+: "[^"]+" imported (?:as \w+ )?and not used/gm)) found.push({ file: m[1]!, line: Number(m[2]) });
  return found;
}
