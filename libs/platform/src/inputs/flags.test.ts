import { describe, expect, it } from 'vitest';
import { FlagError } from '../errors.ts';
import { formatGoUsage, parseGoFlags, type FlagSpec } from './flags.ts';

const SPECS: FlagSpec[] = [
  { name: 'app', kind: 'path', usage: 'path to app directory', defaultText: '/workspace' },
  { name: 'no-color', kind: 'bool', usage: 'disable color output', defaultText: 'false' },
  { name: 'uid', kind: 'int', usage: 'UID of user', defaultText: '0' },
  { name: 'ttl', kind: 'duration', usage: 'cache ttl', defaultText: '336h' },
  { name: 'log-level', kind: 'string', usage: 'logging level', defaultText: 'info' },
  { name: 'opt', kind: 'list', usage: 'a setting (repeatable)' },
];
const USAGE = 'Usage of test:\n';

function parse(...argv: string[]) {
  return parseGoFlags(argv, SPECS, USAGE);
}

function flagError(...argv: string[]): FlagError {
  try {
    parse(...argv);
  } catch (err) {
    if (err instanceof FlagError) return err;
    throw err;
  }
  throw new Error('expected a FlagError');
}

describe('#parseGoFlags', () => {
  it('accepts -name value, -name=value, --name and --name=value alike', () => {
    for (const argv of [
      ['-app', '/a'],
      ['-app=/a'],
      ['--app', '/a'],
      ['--app=/a'],
    ]) {
      expect(parse(...argv).values.get('app')).toBe('/a');
    }
  });

  it('takes the next argument as the value even when it starts with a dash', () => {
    expect(parse('-app', '-x').values.get('app')).toBe('-x');
  });

  it('keeps everything after the first = in the value', () => {
    expect(parse('-app=a=b').values.get('app')).toBe('a=b');
    expect(parse('-app=').values.get('app')).toBe('');
  });

  it('handles boolean flags the Go way', () => {
    expect(parse('-no-color').values.get('no-color')).toBe('true');
    expect(parse('--no-color').values.get('no-color')).toBe('true');
    expect(parse('-no-color=false').values.get('no-color')).toBe('false');
    expect(parse('-no-color=1').values.get('no-color')).toBe('true');
    // a bool flag never consumes the next argument
    expect(parse('-no-color', 'false')).toMatchObject({ positional: ['false'] });
  });

  it('the last occurrence wins', () => {
    const parsed = parse('-app', '/a', '-app=/b');
    expect(parsed.values.get('app')).toBe('/b');
    expect(parsed.seen).toEqual(['app', 'app']);
  });

  it('accumulates every occurrence of a list flag, in order, and keeps it out of the last-wins values', () => {
    const parsed = parse('-opt', 'a=1', '--opt=b=2', '-app', '/a', '-opt', '', '-opt', '-x');
    expect(parsed.lists.get('opt')).toEqual(['a=1', 'b=2', '', '-x']);
    expect(parsed.values.has('opt')).toBe(false);
    expect(parsed.values.get('app')).toBe('/a');
    expect(parsed.seen).toEqual(['opt', 'opt', 'app', 'opt', 'opt']);
    expect(parse('-app', '/a').lists.size).toBe(0);
    expect(flagError('-opt').message).toBe('flag needs an argument: -opt');
  });

  it('stops at the first non-flag and after --', () => {
    expect(parse('-app', '/a', 'pos', '-uid', '1')).toMatchObject({ positional: ['pos', '-uid', '1'] });
    expect(parse('--', '-app', '/a')).toMatchObject({ positional: ['-app', '/a'] });
    expect(parse('-', '-app')).toMatchObject({ positional: ['-', '-app'] });
    expect(parse().positional).toEqual([]);
  });

  it.each([['-h'], ['-help'], ['--help'], ['-help=1'], ['-app', '/a', '-h', '-bogus']])('%s asks for help', (...argv) => {
    expect(parse(...argv).help).toBe(true);
  });

  it('an error before -h still wins', () => {
    expect(flagError('-bogus', '-h').message).toBe('flag provided but not defined: -bogus');
  });

  it.each([
    [['-bogus'], 'flag provided but not defined: -bogus'],
    [['--kind=run'], 'flag provided but not defined: -kind'],
    [['---app'], 'bad flag syntax: ---app'],
    [['-=x'], 'bad flag syntax: -=x'],
    [['-app'], 'flag needs an argument: -app'],
    [['-no-color=maybe'], 'invalid boolean value "maybe" for -no-color: parse error'],
    [['-uid', 'abc'], 'invalid value "abc" for flag -uid: parse error'],
    [['-uid', '99999999999999999999'], 'invalid value "99999999999999999999" for flag -uid: value out of range'],
    [['-ttl', '2w'], 'invalid value "2w" for flag -ttl: parse error'],
    [['-ttl='], 'invalid value "" for flag -ttl: parse error'],
  ])('%j is INVALID_FLAG: %s', (argv, message) => {
    const err = flagError(...argv);
    expect(err.code).toBe('INVALID_FLAG');
    expect(err.message).toBe(message);
    expect(err.usage).toBe(USAGE);
  });

  it('accepts Go durations and ints', () => {
    expect(parse('-ttl', '1h30m', '-uid', '0x10').values).toEqual(new Map([['ttl', '1h30m'], ['uid', '0x10']]));
  });
});

describe('#formatGoUsage', () => {
  it('prints Go PrintDefaults layout, sorted, with non-zero defaults', () => {
    expect(formatGoUsage('lifecycle', SPECS)).toBe(
      [
        'Usage of lifecycle:',
        '  -app string',
        '    \tpath to app directory (default "/workspace")',
        '  -log-level string',
        '    \tlogging level (default "info")',
        '  -no-color',
        '    \tdisable color output',
        '  -opt value',
        '    \ta setting (repeatable)',
        '  -ttl duration',
        '    \tcache ttl (default 336h0m0s)',
        '  -uid int',
        '    \tUID of user',
        '',
      ].join('\n'),
    );
  });

  it('puts a one-letter bool flag and its usage on one line', () => {
    expect(formatGoUsage('x', [{ name: 'v', kind: 'bool', usage: 'verbose' }])).toBe('Usage of x:\n  -v\tverbose\n');
  });
});
