/**
 * The registry client's transport: which endpoint a registry answers on
 * (HTTPS, or plain HTTP for loopback and insecure registries), one fetch with
 * an inactivity timer, retries with backoff, authorization on every attempt,
 * and HTTP failures turned into RegistryErrors.
 */
import { readFileSync } from 'node:fs';
import { registryEndpoint, registryHostname } from '../reference.ts';
import { RegistryAuthorizer } from './authorizer.ts';
import { defaultKeychain, type Keychain } from './credentials.ts';
import { NotFoundError, RegistryAuthError, RegistryError, SecretRedactor, describeNetworkError, errorCodes } from './errors.ts';
import { DEFAULT_RETRY_POLICY, RETRYABLE_STATUS, backoffDelay, judgeFailure, pause, type RetryPolicy } from './retry.ts';
import { errorInfo, type RegistryEvent, type RegistryRequest, type RegistryResponse, type RequestBody } from './request.ts';
import { readAll, tap } from './streams.ts';
import { certsDirCAs, createDispatcher, type Dispatcher } from './tls.ts';

type FetchInit = { method: string; headers: Record<string, string>; body?: (touch: () => void) => RequestBody | Promise<RequestBody> };

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

interface Endpoint {
  base: string;
  /** TLS settings for this registry (extra CAs, or no verification when insecure). */
  dispatcher: Dispatcher | undefined;
  /** Whether the dispatcher verifies certificates (then it may serve other hosts too, like a token realm). */
  verifies: boolean;
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

function asList(value: string | string[] | undefined): string[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

/** Codes and details of an HTTP error body: distribution's `errors` list, else the first line of text. */
async function readErrorBody(response: RegistryResponse): Promise<{ codes: string[]; details: string[] }> {
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
  return { codes, details };
}

export class RegistryTransport {
  readonly keychain: Keychain;
  readonly retryPolicy: RetryPolicy;
  readonly timeoutMs: number;
  readonly redactor = new SecretRedactor();
  readonly logger: ((event: RegistryEvent) => void) | undefined;
  readonly signal: AbortSignal | undefined;
  readonly authorizer: RegistryAuthorizer;
  readonly #insecure: string[];
  readonly #extraCAs: string[];
  readonly #certsDir: string | undefined;
  readonly #userAgent: string;
  readonly #endpoints = new Map<string, Promise<Endpoint>>();
  readonly #dispatchers: Dispatcher[] = [];

  constructor(options: RegistryClientOptions) {
    const env = options.env ?? process.env;
    this.keychain = options.keychain ?? defaultKeychain(env);
    this.#insecure = options.insecureRegistries ?? parseInsecureRegistries(env.CNB_INSECURE_REGISTRIES);
    this.#extraCAs = [...asList(options.ca), ...asList(options.caFile).map((file) => readFileSync(file, 'utf8'))];
    this.#certsDir = options.certsDir;
    this.retryPolicy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.#userAgent = options.userAgent ?? 'cnb-extender';
    this.logger = options.logger;
    this.signal = options.signal;
    this.authorizer = new RegistryAuthorizer({
      keychain: this.keychain,
      redactor: this.redactor,
      userAgent: this.#userAgent,
      logger: this.logger,
      request: (spec) => this.request(spec),
    });
  }

  /** Release pooled connections. */
  async close(): Promise<void> {
    await Promise.all(this.#dispatchers.splice(0).map((d) => d.close().catch(() => {})));
  }

  isInsecure(registry: string): boolean {
    const host = registryHostname(registry);
    return this.#insecure.some((entry) => entry === registry || entry === host);
  }

  isAborted(): boolean {
    return this.signal?.aborted ?? false;
  }

  abortError(registry: string): RegistryError {
    return new RegistryError(`talking to ${registry}: cancelled`, { registry });
  }

  backoff(attempt: number): number {
    return backoffDelay(this.retryPolicy, attempt);
  }

  // ---------------------------------------------------------------- endpoint

  endpoint(registry: string): Promise<Endpoint> {
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
    const dispatcher = this.#dispatcher(registry, insecure);
    const schemes = insecure || isLoopbackRegistry(registry) ? ['https', 'http'] : ['https'];
    for (const scheme of schemes) {
      const base = `${scheme}://${host}`;
      const endpoint: Endpoint = { base, dispatcher: scheme === 'https' ? dispatcher : undefined, verifies: !insecure };
      try {
        const response = await this.#fetchOnce(endpoint, `${base}/v2/`, { method: 'GET', headers: {} }, 1);
        this.authorizer.learnChallenge(registry, response.headers.get('www-authenticate'));
        await response.body?.cancel();
        this.logger?.({ type: 'endpoint', registry, url: base });
        return endpoint;
      } catch (error) {
        if (scheme === 'https') this.#refuseUntrustedCertificate(registry, error);
        if (this.isAborted()) throw this.abortError(registry);
      }
    }
    // No scheme answered: let this request retry with backoff on the last scheme,
    // and probe again next time (the registry may be starting).
    queueMicrotask(() => this.#endpoints.delete(registry));
    const base = `${schemes.at(-1)}://${host}`;
    return { base, dispatcher: base.startsWith('https:') ? dispatcher : undefined, verifies: !insecure };
  }

  #dispatcher(registry: string, insecure: boolean): Dispatcher | undefined {
    const cas = [...this.#extraCAs, ...(this.#certsDir ? certsDirCAs(this.#certsDir, registry) : [])];
    let dispatcher: Dispatcher | undefined;
    try {
      dispatcher = createDispatcher({ ca: cas, verify: !insecure });
    } catch (error) {
      throw new RegistryError(`connecting to ${registry}: ${(error as Error).message}`, { registry });
    }
    if (dispatcher) this.#dispatchers.push(dispatcher);
    return dispatcher;
  }

  /** A certificate failure is not worth trying plain HTTP for: say how to trust it. */
  #refuseUntrustedCertificate(registry: string, error: unknown): void {
    const codes = errorCodes(error);
    const code = codes.find((c) => CERTIFICATE_CODES.test(c));
    if (code === undefined) return;
    throw new RegistryError(
      `connecting to ${registry}: TLS certificate not trusted (${code}); ` +
        'trust its CA (ca, caFile or certsDir) or list it in CNB_INSECURE_REGISTRIES',
      { registry, codes },
      { cause: this.redactor.sanitize(error) },
    );
  }

  // ----------------------------------------------------------------- request

  /** One fetch with the inactivity timer; the response body keeps the timer alive until it ends. */
  async #fetchOnce(endpoint: Endpoint, url: string, init: FetchInit, attempt: number): Promise<RegistryResponse> {
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
    const signal = this.signal ? AbortSignal.any([controller.signal, this.signal]) : controller.signal;
    touch();
    this.logger?.({ type: 'request', method: init.method, url: urlForLog(url), attempt });
    let body: RequestBody | undefined;
    try {
      body = init.body ? await init.body(touch) : undefined;
      const response = await fetch(url, this.#requestInit(endpoint, url, init, body, signal));
      this.logger?.({ type: 'response', method: init.method, url: urlForLog(url), status: response.status, attempt });
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

  #requestInit(endpoint: Endpoint, url: string, init: FetchInit, body: RequestBody | undefined, signal: AbortSignal): RequestInit {
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
    return requestInit;
  }

  /**
   * Send a request with auth, retries and timeouts. Resolves with a response whose
   * status is in `spec.expect`; anything else becomes a RegistryError.
   */
  async request(spec: RegistryRequest): Promise<RegistryResponse> {
    const endpoint = await this.endpoint(spec.registry);
    const url = typeof spec.url === 'string' && spec.url.startsWith('/') ? `${endpoint.base}${spec.url}` : String(spec.url);
    const policy = this.retryPolicy;
    const attempts = spec.retry === false ? 1 : Math.max(1, policy.attempts);
    for (let attempt = 1; ; attempt++) {
      if (this.isAborted()) throw this.abortError(spec.registry);
      let response: RegistryResponse;
      try {
        response = await this.#sendWithAuth(endpoint, url, spec, attempt);
      } catch (error) {
        if (error instanceof RegistryError) throw error;
        if (this.isAborted()) throw this.abortError(spec.registry);
        const { codes, retryable } = judgeFailure(error);
        if (retryable && attempt < attempts) {
          const delayMs = this.backoff(attempt);
          this.logger?.({ type: 'retry', method: spec.method, url: urlForLog(url), attempt, delayMs, reason: codes[0] ?? 'network error' });
          await pause(delayMs, this.signal);
          continue;
        }
        const tries = attempts > 1 && retryable ? ` (after ${attempt} attempts)` : '';
        throw new RegistryError(
          `${spec.what}: ${this.redactor.redact(describeNetworkError(error))}${tries}`,
          errorInfo(spec, { codes, retryable }),
          { cause: this.redactor.sanitize(error) },
        );
      }
      if (spec.expect.includes(response.status)) return response;
      if (RETRYABLE_STATUS.has(response.status) && attempt < attempts) {
        const delayMs = parseRetryAfter(response.headers.get('retry-after'), policy.maxRetryAfterMs) ?? this.backoff(attempt);
        await response.body?.cancel().catch(() => {});
        this.logger?.({ type: 'retry', method: spec.method, url: urlForLog(url), attempt, delayMs, reason: `HTTP ${response.status}` });
        await pause(delayMs, this.signal);
        continue;
      }
      throw await this.#httpError(spec, response, attempt);
    }
  }

  async #sendWithAuth(endpoint: Endpoint, url: string, spec: RegistryRequest, attempt: number): Promise<RegistryResponse> {
    const send = (authorization: string | undefined) => {
      const headers: Record<string, string> = { ...spec.headers };
      if (authorization) headers.authorization = authorization;
      const init: FetchInit = { method: spec.method, headers };
      if (spec.body) init.body = spec.body;
      return this.#fetchOnce(endpoint, url, init, attempt);
    };
    if (spec.noAuth) return send(undefined);
    const first = await this.authorizer.authorization(spec, undefined);
    const response = await send(first);
    if (response.status !== 401) return response;
    const challenge = this.authorizer.learnChallenge(spec.registry, response.headers.get('www-authenticate'));
    if (!challenge) return response;
    const second = await this.authorizer.authorization(spec, { scope: challenge.params.scope });
    if (!second || (second === first && challenge.scheme === 'basic')) return response;
    await response.body?.cancel().catch(() => {});
    return send(second);
  }

  async #httpError(spec: RegistryRequest, response: RegistryResponse, attempt: number): Promise<RegistryError> {
    const { codes, details } = await readErrorBody(response);
    const status = response.status;
    let message = `${spec.what}: HTTP ${status}${response.statusText ? ` ${response.statusText}` : ''}`;
    if (details.length) message += ` (${details.join('; ')})`;
    if (attempt > 1) message += ` after ${attempt} attempts`;
    const info = errorInfo(spec, { status, codes, retryable: RETRYABLE_STATUS.has(status) });
    if (status === 401 || status === 403) {
      const credential =
        spec.noAuth && !spec.headers?.authorization ? undefined : await this.authorizer.credential(spec.registry).catch(() => undefined);
      const hint =
        status === 403
          ? 'access denied'
          : credential
            ? `the credentials for ${spec.registry} were rejected`
            : `authentication required and no credentials for ${spec.registry} were found (CNB_REGISTRY_AUTH, docker config)`;
      return new RegistryAuthError(this.redactor.redact(`${message}: ${hint}`), info);
    }
    if (status === 404) return new NotFoundError(this.redactor.redact(message), info);
    return new RegistryError(this.redactor.redact(message), info);
  }
}
