import { BackendSelectionError } from '@cnb-extender/backend-catalog';
import { EXIT_CODE_TABLE, ExtenderError, fail, FlagError } from '@cnb-extender/platform';
import { describe, expect, it } from 'vitest';
import { EXIT_CODE_BY_ERROR, exitCodeOf } from './exit-codes.ts';

describe('the code → exit-code table', () => {
  it('pins every code to the exit code the lifecycle uses', () => {
    expect(EXIT_CODE_BY_ERROR).toEqual({
      FAILED: 1,
      INVALID_FLAG: 2,
      INVALID_INPUT: 3,
      DEPRECATED_SURFACE: 3,
      PLATFORM_API_UNSUPPORTED: 11,
      EXTENSION_API_UNSUPPORTED: 12,
      BACKEND_SELECTION_FAILED: 3,
      PRIVILEGES_MISSING: 102,
      ANALYZED_INVALID: 1,
      GROUP_INVALID: 1,
      EXTEND_CONFIG_INVALID: 102,
      DOCKERFILE_DIR_MISSING: 102,
      DOCKERFILE_INVALID: 102,
      CONTEXT_CONFLICT: 102,
      CONTEXT_UNREADABLE: 102,
      BACKEND_UNSUPPORTED: 102,
      BASE_IMAGE: 102,
      APPLY_FAILED: 102,
      ROOT_USER: 102,
      OUTPUT_FAILED: 102,
      CLEANUP_FAILED: 102,
      ABORTED: 102,
      FINISH_FAILED: 102,
      BUILD_HANDOFF_FAILED: 1,
      UPSTREAM_FAILED: 1,
    });
  });

  it('uses only exit codes the lifecycle documents', () => {
    const documented = EXIT_CODE_TABLE.filter((entry) => !entry.reserved).map((entry) => entry.code);
    for (const [code, exit] of Object.entries(EXIT_CODE_BY_ERROR)) expect(documented, code).toContain(exit);
  });
});

describe('#exitCodeOf', () => {
  it('maps an ExtenderError through the table, whatever its message or class', () => {
    expect(exitCodeOf(new ExtenderError('APPLY_FAILED', 'failed to extend run image: applying Dockerfile for x: RUN exit 3'))).toBe(102);
    expect(exitCodeOf(fail('PLATFORM_API_UNSUPPORTED', 'set platform API'))).toBe(11);
    expect(exitCodeOf(fail('EXTENSION_API_UNSUPPORTED', "set API for Extension 'x@1'"))).toBe(12);
    expect(exitCodeOf(fail('INVALID_INPUT', 'parse arguments'))).toBe(3);
    expect(exitCodeOf(new FlagError('flag provided but not defined: -x', 'Usage:\n'))).toBe(2);
    expect(exitCodeOf(new BackendSelectionError('kaniko', 'unknown', 'unknown backend "kaniko"'))).toBe(3);
  });

  it('is 1 for anything else and 0 for no error', () => {
    expect(exitCodeOf(new Error('x'))).toBe(1);
    expect(exitCodeOf('a string')).toBe(1);
    expect(exitCodeOf(Object.assign(new Error('x'), { code: 'APPLY_FAILED' }))).toBe(1);
    expect(exitCodeOf(undefined)).toBe(0);
    expect(exitCodeOf(null)).toBe(0);
  });
});
