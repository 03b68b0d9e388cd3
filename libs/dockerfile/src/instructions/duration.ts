import { goQuote } from '../go.ts';

const UNITS: Record<string, bigint> = {
  ns: 1n,
  us: 1000n,
  '\u00b5s': 1000n,
  '\u03bcs': 1000n,
  ms: 1000000n,
  s: 1000000000n,
  m: 60000000000n,
  h: 3600000000000n,
};

const MAX = 1n << 63n;

function isDigitOrDot(c: string): boolean {
  return c === '.' || (c >= '0' && c <= '9');
}

/** Go's `time.ParseDuration`, in nanoseconds. Throws with Go's message. */
export function parseGoDuration(input: string): number {
  const invalid = (): Error => new Error(`time: invalid duration ${goQuote(input)}`);
  let s = input;
  let neg = false;
  if (s !== '' && (s[0] === '-' || s[0] === '+')) {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') throw invalid();
  let total = 0n;
  while (s !== '') {
    if (!isDigitOrDot(s[0]!)) throw invalid();
    let i = 0;
    while (i < s.length && s[i]! >= '0' && s[i]! <= '9') i++;
    const intPart = s.slice(0, i);
    s = s.slice(i);
    let frac = '';
    let post = false;
    if (s[0] === '.') {
      s = s.slice(1);
      let j = 0;
      while (j < s.length && s[j]! >= '0' && s[j]! <= '9') j++;
      frac = s.slice(0, j);
      post = j > 0;
      s = s.slice(j);
    }
    if (intPart === '' && !post) throw invalid();
    let k = 0;
    while (k < s.length && !isDigitOrDot(s[k]!)) k++;
    if (k === 0) throw new Error(`time: missing unit in duration ${goQuote(input)}`);
    const unitName = s.slice(0, k);
    s = s.slice(k);
    const unit = UNITS[unitName];
    if (unit === undefined) throw new Error(`time: unknown unit ${goQuote(unitName)} in duration ${goQuote(input)}`);
    const v = intPart === '' ? 0n : BigInt(intPart);
    if (v > MAX / unit) throw invalid();
    let value = v * unit;
    if (frac !== '' && /[1-9]/.test(frac)) {
      // Go keeps at most the digits that fit and scales in floating point.
      const digits = frac.slice(0, 18);
      value += BigInt(Math.floor(Number(digits) * (Number(unit) / 10 ** digits.length)));
      if (value > MAX) throw invalid();
    }
    total += value;
    if (total > MAX) throw invalid();
  }
  if (!neg && total > MAX - 1n) throw invalid();
  return Number(neg ? -total : total);
}

/** Go's `strconv.ParseInt(value, 10, 32)`. Throws with Go's message. */
export function parseGoInt32(value: string): number {
  const fail = (what: string): Error => new Error(`strconv.ParseInt: parsing ${goQuote(value)}: ${what}`);
  if (!/^[+-]?[0-9]+$/.test(value)) throw fail('invalid syntax');
  const n = Number(value);
  if (n > 2147483647 || n < -2147483648) throw fail('value out of range');
  return n;
}

/** Go's `time.Duration.String()` for the values we print (`1ms`). */
export function formatGoDuration(ns: number): string {
  if (ns === 0) return '0s';
  if (ns % 1000000 === 0 && ns < 1000000000) return `${ns / 1000000}ms`;
  if (ns % 1000 === 0 && ns < 1000000) return `${ns / 1000}\u00b5s`;
  if (ns < 1000) return `${ns}ns`;
  return `${ns / 1000000000}s`;
}
