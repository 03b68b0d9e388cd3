/**
 * The context pattern rules checked against the behaviour of moby/patternmatcher
 * (Docker CLI, BuildKit's fsutil, kaniko) and Go's filepath.Match: each case
 * states what Docker answers for it.
 */
import { describe, expect, it } from 'vitest';
import { checkGoPattern, goMatch, PatternSyntaxError } from './go-match.ts';
import { cleanPath, ContextPattern, PatternMatcher } from './patterns.ts';

/** [pattern, path, matched] for one pattern, the path or a parent matching. */
const ONE_PATTERN: [string, string, boolean][] = [
  // `**`
  ['**', 'file', true],
  ['**', 'dir/file', true],
  ['**/', 'file', true],
  ['**/**', 'dir/file', true],
  ['dir/**', 'dir/file', true],
  ['dir/**', 'dir/dir2/file', true],
  ['**/dir', 'dir', true],
  ['**/dir', 'dir/file', true],
  ['**/dir2/*', 'dir/dir2/file', true],
  ['**/dir2/**', 'dir/dir2/dir3/file', true],
  ['**file', 'file', true],
  ['**file', 'dir/dir/file', true],
  ['**/file', 'dir/dir/file', true],
  ['**/file*', 'dir/dir/file.txt', true],
  ['**/file*txt', 'dir/dir/file.txt', true],
  ['**/file*.txt*', 'dir/dir/file.txt', true],
  ['**/**/*.txt', 'dir/dir/file.txt', true],
  ['**/**/*.txt2', 'dir/dir/file.txt', false],
  ['**/*.txt', 'file.txt', true],
  ['**/**/*.txt', 'file.txt', true],
  ['a**/*.txt', 'a/file.txt', true],
  ['a**/*.txt', 'a/dir/dir/file.txt', true],
  ['a/*.txt', 'a/dir/file.txt', false],
  ['a/*.txt', 'a/file.txt', true],
  ['a/*.txt**', 'a/file.txt', true],
  ['**/foo/bar', 'foo/bar', true],
  ['**/foo/bar', 'dir/dir2/foo/bar', true],
  ['abc/**', 'abc', false],
  ['abc/**', 'abc/def/ghi', true],
  ['**/.foo', '.foo', true],
  ['**/.foo', 'bar.foo', false],
  // Docker matches a leading `**` without other wildcards by suffix: `**file` takes `myfile` too
  ['**file', 'myfile', true],
  ['**/file', 'myfile', false],
  // and a trailing `**` by prefix
  ['dir**', 'dirt/x', true],
  // classes, `?`, escapes
  ['a[b-d]e', 'ae', false],
  ['a[b-d]e', 'ace', true],
  ['a[^b-d]e', 'aze', true],
  ['a[!b]e', 'a!e', true], // `!` is no negation for Go or RE2
  ['a[!b]e', 'aze', false],
  ['.*', '.foo', true],
  ['.*', 'foo', false],
  ['abc.def', 'abcZdef', false],
  ['abc?def', 'abcZdef', true],
  ['abc?def', 'abcdef', false],
  ['a\\\\', 'a\\', true],
  ['a\\*b', 'a*b', true],
  ['a\\*b', 'axb', false],
  ['a?b', 'a☺b', true],
  ['a???b', 'a☺b', false],
  ['[a-ζ]*', 'α', true],
  ['a?b', 'a/b', false],
  ['a*b', 'a/b', false],
  ['[\\]a]', ']', true],
  ['[x\\-]', '-', true],
  ['[x\\-]', 'z', false],
  ['[[:digit:]]x', '7x', true],
  // regular-expression characters are literal
  ['a(b)c/def', 'a(b)c/def', true],
  ['a.|)$(}+{bc', 'a.|)$(}+{bc', true],
  ['dist/*.whl', 'dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl', true],
  // `^` without wildcards is compared as written; in a regular expression it anchors
  ['a^b', 'a^b', true],
  ['a^b*', 'a^bc', false],
  // a `*` inside a class becomes `[^/]*` in Docker's expression: `[*]` is `[`, `^` or `/`, then `]`
  ['[*]', '*', false],
  ['[*]', ']', true],
  ['[*]', '[]', true],
  // a parent directory matching matches its entries
  ['docs', 'docs/README.md', true],
  ['docs/', 'docs/README.md', true],
  ['*', 'dir/file', true],
  ['*.go', 'fileutils.go', true],
  ['*.go', 'sub/fileutils.go', false],
];

/** [patterns, path, matched]: the last matching pattern decides. */
const PATTERN_LISTS: [string[], string, boolean][] = [
  [['!fileutils.go', '*.go'], 'fileutils.go', true],
  [['*.go', '!fileutils.go'], 'fileutils.go', false],
  [['docs', '!docs/README.md'], 'docs/README.md', false],
  [['docs/', '!docs/README.md'], 'docs/README.md', false],
  [['docs/*', '!docs/README.md'], 'docs/README.md', false],
  [['**', '!util/docker/web'], 'util/docker/web/foo', false],
  [['**', '!util/docker/web', 'util/docker/web/foo'], 'util/docker/web/foo', true],
  [['**', '!dist/*.whl'], 'dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl', false],
  [[], '/any/path/there', false],
];

/** Walks `path` from the top, handing each directory's results down, as fsutil does. */
function matchedWalking(matcher: PatternMatcher, path: string): boolean {
  const parts = path.split('/');
  let info;
  for (let n = 1; n < parts.length; n++) info = matcher.matchesWithParents(parts.slice(0, n).join('/'), info).info;
  return matcher.matchesWithParents(path, info).matched;
}

describe('PatternMatcher (moby/patternmatcher rules)', () => {
  it.each(ONE_PATTERN)('%j matching %j is %s', (pattern, path, expected) => {
    const matcher = new PatternMatcher([pattern]);
    expect(matcher.matches(path)).toBe(expected);
    expect(matchedWalking(matcher, path)).toBe(expected);
  });

  it.each(PATTERN_LISTS)('%j matching %j is %s', (patterns, path, expected) => {
    const matcher = new PatternMatcher(patterns);
    expect(matcher.matches(path)).toBe(expected);
    expect(matchedWalking(matcher, path)).toBe(expected);
  });

  it('builds the regular expressions Docker builds and picks the same kind of match', () => {
    const cases: [string, string, string | undefined][] = [
      ['*', 'regexp', '^[^/]*$'],
      ['a*/b', 'regexp', '^a[^/]*/b$'],
      ['**', 'suffix', undefined],
      ['**/**', 'regexp', '^(.*/)?.*$'],
      ['dir/**', 'prefix', undefined],
      ['**/dir', 'suffix', undefined],
      ['**/dir2/**', 'regexp', '^(.*/)?dir2/.*$'],
      ['**file', 'suffix', undefined],
      ['**/**/*.txt', 'regexp', '^(.*/)?(.*/)?[^/]*\\.txt$'],
      ['a[b-d]e', 'regexp', '^a[b-d]e$'],
      ['.*', 'regexp', '^\\.[^/]*$'],
      ['abc.def', 'exact', undefined],
      ['abc?def', 'regexp', '^abc[^/]def$'],
      ['a.|)$(}+{bc', 'exact', undefined],
    ];
    for (const [pattern, type, re2] of cases) {
      const p = new ContextPattern(cleanPath(pattern), false);
      expect([pattern, p.matchType, p.regexpSource]).toEqual([pattern, type, re2]);
    }
  });

  it('cleans patterns like filepath.Clean and reads a leading ! as an exception', () => {
    // as patternmatcher.New: the `!` is part of what is cleaned (the .dockerignore reader cleans after it)
    const m = new PatternMatcher(['  docs//a/../b/  ', '!keep/', '!./x', '', '   ']);
    expect(m.patterns.map((p) => [p.text, p.exclusion])).toEqual([
      ['docs/b', false],
      ['keep', true],
      ['./x', true],
    ]);
    expect(m.hasExceptions).toBe(true);
    expect(new PatternMatcher(['docs', 'config']).hasExceptions).toBe(false);
  });

  it('refuses a lone ! and patterns filepath.Match refuses, when it is built', () => {
    expect(() => new PatternMatcher(['!'])).toThrow(PatternSyntaxError);
    for (const bad of ['[', 'a[', '[^', '[^bc', '[]a]', '[-]', '[x-]', '[-x]', '[a-b-c]', '\\']) {
      expect(() => new PatternMatcher([bad]), bad).toThrow(PatternSyntaxError);
    }
  });

  it('fails when it matches with a pattern filepath.Match accepts and the expression does not, every time', () => {
    // `[Local-Only]`: Go's filepath.Match takes the reversed range l-O, RE2 does not
    const m = new PatternMatcher(['[Local-Only]/']);
    expect(() => m.matches('x')).toThrow(PatternSyntaxError);
    expect(() => m.matches('x')).toThrow(PatternSyntaxError);
  });

  it('never matches the context root', () => {
    expect(new PatternMatcher(['*.go']).matches('.')).toBe(false);
  });
});

describe('walking: which excluded directories are entered', () => {
  it('buildkit: without exceptions never; with prefix-only exceptions when one names a path below; with wildcard exceptions always', () => {
    expect(new PatternMatcher(['logs']).mayReincludeBelow('logs')).toBe(false);
    const prefix = new PatternMatcher(['logs', 'tmp', '!logs/keep.log', '!tmp/**']);
    expect(prefix.mayReincludeBelow('logs')).toBe(true);
    expect(prefix.mayReincludeBelow('tmp')).toBe(true);
    expect(prefix.mayReincludeBelow('other')).toBe(false);
    expect(new PatternMatcher(['a', '!*/keep']).mayReincludeBelow('a')).toBe(true);
  });

  it('docker-cli: only when an exception as written names a path below', () => {
    expect(new PatternMatcher(['logs', '!logs/keep.log']).mayReincludeBelow('logs', 'docker-cli')).toBe(true);
    expect(new PatternMatcher(['a', '!*/keep']).mayReincludeBelow('a', 'docker-cli')).toBe(false);
  });

  it('includes: a directory is entered when a pattern names a path below it or has a wildcard', () => {
    expect(new PatternMatcher(['ab/y']).mayIncludeBelow('ab')).toBe(true);
    expect(new PatternMatcher(['ab/y']).mayIncludeBelow('a')).toBe(false);
    expect(new PatternMatcher(['ab/*']).mayIncludeBelow('ab')).toBe(true);
    expect(new PatternMatcher(['**/keep.log']).mayIncludeBelow('x')).toBe(true);
  });
});

describe('goMatch (Go filepath.Match)', () => {
  const cases: [string, string, boolean][] = [
    ['abc', 'abc', true],
    ['*', 'abc', true],
    ['*c', 'abc', true],
    ['a*', 'a', true],
    ['a*', 'ab/c', false],
    ['a*/b', 'abc/b', true],
    ['a*/b', 'a/c/b', false],
    ['a*b*c*d*e*/f', 'axbxcxdxexxx/f', true],
    ['a*b*c*d*e*/f', 'axbxcxdxe/xxx/f', false],
    ['a*b?c*x', 'abxbbxdbxebxczzx', true],
    ['a*b?c*x', 'abxbbxdbxebxczzy', false],
    ['ab[c]', 'abc', true],
    ['ab[^c]', 'abc', false],
    ['ab[^e-g]', 'abc', true],
    ['a\\*b', 'a*b', true],
    ['a[^a]b', 'a☺b', true],
    ['a[^a][^a][^a]b', 'a☺b', false],
    ['*[a-ζ]', 'A', false],
    ['[\\-x]', '-', true],
    ['*x', 'xxx', true],
  ];
  it.each(cases)('%j against %j is %s', (pattern, name, expected) => {
    expect(goMatch(pattern, name)).toBe(expected);
  });

  it('checks the whole pattern, also after a mismatch', () => {
    expect(() => goMatch('a[', 'x')).toThrow(PatternSyntaxError);
    expect(() => goMatch('x*[', 'y')).toThrow(PatternSyntaxError);
    expect(() => checkGoPattern('[Local-Only]')).not.toThrow();
  });
});
