/**
 * BuildKit's per-instruction line parsers (`parser/line_parsers.go`,
 * `split_command.go`): how the text after the keyword becomes the node's
 * arguments. Offsets are relative to the logical line so that every value can
 * be mapped back to the source.
 */
import { goLower, goQuote, isReWhitespace, isSpace, leftSpaceEnd, rightSpaceStart } from './go.ts';
import { parseJsonStringArray } from './json.ts';

/** A value with its [start, end) offsets in the logical line. */
export interface RawValue {
  value: string;
  start: number;
  end: number;
}

export interface RawNode {
  command: string;
  commandStart: number;
  flags: RawValue[];
  args: RawValue[];
  json: boolean;
  trigger?: RawNode;
  /** The text this node was parsed from (BuildKit's `Original`). */
  original: string;
  originalStart: number;
}

/** An error in a line, with the offset it is about. */
export class LineError extends Error {
  readonly offset: number;

  constructor(message: string, offset: number) {
    super(message);
    this.offset = offset;
  }
}

export interface LineContext {
  /** Char code of the escape token. */
  escape: number;
}

const ASCII_ONLY = /^[\x00-\x7f]*$/;

/**
 * A view of a string as Go sees a `string` when it indexes bytes: ASCII text
 * is used as is; other text is turned into its UTF-8 bytes, one char per byte
 * (what `rune(line[pos])` gives BuildKit), with a map back to UTF-16 offsets.
 */
interface ByteView {
  s: string;
  /** Offset in the original string of byte `i`. */
  offsetOf(i: number): number;
  /** The original text from byte `i` on. */
  textFrom(i: number): string;
}

function byteView(text: string): ByteView {
  if (ASCII_ONLY.test(text)) return { s: text, offsetOf: (i) => i, textFrom: (i) => text.slice(i) };
  const bytes = Buffer.from(text, 'utf8');
  const offsets = new Int32Array(bytes.length + 1);
  let b = 0;
  for (let u = 0; u < text.length; u++) {
    const cp = text.codePointAt(u)!;
    const width = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
    for (let k = 0; k < width; k++) offsets[b + k] = u;
    b += width;
    if (cp > 0xffff) u++;
  }
  offsets[bytes.length] = text.length;
  const s = bytes.toString('latin1');
  return { s, offsetOf: (i) => offsets[i]!, textFrom: (i) => Buffer.from(s.slice(i), 'latin1').toString('utf8') };
}

/** `extractBuilderFlags`: leading `--flag` words; returns the rest's offset and text. */
function extractBuilderFlags(line: string, ctx: LineContext): { flags: RawValue[]; rest: string; restStart: number } {
  const view = byteView(line);
  const s = view.s;
  const n = s.length;
  const flags: RawValue[] = [];
  const IN_SPACES = 0;
  const IN_WORD = 1;
  const IN_QUOTE = 2;
  let phase = IN_SPACES;
  let word = '';
  let quote = 0;
  let blankOK = false;
  let wordStart = 0;
  const push = (end: number): void => {
    flags.push({ value: word, start: view.offsetOf(wordStart), end: view.offsetOf(end) });
  };
  for (let pos = 0; pos <= n; pos++) {
    let ch = pos < n ? s.charCodeAt(pos) : -1;
    if (phase === IN_SPACES) {
      if (pos === n) break;
      if (isSpace(ch)) continue;
      if (ch !== 0x2d || pos + 1 === n || s.charCodeAt(pos + 1) !== 0x2d) {
        return { flags, rest: view.textFrom(pos), restStart: view.offsetOf(pos) };
      }
      phase = IN_WORD;
      wordStart = pos;
    }
    if (pos === n) {
      if (word !== '--' && (blankOK || word.length > 0)) push(pos);
      break;
    }
    if (phase === IN_WORD) {
      if (isSpace(ch)) {
        phase = IN_SPACES;
        if (word === '--') return { flags, rest: view.textFrom(pos), restStart: view.offsetOf(pos) };
        if (blankOK || word.length > 0) push(pos);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === 0x27 || ch === 0x22) {
        quote = ch;
        blankOK = true;
        phase = IN_QUOTE;
        continue;
      }
      if (ch === ctx.escape) {
        if (pos + 1 === n) continue;
        pos++;
        ch = s.charCodeAt(pos);
      }
      word += String.fromCharCode(ch);
      continue;
    }
    // IN_QUOTE
    if (ch === quote) {
      phase = IN_WORD;
      continue;
    }
    if (ch === ctx.escape) {
      if (pos + 1 === n) {
        phase = IN_WORD;
        continue;
      }
      pos++;
      ch = s.charCodeAt(pos);
    }
    word += String.fromCharCode(ch);
  }
  return { flags, rest: '', restStart: line.length };
}

/** `splitCommand`: keyword, flags and the trimmed rest of a logical line. */
export function splitCommand(
  line: string,
  ctx: LineContext,
): { command: string; commandStart: number; flags: RawValue[]; rest: string; restStart: number } {
  const ls = leftSpaceEnd(line);
  const re = rightSpaceStart(line, ls);
  let k = ls;
  while (k < re && !isReWhitespace(line.charCodeAt(k))) k++;
  const command = line.slice(ls, k);
  if (k === re) return { command, commandStart: ls, flags: [], rest: '', restStart: re };
  let r = k;
  while (r < re && isReWhitespace(line.charCodeAt(r))) r++;
  // Go splits the *trimmed* line, so the text handed to the flag parser ends at `re`.
  const tail = line.slice(r, re);
  const extracted = extractBuilderFlags(tail, ctx);
  const restRaw = extracted.rest;
  const a = leftSpaceEnd(restRaw);
  const b = rightSpaceStart(restRaw, a);
  return { command, commandStart: ls, flags: shift(extracted.flags, r), rest: restRaw.slice(a, b), restStart: r + extracted.restStart + a };
}

function shift(values: RawValue[], by: number): RawValue[] {
  if (by === 0) return values;
  for (const v of values) {
    v.start += by;
    v.end += by;
  }
  return values;
}

interface ParsedArgs {
  args: RawValue[];
  json: boolean;
  /** ONBUILD: the trigger's text, parsed as an instruction of its own. */
  sub?: { line: string; off: number };
}

type LineParser = (rest: string, off: number, ctx: LineContext) => ParsedArgs;

const NONE: ParsedArgs = { args: [], json: false };

function single(rest: string, off: number): ParsedArgs {
  return { args: [{ value: rest, start: off, end: off + rest.length }], json: false };
}

/** `parseWords`: words split on spaces, quotes and escapes kept as written. */
export function parseWords(rest: string, off: number, ctx: LineContext): RawValue[] {
  const words: RawValue[] = [];
  const IN_SPACES = 0;
  const IN_WORD = 1;
  const IN_QUOTE = 2;
  const n = rest.length;
  let phase = IN_SPACES;
  let quote = 0;
  let blankOK = false;
  let word = '';
  let wordStart = 0;
  for (let pos = 0; pos <= n; pos++) {
    let ch = pos < n ? rest.charCodeAt(pos) : -1;
    if (phase === IN_SPACES) {
      if (pos === n) break;
      if (isSpace(ch)) continue;
      phase = IN_WORD;
      wordStart = pos;
    }
    if (pos === n) {
      if (blankOK || word.length > 0) words.push({ value: word, start: off + wordStart, end: off + pos });
      break;
    }
    if (phase === IN_WORD) {
      if (isSpace(ch)) {
        phase = IN_SPACES;
        if (blankOK || word.length > 0) words.push({ value: word, start: off + wordStart, end: off + pos });
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === 0x27 || ch === 0x22) {
        quote = ch;
        blankOK = true;
        phase = IN_QUOTE;
      }
      if (ch === ctx.escape) {
        if (pos + 1 === n) continue;
        word += String.fromCharCode(ch);
        pos++;
        ch = rest.charCodeAt(pos);
      }
      word += String.fromCharCode(ch);
      continue;
    }
    // IN_QUOTE
    if (ch === quote) phase = IN_WORD;
    if (ch === ctx.escape && quote !== 0x27) {
      if (pos + 1 === n) {
        phase = IN_WORD;
        continue;
      }
      pos++;
      word += String.fromCharCode(ch);
      ch = rest.charCodeAt(pos);
    }
    word += String.fromCharCode(ch);
  }
  return words;
}

/** Go's `reWhitespace.Split(s, n)` (n = -1 for all), with offsets. */
function splitWhitespace(s: string, off: number, limit: number): RawValue[] {
  const out: RawValue[] = [];
  let beg = 0;
  let end = 0;
  let i = 0;
  let lastMatchStart = -1;
  while (i < s.length) {
    if (!isReWhitespace(s.charCodeAt(i))) {
      i++;
      continue;
    }
    if (limit > 0 && out.length === limit - 1) break;
    let j = i;
    while (j < s.length && isReWhitespace(s.charCodeAt(j))) j++;
    end = i;
    lastMatchStart = i;
    out.push({ value: s.slice(beg, end), start: off + beg, end: off + end });
    beg = j;
    i = j;
  }
  if (lastMatchStart < 0) end = 0;
  if (end !== s.length) out.push({ value: s.slice(beg), start: off + beg, end: off + s.length });
  return out;
}

function parseStringsWhitespaceDelimited(rest: string, off: number): ParsedArgs {
  if (rest === '') return NONE;
  return { args: splitWhitespace(rest, off, -1), json: false };
}

function parseString(rest: string, off: number): ParsedArgs {
  return rest === '' ? NONE : single(rest, off);
}

const NOT_STRING_ARRAY = 'when using JSON array syntax, arrays must be comprised of strings only';

function parseJson(rest: string, off: number): ParsedArgs | 'invalid' {
  const a = leftSpaceEnd(rest);
  if (rest.charCodeAt(a) !== 0x5b) return 'invalid';
  const text = a === 0 ? rest : rest.slice(a);
  const result = parseJsonStringArray(text);
  if (result.kind === 'invalid') return 'invalid';
  if (result.kind === 'not-string-array') throw new LineError(NOT_STRING_ARRAY, off + a);
  return { args: result.elements.map((e) => ({ value: e.value, start: off + a + e.start, end: off + a + e.end })), json: true };
}

function parseMaybeJson(rest: string, off: number): ParsedArgs {
  if (rest === '') return NONE;
  const json = parseJson(rest, off);
  return json === 'invalid' ? single(rest, off) : json;
}

function parseMaybeJsonToList(rest: string, off: number): ParsedArgs {
  const json = parseJson(rest, off);
  return json === 'invalid' ? parseStringsWhitespaceDelimited(rest, off) : json;
}

function parseNameVal(rest: string, off: number, ctx: LineContext, key: string): ParsedArgs {
  const words = parseWords(rest, off, ctx);
  if (words.length === 0) return NONE;
  if (!words[0]!.value.includes('=')) {
    const parts = splitWhitespace(rest, off, 2);
    if (parts.length < 2) throw new LineError(`${key} must have two arguments`, off);
    const value = parts[1]!;
    return { args: [parts[0]!, value, { value: '', start: value.end, end: value.end }], json: false };
  }
  const args: RawValue[] = [];
  for (const word of words) {
    const eq = word.value.indexOf('=');
    if (eq < 0) throw new LineError(`Syntax error - can't find = in ${goQuote(word.value)}. Must be of the form: name=value`, word.start);
    args.push(
      { value: word.value.slice(0, eq), start: word.start, end: word.start + eq },
      { value: word.value.slice(eq + 1), start: word.start + eq + 1, end: word.end },
      { value: '=', start: word.start + eq, end: word.start + eq + 1 },
    );
  }
  return { args, json: false };
}

function parseHealthConfig(rest: string, off: number): ParsedArgs {
  const view = byteView(rest);
  const s = view.s;
  let sep = 0;
  while (sep < s.length && !isSpace(s.charCodeAt(sep))) sep++;
  let next = sep;
  while (next < s.length && isSpace(s.charCodeAt(next))) next++;
  if (sep === 0) return NONE;
  const typeEnd = view.offsetOf(sep);
  const cmdStart = view.offsetOf(next);
  const cmdText = view.textFrom(next);
  const typ: RawValue = { value: view.s === rest ? rest.slice(0, sep) : Buffer.from(s.slice(0, sep), 'latin1').toString('utf8'), start: off, end: off + typeEnd };
  const cmd = parseMaybeJson(cmdText, off + cmdStart);
  return { args: [typ, ...cmd.args], json: cmd.json };
}

function parseIgnore(_rest: string, off: number): ParsedArgs {
  return { args: [{ value: '', start: off, end: off }], json: false };
}

function parseSubCommand(rest: string, off: number): ParsedArgs {
  if (rest === '') return NONE;
  return { args: [], json: false, sub: { line: rest, off } };
}

const DISPATCH: Record<string, LineParser> = {
  add: parseMaybeJsonToList,
  arg: (rest, off, ctx) => {
    const words = parseWords(rest, off, ctx);
    return { args: words, json: false };
  },
  cmd: parseMaybeJson,
  copy: parseMaybeJsonToList,
  entrypoint: parseMaybeJson,
  env: (rest, off, ctx) => parseNameVal(rest, off, ctx, 'ENV'),
  expose: parseStringsWhitespaceDelimited,
  from: parseStringsWhitespaceDelimited,
  healthcheck: parseHealthConfig,
  label: (rest, off, ctx) => parseNameVal(rest, off, ctx, 'LABEL'),
  maintainer: parseString,
  onbuild: parseSubCommand,
  run: parseMaybeJson,
  shell: parseMaybeJson,
  stopsignal: parseString,
  user: parseString,
  volume: parseMaybeJsonToList,
  workdir: parseString,
};

function singleNode(line: string, off: number, ctx: LineContext): { node: RawNode; sub: ParsedArgs['sub'] } {
  const split = splitCommand(line, ctx);
  const keyword = goLower(split.command);
  const parser = Object.hasOwn(DISPATCH, keyword) ? DISPATCH[keyword]! : parseIgnore;
  const parsed = parser(split.rest, off + split.restStart, ctx);
  const node: RawNode = {
    command: split.command,
    commandStart: off + split.commandStart,
    flags: shift(split.flags, off),
    args: parsed.args,
    json: parsed.json,
    original: line,
    originalStart: off,
  };
  return { node, sub: parsed.sub };
}

/**
 * `newNodeFromLine`: split a logical line and dispatch on its keyword. ONBUILD
 * triggers (which may themselves be ONBUILD …) are parsed in a loop, not by
 * recursion, so absurd nesting cannot exhaust the stack.
 */
export function nodeFromLine(line: string, off: number, ctx: LineContext): RawNode {
  const first = singleNode(line, off, ctx);
  let current = first;
  while (current.sub) {
    const next = singleNode(current.sub.line, current.sub.off, ctx);
    current.node.trigger = next.node;
    current = next;
  }
  return first.node;
}
