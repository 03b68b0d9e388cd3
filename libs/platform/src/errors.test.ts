import { describe, expect, it } from 'vitest';
import { asLifecycleError, exitCodeOf, fail, failErr, FlagError, formatFailure, LifecycleError, renderError } from './errors.ts';

describe('errors', () => {
  it('formats the lifecycle chain', () => {
    expect(formatFailure('extend build image', new Error('extending build image: applying Dockerfile: boom'))).toBe(
      'failed to extend build image: extending build image: applying Dockerfile: boom',
    );
    expect(formatFailure(['parse', 'arguments'])).toBe('failed to parse arguments');
  });

  it('fail() carries code, action and cause', () => {
    const cause = new Error('received unexpected arguments');
    const err = fail(3, 'parse arguments', cause);
    expect(err).toBeInstanceOf(LifecycleError);
    expect(err.code).toBe(3);
    expect(err.action).toBe('parse arguments');
    expect(err.cause).toBe(cause);
    expect(err.message).toBe('failed to parse arguments: received unexpected arguments');
  });

  it('failErr keeps the code of a LifecycleError cause, else 1', () => {
    expect(failErr(fail(12, 'set API'), 'initialize extender').code).toBe(12);
    expect(failErr(new Error('x'), 'chown volumes').code).toBe(1);
  });

  it('asLifecycleError passes LifecycleErrors through and wraps the rest', () => {
    const inner = fail(12, 'set API');
    expect(asLifecycleError(inner, 1, 'initialize extender')).toBe(inner);
    const wrapped = asLifecycleError(new Error('no such file'), 1, 'initialize extender');
    expect(wrapped.message).toBe('failed to initialize extender: no such file');
  });

  it('exitCodeOf', () => {
    expect(exitCodeOf(undefined)).toBe(0);
    expect(exitCodeOf(fail(102, 'extend run image'))).toBe(102);
    expect(exitCodeOf(new Error('x'))).toBe(1);
    expect(exitCodeOf('a string')).toBe(1);
  });

  describe('#renderError', () => {
    it('prefixes ERROR: and ends with a newline', () => {
      expect(renderError(fail(102, 'extend run image', new Error('boom')))).toBe('ERROR: failed to extend run image: boom\n');
      expect(renderError(new Error('plain'))).toBe('ERROR: plain\n');
    });
    it('colours the prefix when asked', () => {
      expect(renderError(new Error('x'), { color: true })).toBe('\x1b[31;1mERROR: \x1b[0mx\n');
    });
    it('prints flag errors the Go way: message, then usage', () => {
      const err = new FlagError('flag provided but not defined: -foo', 'Usage of lifecycle:\n  -app string\n');
      expect(err.code).toBe(2);
      expect(renderError(err)).toBe('flag provided but not defined: -foo\nUsage of lifecycle:\n  -app string\n');
    });
  });
});
