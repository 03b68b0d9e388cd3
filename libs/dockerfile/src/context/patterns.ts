/**
 * Docker's context patterns (`.dockerignore` lines, BuildKit's include and
 * exclude patterns), with the rules of moby/patternmatcher, which the Docker
 * CLI, BuildKit's fsutil and kaniko all use:
 *
 * - each pattern is trimmed and cleaned like Go's `filepath.Clean` (`a//b/../c`
 *   → `a/c`, trailing `/` dropped); a leading `!` makes it an exception, and a
 *   lone `!` is an error; every pattern must be valid for `filepath.Match`;
 * - `*` and `?` never match `/`; `**` matches any number of path components
 *   (also none); `[…]` and `\` as in `filepath.Match`;
 * - a pattern without wildcards matches exactly that path; one that only ends
 *   in `**` matches by prefix (`dir/**` is everything below `dir`, `dir**` also
 *   `dirt`), one that starts with `**` and has no other wildcard by suffix
 *   (`**file` also matches `myfile`);
 * - a path is matched when it or one of its parent directories matches; the
 *   patterns are read in order and the last that matches decides (an exception
 *   re-includes);
 * - walking a tree, an excluded directory is only entered when an exception
 *   may re-include something below it (`walkRule` below).
 */
import { cleanPath } from '../plan/config.ts';
import { checkGoPattern, PatternSyntaxError } from './go-match.ts';

export { cleanPath };

type MatchType = 'exact' | 'prefix' | 'suffix' | 'regexp';

// Characters with a meaning in a regular expression and none in filepath.Match.
const ESCAPE = new Set(['.', '+', '(', ')', '|', '{', '}', '$']);

/**
 * Docker's regular expression for a cleaned pattern (RE2 syntax), and how the
 * pattern is matched. `[` and `]` and everything between them pass through as
 * Docker passes them to RE2: a `*` inside `[…]` becomes `[^/]*` there too.
 */
function compile(pattern: string): { type: MatchType; re2: string } {
  let re2 = '^';
  let type: MatchType = 'exact';
  const chars = Array.from(pattern);
  let i = 0;
  for (let step = 0; i < chars.length; step++) {
    const ch = chars[i++]!;
    if (ch === '*') {
      if (chars[i] === '*') {
        i++;
        if (chars[i] === '/') i++;
        if (i >= chars.length) {
          if (type === 'exact') type = 'prefix';
          else {
            re2 += '.*';
            type = 'regexp';
          }
        } else {
          re2 += '(.*/)?';
          type = 'regexp';
        }
        if (step === 0) type = 'suffix';
      } else {
        re2 += '[^/]*';
        type = 'regexp';
      }
    } else if (ch === '?') {
      re2 += '[^/]';
      type = 'regexp';
    } else if (ESCAPE.has(ch)) {
      re2 += `\\${ch}`;
    } else if (ch === '\\') {
      if (i < chars.length) {
        re2 += `\\${chars[i++]!}`;
        type = 'regexp';
      } else re2 += '\\';
    } else if (ch === '[' || ch === ']') {
      re2 += ch;
      type = 'regexp';
    } else re2 += ch;
  }
  return { type, re2: `${re2}$` };
}

// RE2's POSIX classes (`[[:alpha:]]`) as JavaScript class contents.
const POSIX_CLASSES: Record<string, string> = {
  alnum: '0-9A-Za-z',
  alpha: 'A-Za-z',
  ascii: '\\x00-\\x7F',
  blank: '\\t ',
  cntrl: '\\x00-\\x1F\\x7F',
  digit: '0-9',
  graph: '!-~',
  lower: 'a-z',
  print: ' -~',
  punct: '!-\\/:-@\\[-`{-~',
  space: '\\t\\n\\v\\f\\r ',
  upper: 'A-Z',
  word: '0-9A-Za-z_',
  xdigit: '0-9A-Fa-f',
};

// RE2's escapes of letters as JavaScript: [outside a class, inside one].
const LETTER_ESCAPES: Record<string, [string, string | undefined]> = {
  a: ['\\x07', '\\x07'],
  f: ['\\f', '\\f'],
  t: ['\\t', '\\t'],
  n: ['\\n', '\\n'],
  r: ['\\r', '\\r'],
  v: ['\\v', '\\v'],
  d: ['\\d', '\\d'],
  D: ['\\D', undefined],
  w: ['\\w', '\\w'],
  W: ['\\W', undefined],
  s: ['[\\t\\n\\f\\r ]', '\\t\\n\\f\\r '],
  S: ['[^\\t\\n\\f\\r ]', undefined],
  b: ['\\b', undefined],
  B: ['\\B', undefined],
  A: ['^', undefined],
  z: ['$', undefined],
};

/** A literal character in a JavaScript `u` expression. */
function literal(ch: string, inClass: boolean): string {
  if (inClass) return /[\\\][^]/.test(ch) ? `\\${ch}` : ch;
  return /[\\^$.*+?()[\]{}|/]/.test(ch) ? `\\${ch}` : ch;
}

/**
 * The JavaScript equivalent (`u` flag) of the RE2 expressions `compile` builds:
 * anchors, `.` (anything but a newline), `(…)?`, `*`, classes (a `]` first in a
 * class is literal; POSIX classes), escapes. An escape RE2 refuses, or one this
 * translation does not carry (`\p`, `\x`, `\Q`, octal), is a `PatternSyntaxError`.
 */
function re2ToJs(re2: string, pattern: string): string {
  const chars = Array.from(re2);
  let out = '';
  let i = 0;
  const escape = (inClass: boolean): string => {
    const next = chars[i++];
    if (next === undefined) throw new PatternSyntaxError(pattern, 'trailing \\ in pattern');
    if (/^[\x21-\x2f\x3a-\x40\x5b-\x60\x7b-\x7e]$/.test(next)) return literal(next, inClass);
    const mapped = LETTER_ESCAPES[next];
    const form = mapped === undefined ? undefined : inClass ? mapped[1] : mapped[0];
    if (form === undefined) throw new PatternSyntaxError(pattern, `invalid escape \\${next} in pattern`);
    return form;
  };
  while (i < chars.length) {
    const ch = chars[i++]!;
    switch (ch) {
      case '^':
      case '$':
      case '*':
      case '?':
      case '(':
      case ')':
        out += ch;
        break;
      case '.':
        out += '[^\\n]';
        break;
      case '\\':
        out += escape(false);
        break;
      case '[': {
        out += '[';
        if (chars[i] === '^') {
          out += '^';
          i++;
        }
        let first = true;
        for (;;) {
          const c = chars[i++];
          if (c === undefined) throw new PatternSyntaxError(pattern, 'missing closing ] in pattern');
          if (c === ']' && !first) break;
          first = false;
          if (c === '[' && chars[i] === ':') {
            const end = chars.indexOf(':', i + 1);
            if (end > 0 && chars[end + 1] === ']') {
              const set = POSIX_CLASSES[chars.slice(i + 1, end).join('')];
              if (set === undefined) throw new PatternSyntaxError(pattern, `invalid character class ${chars.slice(i - 1, end + 2).join('')} in pattern`);
              out += set;
              i = end + 2;
              continue;
            }
          }
          if (c === '\\') out += escape(true);
          // a range between two characters, else literal: RE2 and JavaScript agree
          else if (c === '-') out += '-';
          else out += literal(c, true);
        }
        out += ']';
        break;
      }
      default:
        out += literal(ch, false);
    }
  }
  return out;
}

/** Whether `s` holds a character Docker's walkers treat as a wildcard. */
function hasWildcard(s: string): boolean {
  return /[*[\]?^\\]/.test(s);
}

/** One cleaned pattern. */
export class ContextPattern {
  /** The cleaned pattern, without `!`. */
  readonly text: string;
  /** An exception (`!…`): a match re-includes. */
  readonly exclusion: boolean;
  #compiled: { type: MatchType; regexp: RegExp | undefined } | undefined;

  constructor(text: string, exclusion: boolean) {
    this.text = text;
    this.exclusion = exclusion;
  }

  /** Docker's regular expression for this pattern (RE2 syntax); undefined for exact, prefix and suffix matches. */
  get regexpSource(): string | undefined {
    const c = compile(this.text);
    return c.type === 'regexp' ? c.re2 : undefined;
  }

  /** How Docker matches this pattern: `exact`, `prefix`, `suffix` or `regexp`. */
  get matchType(): MatchType {
    return compile(this.text).type;
  }

  /** Whether the path itself matches (no parent directories). Throws `PatternSyntaxError` for a pattern Docker cannot compile. */
  matches(path: string): boolean {
    if (this.#compiled === undefined) {
      const c = compile(this.text);
      let regexp: RegExp | undefined;
      if (c.type === 'regexp') {
        try {
          regexp = new RegExp(re2ToJs(c.re2, this.text), 'u');
        } catch (cause) {
          if (cause instanceof PatternSyntaxError) throw cause;
          throw new PatternSyntaxError(this.text, `invalid pattern (${(cause as Error).message})`);
        }
      }
      this.#compiled = { type: c.type, regexp };
    }
    const { type, regexp } = this.#compiled;
    switch (type) {
      case 'exact':
        return path === this.text;
      case 'prefix':
        return path.startsWith(this.text.slice(0, -2));
      case 'suffix': {
        const suffix = this.text.slice(2);
        if (path.endsWith(suffix)) return true;
        return suffix.startsWith('/') && path === suffix.slice(1);
      }
      case 'regexp':
        return regexp!.test(path);
    }
  }

  /** The pattern without a trailing `/**` or `/*` (what BuildKit's walker compares with directories). */
  get withoutTrailingGlob(): string {
    let p = this.text;
    if (p.endsWith('/**')) p = p.slice(0, -3);
    if (p.endsWith('/*')) p = p.slice(0, -2);
    return p;
  }
}

/** Per pattern, whether a directory matched it: what a walker hands down to the entries below. */
export interface MatchInfo {
  readonly parentMatched: readonly boolean[];
}

/** How a walker decides to enter a directory the patterns leave out. */
export type WalkRule = 'buildkit' | 'docker-cli';

/**
 * A list of context patterns, read as Docker reads them. Construction throws
 * `PatternSyntaxError` for a lone `!` or a pattern `filepath.Match` refuses.
 */
export class PatternMatcher {
  readonly patterns: readonly ContextPattern[];
  /** Some pattern is an exception (`!…`). */
  readonly hasExceptions: boolean;

  constructor(patterns: readonly string[]) {
    const out: ContextPattern[] = [];
    for (const raw of patterns) {
      let p = raw.trim();
      if (p === '') continue;
      p = cleanPath(p);
      let exclusion = false;
      if (p.startsWith('!')) {
        if (p.length === 1) throw new PatternSyntaxError(raw, 'illegal exclusion pattern');
        exclusion = true;
        p = p.slice(1);
      }
      checkGoPattern(p);
      out.push(new ContextPattern(p, exclusion));
    }
    this.patterns = out;
    this.hasExceptions = out.some((p) => p.exclusion);
  }

  get empty(): boolean {
    return this.patterns.length === 0;
  }

  /**
   * Whether `path` (relative, `/`-separated) is matched: it or a parent matches
   * a pattern, the last matching pattern deciding (`MatchesOrParentMatches`).
   */
  matches(path: string): boolean {
    return this.matchesWithParents(path).matched;
  }

  /**
   * The same for a walker, which hands each directory's `info` down to its
   * entries instead of matching every parent again (`MatchesUsingParentResults`).
   * Without `parent` the parents are matched here.
   */
  matchesWithParents(path: string, parent?: MatchInfo): { matched: boolean; info: MatchInfo } {
    const given = parent?.parentMatched ?? [];
    if (given.length !== 0 && given.length !== this.patterns.length) throw new Error(`matching ${path}: parent results for ${given.length} patterns, not ${this.patterns.length}`);
    let matched = false;
    const info: boolean[] = new Array<boolean>(this.patterns.length).fill(false);
    const slash = path.lastIndexOf('/');
    const parentDirs = slash < 0 ? [] : path.slice(0, slash).split('/');
    this.patterns.forEach((pattern, i) => {
      let match = given.length !== 0 && given[i] === true;
      if (!match) {
        // An exception only matters once something matched, a pattern only until then.
        if (pattern.exclusion !== matched) return;
        match = pattern.matches(path);
        if (!match && given.length === 0) {
          for (let n = 1; n <= parentDirs.length && !match; n++) match = pattern.matches(parentDirs.slice(0, n).join('/'));
        }
      }
      info[i] = match;
      if (match) matched = !pattern.exclusion;
    });
    return { matched, info: { parentMatched: info } };
  }

  /**
   * Whether a walker must enter directory `dir`, which these patterns exclude,
   * because an exception may re-include something below it.
   *
   * - `buildkit` (fsutil, and so BuildKit's context transfer): when some
   *   exception has a wildcard, always; else when an exception (without a
   *   trailing `/**` or `/*`) names a path in `dir`.
   * - `docker-cli` (the Docker CLI's context tar for the classic builder): when
   *   an exception, as written, names a path in `dir` (`!*\/keep` never enters).
   */
  mayReincludeBelow(dir: string, rule: WalkRule = 'buildkit'): boolean {
    if (!this.hasExceptions) return false;
    const exceptions = this.patterns.filter((p) => p.exclusion);
    const dirSlash = `${dir}/`;
    if (rule === 'docker-cli') return exceptions.some((p) => `${p.text}/`.startsWith(dirSlash));
    if (exceptions.some((p) => hasWildcard(p.withoutTrailingGlob))) return true;
    return exceptions.some((p) => `${p.withoutTrailingGlob}/`.startsWith(dirSlash));
  }

  /**
   * For include patterns (BuildKit's `includepatterns`): whether a walker must
   * enter directory `dir`, which they do not include, because something below
   * may be included.
   */
  mayIncludeBelow(dir: string): boolean {
    const inclusions = this.patterns.filter((p) => !p.exclusion);
    if (inclusions.some((p) => hasWildcard(p.withoutTrailingGlob))) return true;
    const dirSlash = `${dir}/`;
    return inclusions.some((p) => `${p.withoutTrailingGlob}/`.startsWith(dirSlash));
  }
}
