import { describe, expect, it } from 'vitest';
import { hostPlatform } from '../platform.ts';
import { isLoopbackRegistry, parseInsecureRegistries, parseRetryAfter, platformMatches } from './client.ts';
import { SecretRedactor, describeNetworkError } from './errors.ts';

describe('client helpers', () => {
  it('reads Retry-After as seconds or an HTTP date, capped', () => {
    expect(parseRetryAfter('2', 60_000)).toBe(2000);
    expect(parseRetryAfter('600', 60_000)).toBe(60_000);
    expect(parseRetryAfter(new Date(Date.now() + 30_000).toUTCString(), 60_000)).toBeGreaterThan(25_000);
    expect(parseRetryAfter(new Date(Date.now() - 30_000).toUTCString(), 60_000)).toBe(0);
    expect(parseRetryAfter('soon', 60_000)).toBeUndefined();
    expect(parseRetryAfter(null, 60_000)).toBeUndefined();
  });

  it('matches platforms with arm variant defaults', () => {
    expect(platformMatches({ os: 'linux', architecture: 'arm64' }, { os: 'linux', architecture: 'arm64', variant: 'v8' })).toBe(true);
    expect(platformMatches({ os: 'linux', architecture: 'arm', variant: 'v6' }, { os: 'linux', architecture: 'arm', variant: 'v7' })).toBe(false);
    expect(platformMatches({ os: 'linux', architecture: 'arm', variant: 'v7' }, { os: 'linux', architecture: 'arm' })).toBe(true);
    expect(platformMatches({ os: 'windows', architecture: 'amd64' }, { os: 'linux', architecture: 'amd64' })).toBe(false);
    expect(platformMatches(undefined, { os: 'linux', architecture: 'amd64' })).toBe(false);
    expect(hostPlatform().os).toBe('linux');
  });

  it('knows loopback registries and reads the insecure list', () => {
    expect(['localhost:5000', '127.0.0.1:5000', '127.1.2.3', '[::1]:5000'].map(isLoopbackRegistry)).toEqual([true, true, true, true]);
    expect(['10.0.0.1:5000', 'registry.local', '[fc00::1]:5000'].map(isLoopbackRegistry)).toEqual([false, false, false]);
    expect(parseInsecureRegistries(' a:1, ,b ')).toEqual(['a:1', 'b']);
    expect(parseInsecureRegistries(undefined)).toEqual([]);
  });
});

describe('secrets', () => {
  it('redacts known secrets and Authorization-looking values', () => {
    const r = new SecretRedactor();
    r.add('hunter2-password', 'ab');
    expect(r.redact('user:hunter2-password@x and ab')).toBe('user:***@x and ab');
    expect(r.redact('Authorization: Bearer eyJhbGciOi.J9abc')).toBe('Authorization: Bearer ***');
  });

  it('sanitises causes down to names, messages and codes', () => {
    const r = new SecretRedactor();
    r.add('s3cr3t-token');
    const inner = Object.assign(new Error('token s3cr3t-token refused'), { code: 'ECONNRESET', headers: { authorization: 'Bearer s3cr3t-token' } });
    const copy = r.sanitize(new TypeError('fetch failed', { cause: inner }))!;
    expect(copy.name).toBe('TypeError');
    const cause = copy.cause as Error & { code?: string; headers?: unknown };
    expect([cause.message, cause.code, cause.headers]).toEqual(['token *** refused', 'ECONNRESET', undefined]);
    expect(describeNetworkError(new TypeError('fetch failed', { cause: inner }))).toBe('token s3cr3t-token refused (ECONNRESET)');
  });
});
