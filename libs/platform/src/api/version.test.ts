import { describe, expect, it } from 'vitest';
import { ApiVersion, ApiVersionError, sortVersions } from './version.ts';

describe('ApiVersion', () => {
  describe('#parse', () => {
    it.each([
      ['0.13', 0, 13],
      ['v0.10', 0, 10],
      ['1', 1, 0],
      ['1.', 1, 0],
      ['2.3', 2, 3],
    ])('parses %s', (text, major, minor) => {
      const v = ApiVersion.parse(text);
      expect([v.major, v.minor]).toEqual([major, minor]);
    });

    it.each(['', '0.1.2', 'x', '0.x', '-1', ' 0.1', 'v'])('rejects %j naming the text', (text) => {
      expect(() => ApiVersion.parse(text)).toThrow(ApiVersionError);
      expect(() => ApiVersion.parse(text)).toThrow(`could not parse '${text}' as version`);
    });

    it('tryParse returns undefined for garbage', () => {
      expect(ApiVersion.tryParse('nope')).toBeUndefined();
      expect(ApiVersion.tryParse('0.12')?.toString()).toBe('0.12');
    });
  });

  describe('comparisons', () => {
    const v = ApiVersion.parse('0.13');
    it('compares minor numerically, not as text', () => {
      expect(v.atLeast('0.9')).toBe(true);
      expect(v.atLeast('0.13')).toBe(true);
      expect(v.atLeast('0.14')).toBe(false);
      expect(v.lessThan('0.14')).toBe(true);
      expect(v.lessThan('0.2')).toBe(false);
      expect(v.compare('1.0')).toBe(-1);
      expect(v.equals(ApiVersion.parse('v0.13'))).toBe(true);
    });

    it('isSupersetOf: exact below 1.0, same major and lower minor from 1.0', () => {
      expect(v.isSupersetOf('0.12')).toBe(false);
      expect(v.isSupersetOf('0.13')).toBe(true);
      expect(ApiVersion.parse('1.2').isSupersetOf('1.1')).toBe(true);
      expect(ApiVersion.parse('1.2').isSupersetOf('1.3')).toBe(false);
      expect(ApiVersion.parse('1.2').isSupersetOf('2.0')).toBe(false);
    });
  });

  it('prints as major.minor, also in JSON', () => {
    expect(String(ApiVersion.parse('1'))).toBe('1.0');
    expect(JSON.stringify({ api: ApiVersion.parse('v0.15') })).toBe('{"api":"0.15"}');
  });

  it('sorts numerically', () => {
    const sorted = sortVersions(['0.10', '0.9', '0.15', '0.7'].map((s) => ApiVersion.parse(s)));
    expect(sorted.map(String)).toEqual(['0.7', '0.9', '0.10', '0.15']);
  });
});
