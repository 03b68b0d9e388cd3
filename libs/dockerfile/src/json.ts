/**
 * The subset of Go's `encoding/json` behaviour BuildKit depends on for exec
 * form: `json.Unmarshal(text, &[]any{})`. The whole text must be one valid JSON
 * value (checked before any type is looked at); a valid array whose elements
 * are not all strings is a hard error, anything else invalid falls back to the
 * shell form.
 */

export interface JsonStringElement {
  value: string;
  /** Offset of the opening quote in the parsed text. */
  start: number;
  /** Offset after the closing quote. */
  end: number;
}

export type JsonArrayResult =
  | { kind: 'strings'; elements: JsonStringElement[] }
  /** Valid JSON array with an element that is not a string. */
  | { kind: 'not-string-array' }
  /** Not valid JSON (or not an array). */
  | { kind: 'invalid' };

/** Go's decoder refuses nesting deeper than this (`exceeded max depth`). */
const MAX_DEPTH = 10000;

class JsonSyntaxError extends Error {}

function isJsonSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

interface Cursor {
  text: string;
  pos: number;
}

function skipSpace(cur: Cursor): void {
  while (cur.pos < cur.text.length && isJsonSpace(cur.text.charCodeAt(cur.pos))) cur.pos++;
}

function readU4(text: string, at: number): number {
  if (at + 4 > text.length) return -1;
  let v = 0;
  for (let i = 0; i < 4; i++) {
    const h = hexValue(text.charCodeAt(at + i));
    if (h < 0) return -1;
    v = v * 16 + h;
  }
  return v;
}

/** The one-character escapes of JSON strings, by the character after the backslash. */
const SIMPLE_ESCAPES = new Map<number, string>([
  [0x22, '"'],
  [0x5c, '\\'],
  [0x2f, '/'],
  [0x62, '\b'],
  [0x66, '\f'],
  [0x6e, '\n'],
  [0x72, '\r'],
  [0x74, '\t'],
]);

/** The escape sequence at `i` (its backslash): what it decodes to and the index after it. */
function readEscape(text: string, i: number): { decoded: string; next: number } {
  const e = text.charCodeAt(i + 1);
  if (e === 0x75) return readUnicodeEscape(text, i);
  const decoded = SIMPLE_ESCAPES.get(e);
  if (decoded === undefined) throw new JsonSyntaxError('invalid character in string escape code');
  return { decoded, next: i + 2 };
}

/** A `\uXXXX` escape at `i`, with Go's surrogate rules. */
function readUnicodeEscape(text: string, i: number): { decoded: string; next: number } {
  const r = readU4(text, i + 2);
  if (r < 0) throw new JsonSyntaxError('invalid character in \\u hexadecimal character escape');
  const next = i + 6;
  if (r < 0xd800 || r > 0xdfff) return { decoded: String.fromCharCode(r), next };
  // A surrogate must be followed by `\u` and its partner, else it becomes U+FFFD.
  if (r <= 0xdbff && text.charCodeAt(next) === 0x5c && text.charCodeAt(next + 1) === 0x75) {
    const r2 = readU4(text, next + 2);
    if (r2 >= 0xdc00 && r2 <= 0xdfff) return { decoded: String.fromCharCode(r, r2), next: next + 6 };
  }
  return { decoded: '\ufffd', next };
}

/** Parse a JSON string at `cur.pos` (which holds `"`), decoding it as Go does. */
function readString(cur: Cursor): string {
  const text = cur.text;
  let i = cur.pos + 1;
  let out = '';
  let runStart = i;
  for (;;) {
    if (i >= text.length) throw new JsonSyntaxError('unexpected end of JSON input');
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      out += text.slice(runStart, i);
      cur.pos = i + 1;
      return out;
    }
    if (c < 0x20) throw new JsonSyntaxError('invalid character in string literal');
    if (c >= 0xd800 && c <= 0xdfff) {
      // Keep valid pairs; a lone surrogate cannot come from UTF-8 text, Go would see U+FFFD.
      const pair = c <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00;
      if (!pair) {
        out += `${text.slice(runStart, i)}\ufffd`;
        i++;
        runStart = i;
        continue;
      }
      i += 2;
      continue;
    }
    if (c !== 0x5c) {
      i++;
      continue;
    }
    out += text.slice(runStart, i);
    const escape = readEscape(text, i);
    out += escape.decoded;
    i = escape.next;
    runStart = i;
  }
}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

function readScalar(cur: Cursor): void {
  const text = cur.text;
  for (const word of ['true', 'false', 'null']) {
    if (text.startsWith(word, cur.pos)) {
      cur.pos += word.length;
      return;
    }
  }
  NUMBER.lastIndex = cur.pos;
  const m = NUMBER.exec(text);
  if (!m || m[0].length === 0) throw new JsonSyntaxError('invalid character looking for beginning of value');
  cur.pos += m[0].length;
}

/**
 * Validate one JSON value starting at `cur.pos` without building it (used for
 * nested values), iteratively so deep nesting cannot overflow the stack.
 */
function skipValue(cur: Cursor, depth: number): void {
  const stack: number[] = []; // 0x5d for arrays, 0x7d for objects
  let expectValue = true;
  for (;;) {
    skipSpace(cur);
    const text = cur.text;
    if (cur.pos >= text.length) throw new JsonSyntaxError('unexpected end of JSON input');
    const c = text.charCodeAt(cur.pos);
    if (expectValue) {
      if (c === 0x5b || c === 0x7b) {
        if (depth + stack.length + 1 > MAX_DEPTH) throw new JsonSyntaxError('exceeded max depth');
        stack.push(c === 0x5b ? 0x5d : 0x7d);
        cur.pos++;
        skipSpace(cur);
        if (text.charCodeAt(cur.pos) === stack[stack.length - 1]) {
          cur.pos++;
          stack.pop();
          expectValue = false;
          if (stack.length === 0) return;
          continue;
        }
        if (c === 0x7b) {
          if (text.charCodeAt(cur.pos) !== 0x22) throw new JsonSyntaxError('invalid character looking for beginning of object key string');
          readString(cur);
          skipSpace(cur);
          if (text.charCodeAt(cur.pos) !== 0x3a) throw new JsonSyntaxError('invalid character after object key');
          cur.pos++;
        }
        continue;
      }
      if (c === 0x22) readString(cur);
      else readScalar(cur);
      expectValue = false;
      if (stack.length === 0) return;
      continue;
    }
    const close = stack[stack.length - 1]!;
    if (c === close) {
      cur.pos++;
      stack.pop();
      if (stack.length === 0) return;
      continue;
    }
    if (c !== 0x2c) throw new JsonSyntaxError('invalid character after value');
    cur.pos++;
    if (close === 0x7d) {
      skipSpace(cur);
      if (text.charCodeAt(cur.pos) !== 0x22) throw new JsonSyntaxError('invalid character looking for beginning of object key string');
      readString(cur);
      skipSpace(cur);
      if (text.charCodeAt(cur.pos) !== 0x3a) throw new JsonSyntaxError('invalid character after object key');
      cur.pos++;
    }
    expectValue = true;
  }
}

/** Parse `text` (which starts with `[`) as a JSON array of strings, Go style. */
export function parseJsonStringArray(text: string): JsonArrayResult {
  const cur: Cursor = { text, pos: 0 };
  const elements: JsonStringElement[] = [];
  let allStrings = true;
  try {
    skipSpace(cur);
    if (text.charCodeAt(cur.pos) !== 0x5b) return { kind: 'invalid' };
    cur.pos++;
    skipSpace(cur);
    if (text.charCodeAt(cur.pos) === 0x5d) {
      cur.pos++;
    } else {
      for (;;) {
        skipSpace(cur);
        const start = cur.pos;
        if (text.charCodeAt(start) === 0x22) {
          const value = readString(cur);
          elements.push({ value, start, end: cur.pos });
        } else {
          allStrings = false;
          skipValue(cur, 1);
        }
        skipSpace(cur);
        const c = text.charCodeAt(cur.pos);
        cur.pos++;
        if (c === 0x5d) break;
        if (c !== 0x2c) throw new JsonSyntaxError('invalid character after array element');
      }
    }
    skipSpace(cur);
    if (cur.pos !== text.length) throw new JsonSyntaxError('invalid character after top-level value');
  } catch (err) {
    if (err instanceof JsonSyntaxError) return { kind: 'invalid' };
    throw err;
  }
  return allStrings ? { kind: 'strings', elements } : { kind: 'not-string-array' };
}
