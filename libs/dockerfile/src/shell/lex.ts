/**
 * BuildKit's shell lexer (`frontend/dockerfile/shell`): variable expansion and
 * word splitting of Dockerfile arguments, with the same quoting and escaping
 * rules, modifiers and error messages.
 */
import { ExpansionError } from '../errors.ts';
import { goQuote, isDigit, isLetter, isSpace } from '../go.ts';
import { replacePattern, trimPrefix, trimSuffix } from './pattern.ts';

/** Where variable values come from. */
export type EnvSource =
  | ReadonlyMap<string, string>
  | Readonly<Record<string, string>>
  | ((name: string) => string | undefined);

export interface LexOptions {
  /** `\` (default) or `` ` `` (from the `# escape=` directive). */
  escapeToken?: string;
  /** Keep quote characters in the result. */
  rawQuotes?: boolean;
  /** Keep escape characters in the result. */
  rawEscapes?: boolean;
  /** Treat quotes as ordinary characters. */
  skipProcessQuotes?: boolean;
  /** Leave references to unset variables as they are written. */
  skipUnsetEnv?: boolean;
}

export interface ExpansionResult {
  /** The expanded text (`ProcessWord`). */
  result: string;
  /** The expanded text split into words (`ProcessWords`). */
  words: string[];
  /** Variables that were looked up and set. */
  matched: Set<string>;
  /** Variables that were looked up and not set. */
  unmatched: Set<string>;
}

const EOF = -1;
const DOLLAR = 0x24;
/**
 * Nesting limit for `${a:-${b:-…}}`. BuildKit has none (Go stacks grow); we
 * stop at a depth no real Dockerfile reaches rather than exhaust the stack.
 */
export const MAX_EXPANSION_DEPTH = 500;
const LBRACE = 0x7b;
const RBRACE = 0x7d;
const COLON = 0x3a;

type Lookup = (name: string) => string | undefined;

function toLookup(env: EnvSource): Lookup {
  if (typeof env === 'function') return env;
  if (env instanceof Map) return (name) => env.get(name);
  const record = env as Readonly<Record<string, string>>;
  return (name) => (Object.hasOwn(record, name) ? record[name] : undefined);
}

function isSpecialParam(c: number): boolean {
  switch (c) {
    case 0x40: // @
    case 0x2a: // *
    case 0x23: // #
    case 0x3f: // ?
    case 0x2d: // -
    case 0x24: // $
    case 0x21: // !
    case 0x30: // 0
      return true;
  }
  return false;
}

function runeString(cp: number): string {
  return cp < 0 ? '\ufffd' : String.fromCodePoint(cp);
}

/** Word accumulator; `buf` is shared between nested calls exactly as in BuildKit. */
interface Words {
  shared: { buf: string };
  words: string[];
  inWord: boolean;
}

function addChar(w: Words, ch: number): void {
  const space = ch <= 0xffff && isSpace(ch);
  if (space && w.inWord) {
    if (w.shared.buf.length !== 0) {
      w.words.push(w.shared.buf);
      w.shared.buf = '';
      w.inWord = false;
    }
  } else if (!space) {
    addRawChar(w, ch);
  }
}

function addRawChar(w: Words, ch: number): void {
  w.shared.buf += runeString(ch);
  w.inWord = true;
}

function addString(w: Words, s: string): void {
  for (const ch of s) addChar(w, ch.codePointAt(0)!);
}

function addRawString(w: Words, s: string): void {
  w.shared.buf += s;
  w.inWord = true;
}

function getWords(w: Words): string[] {
  if (w.shared.buf.length > 0) {
    w.words.push(w.shared.buf);
    w.shared.buf = '';
    w.inWord = false;
  }
  return w.words;
}

class Lexer {
  readonly #src: string;
  #pos = 0;
  #started = false;
  readonly #escape: number;
  readonly #opts: LexOptions;
  readonly #lookup: Lookup;
  #rawEscapes: boolean;
  readonly #shared = { buf: '' };
  readonly matched = new Set<string>();
  readonly unmatched = new Set<string>();
  #depth = 0;

  constructor(src: string, lookup: Lookup, opts: LexOptions) {
    this.#src = src;
    this.#lookup = lookup;
    this.#opts = opts;
    this.#escape = (opts.escapeToken ?? '\\').codePointAt(0)!;
    this.#rawEscapes = opts.rawEscapes ?? false;
  }

  #peek(): number {
    if (!this.#started) {
      this.#started = true;
      if (this.#src.charCodeAt(0) === 0xfeff) this.#pos = 1;
    }
    return this.#pos < this.#src.length ? this.#src.codePointAt(this.#pos)! : EOF;
  }

  #next(): number {
    const c = this.#peek();
    if (c !== EOF) this.#pos += c > 0xffff ? 2 : 1;
    return c;
  }

  #getEnv(name: string): string | undefined {
    const value = this.#lookup(name);
    if (value !== undefined) this.matched.add(name);
    else this.unmatched.add(name);
    return value;
  }

  processStopOn(stop: number, rawEscapes: boolean): { result: string; words: string[] } {
    let result = '';
    this.#shared.buf = '';
    const words: Words = { shared: this.#shared, words: [], inWord: false };
    const saved = this.#rawEscapes;
    this.#rawEscapes = rawEscapes;
    try {
      const quotes = !this.#opts.skipProcessQuotes;
      for (let ch = this.#peek(); ch !== EOF; ch = this.#peek()) {
        if (stop !== EOF && ch === stop) {
          this.#next();
          return { result, words: getWords(words) };
        }
        if (ch === DOLLAR) {
          const tmp = this.#processDollar();
          result += tmp;
          addString(words, tmp);
          continue;
        }
        if (ch === 0x3c || (quotes && (ch === 0x27 || ch === 0x22))) {
          const tmp = ch === 0x3c ? this.#processPossibleHeredoc() : ch === 0x27 ? this.#processSingleQuote() : this.#processDoubleQuote();
          result += tmp;
          addRawString(words, tmp);
          continue;
        }
        ch = this.#next();
        if (ch === this.#escape) {
          if (this.#rawEscapes) {
            addRawChar(words, ch);
            result += runeString(ch);
          }
          ch = this.#next();
          if (ch === EOF) break;
          addRawChar(words, ch);
        } else {
          addChar(words, ch);
        }
        result += runeString(ch);
      }
      if (stop !== EOF) throw new Error(`unexpected end of statement while looking for matching ${runeString(stop)}`);
      return { result, words: getWords(words) };
    } finally {
      this.#rawEscapes = saved;
    }
  }

  /** The opening quote, consumed: kept in the result only with `rawQuotes`. */
  #openQuote(): string {
    const open = this.#next();
    return this.#opts.rawQuotes ? runeString(open) : '';
  }

  #processSingleQuote(): string {
    let result = this.#openQuote();
    for (let ch = this.#next(); ch !== 0x27; ch = this.#next()) {
      if (ch === EOF) throw new Error('unexpected end of statement while looking for matching single-quote');
      result += runeString(ch);
    }
    return this.#opts.rawQuotes ? `${result}'` : result;
  }

  #processDoubleQuote(): string {
    let result = this.#openQuote();
    for (let p = this.#peek(); p !== 0x22; p = this.#peek()) {
      if (p === EOF) throw new Error('unexpected end of statement while looking for matching double-quote');
      if (p === DOLLAR) {
        result += this.#processDollar();
        continue;
      }
      let ch = this.#next();
      if (ch === this.#escape) {
        if (this.#rawEscapes) result += runeString(ch);
        const q = this.#peek();
        if (q === EOF) continue;
        if (q === 0x22 || q === DOLLAR || q === this.#escape) ch = this.#next();
      }
      result += runeString(ch);
    }
    this.#next();
    return this.#opts.rawQuotes ? `${result}"` : result;
  }

  #processName(): string {
    let name = '';
    for (let ch = this.#peek(); ch !== EOF; ch = this.#peek()) {
      if (name === '' && isDigit(ch)) {
        while (this.#peek() !== EOF && isDigit(this.#peek())) name += runeString(this.#next());
        return name;
      }
      if (name === '' && isSpecialParam(ch)) {
        this.#next();
        return runeString(ch);
      }
      if (!isLetter(ch) && !isDigit(ch) && ch !== 0x5f) break;
      name += runeString(this.#next());
    }
    return name;
  }

  #processDollar(): string {
    if (this.#depth >= MAX_EXPANSION_DEPTH) throw new Error(`variable references nested more than ${MAX_EXPANSION_DEPTH} deep`);
    this.#depth++;
    try {
      return this.#processDollarInner();
    } finally {
      this.#depth--;
    }
  }

  #processDollarInner(): string {
    this.#next();
    if (this.#peek() !== LBRACE) {
      const name = this.#processName();
      if (name === '') return '$';
      const value = this.#getEnv(name);
      if (value === undefined && this.#opts.skipUnsetEnv) return `$${name}`;
      return value ?? '';
    }
    this.#next();
    const first = this.#peek();
    if (first === EOF) throw new Error("syntax error: missing '}'");
    if (first === LBRACE || first === RBRACE || first === COLON) throw new Error('syntax error: bad substitution');
    const name = this.#processName();
    let ch = this.#next();
    let chs = runeString(ch);
    if (ch === RBRACE) {
      const value = this.#getEnv(name);
      if (value === undefined && this.#opts.skipUnsetEnv) return `\${${name}}`;
      return value ?? '';
    }
    if (ch === 0x2f) return this.#processReplace(name);
    let nullIsUnset = false;
    if (ch === COLON) {
      nullIsUnset = true;
      ch = this.#next();
      chs += runeString(ch);
    } else if (ch !== 0x2b && ch !== 0x2d && ch !== 0x3f && ch !== 0x23 && ch !== 0x25) {
      throw new Error(`unsupported modifier (${chs}) in substitution`);
    }
    const rawEscapes = ch === 0x23 || ch === 0x25;
    if (nullIsUnset && rawEscapes) throw new Error(`unsupported modifier (${chs}) in substitution`);
    const word = this.#substitutionPart(RBRACE, rawEscapes, "'}'");
    const value = this.#getEnv(name);
    if (this.#opts.skipUnsetEnv && value === undefined) return `\${${name}${chs}${word}}`;
    const empty = value === undefined || (nullIsUnset && value === '');
    switch (ch) {
      case 0x2d: // -
        return empty ? word : value!;
      case 0x2b: // +
        return empty ? '' : word;
      case 0x3f: // ?
        if (value === undefined) throw new Error(`${name}: ${word !== '' ? word : 'is not allowed to be unset'}`);
        if (nullIsUnset && value === '') throw new Error(`${name}: ${word !== '' ? word : 'is not allowed to be empty'}`);
        return value;
      case 0x25: // %
      case 0x23: {
        // #
        let pattern = word;
        let greedy = false;
        if (pattern.length > 0 && pattern.codePointAt(0) === ch) {
          greedy = true;
          pattern = pattern.slice(1);
        }
        return ch === 0x25 ? trimSuffix(pattern, value!, greedy) : trimPrefix(pattern, value!, greedy);
      }
      default:
        throw new Error(`unsupported modifier (${chs}) in substitution`);
    }
  }

  /** A part of `${…}` up to `stop`; input that ends first is missing `missing`. */
  #substitutionPart(stop: number, rawEscapes: boolean, missing: string): string {
    try {
      return this.processStopOn(stop, rawEscapes).result;
    } catch (err) {
      if (this.#peek() === EOF) throw new Error(`syntax error: missing ${missing}`);
      throw err;
    }
  }

  #processReplace(name: string): string {
    const all = this.#peek() === 0x2f;
    if (all) this.#next();
    const pattern = this.#substitutionPart(0x2f, true, "'/' in ${}");
    const replacement = this.#substitutionPart(RBRACE, true, "'}'");
    const value = this.#getEnv(name);
    if (this.#opts.skipUnsetEnv && value === undefined) return `\${${name}/${pattern}/${replacement}}`;
    return replacePattern(pattern, value ?? '', replacement, all);
  }

  #processPossibleHeredoc(): string {
    this.#next();
    if (this.#peek() !== 0x3c) return '<';
    this.#next();
    let result = '<<';
    for (let c = this.#peek(); c === 0x09 || c === 0x0d || c === 0x20; c = this.#peek()) {
      result += runeString(c);
      this.#next();
    }
    return result;
  }
}

/**
 * Expand `word` as BuildKit does (`Lex.ProcessWordWithMatches`): the expanded
 * text, the words it splits into, and which variables were used. Throws
 * ExpansionError with BuildKit's message (`failed to process "…": …`).
 */
export function expandWithMatches(word: string, env: EnvSource, options: LexOptions = {}): ExpansionResult {
  const lexer = new Lexer(word, toLookup(env), options);
  try {
    const { result, words } = lexer.processStopOn(EOF, options.rawEscapes ?? false);
    return { result, words, matched: lexer.matched, unmatched: lexer.unmatched };
  } catch (err) {
    throw new ExpansionError(`failed to process ${goQuote(word)}: ${(err as Error).message}`, { cause: err });
  }
}

/** `Lex.ProcessWord`: expand one word (quotes removed, variables substituted). */
export function expandWord(word: string, env: EnvSource, options: LexOptions = {}): string {
  return expandWithMatches(word, env, options).result;
}

/** `Lex.ProcessWords`: expand and split into words on unquoted whitespace. */
export function expandWords(word: string, env: EnvSource, options: LexOptions = {}): string[] {
  return expandWithMatches(word, env, options).words;
}
