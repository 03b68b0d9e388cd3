import { describe, expect, it } from 'vitest';
import { ExpansionError } from '../errors.ts';
import { expandWithMatches, expandWord, expandWords } from './lex.ts';
import { compilePattern, reversePattern } from './pattern.ts';

describe('shell word expansion', () => {
  describe('modifiers (BuildKit lex_test.go TestProcessWithMatches)', () => {
    const cases: { input: string; env: Record<string, string>; expected?: string; matched?: string[]; unmatched?: string[] }[] = [
      { input: 'x', env: { DUMMY: 'dummy' }, expected: 'x', matched: [], unmatched: [] },
      { input: 'x ${UNUSED}', env: { DUMMY: 'dummy' }, expected: 'x ', matched: [], unmatched: ['UNUSED'] },
      { input: '${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}', env: { FOO: 'xxx', BAR: '' }, expected: 'xxx  ccc', matched: ['FOO', 'BAR'], unmatched: ['BAZ'] },
      { input: '${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}', env: { FOO: 'xxx', BAR: '' }, expected: 'xxx bbb ccc', matched: ['FOO', 'BAR'], unmatched: ['BAZ'] },
      { input: '${FOO:-}', env: {}, expected: '', unmatched: ['FOO'] },
      { input: '${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}', env: { FOO: 'xxx', BAR: '' }, expected: 'aaa bbb ' },
      { input: '${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}', env: { FOO: 'xxx', BAR: '' }, expected: 'aaa  ' },
      { input: '${FOO?aaa}', env: { FOO: 'xxx' }, expected: 'xxx' },
      { input: '${BAR?bbb}', env: { BAR: '' }, expected: '' },
      { input: '${BAZ?ccc}', env: {} },
      { input: '${BAR:?bbb}', env: { BAR: '' } },
      { input: '${BAZ:?}', env: {} },
      { input: '${FOO=aaa}', env: { FOO: 'xxx' } },
      { input: '${FOO=:aaa}', env: { FOO: 'xxx' } },
      { input: '${FOO=}', env: {} },
      { input: '${FOO#()[]{\\}^$.\\*\\?|\\\\}', env: { FOO: '()[]{}^$.*?|\\x' }, expected: 'x' },
      { input: '${FOO%%\\**}', env: { FOO: 'xx**' }, expected: 'xx' },
      { input: '${FOO#*x*y}', env: { FOO: 'xxyy' }, expected: 'y' },
      { input: '${FOO#*}', env: { FOO: 'xxyy' }, expected: 'xxyy' },
      { input: '${FOO#$BAR}', env: { FOO: 'xxyy', BAR: 'x' }, expected: 'xyy' },
      { input: '${FOO#$BAR}', env: { FOO: 'xxyy', BAR: '' }, expected: 'xxyy' },
      { input: '${FOO#}', env: { FOO: 'xxyy' }, expected: 'xxyy' },
      { input: '${FOO##*x}', env: { FOO: 'xxyy' }, expected: 'yy' },
      { input: '${FOO##}', env: { FOO: 'xxyy' }, expected: 'xxyy' },
      { input: '${FOO#?\\?}', env: { FOO: '???y' }, expected: '?y' },
      { input: '${ABC:-.}${FOO%x}${ABC:-.}', env: { FOO: 'xxyy' }, expected: '.xxyy.' },
      { input: '${FOO%%\\**\\*}', env: { FOO: 'a***yy*' }, expected: 'a' },
      { input: '${FOO%}', env: { FOO: 'xxyy' }, expected: 'xxyy' },
      { input: '${FOO%%$BAR}', env: { FOO: 'xxyy', BAR: '' }, expected: 'xxyy' },
      { input: '${FOO:#}', env: {} },
      { input: '${FOO:##}', env: {} },
      { input: '${FOO:%}', env: {} },
      { input: '${FOO:%%}', env: {} },
      { input: '${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}', env: { FOO: '/foo*/*/*.txt', NEEDLE: '\\*/' }, expected: '/foo.*/*.txt - /foo..*.txt' },
      { input: '${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}', env: { FOO: '/tmp/tmp/bar.txt', NEEDLE: '/tmp' }, expected: '/tmp/bar.txt - /bar.txt' },
      { input: '${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}', env: { FOO: '/a/foo/b/c.txt', NEEDLE: '/?/', REPLACEMENT: '/' }, expected: '/foo/b/c.txt - /foo/c.txt' },
      { input: '${FOO/$NEEDLE/$REPLACEMENT}', env: { FOO: 'http://google.de', NEEDLE: 'http://', REPLACEMENT: 'https://' }, expected: 'https://google.de' },
      { input: '${FOO//\\//\\/}', env: { FOO: '/tmp/foo.txt' }, expected: '\\/tmp\\/foo.txt' },
      { input: '${FOO/$BAR/ww}', env: { FOO: 'xxyy', BAR: '' }, expected: 'wwxxyy' },
      { input: '${FOO//ww}', env: { FOO: 'xxyy' } },
      { input: '${FOO//}', env: { FOO: 'xxyy' } },
      { input: '${FOO///}', env: { FOO: 'xxyy' }, expected: 'xxyy' },
      { input: '${FOO///}', env: {}, expected: '' },
      {
        input: 'something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz',
        env: { VERSION: 'v1.2.3', TARGETOS: 'linux', TARGETARCH: 'arm', TARGETVARIANT: 'v7' },
        expected: 'something-v1.2.3.linux-arm-v7.tar.gz',
      },
    ];

    it.each(cases)('$input', ({ input, env, expected, matched, unmatched }) => {
      if (expected === undefined) {
        expect(() => expandWithMatches(input, env)).toThrow(ExpansionError);
        return;
      }
      const result = expandWithMatches(input, env);
      expect(result.result).toBe(expected);
      if (matched) expect([...result.matched].sort()).toEqual([...matched].sort());
      if (unmatched) expect([...result.unmatched].sort()).toEqual([...unmatched].sort());
    });
  });

  it('reports mandatory variables with their message (TestShellParserMandatoryEnvVars)', () => {
    expect(expandWord('${VAR:?message here$ARG}', { VAR: 'plain', ARG: 'x' })).toBe('plain');
    expect(() => expandWord('${VAR:?message here$ARG}', { VAR: '', ARG: 'x' })).toThrow('message herex');
    expect(() => expandWord('${VAR:?message here$ARG}', { ARG: 'x' })).toThrow('message herex');
    expect(expandWord('${VAR?message here$ARG}', { VAR: '', ARG: 'x' })).toBe('');
    expect(() => expandWord('${VAR?message here$ARG}', { ARG: 'x' })).toThrow('failed to process "${VAR?message here$ARG}": VAR: message herex');
  });

  it('accepts maps, records and functions as the environment', () => {
    expect(expandWord('$A', new Map([['A', '1']]))).toBe('1');
    expect(expandWord('$A', (name) => (name === 'A' ? '2' : undefined))).toBe('2');
    expect(expandWord('$constructor', {})).toBe('');
  });

  it('honours the options BuildKit uses internally', () => {
    expect(expandWord("'a' \"$X\"", { X: 'x' }, { rawQuotes: true })).toBe("'a' \"x\"");
    expect(expandWord('a\\ b', {}, { rawEscapes: true })).toBe('a\\ b');
    expect(expandWord('$X ${Y:-z}', {}, { skipUnsetEnv: true })).toBe('$X ${Y:-z}');
    expect(expandWord("it's \"$X\"", { X: 'x' }, { skipProcessQuotes: true })).toBe('it\'s "x"');
    expect(expandWord('a`$b`"c', {}, { escapeToken: '`' })).toBe('a$b"c');
    expect(expandWord('C:\\dir', {}, { escapeToken: '`' })).toBe('C:\\dir');
  });

  it('splits words after expansion', () => {
    expect(expandWords('a "b c" ${X}', { X: 'd  e' })).toEqual(['a', 'b c', 'd', 'e']);
    expect(expandWords('a "" b', {})).toEqual(['a', 'b']);
  });

  it('shares the word buffer with nested ${…} like BuildKit does', () => {
    // BuildKit resets one shared word buffer when it lexes a nested modifier
    // word, so the text before `${x:-…}` is lost from the word list (the
    // expanded string is unaffected). ProcessWords users (EXPOSE) see this.
    expect(expandWords('hello${x:-a}b', {})).toEqual(['ab']);
    expect(expandWord('hello${x:-a}b', {})).toBe('helloab');
  });

  it('skips a leading byte-order mark like text/scanner', () => {
    expect(expandWord('\ufeffabc', {})).toBe('abc');
    expect(expandWord('a\ufeffbc', {})).toBe('a\ufeffbc');
  });

  it('keeps hostile patterns linear', () => {
    // Backtracking regular expressions would take ages on these; BuildKit's RE2 does not.
    const value = 'a'.repeat(20000);
    expect(expandWord(`\${V%%${'*a'.repeat(30)}b}`, { V: value })).toBe(value);
    expect(expandWord(`\${V//${'*a'.repeat(5)}/x}`, { V: value.slice(0, 2000) })).toBe('x');
  });

  it('refuses absurdly deep nesting instead of overflowing the stack', () => {
    const deep = `\${a:-`.repeat(5000) + 'x' + '}'.repeat(5000);
    expect(() => expandWord(deep, {})).toThrow(ExpansionError);
    expect(expandWord(`\${a:-`.repeat(100) + 'x' + '}'.repeat(100), {})).toBe('x');
  });

  describe('patterns', () => {
    it('tokenizes and rejects bad escapes (TestConvertShellPatternToRegex)', () => {
      expect(compilePattern('(()[]{\\}^$.\\*\\?|\\\\')).toEqual([...'(()[]{}^$.*?|\\'].map((c) => c.codePointAt(0)));
      for (const bad of ['\\', '\\x', '\\\\\\']) expect(() => compilePattern(bad)).toThrow(/invalid escape/);
    });

    it('reverses patterns keeping escapes (TestReversePattern)', () => {
      expect(reversePattern('a\\*c')).toBe('c\\*a');
      expect(reversePattern('\\\\\\ab')).toBe('b\\a\\\\');
      expect(reversePattern('ab\\')).toBe('\\ba');
      expect(reversePattern('👽\\🚀🖖')).toBe('🖖\\🚀👽');
      expect(reversePattern('\\\\b')).toBe('b\\\\');
    });
  });
});
