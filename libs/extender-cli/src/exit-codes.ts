/**
 * The one table from error code to process exit code, read only by the CLIs (this package and
 * the apps; `tools/ci` keeps libraries from importing the CLI layer). The numbers are the
 * lifecycle's (`EXIT_CODES`, libs/platform): errors while initialising the extender
 * (analyzed.toml, group.toml) are generic (1), bad flags 2, bad arguments or inputs 3, API
 * checks 11/12, everything during extension 102. A signal that ended the run keeps its own
 * exit code (`exitCodeForSignal`).
 */
import { EXIT_CODES, ExtenderError, type ErrorCode } from '@cnb-extender/platform';

export const EXIT_CODE_BY_ERROR: Readonly<Record<ErrorCode, number>> = Object.freeze({
  FAILED: EXIT_CODES.failed,
  INVALID_FLAG: EXIT_CODES.invalidFlags,
  INVALID_INPUT: EXIT_CODES.invalidArgs,
  DEPRECATED_SURFACE: EXIT_CODES.invalidArgs,
  PLATFORM_API_UNSUPPORTED: EXIT_CODES.incompatiblePlatformApi,
  EXTENSION_API_UNSUPPORTED: EXIT_CODES.incompatibleBuildpackApi,
  BACKEND_SELECTION_FAILED: EXIT_CODES.invalidArgs,
  PRIVILEGES_MISSING: EXIT_CODES.extendError,
  ANALYZED_INVALID: EXIT_CODES.failed,
  GROUP_INVALID: EXIT_CODES.failed,
  EXTEND_CONFIG_INVALID: EXIT_CODES.extendError,
  DOCKERFILE_DIR_MISSING: EXIT_CODES.extendError,
  DOCKERFILE_INVALID: EXIT_CODES.extendError,
  CONTEXT_CONFLICT: EXIT_CODES.extendError,
  CONTEXT_UNREADABLE: EXIT_CODES.extendError,
  BACKEND_UNSUPPORTED: EXIT_CODES.extendError,
  BASE_IMAGE: EXIT_CODES.extendError,
  APPLY_FAILED: EXIT_CODES.extendError,
  ROOT_USER: EXIT_CODES.extendError,
  OUTPUT_FAILED: EXIT_CODES.extendError,
  CLEANUP_FAILED: EXIT_CODES.extendError,
  ABORTED: EXIT_CODES.extendError,
  FINISH_FAILED: EXIT_CODES.extendError,
  BUILD_HANDOFF_FAILED: EXIT_CODES.failed,
  UPSTREAM_FAILED: EXIT_CODES.failed,
});

/** The exit code for a thrown value: its code's through the table when it is an ExtenderError, else 1 (0 for none). */
export function exitCodeOf(err: unknown): number {
  if (err === undefined || err === null) return EXIT_CODES.success;
  if (err instanceof ExtenderError) return EXIT_CODE_BY_ERROR[err.code];
  return EXIT_CODES.failed;
}
