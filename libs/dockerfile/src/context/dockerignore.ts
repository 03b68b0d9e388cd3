/**
 * `.dockerignore` files: which one applies to a build, and its lines read as
 * Docker reads them (moby/patternmatcher's `ignorefile.ReadAll`).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cleanPath, PatternMatcher } from './patterns.ts';

/** Go's `strings.TrimSpace` (Unicode White_Space, which is not JavaScript's `trim`). */
export function goTrimSpace(s: string): string {
  return s.replace(/^[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+|[\t\n\v\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/gu, '');
}

/**
 * The patterns of a `.dockerignore` text: a BOM at the start is dropped; a line
 * starting with `#` is a comment; every other line is trimmed, and one left
 * empty is skipped; the pattern after a leading `!` is trimmed again; each is
 * cleaned like `filepath.Clean`, and a leading `/` removed (`/a` is `a`).
 * Lines end at `\n`, with a `\r` before it dropped.
 */
export function parseDockerignore(text: string): string[] {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const out: string[] = [];
  lines.forEach((raw, index) => {
    let line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (index === 0 && line.startsWith('\ufeff')) line = line.slice(1);
    if (line.startsWith('#')) return;
    let pattern = goTrimSpace(line);
    if (pattern === '') return;
    const invert = pattern.startsWith('!');
    if (invert) pattern = goTrimSpace(pattern.slice(1));
    if (pattern !== '') {
      pattern = cleanPath(pattern);
      if (pattern.length > 1 && pattern.startsWith('/')) pattern = pattern.slice(1);
    }
    out.push(invert ? `!${pattern}` : pattern);
  });
  return out;
}

/** The ignore file that applies to a build, and its patterns. */
export interface DockerignoreFile {
  /** Where it was read from. */
  path: string;
  /** The file as it is. */
  text: string;
  patterns: string[];
}

async function readIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new Error(`reading ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * The ignore file of a build, as BuildKit and kaniko choose it:
 * `<Dockerfile>.dockerignore` beside the Dockerfile (`run.Dockerfile` →
 * `run.Dockerfile.dockerignore`) when there is one, else the context's
 * `.dockerignore`; undefined when there is neither. A file that exists but
 * cannot be read is an error.
 */
export async function readDockerignore(contextDir: string, dockerfilePath?: string): Promise<DockerignoreFile | undefined> {
  const candidates = [...(dockerfilePath === undefined ? [] : [`${dockerfilePath}.dockerignore`]), join(contextDir, '.dockerignore')];
  for (const path of candidates) {
    const text = await readIfPresent(path);
    if (text !== undefined) return { path, text, patterns: parseDockerignore(text) };
  }
  return undefined;
}

/**
 * The matcher for an ignore file's patterns (an empty one without a file).
 * Throws with the file named when a pattern is malformed, as Docker refuses it.
 */
export function dockerignoreMatcher(file: DockerignoreFile | undefined): PatternMatcher {
  try {
    return new PatternMatcher(file?.patterns ?? []);
  } catch (cause) {
    throw new Error(`reading ${file?.path ?? '.dockerignore'}: ${(cause as Error).message}`, { cause });
  }
}
