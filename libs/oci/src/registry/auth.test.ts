import { describe, expect, it } from 'vitest';
import { TokenCache, mergeScopes, parseChallenges, readTokenResponse, tokenRequestInit } from './auth.ts';

describe('parseChallenges', () => {
  it('reads a Bearer challenge with quoted params', () => {
    expect(
      parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/ubuntu:pull"'),
    ).toEqual([
      {
        scheme: 'bearer',
        params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/ubuntu:pull' },
      },
    ]);
  });

  it('reads several challenges, token params and escapes', () => {
    expect(parseChallenges('Basic realm="a \\"b\\"", Bearer realm=https://x/token, service=svc')).toEqual([
      { scheme: 'basic', params: { realm: 'a "b"' } },
      { scheme: 'bearer', params: { realm: 'https://x/token', service: 'svc' } },
    ]);
    expect(parseChallenges('Basic')).toEqual([{ scheme: 'basic', params: {} }]);
    expect(parseChallenges(null)).toEqual([]);
  });
});

describe('scopes', () => {
  it('merges actions per repository in a stable order', () => {
    expect(
      mergeScopes([
        { repository: 'b/app', actions: ['push'] },
        'repository:b/app:pull repository:a/base:pull',
        { repository: 'b/app', actions: ['pull'] },
      ]),
    ).toEqual(['repository:a/base:pull', 'repository:b/app:pull,push']);
  });
});

describe('token requests', () => {
  it('asks with Basic and the scopes as query parameters', () => {
    const { url, init } = tokenRequestInit(
      { realm: 'http://127.0.0.1:1/token', service: 'svc', scopes: ['repository:a:pull'], credential: { kind: 'basic', username: 'u', password: 'p' } },
      'cnb-extender',
    );
    expect(url.searchParams.get('service')).toBe('svc');
    expect(url.searchParams.getAll('scope')).toEqual(['repository:a:pull']);
    expect((init.headers as Record<string, string>).authorization).toBe(`Basic ${Buffer.from('u:p').toString('base64')}`);
  });

  it('exchanges identity tokens with an OAuth2 refresh_token POST', () => {
    const { init } = tokenRequestInit(
      { realm: 'http://127.0.0.1:1/token', service: 'svc', scopes: ['repository:a:pull'], credential: { kind: 'identity', token: 'refresh' } },
      'cnb-extender',
    );
    expect(init.method).toBe('POST');
    const form = new URLSearchParams(init.body as string);
    expect(form.get('grant_type')).toBe('refresh_token');
    expect(form.get('refresh_token')).toBe('refresh');
    expect(form.get('scope')).toBe('repository:a:pull');
  });

  it('reads token and access_token answers', () => {
    expect(readTokenResponse({ token: 't', expires_in: 300 })).toEqual({ token: 't', expiresInSeconds: 300 });
    expect(readTokenResponse({ access_token: 'a' })).toEqual({ token: 'a', expiresInSeconds: 60 });
    expect(readTokenResponse({})).toBeUndefined();
  });

  it('caches one token per key and shares concurrent fetches', async () => {
    const cache = new TokenCache();
    let fetches = 0;
    const fetchToken = async () => ({ token: `t${++fetches}`, expiresInSeconds: 300 });
    const key = cache.key('r', { realm: 'x', service: 's', scopes: ['repository:a:pull'] });
    const [a, b] = await Promise.all([cache.obtain(key, fetchToken), cache.obtain(key, fetchToken)]);
    expect([a, b, fetches]).toEqual(['t1', 't1', 1]);
    expect(await cache.obtain(key, fetchToken)).toBe('t1');
    cache.invalidate(key);
    expect(await cache.obtain(key, fetchToken)).toBe('t2');
    const other = cache.key('r', { realm: 'x', service: 's', scopes: ['repository:b:pull'] });
    expect(await cache.obtain(other, fetchToken)).toBe('t3');
  });
});
