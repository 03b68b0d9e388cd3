/**
 * Errors of the registry client. Every message names what was being done, the
 * registry and repository, and the HTTP status when there was one; none
 * carries a credential: messages pass through a redactor that knows every
 * secret the client has handled, and causes are replaced by sanitised copies.
 */

export interface RegistryErrorInfo {
  /** Registry name as in the reference (`127.0.0.1:5000`, `docker.io`). */
  registry: string;
  repository?: string;
  /** HTTP status of the failing response, when one arrived. */
  status?: number;
  /** Error codes from the registry's JSON error body (`BLOB_UNKNOWN`, `DENIED`, …). */
  codes?: string[];
  /** Whether another attempt could succeed (connection problems, 429, 5xx). */
  retryable?: boolean;
}

export class RegistryError extends Error {
  override name = 'RegistryError';
  readonly registry: string;
  readonly repository: string | undefined;
  readonly status: number | undefined;
  readonly codes: string[];
  readonly retryable: boolean;

  constructor(message: string, info: RegistryErrorInfo, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.registry = info.registry;
    this.repository = info.repository;
    this.status = info.status;
    this.codes = info.codes ?? [];
    this.retryable = info.retryable ?? false;
  }
}

/** 401/403 from the registry or its token service, or credentials that could not be obtained. */
export class RegistryAuthError extends RegistryError {
  override name = 'RegistryAuthError';
}

/** Content whose digest or size does not match what was asked for. */
export class DigestMismatchError extends RegistryError {
  override name = 'DigestMismatchError';
}

/**
 * A manifest, index or config whose JSON does not have the shape its kind
 * requires (a missing or mistyped field, a bad descriptor, a media type that
 * is not a manifest's). Never retryable: the content is what it is.
 */
export class MalformedContentError extends RegistryError {
  override name = 'MalformedContentError';
}

/** Manifest or platform not found where one was expected. */
export class NotFoundError extends RegistryError {
  override name = 'NotFoundError';
}

/** Problems with credential configuration (CNB_REGISTRY_AUTH, docker config, helpers). */
export class CredentialError extends Error {
  override name = 'CredentialError';
}

/**
 * Secret strings the client has seen (passwords, base64 `user:pass`, tokens).
 * `redact` replaces each with `***` so they cannot leak into messages or logs.
 */
export class SecretRedactor {
  #secrets = new Set<string>();

  add(...values: (string | undefined)[]): void {
    for (const value of values) {
      // Very short values would redact ordinary words; they are not secrets worth the name.
      if (value && value.length >= 4) this.#secrets.add(value);
    }
  }

  redact(text: string): string {
    let out = text;
    // Longest first, so a token containing a password is removed whole.
    for (const secret of [...this.#secrets].sort((a, b) => b.length - a.length)) {
      if (out.includes(secret)) out = out.split(secret).join('***');
    }
    return out.replace(/\b(Basic|Bearer)\s+[A-Za-z0-9._~+/=-]{8,}/g, '$1 ***');
  }

  /**
   * A copy of an error chain that keeps names, messages (redacted) and `code`s
   * but nothing else: request objects, headers or bodies hanging off a cause
   * never reach the caller.
   */
  sanitize(error: unknown, depth = 0): Error | undefined {
    if (error === undefined || error === null) return undefined;
    if (!(error instanceof Error)) return new Error(this.redact(String(error)));
    const cause = depth < 5 ? this.sanitize((error as { cause?: unknown }).cause, depth + 1) : undefined;
    const copy = new Error(this.redact(error.message), cause === undefined ? undefined : { cause });
    copy.name = error.name;
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string' || typeof code === 'number') (copy as Error & { code?: unknown }).code = code;
    if (error.stack) copy.stack = this.redact(error.stack);
    return copy;
  }
}

/** The innermost `code` of an error chain (`ECONNRESET`, `UND_ERR_SOCKET`, `DEPTH_ZERO_SELF_SIGNED_CERT`). */
export function errorCodes(error: unknown): string[] {
  const codes: string[] = [];
  let current: unknown = error;
  for (let i = 0; i < 8 && current instanceof Error; i++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') codes.push(code);
    current = (current as { cause?: unknown }).cause;
  }
  return codes;
}

/** Messages that only say "something below failed"; the cause says what. */
const GENERIC_MESSAGES = new Set(['fetch failed', 'terminated', 'This operation was aborted', 'The operation was aborted', '']);

/**
 * A short description of a failure under a request: the first message in the
 * cause chain that says more than "fetch failed", with the deepest error code.
 */
export function describeNetworkError(error: unknown): string {
  let current: unknown = error;
  let message: string | undefined;
  let code: string | undefined;
  for (let i = 0; i < 8 && current instanceof Error; i++) {
    if (message === undefined && !GENERIC_MESSAGES.has(current.message)) message = current.message;
    const c = (current as { code?: unknown }).code;
    if (typeof c === 'string') code = c;
    current = (current as { cause?: unknown }).cause;
  }
  message ??= error instanceof Error ? error.message || error.name : String(error);
  return code && !message.includes(code) ? `${message} (${code})` : message;
}
