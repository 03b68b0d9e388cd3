import { ExtenderError } from '@cnb-extender/platform';

/** The action of every selection error: `failed to select backend: …`. */
export const SELECT_BACKEND_ACTION = 'select backend';

/**
 * A backend cannot be used: the id is unknown, its package is not part of this build, the
 * package does not provide a backend, or a `-backend-opt` setting does not fit it. Code
 * `BACKEND_SELECTION_FAILED` (the CLIs exit 3, invalid arguments): the phase has not started,
 * nothing was changed, and the platform must pass another `-backend` or other settings. The
 * subclass carries the backend id and the reason for callers that tell them apart.
 */
export class BackendSelectionError extends ExtenderError {
  override name = 'BackendSelectionError';
  readonly backendId: string;
  readonly reason: 'unknown' | 'unavailable' | 'invalid' | 'setting';

  constructor(backendId: string, reason: 'unknown' | 'unavailable' | 'invalid' | 'setting', message: string, cause?: unknown) {
    super('BACKEND_SELECTION_FAILED', `failed to ${SELECT_BACKEND_ACTION}: ${message}`, { action: SELECT_BACKEND_ACTION, ...(cause === undefined ? {} : { cause }) });
    this.backendId = backendId;
    this.reason = reason;
  }
}
