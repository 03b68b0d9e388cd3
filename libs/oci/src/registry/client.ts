/**
 * A distribution-spec v2 registry client on Node's built-in `fetch`.
 *
 * - Endpoints: HTTPS; plain HTTP is tried after HTTPS only for loopback
 *   registries and those listed in `CNB_INSECURE_REGISTRIES` (which also skip
 *   certificate verification). Extra CAs come from `ca`/`caFile`/`certsDir`.
 * - Auth: the `/v2/` challenge decides Basic or Bearer; Bearer tokens come from
 *   the challenge's realm with `service` and `scope`, cached per scope.
 * - Retries with exponential backoff on 429, 5xx and connection failures,
 *   honouring `Retry-After`; an inactivity timeout on every request. A blob
 *   download that breaks part-way resumes with a Range request (resume.ts).
 * - Manifests are checked for shape before anyone reads them (validate.ts).
 * - Errors name the action, registry, repository and HTTP status; credentials
 *   are redacted from messages, causes and log events.
 */
import { readFileSync } from 'node:fs';
import { sha256, type Digest } from '../digest.ts';
import { MediaType, isIndexMediaType } from '../media-types.ts';
import type { Descriptor, ImageIndex, ImageManifest, Platform } from '../model.ts';
import { hostPlatform } from '../platform.ts';
import {
  formatReference,
  registryEndpoint,
  registryHostname,
  type ImageReference,
  type RepositoryRef,
} from '../reference.ts';
import { ShapeError, checkManifestDocument, parseJsonDocument } from '../validate.ts';
import {
  TokenCache,
  basicHeader,
  mergeScopes,
  parseChallenges,
  readTokenResponse,
  tokenRequestInit,
  type Challenge,
  type Scope,
} from './auth.ts';
import { credentialSecrets, defaultKeychain, type Credential, type Keychain } from './credentials.ts';
import {
  DigestMismatchError,
  MalformedContentError,
  NotFoundError,
  RegistryAuthError,
  RegistryError,
  SecretRedactor,
  describeNetworkError,
  errorCodes,
} from './errors.ts';
import { contentRangeStart, resumingStream } from './resume.ts';
import { DEFAULT_RETRY_POLICY, RETRYABLE_STATUS, backoffDelay, judgeFailure, pause, type RetryPolicy } from './retry.ts';
import { mapStreamErrors, readAll, rechunk, tap, toWebStream, verifyingStream, watchedSource, type BlobData } from './streams.ts';
import { certsDirCAs, createDispatcher, type Dispatcher } from './tls.ts';

export type { RetryPolicy } from './retry.ts';

type RequestBody = NonNullable<RequestInit['body']>;

/** Every manifest media type we understand, most preferred first. */
export const MANIFEST_ACCEPT = [
  MediaType.ociIndex,
  MediaType.ociManifest,
  MediaType.dockerManifestList,
  MediaType.dockerManifest,
] as const;

/** Largest manifest we read (distribution's own limit is 4 MiB). */
export const MANIFEST_SIZE_LIMIT = 4 * 1024 * 1024;

export type RegistryEvent =
  | { type: 'request'; method: string; url: string; attempt: number }
  | { type: 'response'; method: string; url: string; status: number; attempt: number }
  | { type: 'retry'; method: string; url: string; attempt: number; delayMs: number; reason: string }
  | { type: 'auth'; registry: string; scheme: string; scopes: string[]; credential: Credential['kind'] | 'anonymous' }
  | { type: 'endpoint'; registry: string; url: string };

export interface RegistryClientOptions {
  /** Where credentials come from. Default: CNB_REGISTRY_AUTH, then Docker's config, else anonymous. */
  keychain?: Keychain;
  /**
   * Registries (`host[:port]`, or a bare host for every port) reached over plain
   * HTTP or unverified TLS. Default: the comma-separated `CNB_INSECURE_REGISTRIES`.
   */
  insecureRegistries?: string[];
  /** Extra CA certificates (PEM text) to trust for every registry. */
  ca?: string | string[];
  /** Files with extra CA certificates (PEM). */
  caFile?: string | string[];
  /** Docker `certs.d`-style directory: `<dir>/<host:port>/*.crt` are trusted for that registry. */
  certsDir?: string;
  retry?: Partial<RetryPolicy>;
  /** Inactivity timeout of one request (no response, or no body progress). Default 60 s. */
  timeoutMs?: number;
  /** Upload blobs in PATCH chunks of this many bytes; 0 uploads in one PUT. Default 0. */
  chunkSize?: number;
  userAgent?: string;
  /** Receives request/response/retry events; URLs carry no query and nothing secret. */
  logger?: (event: RegistryEvent) => void;
  /** Cancels everything this client does. */
  signal?: AbortSignal;
  /** Environment read for defaults (CNB_INSECURE_REGISTRIES, credentials). Default `process.env`. */
  env?: NodeJS.ProcessEnv;
}

/** A manifest as fetched: its exact bytes, its descriptor, and the parsed JSON. */
export interface ManifestResult {
  descriptor: Descriptor;
  bytes: Uint8Array;
  manifest: ImageManifest | ImageIndex;
}

/** An image manifest reached from a reference, through an index when there was one. */
export interface ResolvedImage extends ManifestResult {
  manifest: ImageManifest;
  /** The index the reference pointed at, when it pointed at one. */
  index?: ManifestResult;
}

export interface PushBlobOptions {
  /** Repositories of the same registry to try a cross-repository mount from. */
  mountFrom?: string[];
  /** Skip the HEAD that avoids uploading a blob the repository already has. */
  skipExistenceCheck?: boolean;
  /** Override the client's chunk size for this blob. */
  chunkSize?: number;
}

export type BlobPushResult = 'exists' | 'mounted' | 'uploaded';

/** Source of a blob's bytes; a function is called again for every attempt. */
export type BlobBody = Uint8Array | (() => BlobData | Promise<BlobData>);

interface Endpoint {
  base: string;
  /** TLS settings for this registry (extra CAs, or no verification when insecure). */
  dispatcher: Dispatcher | undefined;
  /** Whether the dispatcher verifies certificates (then it may serve other hosts too, like a token realm). */
  verifies: boolean;
}

interface AuthState {
  challenge?: Challenge;
  credential?: Promise<Credential | undefined>;
}

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

const CERTIFICATE_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER|ALTNAME/;

class IdleTimeoutError extends Error {
  override name = 'TimeoutError';
  code = 'REGISTRY_IDLE_TIMEOUT';
}

/** Parse `CNB_INSECURE_REGISTRIES` (comma-separated registries). */
export function parseInsecureRegistries(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

export function isLoopbackRegistry(registry: string): boolean {
  const host = registryHostname(registry).toLowerCase();
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

function defaultVariant(architecture: string): string | undefined {
  return architecture === 'arm64' ? 'v8' : architecture === 'arm' ? 'v7' : undefined;
}

/** Whether an index entry's platform satisfies the wanted one (os, architecture, variant with arm defaults). */
export function platformMatches(candidate: Platform | undefined, wanted: Platform): boolean {
  if (!candidate) return false;
  if (candidate.os !== wanted.os || candidate.architecture !== wanted.architecture) return false;
  if (wanted.variant === undefined) return true;
  const have = candidate.variant ?? defaultVariant(candidate.architecture);
  return have === wanted.variant;
}

function platformString(p: Platform): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

function urlForLog(url: string | URL): string {
  const u = new URL(url);
  return `${u.origin}${u.pathname}`;
}

/** `Retry-After` (delay-seconds or an HTTP date) in milliseconds, capped; undefined when absent or unreadable. */
export function parseRetryAfter(header: string | null, cap: number): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  let ms: number;
  if (Number.isFinite(seconds)) ms = seconds * 1000;
  else {
    const date = Date.parse(header);
    if (Number.isNaN(date)) return undefined;
    ms = date - Date.now();
  }
  return Math.min(Math.max(ms, 0), cap);
}

export class RegistryClient {
  readonly keychain: Keychain;
  readonly retryPolicy: RetryPolicy;
  readonly timeoutMs: number;
  readonly chunkSize: number;
  readonly #insecure: string[];
  readonly #extraCAs: string[];
  readonly #certsDir: string | undefined;
  readonly #userAgent: string;
  readonly #logger: ((event: RegistryEvent) => void) | undefined;
  readonly #signal: AbortSignal | undefined;
  readonly #redactor = new SecretRedactor();
  readonly #tokens = new TokenCache();
  readonly #endpoints = new Map<string, Promise<Endpoint>>();
  readonly #auth = new Map<string, AuthState>();
  readonly #dispatchers: Dispatcher[] = [];

  constructor(options: RegistryClientOptions = {}) {
    const env = options.env ?? process.env;
    this.keychain = options.keychain ?? defaultKeychain(env);
    this.#insecure = options.insecureRegistries ?? parseInsecureRegistries(env.CNB_INSECURE_REGISTRIES);
    const ca = options.ca === undefined ? [] : Array.isArray(options.ca) ? options.ca : [options.ca];
    const caFiles = options.caFile === undefined ? [] : Array.isArray(options.caFile) ? options.caFile : [options.caFile];
    this.#extraCAs = [...ca, ...caFiles.map((file) => readFileSync(file, 'utf8'))];
    this.#certsDir = options.certsDir;
    this.retryPolicy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.chunkSize = options.chunkSize ?? 0;
    this.#userAgent = options.userAgent ?? 'cnb-extender';
    this.#logger = options.logger;
    this.#signal = options.signal;
  }

  /** Release pooled connections. */
  async close(): Promise<void> {
    await Promise.all(this.#dispatchers.splice(0).map((d) => d.close().catch(() => {})));
  }

  /** Redact every secret this client has handled from a string (for callers' own logs). */
  redact(text: string): string {
    return this.#redactor.redact(text);
  }

  isInsecure(registry: string): boolean {
    const host = registryHostname(registry);
    return this.#insecure.some((entry) => entry === registry || entry === host);
  }

  // ---------------------------------------------------------------- endpoint

  /** Check the registry speaks distribution v2 (`GET /v2/`), learning its scheme and auth challenge. */
  async ping(registry: string): Promise<{ url: string; status: number; authScheme?: string }> {
    await this.#endpoint(registry);
    const response = await this.request({
      what: `pinging ${registry}`,
      registry,
      method: 'GET',
      url: '/v2/',
      expect: [200],
    });
    await response.body?.cancel();
    const state = this.#auth.get(registry);
    const out: { url: string; status: number; authScheme?: string } = { url: response.url, status: response.status };
    if (state?.challenge) out.authScheme = state.challenge.scheme;
    return out;
  }

  #endpoint(registry: string): Promise<Endpoint> {
    let endpoint = this.#endpoints.get(registry);
    if (!endpoint) {
      endpoint = this.#probeEndpoint(registry);
      this.#endpoints.set(registry, endpoint);
      endpoint.catch(() => this.#endpoints.delete(registry));
    }
    return endpoint;
  }

  async #probeEndpoint(registry: string): Promise<Endpoint> {
    const insecure = this.isInsecure(registry);
    const host = registryEndpoint(registry);
    const cas = [...this.#extraCAs, ...(this.#certsDir ? certsDirCAs(this.#certsDir, registry) : [])];
    let dispatcher: Dispatcher | undefined;
    try {
      dispatcher = createDispatcher({ ca: cas, verify: !insecure });
    } catch (error) {
      throw new RegistryError(`connecting to ${registry}: ${(error as Error).message}`, { registry });
    }
    if (dispatcher) this.#dispatchers.push(dispatcher);
    const schemes = insecure || isLoopbackRegistry(registry) ? ['https', 'http'] : ['https'];
    for (const scheme of schemes) {
      const base = `${scheme}://${host}`;
      const endpoint: Endpoint = { base, dispatcher: scheme === 'https' ? dispatcher : undefined, verifies: !insecure };
      try {
        const response = await this.#fetchOnce(endpoint, `${base}/v2/`, { method: 'GET', headers: {} }, 1);
        this.#learnChallenge(registry, response.headers.get('www-authenticate'));
        await response.body?.cancel();
        this.#logger?.({ type: 'endpoint', registry, url: base });
        return endpoint;
      } catch (error) {
        const codes = errorCodes(error);
        if (scheme === 'https' && codes.some((c) => CERTIFICATE_CODES.test(c))) {
          throw new RegistryError(
            `connecting to ${registry}: TLS certificate not trusted (${codes.find((c) => CERTIFICATE_CODES.test(c))}); ` +
              'trust its CA (ca, caFile or certsDir) or list it in CNB_INSECURE_REGISTRIES',
            { registry, codes },
            { cause: this.#redactor.sanitize(error) },
          );
        }
        if (this.#isAborted()) throw this.#abortError(registry);
      }
    }
    // No scheme answered: let this request retry with backoff on the last scheme,
    // and probe again next time (the registry may be starting).
    queueMicrotask(() => this.#endpoints.delete(registry));
    const base = `${schemes.at(-1)}://${host}`;
    return { base, dispatcher: base.startsWith('https:') ? dispatcher : undefined, verifies: !insecure };
  }

  #learnChallenge(registry: string, header: string | null): Challenge | undefined {
    const challenges = parseChallenges(header);
    const challenge = challenges.find((c) => c.scheme === 'bearer') ?? challenges.find((c) => c.scheme === 'basic');
    if (challenge) {
      const state = this.#authState(registry);
      state.challenge = challenge;
    }
    return challenge;
  }

  #authState(registry: string): AuthState {
    let state = this.#auth.get(registry);
    if (!state) {
      state = {};
      this.#auth.set(registry, state);
    }
    return state;
  }

  #credential(registry: string): Promise<Credential | undefined> {
    const state = this.#authState(registry);
    state.credential ??= this.keychain.resolve(registry).then(
      (credential) => {
        this.#redactor.add(...credentialSecrets(credential));
        return credential;
      },
      (error: unknown) => {
        state.credential = undefined;
        throw new RegistryAuthError(
          `getting credentials for ${registry}: ${this.#redactor.redact((error as Error).message)}`,
          { registry },
          { cause: this.#redactor.sanitize(error) },
        );
      },
    );
    return state.credential;
  }

  // -------------------------------------------------------------------- auth

  /**
   * The Authorization header for a request. `retryScope` is given when answering
   * a 401: the token is fetched anew, for our scopes plus the challenge's.
   */
  async #authorization(spec: RegistryRequest, retry: { scope: string | undefined } | undefined): Promise<string | undefined> {
    const state = this.#auth.get(spec.registry);
    const challenge = state?.challenge;
    if (!challenge) return undefined;
    const credential = await this.#credential(spec.registry);
    if (challenge.scheme === 'basic') {
      if (credential?.kind === 'basic') return basicHeader(credential);
      if (credential?.kind === 'bearer') return `Bearer ${credential.token}`;
      return undefined;
    }
    if (challenge.scheme !== 'bearer') return undefined;
    if (credential?.kind === 'bearer') return `Bearer ${credential.token}`;
    const realm = challenge.params.realm;
    if (!realm) return undefined;
    const scopes = mergeScopes([...(spec.scopes ?? []), ...(retry?.scope ? [retry.scope] : [])]);
    const service = challenge.params.service;
    const key = this.#tokens.key(spec.registry, { realm, service, scopes });
    if (retry) this.#tokens.invalidate(key);
    const token = await this.#tokens.obtain(key, () => {
      this.#logger?.({ type: 'auth', registry: spec.registry, scheme: 'bearer', scopes, credential: credential?.kind ?? 'anonymous' });
      return this.#fetchToken(spec, { realm, service, scopes, credential });
    });
    return `Bearer ${token}`;
  }

  async #fetchToken(
    spec: RegistryRequest,
    request: { realm: string; service: string | undefined; scopes: string[]; credential: Credential | undefined },
  ): Promise<{ token: string; expiresInSeconds: number }> {
    let realmUrl: URL;
    try {
      realmUrl = new URL(request.realm);
    } catch {
      throw new RegistryAuthError(`authenticating to ${spec.registry}: token realm is not a URL`, this.#info(spec));
    }
    const { url, init } = tokenRequestInit(request, this.#userAgent);
    const what = `authenticating to ${spec.registry} for ${request.scopes.join(' ') || 'registry access'} at ${realmUrl.origin}${realmUrl.pathname}`;
    const response = await this.request({
      what,
      registry: spec.registry,
      ...(spec.repository === undefined ? {} : { repository: spec.repository }),
      method: init.method ?? 'GET',
      url,
      headers: init.headers as Record<string, string>,
      ...(init.body === undefined ? {} : { body: () => init.body as string }),
      expect: [200],
      noAuth: true,
    });
    let parsed: unknown;
    try {
      parsed = JSON.parse(new TextDecoder().decode(await readAll(response.body, 1 << 20)));
    } catch {
      parsed = undefined;
    }
    const token = readTokenResponse(parsed);
    if (!token) throw new RegistryAuthError(`${what}: the token service's answer has no token`, this.#info(spec));
    this.#redactor.add(token.token);
    return token;
  }

  // ----------------------------------------------------------------- request

  #info(spec: { registry: string; repository?: string }, extra: { status?: number; codes?: string[]; retryable?: boolean } = {}) {
    return { registry: spec.registry, ...(spec.repository === undefined ? {} : { repository: spec.repository }), ...extra };
  }

  #isAborted(): boolean {
    return this.#signal?.aborted ?? false;
  }

  #abortError(registry: string): RegistryError {
    return new RegistryError(`talking to ${registry}: cancelled`, { registry });
  }

  /** One fetch with the inactivity timer; the response body keeps the timer alive until it ends. */
  async #fetchOnce(
    endpoint: Endpoint,
    url: string,
    init: { method: string; headers: Record<string, string>; body?: (touch: () => void) => RequestBody | Promise<RequestBody> },
    attempt: number,
  ): Promise<RegistryResponse> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const stop = () => {
      if (timer) clearTimeout(timer);
      timer = undefined;
    };
    const touch = () => {
      stop();
      timer = setTimeout(() => controller.abort(new IdleTimeoutError(`no progress for ${this.timeoutMs} ms`)), this.timeoutMs);
    };
    const signal = this.#signal ? AbortSignal.any([controller.signal, this.#signal]) : controller.signal;
    touch();
    this.#logger?.({ type: 'request', method: init.method, url: urlForLog(url), attempt });
    let body: RequestBody | undefined;
    try {
      body = init.body ? await init.body(touch) : undefined;
      const requestInit: RequestInit & { duplex?: 'half' } = {
        method: init.method,
        headers: { 'user-agent': this.#userAgent, ...init.headers },
        redirect: 'follow',
        signal,
      };
      if (body !== undefined) {
        requestInit.body = body;
        if (body instanceof ReadableStream) requestInit.duplex = 'half';
      }
      if (endpoint.dispatcher && (url.startsWith(`${endpoint.base}/`) || (endpoint.verifies && url.startsWith('https:')))) {
        (requestInit as { dispatcher?: unknown }).dispatcher = endpoint.dispatcher;
      }
      const response = await fetch(url, requestInit);
      this.#logger?.({ type: 'response', method: init.method, url: urlForLog(url), status: response.status, attempt });
      touch();
      const out: RegistryResponse = {
        status: response.status,
        statusText: response.statusText,
        headers: response.headers,
        url: response.url || url,
        body: response.body ? tap(response.body, touch, stop) : null,
      };
      if (!response.body) stop();
      return out;
    } catch (error) {
      stop();
      // Release a source stream fetch never read (an open file, say).
      if (body instanceof ReadableStream && !body.locked) await body.cancel().catch(() => {});
      if (controller.signal.aborted && controller.signal.reason instanceof IdleTimeoutError) throw controller.signal.reason;
      throw error;
    }
  }

  /**
   * Send a request with auth, retries and timeouts. Resolves with a response whose
   * status is in `spec.expect`; anything else becomes a RegistryError.
   */
  async request(spec: RegistryRequest): Promise<RegistryResponse> {
    const endpoint = await this.#endpoint(spec.registry);
    const url = typeof spec.url === 'string' && spec.url.startsWith('/') ? `${endpoint.base}${spec.url}` : String(spec.url);
    const policy = this.retryPolicy;
    const attempts = spec.retry === false ? 1 : Math.max(1, policy.attempts);
    for (let attempt = 1; ; attempt++) {
      if (this.#isAborted()) throw this.#abortError(spec.registry);
      let response: RegistryResponse;
      try {
        response = await this.#sendWithAuth(endpoint, url, spec, attempt);
      } catch (error) {
        if (error instanceof RegistryError) throw error;
        if (this.#isAborted()) throw this.#abortError(spec.registry);
        const { codes, retryable } = judgeFailure(error);
        if (retryable && attempt < attempts) {
          const delayMs = this.#backoff(attempt);
          this.#logger?.({ type: 'retry', method: spec.method, url: urlForLog(url), attempt, delayMs, reason: codes[0] ?? 'network error' });
          await pause(delayMs, this.#signal);
          continue;
        }
        const tries = attempts > 1 && retryable ? ` (after ${attempt} attempts)` : '';
        throw new RegistryError(
          `${spec.what}: ${this.#redactor.redact(describeNetworkError(error))}${tries}`,
          this.#info(spec, { codes, retryable }),
          { cause: this.#redactor.sanitize(error) },
        );
      }
      if (spec.expect.includes(response.status)) return response;
      if (RETRYABLE_STATUS.has(response.status) && attempt < attempts) {
        const delayMs = parseRetryAfter(response.headers.get('retry-after'), policy.maxRetryAfterMs) ?? this.#backoff(attempt);
        await response.body?.cancel().catch(() => {});
        this.#logger?.({ type: 'retry', method: spec.method, url: urlForLog(url), attempt, delayMs, reason: `HTTP ${response.status}` });
        await pause(delayMs, this.#signal);
        continue;
      }
      throw await this.#httpError(spec, response, attempt);
    }
  }

  #backoff(attempt: number): number {
    return backoffDelay(this.retryPolicy, attempt);
  }

  async #sendWithAuth(endpoint: Endpoint, url: string, spec: RegistryRequest, attempt: number): Promise<RegistryResponse> {
    const send = (authorization: string | undefined) => {
      const headers: Record<string, string> = { ...spec.headers };
      if (authorization) headers.authorization = authorization;
      const init: { method: string; headers: Record<string, string>; body?: (touch: () => void) => RequestBody | Promise<RequestBody> } = {
        method: spec.method,
        headers,
      };
      if (spec.body) init.body = spec.body;
      return this.#fetchOnce(endpoint, url, init, attempt);
    };
    if (spec.noAuth) return send(undefined);
    const first = await this.#authorization(spec, undefined);
    const response = await send(first);
    if (response.status !== 401) return response;
    const challenge = this.#learnChallenge(spec.registry, response.headers.get('www-authenticate'));
    if (!challenge) return response;
    const second = await this.#authorization(spec, { scope: challenge.params.scope });
    if (!second || (second === first && challenge.scheme === 'basic')) return response;
    await response.body?.cancel().catch(() => {});
    return send(second);
  }

  async #httpError(spec: RegistryRequest, response: RegistryResponse, attempt: number): Promise<RegistryError> {
    let text = '';
    try {
      text = new TextDecoder().decode(await readAll(response.body, 64 * 1024));
    } catch {
      await response.body?.cancel().catch(() => {});
    }
    const codes: string[] = [];
    const details: string[] = [];
    try {
      const parsed = JSON.parse(text) as { errors?: { code?: string; message?: string }[]; details?: string };
      for (const e of parsed.errors ?? []) {
        if (e.code) codes.push(e.code);
        details.push([e.code, e.message].filter(Boolean).join(': '));
      }
      if (!details.length && typeof parsed.details === 'string') details.push(parsed.details);
    } catch {
      const line = text.trim().split('\n')[0]?.slice(0, 200);
      if (line && response.status !== 401) details.push(line);
    }
    const status = response.status;
    let message = `${spec.what}: HTTP ${status}${response.statusText ? ` ${response.statusText}` : ''}`;
    if (details.length) message += ` (${details.join('; ')})`;
    if (attempt > 1) message += ` after ${attempt} attempts`;
    const info = this.#info(spec, { status, codes, retryable: RETRYABLE_STATUS.has(status) });
    if (status === 401 || status === 403) {
      const credential = spec.noAuth && !spec.headers?.authorization ? undefined : await this.#credential(spec.registry).catch(() => undefined);
      const hint =
        status === 403
          ? 'access denied'
          : credential
            ? `the credentials for ${spec.registry} were rejected`
            : `authentication required and no credentials for ${spec.registry} were found (CNB_REGISTRY_AUTH, docker config)`;
      return new RegistryAuthError(this.#redactor.redact(`${message}: ${hint}`), info);
    }
    if (status === 404) return new NotFoundError(this.#redactor.redact(message), info);
    return new RegistryError(this.#redactor.redact(message), info);
  }

  // --------------------------------------------------------------- manifests

  async headManifest(ref: ImageReference, options: { accept?: readonly string[] } = {}): Promise<Descriptor | undefined> {
    const reference = this.#manifestReference(ref);
    const what = `checking manifest ${reference} in ${ref.registry}/${ref.repository}`;
    const response = await this.request({
      what,
      registry: ref.registry,
      repository: ref.repository,
      method: 'HEAD',
      url: `/v2/${ref.repository}/manifests/${reference}`,
      headers: { accept: (options.accept ?? MANIFEST_ACCEPT).join(', ') },
      expect: [200, 404],
      scopes: [{ repository: ref.repository, actions: ['pull'] }],
    });
    await response.body?.cancel().catch(() => {});
    if (response.status === 404) return undefined;
    const digest = response.headers.get('docker-content-digest');
    const size = Number(response.headers.get('content-length'));
    const mediaType = response.headers.get('content-type')?.split(';')[0]?.trim();
    if (!digest || !Number.isFinite(size) || !mediaType) {
      // Some registries omit these on HEAD; fall back to GET.
      return (await this.getManifest(ref, options)).descriptor;
    }
    if (ref.digest && digest !== ref.digest) {
      throw new DigestMismatchError(`${what}: registry reports digest ${digest}`, this.#info(ref));
    }
    return { mediaType, digest: digest as Digest, size };
  }

  async getManifest(ref: ImageReference, options: { accept?: readonly string[] } = {}): Promise<ManifestResult> {
    const reference = this.#manifestReference(ref);
    const what = `pulling manifest ${reference} from ${ref.registry}/${ref.repository}`;
    const response = await this.request({
      what,
      registry: ref.registry,
      repository: ref.repository,
      method: 'GET',
      url: `/v2/${ref.repository}/manifests/${reference}`,
      headers: { accept: (options.accept ?? MANIFEST_ACCEPT).join(', ') },
      expect: [200],
      scopes: [{ repository: ref.repository, actions: ['pull'] }],
    });
    let bytes: Uint8Array;
    try {
      bytes = await readAll(response.body, MANIFEST_SIZE_LIMIT);
    } catch (error) {
      throw new RegistryError(`${what}: ${describeNetworkError(error)}`, this.#info(ref), { cause: this.#redactor.sanitize(error) });
    }
    const digest = sha256(bytes);
    if (ref.digest && digest !== ref.digest) {
      throw new DigestMismatchError(`${what}: content has digest ${digest}`, this.#info(ref));
    }
    try {
      const headerType = response.headers.get('content-type')?.split(';')[0]?.trim();
      const { mediaType, manifest } = checkManifestDocument(parseJsonDocument(bytes), headerType);
      return { descriptor: { mediaType, digest, size: bytes.byteLength }, bytes, manifest };
    } catch (error) {
      if (!(error instanceof ShapeError)) throw error;
      throw new MalformedContentError(`reading manifest of ${formatReference(ref)}: ${error.message}`, this.#info(ref));
    }
  }

  /** Upload a manifest under a tag or its digest; checks the registry computed the same digest. */
  async putManifest(repo: RepositoryRef, reference: string, bytes: Uint8Array, mediaType: string): Promise<Descriptor> {
    const digest = sha256(bytes);
    const what = `pushing manifest ${digest} as ${reference} to ${repo.registry}/${repo.repository}`;
    const response = await this.request({
      what,
      registry: repo.registry,
      repository: repo.repository,
      method: 'PUT',
      url: `/v2/${repo.repository}/manifests/${reference}`,
      headers: { 'content-type': mediaType },
      body: () => bytes,
      expect: [201, 200],
      scopes: [{ repository: repo.repository, actions: ['pull', 'push'] }],
    });
    await response.body?.cancel().catch(() => {});
    const reported = response.headers.get('docker-content-digest');
    if (reported && reported !== digest) {
      throw new DigestMismatchError(`${what}: registry stored it as ${reported}`, this.#info(repo));
    }
    return { mediaType, digest, size: bytes.byteLength };
  }

  /**
   * Follow a reference to an image manifest: an index is resolved to the entry
   * for `platform` (default: this host's), nested indexes included.
   */
  async resolveImage(ref: ImageReference, platform: Platform = hostPlatform()): Promise<ResolvedImage> {
    let current = await this.getManifest(ref);
    let index: ManifestResult | undefined;
    for (let depth = 0; isIndexMediaType(current.descriptor.mediaType) || 'manifests' in current.manifest; depth++) {
      if (depth > 4) throw new RegistryError(`resolving ${formatReference(ref)}: indexes nested too deeply`, this.#info(ref));
      index ??= current;
      const entries = (current.manifest as ImageIndex).manifests ?? [];
      const candidates = entries.filter((d) => platformMatches(d.platform, platform));
      const chosen =
        candidates.find((d) => (d.platform?.variant ?? undefined) === platform.variant) ?? candidates[0];
      if (!chosen) {
        const available = entries.map((d) => (d.platform ? platformString(d.platform) : 'unknown')).join(', ');
        throw new NotFoundError(
          `resolving ${formatReference(ref)}: no manifest for platform ${platformString(platform)} (index has: ${available || 'nothing'})`,
          this.#info(ref),
        );
      }
      current = await this.getManifest({ registry: ref.registry, repository: ref.repository, digest: chosen.digest });
      current.descriptor = { ...current.descriptor, mediaType: chosen.mediaType || current.descriptor.mediaType, ...(chosen.platform ? { platform: chosen.platform } : {}) };
    }
    const result: ResolvedImage = { ...current, manifest: current.manifest as ImageManifest };
    if (index) result.index = index;
    return result;
  }

  #manifestReference(ref: ImageReference): string {
    const reference = ref.digest ?? ref.tag;
    if (!reference) throw new RegistryError(`${ref.registry}/${ref.repository}: reference has neither tag nor digest`, this.#info(ref));
    return reference;
  }

  // ------------------------------------------------------------------- blobs

  /** HEAD a blob: its size when the repository has it, undefined when not. */
  async blobExists(repo: RepositoryRef, digest: Digest): Promise<{ size: number } | undefined> {
    const response = await this.request({
      what: `checking blob ${digest} in ${repo.registry}/${repo.repository}`,
      registry: repo.registry,
      repository: repo.repository,
      method: 'HEAD',
      url: `/v2/${repo.repository}/blobs/${digest}`,
      expect: [200, 404],
      scopes: [{ repository: repo.repository, actions: ['pull'] }],
    });
    await response.body?.cancel().catch(() => {});
    if (response.status === 404) return undefined;
    return { size: Number(response.headers.get('content-length') ?? NaN) };
  }

  /**
   * A blob's bytes as a stream. A body that breaks part-way is resumed with a
   * Range request (a registry that ignores Range is read again from the start,
   * skipping what was passed on), within the retry policy's attempts. The
   * stream errors at its end with a DigestMismatchError when the whole content
   * does not match the digest (or size).
   */
  async getBlob(repo: RepositoryRef, blob: Digest | Pick<Descriptor, 'digest' | 'size'>): Promise<ReadableStream<Uint8Array>> {
    const digest = typeof blob === 'string' ? blob : blob.digest;
    const size = typeof blob === 'string' ? undefined : blob.size;
    const what = `pulling blob ${digest} from ${repo.registry}/${repo.repository}`;
    const open = async (offset: number) => {
      const response = await this.request({
        what,
        registry: repo.registry,
        repository: repo.repository,
        method: 'GET',
        url: `/v2/${repo.repository}/blobs/${digest}`,
        // Ranges count bytes of the blob itself, not of a compressed transfer.
        headers: { 'accept-encoding': 'identity', ...(offset > 0 ? { range: `bytes=${offset}-` } : {}) },
        expect: offset > 0 ? [200, 206] : [200],
        scopes: [{ repository: repo.repository, actions: ['pull'] }],
      });
      const start = response.status === 206 ? contentRangeStart(response.headers.get('content-range')) : 0;
      if (start === undefined) {
        await response.body?.cancel().catch(() => {});
        throw new RegistryError(`${what}: HTTP 206 without a readable Content-Range`, this.#info(repo, { status: 206 }));
      }
      return { body: response.body ?? toWebStream(new Uint8Array(0)), start };
    };
    const resumed = resumingStream((await open(0)).body, {
      attempts: Math.max(1, this.retryPolicy.attempts),
      delayMs: (attempt) => this.#backoff(attempt),
      retryable: (error) => judgeFailure(error).retryable,
      reopen: open,
      signal: this.#signal,
      onRetry: ({ attempt, offset, delayMs, error }) => {
        const reason = `${judgeFailure(error).codes[0] ?? 'network error'}; resuming at byte ${offset}`;
        this.#logger?.({ type: 'retry', method: 'GET', url: `${repo.registry}/${repo.repository} blob ${digest}`, attempt, delayMs, reason });
      },
      fail: (error, { attempts, received }) => {
        if (this.#isAborted()) return this.#abortError(repo.registry);
        if (error instanceof RegistryError) return error;
        const tries = attempts > 1 ? ` (after ${attempts} attempts, ${received}${size === undefined ? '' : ` of ${size}`} bytes received)` : '';
        const { codes, retryable } = judgeFailure(error);
        return new RegistryError(`${what}: ${this.#redactor.redact(describeNetworkError(error))}${tries}`, this.#info(repo, { codes, retryable }), {
          cause: this.#redactor.sanitize(error),
        });
      },
    });
    const expected: { digest: Digest; size?: number } = { digest };
    if (size !== undefined) expected.size = size;
    const verified = verifyingStream(resumed, expected, (actual) =>
      new DigestMismatchError(
        actual.digest === digest
          ? `${what}: received more than the expected ${size} bytes`
          : `${what}: received ${actual.size} bytes with digest ${actual.digest}`,
        this.#info(repo),
      ),
    );
    // Anything else failing while the body streams becomes a RegistryError too.
    return mapStreamErrors(verified, (error) =>
      error instanceof RegistryError
        ? error
        : new RegistryError(`${what}: ${this.#redactor.redact(describeNetworkError(error))}`, this.#info(repo, judgeFailure(error)), {
            cause: this.#redactor.sanitize(error),
          }),
    );
  }

  /** A whole blob in memory (configs, small files), verified. */
  async getBlobBytes(repo: RepositoryRef, blob: Digest | Pick<Descriptor, 'digest' | 'size'>): Promise<Uint8Array> {
    return readAll(await this.getBlob(repo, blob));
  }

  /** Cross-repository mount; true when the registry mounted it (201), false otherwise. */
  async mountBlob(repo: RepositoryRef, digest: Digest, fromRepository: string): Promise<boolean> {
    const query = new URLSearchParams({ mount: digest, from: fromRepository });
    const response = await this.request({
      what: `mounting blob ${digest} from ${fromRepository} into ${repo.registry}/${repo.repository}`,
      registry: repo.registry,
      repository: repo.repository,
      method: 'POST',
      url: `/v2/${repo.repository}/blobs/uploads/?${query}`,
      headers: { 'content-length': '0' },
      expect: [201, 202],
      scopes: [
        { repository: repo.repository, actions: ['pull', 'push'] },
        { repository: fromRepository, actions: ['pull'] },
      ],
    });
    await response.body?.cancel().catch(() => {});
    if (response.status === 201) return true;
    // The registry started an upload instead; abandon it.
    const location = response.headers.get('location');
    if (location) {
      await this.request({
        what: `cancelling upload in ${repo.registry}/${repo.repository}`,
        registry: repo.registry,
        repository: repo.repository,
        method: 'DELETE',
        url: new URL(location, response.url).toString(),
        expect: [200, 202, 204, 404],
        retry: false,
        scopes: [{ repository: repo.repository, actions: ['pull', 'push'] }],
      })
        .then((r) => r.body?.cancel())
        .catch(() => {});
    }
    return false;
  }

  /**
   * Make sure a repository has a blob: skip it when it is there, mount it from
   * another repository when possible, else upload it (one PUT, or PATCH chunks).
   * An upload that fails retryably (a reset or timeout part-way, 429, 5xx) is
   * started over from a fresh body. A failure of the body's own source is not
   * retried: it is reported as reading the content.
   */
  async pushBlob(repo: RepositoryRef, descriptor: Pick<Descriptor, 'digest' | 'size'>, body: BlobBody, options: PushBlobOptions = {}): Promise<BlobPushResult> {
    const { digest } = descriptor;
    if (!options.skipExistenceCheck && (await this.blobExists(repo, digest))) return 'exists';
    for (const from of options.mountFrom ?? []) {
      if (from === repo.repository) continue;
      if (await this.mountBlob(repo, digest, from)) return 'mounted';
    }
    const chunkSize = options.chunkSize ?? this.chunkSize;
    const attempts = Math.max(1, this.retryPolicy.attempts);
    for (let attempt = 1; ; attempt++) {
      const source = watchedSource(body);
      try {
        await this.#uploadOnce(repo, descriptor, source.open, chunkSize);
        return 'uploaded';
      } catch (caught) {
        const failed = source.failure();
        const error = failed
          ? new RegistryError(
              `pushing blob ${digest} to ${repo.registry}/${repo.repository}: reading its content: ${this.#redactor.redact(describeNetworkError(failed.error))}`,
              this.#info(repo),
              { cause: this.#redactor.sanitize(failed.error) },
            )
          : caught;
        if (!(error instanceof RegistryError) || !error.retryable || attempt >= attempts || this.#isAborted()) throw error;
        const delayMs = this.#backoff(attempt);
        this.#logger?.({ type: 'retry', method: 'PUT', url: `${repo.registry}/${repo.repository} blob ${digest}`, attempt, delayMs, reason: error.status ? `HTTP ${error.status}` : (error.codes[0] ?? 'network error') });
        await pause(delayMs, this.#signal);
      }
    }
  }

  async #uploadOnce(
    repo: RepositoryRef,
    descriptor: Pick<Descriptor, 'digest' | 'size'>,
    open: () => Promise<ReadableStream<Uint8Array>>,
    chunkSize: number,
  ): Promise<void> {
    const { digest, size } = descriptor;
    const scopes: Scope[] = [{ repository: repo.repository, actions: ['pull', 'push'] }];
    const what = `pushing blob ${digest} to ${repo.registry}/${repo.repository}`;
    const started = await this.request({
      what,
      registry: repo.registry,
      repository: repo.repository,
      method: 'POST',
      url: `/v2/${repo.repository}/blobs/uploads/`,
      headers: { 'content-length': '0' },
      expect: [202],
      scopes,
    });
    await started.body?.cancel().catch(() => {});
    let location = this.#location(started, what, repo);

    if (chunkSize <= 0 || size <= chunkSize) {
      const url = new URL(location);
      url.searchParams.set('digest', digest);
      const done = await this.request({
        what,
        registry: repo.registry,
        repository: repo.repository,
        method: 'PUT',
        url,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
        body: async (touch) => tap(await open(), touch),
        expect: [201],
        scopes,
        retry: false,
      });
      await done.body?.cancel().catch(() => {});
      this.#checkUploadDigest(done, digest, what, repo);
      return;
    }

    let offset = 0;
    for await (const chunk of rechunk(await open(), chunkSize)) {
      const response = await this.request({
        what: `${what} (bytes ${offset}-${offset + chunk.byteLength - 1})`,
        registry: repo.registry,
        repository: repo.repository,
        method: 'PATCH',
        url: location,
        headers: {
          'content-type': 'application/octet-stream',
          'content-length': String(chunk.byteLength),
          'content-range': `${offset}-${offset + chunk.byteLength - 1}`,
        },
        body: () => chunk,
        expect: [202],
        scopes,
        retry: false,
      });
      await response.body?.cancel().catch(() => {});
      location = this.#location(response, what, repo);
      offset += chunk.byteLength;
    }
    if (offset !== size) {
      throw new DigestMismatchError(`${what}: the source had ${offset} bytes, the descriptor says ${size}`, this.#info(repo));
    }
    const url = new URL(location);
    url.searchParams.set('digest', digest);
    const done = await this.request({
      what,
      registry: repo.registry,
      repository: repo.repository,
      method: 'PUT',
      url,
      headers: { 'content-length': '0' },
      expect: [201],
      scopes,
      retry: false,
    });
    await done.body?.cancel().catch(() => {});
    this.#checkUploadDigest(done, digest, what, repo);
  }

  #location(response: RegistryResponse, what: string, repo: RepositoryRef): string {
    const location = response.headers.get('location');
    if (!location) throw new RegistryError(`${what}: the registry gave no upload location`, this.#info(repo, { status: response.status }));
    return new URL(location, response.url).toString();
  }

  #checkUploadDigest(response: RegistryResponse, digest: Digest, what: string, repo: RepositoryRef): void {
    const reported = response.headers.get('docker-content-digest');
    if (reported && reported !== digest) {
      throw new DigestMismatchError(`${what}: registry stored it as ${reported}`, this.#info(repo));
    }
  }

  /** Tags of a repository (`GET /v2/<name>/tags/list`), following pagination. */
  async listTags(repo: RepositoryRef): Promise<string[]> {
    const tags: string[] = [];
    let next: string | undefined = `/v2/${repo.repository}/tags/list`;
    while (next) {
      const response: RegistryResponse = await this.request({
        what: `listing tags of ${repo.registry}/${repo.repository}`,
        registry: repo.registry,
        repository: repo.repository,
        method: 'GET',
        url: next,
        expect: [200, 404],
        scopes: [{ repository: repo.repository, actions: ['pull'] }],
      });
      if (response.status === 404) {
        await response.body?.cancel().catch(() => {});
        return [];
      }
      const parsed = JSON.parse(new TextDecoder().decode(await readAll(response.body, 16 << 20))) as { tags?: string[] | null };
      tags.push(...(parsed.tags ?? []));
      const link = response.headers.get('link');
      const match = link ? /<([^>]+)>;\s*rel="?next"?/.exec(link) : null;
      next = match ? new URL(match[1]!, response.url).toString() : undefined;
    }
    return tags;
  }
}
