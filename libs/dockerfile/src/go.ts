/**
 * Small re-implementations of the Go standard-library behaviour BuildKit's
 * parser relies on (unicode.IsSpace, strings.TrimSpace, strings.ToLower,
 * strconv.Quote, …), so that we read Dockerfiles byte-for-byte as it does.
 */

/** Go's `unicode.IsSpace` on a UTF-16 code unit (every Go space is in the BMP). */
export function isSpace(code: number): boolean {
  if (code <= 0xff) {
    return code === 0x20 || (code >= 0x09 && code <= 0x0d) || code === 0x85 || code === 0xa0;
  }
  return (
    code === 0x1680 ||
    (code >= 0x2000 && code <= 0x200a) ||
    code === 0x2028 ||
    code === 0x2029 ||
    code === 0x202f ||
    code === 0x205f ||
    code === 0x3000
  );
}

/** The characters of BuildKit's `reWhitespace` (`[\t\v\f\r ]`). */
export function isReWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0b || code === 0x0c || code === 0x0d;
}

/** Index of the first character that is not a Go space (or `s.length`). */
export function leftSpaceEnd(s: string, from = 0): number {
  let i = from;
  while (i < s.length && isSpace(s.charCodeAt(i))) i++;
  return i;
}

/** Index after the last character that is not a Go space (or `from`). */
export function rightSpaceStart(s: string, from = 0): number {
  let j = s.length;
  while (j > from && isSpace(s.charCodeAt(j - 1))) j--;
  return j;
}

/** `strings.TrimSpace`. */
export function trimSpace(s: string): string {
  const i = leftSpaceEnd(s);
  return s.slice(i, rightSpaceStart(s, i));
}

/** `bytes.TrimRight(s, "\r\n")`. */
export function trimNewline(s: string): string {
  let j = s.length;
  while (j > 0) {
    const c = s.charCodeAt(j - 1);
    if (c !== 0x0a && c !== 0x0d) break;
    j--;
  }
  return j === s.length ? s : s.slice(0, j);
}

/** `bytes.TrimLeft(s, "\t")`. */
export function trimLeadingTabs(s: string): string {
  let i = 0;
  while (i < s.length && s.charCodeAt(i) === 0x09) i++;
  return i === 0 ? s : s.slice(i);
}

const ASCII_ONLY = /^[\x00-\x7f]*$/;

/** Go's `strings.ToLower` (simple per-rune case mapping; `İ` → `i`). */
export function goLower(s: string): string {
  if (ASCII_ONLY.test(s)) return s.toLowerCase();
  let out = '';
  for (const ch of s) {
    if (ch === '\u0130') {
      out += 'i';
      continue;
    }
    const lower = ch.toLowerCase();
    out += [...lower].length === 1 ? lower : ch;
  }
  return out;
}

/** Go's `strings.ToUpper` (simple per-rune case mapping; `ß` stays `ß`). */
export function goUpper(s: string): string {
  if (ASCII_ONLY.test(s)) return s.toUpperCase();
  let out = '';
  for (const ch of s) {
    const upper = ch.toUpperCase();
    out += [...upper].length === 1 ? upper : ch;
  }
  return out;
}

/** Go's `strings.EqualFold` against an ASCII word (`ſ` folds to `s`, `K` to `k`). */
export function equalFoldAscii(s: string, asciiLower: string): boolean {
  let i = 0;
  for (const ch of s) {
    if (i >= asciiLower.length) return false;
    let folded = ch;
    if (ch === '\u017f') folded = 's';
    else if (ch === '\u212a') folded = 'k';
    else if (ch.length === 1 && ch.charCodeAt(0) < 0x80) folded = ch.toLowerCase();
    if (folded !== asciiLower[i]) return false;
    i++;
  }
  return i === asciiLower.length;
}

const PRINTABLE_ASCII_NO_ESCAPE = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
const GRAPHIC = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

/** Go's `strconv.Quote`. */
export function goQuote(s: string): string {
  if (PRINTABLE_ASCII_NO_ESCAPE.test(s)) return `"${s}"`;
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') {
      out += `\\${ch}`;
      continue;
    }
    if (cp === 0x20 || (cp > 0x20 && cp < 0x7f)) {
      out += ch;
      continue;
    }
    if (cp >= 0x80 && !(cp >= 0xd800 && cp <= 0xdfff) && GRAPHIC.test(ch)) {
      out += ch;
      continue;
    }
    switch (cp) {
      case 0x07:
        out += '\\a';
        continue;
      case 0x08:
        out += '\\b';
        continue;
      case 0x0c:
        out += '\\f';
        continue;
      case 0x0a:
        out += '\\n';
        continue;
      case 0x0d:
        out += '\\r';
        continue;
      case 0x09:
        out += '\\t';
        continue;
      case 0x0b:
        out += '\\v';
        continue;
    }
    if (cp < 0x20 || cp === 0x7f) out += `\\x${hex(cp, 2)}`;
    else if (cp < 0x10000) out += `\\u${hex(cp, 4)}`;
    else out += `\\U${hex(cp, 8)}`;
  }
  return `${out}"`;
}

/** Go's `fmt.Sprintf("%q", []string{...})`. */
export function goQuoteSlice(values: readonly string[]): string {
  return `[${values.map(goQuote).join(' ')}]`;
}

/** Whether a code point is a Unicode letter (`unicode.IsLetter`). */
export function isLetter(cp: number): boolean {
  if (cp < 0x80) return (cp >= 0x41 && cp <= 0x5a) || (cp >= 0x61 && cp <= 0x7a);
  return /^\p{L}$/u.test(String.fromCodePoint(cp));
}

/** Whether a code point is a decimal digit (`unicode.IsDigit`). */
export function isDigit(cp: number): boolean {
  if (cp < 0x80) return cp >= 0x30 && cp <= 0x39;
  return /^\p{Nd}$/u.test(String.fromCodePoint(cp));
}

/** Levenshtein distance over code points. */
export function levenshtein(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  let prev = Array.from({ length: y.length + 1 }, (_, i) => i);
  for (let i = 1; i <= x.length; i++) {
    const cur = [i];
    for (let j = 1; j <= y.length; j++) {
      const cost = x[i - 1] === y[j - 1] ? 0 : 1;
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
    }
    prev = cur;
  }
  return prev[y.length]!;
}

function matchCase(value: string, orig: string): string {
  if (orig === goLower(orig)) return goLower(value);
  if (orig === goUpper(orig)) return goUpper(value);
  return value;
}

/**
 * BuildKit's `suggest.WrapError`: append ` (did you mean X?)` when an option is
 * within edit distance 2. Options are tried in the given order (BuildKit walks
 * a Go map, so its choice between equally close options is not stable).
 */
export function withSuggestion(message: string, value: string, options: readonly string[], caseSensitive: boolean): string {
  const val = caseSensitive ? value : goLower(value);
  let match = '';
  let minDist = 3;
  for (const option of options) {
    const opt = caseSensitive ? option : goLower(option);
    if (val === opt) return message;
    const dist = levenshtein(val, opt);
    if (dist < minDist) {
      match = caseSensitive ? opt : matchCase(opt, value);
      minDist = dist;
    }
  }
  return match === '' ? message : `${message} (did you mean ${match}?)`;
}
