import { describe, expect, it } from 'vitest';
import { formatGoDuration, formatGoDurationNs, GoValueError, parseGoBool, parseGoDuration, parseGoDurationNs, parseGoInt } from './go-values.ts';

describe('Go durations', () => {
  it.each([
    ['336h', 336 * 3600 * 1000],
    ['1h30m', 90 * 60 * 1000],
    ['90s', 90_000],
    ['1.5h', 90 * 60 * 1000],
    ['500ms', 500],
    ['0', 0],
    ['+5s', 5000],
    ['-1m', -60_000],
    ['.5s', 500],
    ['1.s', 1000],
    ['1h2m3s4ms5us6ns', 3_723_004.005006],
    ['2µs', 0.002],
    ['2μs', 0.002],
    ['2us', 0.002],
    ['100ns', 0.0001],
    ['0.000000001s', 0.000001],
  ])('%s = %d ms', (text, ms) => {
    expect(parseGoDuration(text)).toBeCloseTo(ms, 9);
  });

  it('is exact in nanoseconds', () => {
    expect(parseGoDurationNs('336h')).toBe(1_209_600_000_000_000n);
    expect(parseGoDurationNs('2562047h47m16.854775807s')).toBe((1n << 63n) - 1n);
    expect(parseGoDurationNs('-2562047h47m16.854775808s')).toBe(-(1n << 63n));
  });

  it.each([
    ['', 'time: invalid duration ""'],
    ['abc', 'time: invalid duration "abc"'],
    ['1', 'time: missing unit in duration "1"'],
    ['10', 'time: missing unit in duration "10"'],
    ['1d', 'time: unknown unit "d" in duration "1d"'],
    ['1 h', 'time: unknown unit " h" in duration "1 h"'],
    ['.s', 'time: invalid duration ".s"'],
    ['-', 'time: invalid duration "-"'],
    ['h', 'time: invalid duration "h"'],
    ['1h-1m', 'time: unknown unit "h-" in duration "1h-1m"'],
    ['9223372036854775808ns', 'time: invalid duration "9223372036854775808ns"'],
    ['3000000h', 'time: invalid duration "3000000h"'],
  ])('rejects %j with Go\'s message', (text, message) => {
    expect(() => parseGoDurationNs(text)).toThrow(GoValueError);
    expect(() => parseGoDurationNs(text)).toThrow(message);
  });

  it.each([
    [0n, '0s'],
    [1n, '1ns'],
    [1_100n, '1.1µs'],
    [2_200_000n, '2.2ms'],
    [500_000_000n, '500ms'],
    [1_500_000_000n, '1.5s'],
    [90_000_000_000n, '1m30s'],
    [1_209_600_000_000_000n, '336h0m0s'],
    [5_400_000_000_000n, '1h30m0s'],
    [-60_000_000_000n, '-1m0s'],
  ])('formats %d ns as %s', (ns, text) => {
    expect(formatGoDurationNs(ns)).toBe(text);
  });

  it('formats milliseconds', () => {
    expect(formatGoDuration(336 * 3600 * 1000)).toBe('336h0m0s');
    expect(formatGoDuration(parseGoDuration('1.5h'))).toBe('1h30m0s');
  });
});

describe('Go bools', () => {
  it.each(['1', 't', 'T', 'TRUE', 'true', 'True'])('%s is true', (t) => expect(parseGoBool(t)).toBe(true));
  it.each(['0', 'f', 'F', 'FALSE', 'false', 'False'])('%s is false', (t) => expect(parseGoBool(t)).toBe(false));
  it.each(['', 'yes', 'tRUE', 'on', ' true'])('%j is invalid', (t) => expect(() => parseGoBool(t)).toThrow(GoValueError));
});

describe('Go ints', () => {
  it.each([
    ['1000', 1000],
    ['-5', -5],
    ['+7', 7],
    ['0', 0],
    ['0x1F', 31],
    ['0o17', 15],
    ['017', 15],
    ['0b101', 5],
    ['1_000', 1000],
    ['0x_1f', 31],
    ['0_7', 7],
  ])('%s = %d', (text, n) => expect(parseGoInt(text)).toBe(n));

  it.each(['', 'abc', '1.5', '09', '_1', '1_', '1__0', '0x', ' 1', '1e3', '-'])('%j is a syntax error', (text) => {
    expect(() => parseGoInt(text)).toThrow('invalid syntax');
  });

  it('rejects out-of-range values', () => {
    expect(() => parseGoInt('9223372036854775808')).toThrow('value out of range');
    expect(() => parseGoInt('9007199254740993')).toThrow('value out of range');
  });
});
