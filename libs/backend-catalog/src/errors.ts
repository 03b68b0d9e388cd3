import { EXIT_CODES, LifecycleError } from '@cnb-extender/platform';

/** The action of every selection error: `failed to select backend: …`. */
export const SELECT_BACKEND_ACTION = 'select backend';

/**
 * A backend cannot be used: the id is unknown, its package is not part of this build, the
 * package does not provide a backend, or a `-backend-opt` setting does not fit it. Exit code 3
 * (invalid arguments): the phase has not started, nothing was changed, and the platform must
 * pass another `-backend` or other settings.
 */
export class BackendSelectionError extends LifecycleError {
  override name = 'BackendSelectionError';
  readonly backendId: string;
  readonly reason: 'unknown' | 'unavailable' | 'invalid' | 'setting';

  constructor(backendId: string, reason: 'unknown' | 'unavailable' | 'invalid' | 'setting', message: string, cause?: unknown) {
    super(EXIT_CODES.invalidArgs, `failed to ${SELECT_BACKEND_ACTION}: ${message}`, { action: SELECT_BACKEND_ACTION, ...(cause === undefined ? {} : { cause }) });
    this.backendId = backendId;
    this.reason = reason;
  }
}
