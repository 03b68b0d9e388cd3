/**
 * Shell patterns of `${var#pat}`, `${var%pat}` and `${var/pat/repl}`, as
 * BuildKit's lexer reads them (`?` one character, `*` any run, `\` escapes
 * `*`, `?`, `\`; `\}` and `\/` are plain `}` and `/`). BuildKit turns them into
 * Go regular expressions (where `.` does not match a newline); we match them
 * with a small automaton instead, which keeps hostile patterns linear.
 */

const ANY = -1;
const STAR = -2;

/** Pattern tokens: a code point, ANY or STAR. */
export type PatternTokens = number[];

const EOF = -1;

/** A cursor over code points that, like Go's text/scanner, skips one leading BOM. */
class CodePoints {
  readonly #s: string;
  #pos = 0;
  #started = false;

  constructor(s: string) {
    this.#s = s;
  }

  peek(): number {
    if (!this.#started) {
      this.#started = true;
      if (this.#s.charCodeAt(0) === 0xfeff) this.#pos = 1;
    }
    return this.#pos < this.#s.length ? this.#s.codePointAt(this.#pos)! : EOF;
  }

  next(): number {
    const c = this.peek();
    if (c !== EOF) this.#pos += c > 0xffff ? 2 : 1;
    return c;
  }
}

function runeString(cp: number): string {
  return cp < 0 ? '\ufffd' : String.fromCodePoint(cp);
}

/** Tokenize a pattern; throws an Error with BuildKit's message on a bad escape. */
export function compilePattern(pattern: string): PatternTokens {
  const s = new CodePoints(pattern);
  const tokens: PatternTokens = [];
  for (let tok = s.next(); tok !== EOF; tok = s.next()) {
    if (tok === 0x2a) {
      tokens.push(STAR);
      continue;
    }
    if (tok === 0x3f) {
      tokens.push(ANY);
      continue;
    }
    if (tok === 0x5c) {
      const p = s.peek();
      if (p === 0x7d || p === 0x2f) continue;
      tok = s.next();
      if (tok !== 0x2a && tok !== 0x3f && tok !== 0x5c) throw new Error(`invalid escape '\\${runeString(tok)}'`);
    }
    tokens.push(tok);
  }
  return tokens;
}

/** BuildKit's `reversePattern`: reverse runes but keep `\x` pairs in order. */
export function reversePattern(pattern: string): string {
  const runes = Array.from(pattern);
  const out = new Array<string>(runes.length);
  const last = runes.length - 1;
  for (let i = 0; i <= last; ) {
    const tok = runes[i]!;
    const outIdx = last - i;
    if (tok === '\\' && i !== last) {
      out[outIdx - 1] = tok;
      out[outIdx] = runes[i + 1]!;
      i += 2;
    } else {
      out[outIdx] = tok;
      i++;
    }
  }
  return out.join('');
}

function addState(set: Int32Array, tokens: PatternTokens, state: number, start: number): void {
  let i = state;
  for (;;) {
    const cur = set[i]!;
    if (cur !== -1 && cur <= start) return;
    set[i] = start;
    if (i < tokens.length && tokens[i] === STAR) i++;
    else return;
  }
}

function step(cur: Int32Array, tokens: PatternTokens, c: number): Int32Array<ArrayBuffer> {
  const next = new Int32Array(tokens.length + 1).fill(-1);
  for (let i = 0; i < tokens.length; i++) {
    const start = cur[i]!;
    if (start === -1) continue;
    const t = tokens[i]!;
    if (t === STAR) {
      if (c !== 0x0a) addState(next, tokens, i, start);
    } else if (t === ANY ? c !== 0x0a : t === c) {
      addState(next, tokens, i + 1, start);
    }
  }
  return next;
}

function isEmpty(set: Int32Array): boolean {
  for (let i = 0; i < set.length; i++) if (set[i] !== -1) return false;
  return true;
}

/** Every end index (in `cps`) of a match of the whole pattern starting at 0. */
export function prefixMatchEnds(tokens: PatternTokens, cps: readonly number[]): number[] {
  const ends: number[] = [];
  let cur: Int32Array<ArrayBuffer> = new Int32Array(tokens.length + 1).fill(-1);
  addState(cur, tokens, 0, 0);
  for (let pos = 0; ; pos++) {
    if (cur[tokens.length] !== -1) ends.push(pos);
    if (pos === cps.length) break;
    cur = step(cur, tokens, cps[pos]!);
    if (isEmpty(cur)) break;
  }
  return ends;
}

/**
 * The leftmost match starting at or after `from`, longest at that start (what
 * Go's leftmost-first search returns for patterns whose stars are all greedy).
 */
export function findMatch(tokens: PatternTokens, cps: readonly number[], from: number): [number, number] | undefined {
  let best: [number, number] | undefined;
  let cur: Int32Array<ArrayBuffer> = new Int32Array(tokens.length + 1).fill(-1);
  for (let pos = from; pos <= cps.length; pos++) {
    if (!best) addState(cur, tokens, 0, pos);
    const acceptStart = cur[tokens.length]!;
    if (acceptStart !== -1 && (!best || acceptStart < best[0] || (acceptStart === best[0] && pos > best[1]))) best = [acceptStart, pos];
    if (best) {
      for (let i = 0; i < cur.length; i++) if (cur[i]! > best[0]) cur[i] = -1;
    }
    if (pos === cps.length) break;
    cur = step(cur, tokens, cps[pos]!);
    if (best && isEmpty(cur)) break;
  }
  return best;
}

function codePoints(s: string): { cps: number[]; chars: string[] } {
  const chars = Array.from(s);
  return { chars, cps: chars.map((ch) => ch.codePointAt(0)!) };
}

/** The pattern of a substitution, compiled; a bad one fails as BuildKit reports it. */
function substitutionPattern(pattern: string): PatternTokens {
  try {
    return compilePattern(pattern);
  } catch (err) {
    throw new Error(`invalid pattern (${pattern}) in substitution: ${(err as Error).message}`);
  }
}

/** `${value#pattern}` (shortest) / `${value##pattern}` (longest). */
export function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const tokens = substitutionPattern(pattern);
  const { chars, cps } = codePoints(value);
  const ends = prefixMatchEnds(tokens, cps);
  if (ends.length === 0) return value;
  const end = greedy ? ends[ends.length - 1]! : ends[0]!;
  return chars.slice(end).join('');
}

/** `${value%pattern}` / `${value%%pattern}`, by reversing pattern and value as BuildKit does. */
export function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  const reversed = trimPrefix(reversePattern(pattern), Array.from(value).reverse().join(''), greedy);
  return Array.from(reversed).reverse().join('');
}

/** Go's `Regexp.Expand` template for a pattern without groups: `$0`/`${0}` is the match. */
function expandTemplate(template: string, match: string): string {
  if (!template.includes('$')) return template;
  let out = '';
  let rest = template;
  for (;;) {
    const at = rest.indexOf('$');
    if (at < 0) break;
    out += rest.slice(0, at);
    rest = rest.slice(at + 1);
    if (rest.startsWith('$')) {
      out += '$';
      rest = rest.slice(1);
      continue;
    }
    const ref = /^(\{)?([\p{L}\p{Nd}_]+)(\})?/u.exec(rest);
    const braced = ref?.[1] === '{';
    if (!ref || (braced && ref[3] !== '}')) {
      out += '$';
      continue;
    }
    const name = ref[2]!;
    rest = rest.slice(ref[0].length - (!braced && ref[3] === '}' ? 1 : 0));
    if (name === '0') out += match;
  }
  return out + rest;
}

/** `${value/pattern/replacement}` and, with `all`, `${value//pattern/replacement}`. */
export function replacePattern(pattern: string, value: string, replacement: string, all: boolean): string {
  const tokens = substitutionPattern(pattern);
  const { chars, cps } = codePoints(value);
  if (!all) {
    const m = findMatch(tokens, cps, 0);
    if (!m) return value;
    return chars.slice(0, m[0]).join('') + replacement + chars.slice(m[1]).join('');
  }
  let out = '';
  let lastMatchEnd = 0;
  let searchPos = 0;
  while (searchPos <= cps.length) {
    const m = findMatch(tokens, cps, searchPos);
    if (!m) break;
    out += chars.slice(lastMatchEnd, m[0]).join('');
    if (m[1] > lastMatchEnd || m[0] === 0) out += expandTemplate(replacement, chars.slice(m[0], m[1]).join(''));
    lastMatchEnd = m[1];
    searchPos = Math.max(searchPos + 1, m[1]);
  }
  return out + chars.slice(lastMatchEnd).join('');
}
