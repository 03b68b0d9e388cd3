/**
 * The shapes the registry client's modules pass between them: one request of
 * the registry API, its response, the events it logs, and the information an
 * error about it carries.
 */
import type { Scope } from './auth.ts';
import type { Credential } from './credentials.ts';
import type { RegistryErrorInfo } from './errors.ts';

export type RequestBody = NonNullable<RequestInit['body']>;

export type RegistryEvent =
  | { type: 'request'; method: string; url: string; attempt: number }
  | { type: 'response'; method: string; url: string; status: number; attempt: number }
  | { type: 'retry'; method: string; url: string; attempt: number; delayMs: number; reason: string }
  | { type: 'auth'; registry: string; scheme: string; scopes: string[]; credential: Credential['kind'] | 'anonymous' }
  | { type: 'endpoint'; registry: string; url: string };

/** One request of the registry API, as `RegistryClient.request` takes it. */
export interface RegistryRequest {
  /** What we were doing, for messages: `pushing blob sha256:… to 127.0.0.1:5000/app`. */
  what: string;
  registry: string;
  repository?: string;
  method: string;
  /** Absolute URL, or a path below the registry's base (`/v2/…`). */
  url: string | URL;
  headers?: Record<string, string>;
  /** Called for every attempt; `touch` marks progress for the inactivity timer. */
  body?: (touch: () => void) => RequestBody | Promise<RequestBody>;
  expect: number[];
  scopes?: Scope[];
  /** Retry on 429/5xx/connection errors. Default true. */
  retry?: boolean;
  /** Send no credentials (token service requests carry their own). */
  noAuth?: boolean;
}

/** A response whose body stream keeps the request's inactivity timer alive. */
export interface RegistryResponse {
  status: number;
  statusText: string;
  headers: Headers;
  url: string;
  body: ReadableStream<Uint8Array> | null;
}

/** The registry and repository an error is about, plus what went wrong. */
export function errorInfo(
  spec: { registry: string; repository?: string },
  extra: { status?: number; codes?: string[]; retryable?: boolean } = {},
): RegistryErrorInfo {
  return { registry: spec.registry, ...(spec.repository === undefined ? {} : { repository: spec.repository }), ...extra };
}

/**
 * The part of a request that names a repository: its registry and repository, the URL
 * `/v2/<repository>/<path>`, and the token scope of `actions` on that repository.
 */
export function inRepository(
  repo: { registry: string; repository: string },
  path: string,
  actions: Scope['actions'],
): Pick<RegistryRequest, 'registry' | 'repository' | 'url' | 'scopes'> {
  return { registry: repo.registry, repository: repo.repository, url: `/v2/${repo.repository}/${path}`, scopes: [{ repository: repo.repository, actions }] };
}
