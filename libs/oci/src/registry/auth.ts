/**
 * Registry authentication: `WWW-Authenticate` challenges, Basic, and the
 * distribution token flow (Bearer tokens from the challenge's realm, with
 * `service` and `scope`, cached per registry and scope until they expire).
 */
import type { Credential } from './credentials.ts';

export interface Challenge {
  /** Lowercased scheme: `basic`, `bearer`. */
  scheme: string;
  params: Record<string, string>;
}

/** Parse a `WWW-Authenticate` header value into its challenges (RFC 7235 auth-params). */
export function parseChallenges(header: string | null | undefined): Challenge[] {
  if (!header) return [];
  const out: Challenge[] = [];
  let i = 0;
  const n = header.length;
  const skipSpace = () => {
    while (i < n && /[\s,]/.test(header[i]!)) i++;
  };
  const readToken = () => {
    const start = i;
    while (i < n && /[!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  while (i < n) {
    skipSpace();
    const scheme = readToken();
    if (!scheme) {
      i++;
      continue;
    }
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(challenge);
    // auth-params until the next scheme (a token not followed by '=').
    for (;;) {
      while (i < n && /[\s,]/.test(header[i]!)) i++;
      const save = i;
      const key = readToken();
      if (!key) break;
      while (i < n && header[i] === ' ') i++;
      if (header[i] !== '=') {
        i = save; // a new scheme starts here
        break;
      }
      i++;
      while (i < n && header[i] === ' ') i++;
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < n) i++;
          value += header[i];
          i++;
        }
        i++;
      } else {
        const start = i;
        while (i < n && header[i] !== ',' && !/\s/.test(header[i]!)) i++;
        value = header.slice(start, i);
      }
      challenge.params[key.toLowerCase()] = value;
    }
  }
  return out;
}

/** Access wanted on a repository (`repository:<name>:pull,push`). */
export interface Scope {
  repository: string;
  actions: ('pull' | 'push' | string)[];
}

/** Merge scopes per repository; stable order so equal sets give equal cache keys. */
export function mergeScopes(scopes: (Scope | string)[]): string[] {
  const byResource = new Map<string, Set<string>>();
  for (const scope of scopes) {
    let resource: string;
    let actions: string[];
    if (typeof scope === 'string') {
      for (const part of scope.split(' ').filter(Boolean)) {
        const lastColon = part.lastIndexOf(':');
        resource = part.slice(0, lastColon);
        actions = part.slice(lastColon + 1).split(',');
        const set = byResource.get(resource) ?? new Set();
        actions.forEach((a) => a && set.add(a));
        byResource.set(resource, set);
      }
      continue;
    }
    resource = `repository:${scope.repository}`;
    const set = byResource.get(resource) ?? new Set();
    scope.actions.forEach((a) => set.add(a));
    byResource.set(resource, set);
  }
  return [...byResource.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([resource, actions]) => `${resource}:${[...actions].sort().join(',')}`);
}

export function basicHeader(credential: { username: string; password: string }): string {
  return `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Token response of the distribution token spec (and its OAuth2 variant). */
interface TokenResponse {
  token?: string;
  access_token?: string;
  expires_in?: number;
  issued_at?: string;
}

export interface TokenRequest {
  realm: string;
  service: string | undefined;
  scopes: string[];
  credential: Credential | undefined;
}

/** Per-client cache of Bearer tokens keyed by registry, service and scope set. */
export class TokenCache {
  #tokens = new Map<string, CachedToken>();
  #pending = new Map<string, Promise<string>>();

  key(registry: string, request: Omit<TokenRequest, 'credential'>): string {
    return `${registry}\n${request.realm}\n${request.service ?? ''}\n${request.scopes.join(' ')}`;
  }

  get(key: string, now = Date.now()): string | undefined {
    const hit = this.#tokens.get(key);
    if (hit && hit.expiresAt > now) return hit.token;
    if (hit) this.#tokens.delete(key);
    return undefined;
  }

  invalidate(key: string): void {
    this.#tokens.delete(key);
  }

  /** One fetch per key at a time; concurrent callers share it. */
  async obtain(key: string, fetchToken: () => Promise<{ token: string; expiresInSeconds: number }>): Promise<string> {
    const cached = this.get(key);
    if (cached) return cached;
    let pending = this.#pending.get(key);
    if (!pending) {
      pending = fetchToken().then(
        ({ token, expiresInSeconds }) => {
          // Refresh a little early; tokens of the distribution spec live at least 60 s.
          const lifetime = Math.max(expiresInSeconds, 60) * 1000;
          this.#tokens.set(key, { token, expiresAt: Date.now() + lifetime - Math.min(10_000, lifetime / 10) });
          this.#pending.delete(key);
          return token;
        },
        (error) => {
          this.#pending.delete(key);
          throw error;
        },
      );
      this.#pending.set(key, pending);
    }
    return pending;
  }
}

/** Build the token request for a challenge: GET with query for Basic/anonymous, POST form for identity tokens. */
export function tokenRequestInit(request: TokenRequest, clientId: string): { url: URL; init: RequestInit } {
  const url = new URL(request.realm);
  const { credential } = request;
  if (credential?.kind === 'identity') {
    const form = new URLSearchParams();
    form.set('grant_type', 'refresh_token');
    form.set('refresh_token', credential.token);
    form.set('client_id', clientId);
    if (request.service) form.set('service', request.service);
    if (request.scopes.length) form.set('scope', request.scopes.join(' '));
    return {
      url,
      init: {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: form.toString(),
      },
    };
  }
  if (request.service) url.searchParams.set('service', request.service);
  for (const scope of request.scopes) url.searchParams.append('scope', scope);
  const headers: Record<string, string> = {};
  if (credential?.kind === 'basic') {
    headers.authorization = basicHeader(credential);
    url.searchParams.set('account', credential.username);
  }
  return { url, init: { method: 'GET', headers } };
}

export function readTokenResponse(body: unknown): { token: string; expiresInSeconds: number } | undefined {
  if (!body || typeof body !== 'object') return undefined;
  const response = body as TokenResponse;
  const token = response.token ?? response.access_token;
  if (!token || typeof token !== 'string') return undefined;
  const expires = typeof response.expires_in === 'number' && response.expires_in > 0 ? response.expires_in : 60;
  return { token, expiresInSeconds: expires };
}
