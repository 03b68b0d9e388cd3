import { describe, expect, it } from 'vitest';
import { formatSizeViolation, sizeViolations } from './sizes.ts';

const limits = { maxFileLines: 12, maxFunctionLines: 4 };
const lines = (n: number, text = '  x();') => Array.from({ length: n }, () => text).join('\n');

describe('code size limits', () => {
  it('report a file over the limit, and each function over it by name, with its first line', () => {
    const source = [
      'export function short() {',
      lines(2),
      '}',
      'export function long() {',
      lines(4),
      '}',
      'class Box {',
      '  #hidden(): void {',
      lines(3),
      '  }',
      '}',
      'const arrow = () => {',
      lines(3),
      '};',
      '',
    ].join('\n');
    expect(sizeViolations('a.ts', source, limits).map(formatSizeViolation)).toEqual([
      'a.ts:1: file has 22 lines (at most 12)',
      'a.ts:5: function long has 6 lines (at most 4)',
      'a.ts:12: function #hidden has 5 lines (at most 4)',
      'a.ts:18: function arrow has 5 lines (at most 4)',
    ]);
  });

  it('count a function nested in another in both', () => {
    const source = ['function outer() {', '  const inner = () => {', lines(3), '  };', '}', ''].join('\n');
    expect(sizeViolations('b.ts', source, limits).map((v) => v.what)).toEqual(['function outer', 'function inner']);
  });

  it('leave declarations without a body alone', () => {
    expect(sizeViolations('c.ts', ['interface A {', '  f(', lines(6, '    a: string,'), '  ): void;', '}', ''].join('\n'), limits)).toEqual([]);
  });
});
