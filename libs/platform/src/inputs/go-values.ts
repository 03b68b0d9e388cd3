/**
 * Value parsing with Go's rules, so flags and env vars mean what they mean to the Go
 * lifecycle: `time.ParseDuration`, `strconv.ParseBool`, `strconv.ParseInt(s, 0, 64)`.
 */

export class GoValueError extends Error {
  override name = 'GoValueError';
}

const NS_PER: Readonly<Record<string, bigint>> = {
  ns: 1n,
  us: 1_000n,
  'µs': 1_000n, // U+00B5 micro sign
  'μs': 1_000n, // U+03BC Greek mu
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};

const MAX_INT64 = (1n << 63n) - 1n;
const OVERFLOW_LIMIT = 1n << 63n;

function isDigit(c: string | undefined): boolean {
  return c !== undefined && c >= '0' && c <= '9';
}

/**
 * Go's `time.ParseDuration`: a signed sequence of decimal numbers with optional fraction
 * and a unit (`ns`, `us`/`µs`, `ms`, `s`, `m`, `h`), e.g. `336h`, `1h30m`, `1.5h`, `-90s`.
 * Returns nanoseconds; throws GoValueError with Go's message.
 */
export function parseGoDurationNs(text: string): bigint {
  const quoted = JSON.stringify(text);
  let s = text;
  let neg = false;
  if (s !== '') {
    const c = s[0];
    if (c === '-' || c === '+') {
      neg = c === '-';
      s = s.slice(1);
    }
  }
  if (s === '0') return 0n;
  if (s === '') throw new GoValueError(`time: invalid duration ${quoted}`);
  let total = 0n;
  while (s !== '') {
    if (!(s[0] === '.' || isDigit(s[0]))) throw new GoValueError(`time: invalid duration ${quoted}`);
    // integer part
    let i = 0;
    let v = 0n;
    while (isDigit(s[i])) {
      v = v * 10n + BigInt(s.charCodeAt(i) - 48);
      if (v > OVERFLOW_LIMIT) throw new GoValueError(`time: invalid duration ${quoted}`);
      i++;
    }
    const pre = i > 0;
    s = s.slice(i);
    // fraction
    let fraction = 0n;
    let scale = 1;
    let post = false;
    if (s[0] === '.') {
      s = s.slice(1);
      let j = 0;
      let overflow = false;
      while (isDigit(s[j])) {
        if (!overflow) {
          const next = fraction * 10n + BigInt(s.charCodeAt(j) - 48);
          if (next > OVERFLOW_LIMIT) overflow = true;
          else {
            fraction = next;
            scale *= 10;
          }
        }
        j++;
      }
      post = j > 0;
      s = s.slice(j);
    }
    if (!pre && !post) throw new GoValueError(`time: invalid duration ${quoted}`);
    // unit
    let u = 0;
    while (u < s.length && !(s[u] === '.' || isDigit(s[u]))) u++;
    if (u === 0) throw new GoValueError(`time: missing unit in duration ${quoted}`);
    const unitText = s.slice(0, u);
    s = s.slice(u);
    const unit = NS_PER[unitText];
    if (unit === undefined) throw new GoValueError(`time: unknown unit ${JSON.stringify(unitText)} in duration ${quoted}`);
    if (v > OVERFLOW_LIMIT / unit) throw new GoValueError(`time: invalid duration ${quoted}`);
    v *= unit;
    if (fraction > 0n) {
      v += BigInt(Math.trunc(Number(fraction) * (Number(unit) / scale)));
      if (v > OVERFLOW_LIMIT) throw new GoValueError(`time: invalid duration ${quoted}`);
    }
    total += v;
    if (total > OVERFLOW_LIMIT) throw new GoValueError(`time: invalid duration ${quoted}`);
  }
  if (neg) return -total;
  if (total > MAX_INT64) throw new GoValueError(`time: invalid duration ${quoted}`);
  return total;
}

/** `parseGoDurationNs` in milliseconds (fractional below 1 ms). */
export function parseGoDuration(text: string): number {
  return Number(parseGoDurationNs(text)) / 1e6;
}

function fmtFrac(v: bigint, prec: number): { text: string; rest: bigint } {
  let text = '';
  let print = false;
  for (let i = 0; i < prec; i++) {
    const digit = v % 10n;
    print = print || digit !== 0n;
    if (print) text = String(digit) + text;
    v /= 10n;
  }
  if (print) text = `.${text}`;
  return { text, rest: v };
}

/** Go's `time.Duration.String()`: `336h0m0s`, `1m30s`, `1.5s`, `500ms`, `0s`. */
export function formatGoDurationNs(ns: bigint): string {
  const neg = ns < 0n;
  let u = neg ? -ns : ns;
  let out: string;
  if (u < 1_000_000_000n) {
    if (u === 0n) return '0s';
    if (u < 1_000n) return `${neg ? '-' : ''}${u}ns`;
    const [prec, unit] = u < 1_000_000n ? [3, 'µs'] : [6, 'ms'];
    const { text, rest } = fmtFrac(u, prec);
    out = `${rest}${text}${unit}`;
  } else {
    const { text, rest } = fmtFrac(u, 9);
    u = rest;
    out = `${u % 60n}${text}s`;
    u /= 60n;
    if (u > 0n) {
      out = `${u % 60n}m${out}`;
      u /= 60n;
      if (u > 0n) out = `${u}h${out}`;
    }
  }
  return neg ? `-${out}` : out;
}

/** `formatGoDurationNs` for milliseconds. */
export function formatGoDuration(ms: number): string {
  return formatGoDurationNs(BigInt(Math.round(ms * 1e6)));
}

const TRUE_WORDS = new Set(['1', 't', 'T', 'TRUE', 'true', 'True']);
const FALSE_WORDS = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False']);

/** Go's `strconv.ParseBool`; throws GoValueError for anything else. */
export function parseGoBool(text: string): boolean {
  if (TRUE_WORDS.has(text)) return true;
  if (FALSE_WORDS.has(text)) return false;
  throw new GoValueError(`strconv.ParseBool: parsing ${JSON.stringify(text)}: invalid syntax`);
}

/** Go's `underscoreOK`: each `_` follows a digit or the base prefix, and none ends the number. */
function underscoresOk(s: string): boolean {
  let saw = '^';
  let i = 0;
  const hex = s.length >= 2 && s[0] === '0' && (s[1] === 'x' || s[1] === 'X');
  if (s.length >= 2 && s[0] === '0' && 'xXoObB'.includes(s[1]!)) {
    i = 2;
    saw = '0';
  }
  for (; i < s.length; i++) {
    const c = s[i]!;
    if (isDigit(c) || (hex && /[a-fA-F]/.test(c))) saw = '0';
    else if (c === '_') {
      if (saw !== '0') return false;
      saw = '_';
    } else {
      if (saw === '_') return false;
      saw = '!';
    }
  }
  return saw !== '_';
}

/**
 * Go's `strconv.ParseInt(s, 0, 64)`: optional sign; `0x`, `0o`, `0b` and leading-`0` octal
 * prefixes; `_` between digits. Values must also fit a JS safe integer.
 */
export function parseGoInt(text: string): number {
  const syntax = () => new GoValueError(`strconv.ParseInt: parsing ${JSON.stringify(text)}: invalid syntax`);
  const range = () => new GoValueError(`strconv.ParseInt: parsing ${JSON.stringify(text)}: value out of range`);
  let s = text;
  let neg = false;
  if (s[0] === '+' || s[0] === '-') {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '') throw syntax();
  if (s.includes('_') && !underscoresOk(s)) throw syntax();
  s = s.replaceAll('_', '');
  let base = 10;
  let digits = s;
  if (s[0] === '0' && s.length > 1) {
    const p = s[1]!.toLowerCase();
    if (p === 'x' || p === 'o' || p === 'b') {
      base = p === 'x' ? 16 : p === 'o' ? 8 : 2;
      digits = s.slice(2);
    } else {
      base = 8;
      digits = s.slice(1);
    }
  }
  const valid = base === 16 ? /^[0-9a-fA-F]+$/ : base === 8 ? /^[0-7]+$/ : base === 2 ? /^[01]+$/ : /^[0-9]+$/;
  if (!valid.test(digits)) throw syntax();
  let value = 0n;
  for (const c of digits) value = value * BigInt(base) + BigInt(parseInt(c, base));
  if (neg) value = -value;
  if (value > MAX_INT64 || value < -(1n << 63n)) throw range();
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) throw range();
  return Number(value);
}
