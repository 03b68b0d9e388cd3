/**
 * Heredoc detection as BuildKit does it (`parser.ParseHeredoc`,
 * `heredocsFromLine`): the line is lexed with quotes and escapes kept, and each
 * word of the form `[n]<<[-]WORD` is a heredoc whose delimiter is WORD with
 * quotes removed; quoting any part of WORD turns expansion off.
 */
import { expandWords } from './shell/lex.ts';

export interface HeredocSpec {
  name: string;
  fileDescriptor: number;
  expand: boolean;
  chomp: boolean;
}

const NO_ENV = (): undefined => undefined;

function countQuotes(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x27 || c === 0x22) n++;
  }
  return n;
}

function isRegexSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d;
}

/**
 * `ParseHeredoc`: the heredoc a word introduces, or undefined. Throws the
 * lexer's ExpansionError when the delimiter is badly quoted (`<<'EOF`).
 */
export function parseHeredoc(src: string): HeredocSpec | undefined {
  // ^(\d*)<<(-?)\s*([^<]*)$
  let i = 0;
  while (i < src.length && src.charCodeAt(i) >= 0x30 && src.charCodeAt(i) <= 0x39) i++;
  const digits = src.slice(0, i);
  if (!src.startsWith('<<', i)) return undefined;
  i += 2;
  const chomp = src.charCodeAt(i) === 0x2d;
  if (chomp) i++;
  while (i < src.length && isRegexSpace(src.charCodeAt(i))) i++;
  const rest = src.slice(i);
  if (rest.includes('<')) return undefined;
  if (rest.length === 0) return undefined;

  const words = expandWords(rest, NO_ENV, { skipUnsetEnv: true });
  if (words.length !== 1) return undefined;
  const wordsRaw = expandWords(rest, NO_ENV, { skipUnsetEnv: true, rawQuotes: true });
  if (wordsRaw.length !== words.length) throw new Error(`internal lexing of heredoc produced inconsistent results: ${rest}`);
  const word = words[0]!;
  return {
    name: word,
    fileDescriptor: digits === '' ? 0 : Number(digits),
    expand: countQuotes(word) === countQuotes(wordsRaw[0]!),
    chomp,
  };
}

/** `heredocsFromLine`: every heredoc a logical line opens, in order. */
export function heredocsFromLine(line: string): HeredocSpec[] {
  let words: string[];
  try {
    words = expandWords(line, NO_ENV, { rawQuotes: true, rawEscapes: true, skipUnsetEnv: true });
  } catch {
    return [];
  }
  const docs: HeredocSpec[] = [];
  for (const word of words) {
    const doc = parseHeredoc(word);
    if (doc) docs.push(doc);
  }
  return docs;
}

/** `ChompHeredocContent`: strip leading tabs from every line. */
export function chompHeredocContent(content: string): string {
  // Go's (?m)^ only follows \n (JavaScript's m flag would also use \r, U+2028, U+2029).
  return content.replace(/(^|\n)\t+/g, '$1');
}
