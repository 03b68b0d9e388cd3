/**
 * When the registry client tries again: the retry policy, its backoff, and
 * which failures are worth another attempt. One place for all of it, shared by
 * requests, resumed downloads and restarted uploads.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { RegistryError, errorCodes } from './errors.ts';

export interface RetryPolicy {
  /** Tries in all, the first included (also the bound on resuming one download). Default 5. */
  attempts: number;
  /** First backoff; doubles each time (with jitter). Default 250 ms. */
  baseDelayMs: number;
  /** Cap on one backoff. Default 10 s. */
  maxDelayMs: number;
  /** Cap on a server's `Retry-After`. Default 60 s. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { attempts: 5, baseDelayMs: 250, maxDelayMs: 10_000, maxRetryAfterMs: 60_000 };

/** Statuses another attempt may fix. */
export const RETRYABLE_STATUS: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504]);

/** Connection-level failures another attempt may fix (resets, refusals, socket errors, our inactivity timeout). */
const RETRYABLE_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'REGISTRY_IDLE_TIMEOUT',
]);

/**
 * Whether a failure of a request or of a body being read is worth another
 * attempt, with the error codes of its cause chain. A RegistryError has been
 * judged already: its `retryable` decides. Otherwise a connection-level code
 * decides; a `fetch failed` with no code anywhere is taken as a network failure.
 */
export function judgeFailure(error: unknown): { retryable: boolean; codes: string[] } {
  if (error instanceof RegistryError) return { retryable: error.retryable, codes: error.codes };
  const codes = errorCodes(error);
  const retryable = codes.some((c) => RETRYABLE_CODES.has(c)) || (error instanceof TypeError && codes.length === 0);
  return { retryable, codes };
}

/** Exponential backoff with jitter for the attempt that just failed (1-based), capped by `maxDelayMs`. */
export function backoffDelay(policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>, attempt: number): number {
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(exp / 2 + (Math.random() * exp) / 2);
}

/** Wait `ms`, or less when `signal` aborts (never rejects: callers check the signal afterwards). */
export async function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  await sleep(ms, undefined, signal ? { signal } : undefined).catch(() => {});
}
