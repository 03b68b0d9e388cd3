/**
 * Go's `path/filepath.Match` on `/`-separated names (its Unix behaviour):
 * `*` any run of characters but `/`, `?` one character but `/`, `[…]` one
 * character of a class (`[^…]` negated, ranges `a-z`, `\` escaping), `\`
 * escaping the next character. BuildKit matches COPY/ADD source wildcards one
 * path component at a time with it, and Docker's pattern matcher checks every
 * `.dockerignore` line with it before use.
 */

/** A pattern Go's `filepath.Match` refuses (`filepath.ErrBadPattern`). */
export class PatternSyntaxError extends Error {
  override name = 'PatternSyntaxError';
  readonly pattern: string;
  constructor(pattern: string, reason = 'syntax error in pattern') {
    super(`${reason}: ${JSON.stringify(pattern)}`);
    this.pattern = pattern;
  }
}

/**
 * Whether `name` holds a wildcard (`*`, `?`, `[`) not escaped by `\`: how
 * BuildKit tells a COPY/ADD source with wildcards from a plain path.
 */
export function hasWildcards(name: string): boolean {
  for (let i = 0; i < name.length; i++) {
    const c = name[i];
    if (c === '\\') i++;
    else if (c === '*' || c === '?' || c === '[') return true;
  }
  return false;
}

/** Code point at `i` and its length in UTF-16 units (0 at the end). */
function codePoint(s: string, i: number): [number, number] {
  const c = s.codePointAt(i);
  if (c === undefined) return [-1, 0];
  return [c, c > 0xffff ? 2 : 1];
}

/** A chunk: optional leading stars, then everything up to the next star outside a class. */
function scanChunk(pattern: string): { star: boolean; chunk: string; rest: string } {
  let p = pattern;
  let star = false;
  while (p.startsWith('*')) {
    p = p.slice(1);
    star = true;
  }
  let inRange = false;
  let i = 0;
  scan: for (; i < p.length; i++) {
    switch (p[i]) {
      case '\\':
        if (i + 1 < p.length) i++;
        break;
      case '[':
        inRange = true;
        break;
      case ']':
        inRange = false;
        break;
      case '*':
        if (!inRange) break scan;
        break;
      default:
        break;
    }
  }
  return { star, chunk: p.slice(0, i), rest: p.slice(i) };
}

/** One character of a class (`\` escapes it); bad when missing, `-` or `]`, or the class ends with it. */
function classChar(chunk: string, whole: string): { r: number; rest: string } {
  let c = chunk;
  if (c === '' || c[0] === '-' || c[0] === ']') throw new PatternSyntaxError(whole);
  if (c[0] === '\\') {
    c = c.slice(1);
    if (c === '') throw new PatternSyntaxError(whole);
  }
  const [r, n] = codePoint(c, 0);
  const rest = c.slice(n);
  if (rest === '') throw new PatternSyntaxError(whole);
  return { r, rest };
}

/**
 * Matches `chunk` at the start of `s`; the rest of `s` when it does, else
 * undefined. Checks the whole chunk's syntax even after a mismatch, as Go does.
 */
function matchChunk(chunk: string, s: string, whole: string): string | undefined {
  let failed = false;
  let c = chunk;
  let rest = s;
  while (c.length > 0) {
    if (!failed && rest.length === 0) failed = true;
    switch (c[0]) {
      case '[': {
        let r = -1;
        if (!failed) {
          const [cp, n] = codePoint(rest, 0);
          r = cp;
          rest = rest.slice(n);
        }
        c = c.slice(1);
        let negated = false;
        if (c.startsWith('^')) {
          negated = true;
          c = c.slice(1);
        }
        let match = false;
        let ranges = 0;
        for (;;) {
          if (c.startsWith(']') && ranges > 0) {
            c = c.slice(1);
            break;
          }
          const lo = classChar(c, whole);
          let hi = lo.r;
          c = lo.rest;
          if (c[0] === '-') {
            const h = classChar(c.slice(1), whole);
            hi = h.r;
            c = h.rest;
          }
          if (lo.r <= r && r <= hi) match = true;
          ranges++;
        }
        if (match === negated) failed = true;
        break;
      }
      case '?':
        if (!failed) {
          if (rest[0] === '/') failed = true;
          rest = rest.slice(codePoint(rest, 0)[1]);
        }
        c = c.slice(1);
        break;
      default: {
        // `\` makes the next character literal
        if (c[0] === '\\') {
          c = c.slice(1);
          if (c === '') throw new PatternSyntaxError(whole);
        }
        if (!failed) {
          if (c[0] !== rest[0]) failed = true;
          rest = rest.slice(1);
        }
        c = c.slice(1);
        break;
      }
    }
  }
  return failed ? undefined : rest;
}

/**
 * Go's `filepath.Match(pattern, name)`. Throws `PatternSyntaxError` for a
 * malformed pattern (also when the name does not match, as Go checks the
 * whole pattern).
 */
export function goMatch(pattern: string, name: string): boolean {
  let p = pattern;
  let n = name;
  outer: while (p.length > 0) {
    const { star, chunk, rest } = scanChunk(p);
    p = rest;
    if (star && chunk === '') return !n.includes('/');
    const t = matchChunk(chunk, n, pattern);
    if (t !== undefined && (t.length === 0 || p.length > 0)) {
      n = t;
      continue;
    }
    if (star) {
      for (let i = 0; i < n.length && n[i] !== '/'; i++) {
        const t2 = matchChunk(chunk, n.slice(i + 1), pattern);
        if (t2 !== undefined) {
          if (p.length === 0 && t2.length > 0) continue;
          n = t2;
          continue outer;
        }
      }
    }
    // No match: the rest of the pattern must still be well formed.
    while (p.length > 0) {
      const next = scanChunk(p);
      p = next.rest;
      matchChunk(next.chunk, '', pattern);
    }
    return false;
  }
  return n.length === 0;
}

/** Throws `PatternSyntaxError` unless `filepath.Match` accepts `pattern`. */
export function checkGoPattern(pattern: string): void {
  goMatch(pattern, '.');
}
