import { describe, expect, it } from 'vitest';
import { ExtenderError, fail, FlagError, formatFailure, messageOf, renderError, wrap } from './errors.ts';

describe('errors', () => {
  it('formats the lifecycle chain', () => {
    expect(formatFailure('extend build image', new Error('extending build image: applying Dockerfile: boom'))).toBe(
      'failed to extend build image: extending build image: applying Dockerfile: boom',
    );
    expect(formatFailure(['parse', 'arguments'])).toBe('failed to parse arguments');
  });

  it('fail() carries code, action, cause and details', () => {
    const cause = new Error('received unexpected arguments');
    const err = fail('INVALID_INPUT', 'parse arguments', cause, ['unconsumed flag-like positional arg: -uid']);
    expect(err).toBeInstanceOf(ExtenderError);
    expect(err.code).toBe('INVALID_INPUT');
    expect(err.action).toBe('parse arguments');
    expect(err.cause).toBe(cause);
    expect(err.details).toEqual(['unconsumed flag-like positional arg: -uid']);
    expect(err.message).toBe('failed to parse arguments: received unexpected arguments');
    expect(fail('FAILED', ['parse', 'log level']).details).toEqual([]);
  });

  it('an ExtenderError carries what the core knows about the failure', () => {
    const err = new ExtenderError('APPLY_FAILED', 'RUN exit 3: exit code 3', { path: '/generated/run/x/Dockerfile', instruction: 'RUN exit 3', extensionId: 'x' });
    expect(err).toMatchObject({ name: 'ExtenderError', code: 'APPLY_FAILED', path: '/generated/run/x/Dockerfile', instruction: 'RUN exit 3', extensionId: 'x', action: undefined });
    expect(err.details).toEqual([]);
  });

  describe('#wrap', () => {
    it('prefixes an action and keeps the code, the details and what the inner error knows', () => {
      const inner = new ExtenderError('APPLY_FAILED', 'RUN exit 3: exit code 3', { instruction: 'RUN exit 3', details: ['see the log'] });
      const wrapped = wrap(inner, 'applying Dockerfile for x', 'FAILED', { extensionId: 'x', instruction: 'ignored' });
      expect(wrapped).toMatchObject({ code: 'APPLY_FAILED', message: 'applying Dockerfile for x: RUN exit 3: exit code 3', instruction: 'RUN exit 3', extensionId: 'x', cause: inner });
      expect(wrapped.details).toEqual(['see the log']);
    });

    it('gives anything else the fallback code', () => {
      const cause = new Error('ENOENT');
      expect(wrap(cause, 'reading analyzed.toml', 'ANALYZED_INVALID', { path: '/layers/analyzed.toml' })).toMatchObject({
        code: 'ANALYZED_INVALID',
        message: 'reading analyzed.toml: ENOENT',
        path: '/layers/analyzed.toml',
        cause,
      });
      expect(wrap('text', 'x', 'FAILED').message).toBe('x: text');
    });
  });

  it('messageOf', () => {
    expect(messageOf(new Error('x'))).toBe('x');
    expect(messageOf('a string')).toBe('a string');
    expect(messageOf(3)).toBe('3');
  });

  describe('#renderError', () => {
    it('prefixes ERROR: and ends with a newline', () => {
      expect(renderError(fail('APPLY_FAILED', 'extend run image', new Error('boom')))).toBe('ERROR: failed to extend run image: boom\n');
      expect(renderError(new Error('plain'))).toBe('ERROR: plain\n');
    });
    it('colours the prefix when asked', () => {
      expect(renderError(new Error('x'), { color: true })).toBe('\x1b[31;1mERROR: \x1b[0mx\n');
    });
    it('prints flag errors the Go way: message, then usage', () => {
      const err = new FlagError('flag provided but not defined: -foo', 'Usage of lifecycle:\n  -app string\n');
      expect(err).toBeInstanceOf(ExtenderError);
      expect(err.code).toBe('INVALID_FLAG');
      expect(renderError(err)).toBe('flag provided but not defined: -foo\nUsage of lifecycle:\n  -app string\n');
    });
  });
});
