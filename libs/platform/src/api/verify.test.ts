import { describe, expect, it } from 'vitest';
import { ExtenderError, renderError } from '../errors.ts';
import { createApiList, PLATFORM_APIS } from './apis.ts';
import { parseDeprecationMode, verifyBuildpackApi, verifyPlatformApi } from './verify.ts';

function thrown(fn: () => unknown): ExtenderError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ExtenderError) return err;
    throw err;
  }
  throw new Error('expected an ExtenderError');
}

describe('#verifyPlatformApi', () => {
  it('returns the parsed version for a supported API', () => {
    const { api, notices } = verifyPlatformApi('0.13');
    expect(api.toString()).toBe('0.13');
    expect(notices).toEqual([]);
  });

  describe('when CNB_PLATFORM_API is missing', () => {
    it.each([undefined, '', '  '])('fails asking to set it (%j)', (value) => {
      const err = thrown(() => verifyPlatformApi(value));
      expect(err.code).toBe('PLATFORM_API_UNSUPPORTED');
      expect(renderError(err)).toBe(
        "ERROR: failed to get platform API version; please set 'CNB_PLATFORM_API' to specify the desired platform API version\n",
      );
    });
  });

  it('fails for an unparsable version', () => {
    const err = thrown(() => verifyPlatformApi('latest'));
    expect(err.code).toBe('PLATFORM_API_UNSUPPORTED');
    expect(err.message).toBe("failed to parse platform API 'latest'");
  });

  it('fails for an unsupported version', () => {
    const err = thrown(() => verifyPlatformApi('0.16'));
    expect(err.code).toBe('PLATFORM_API_UNSUPPORTED');
    expect(err.message).toBe("failed to set platform API: platform API version '0.16' is incompatible with the lifecycle");
  });

  describe('when the API predates the extend phase', () => {
    it('the extender rejects it by default', () => {
      expect(thrown(() => verifyPlatformApi('0.9')).code).toBe('PLATFORM_API_UNSUPPORTED');
    });
    it('the full lifecycle list accepts it', () => {
      expect(verifyPlatformApi('0.9', { apis: PLATFORM_APIS }).api.toString()).toBe('0.9');
    });
  });

  describe('when the API is deprecated', () => {
    const apis = createApiList(['0.10', '0.11'], ['0.10']);
    it('warns in warn mode', () => {
      expect(verifyPlatformApi('0.10', { apis, deprecationMode: 'warn' }).notices).toEqual([
        { level: 'warn', message: "Platform requested deprecated API '0.10'" },
      ]);
    });
    it('is silent in quiet mode', () => {
      expect(verifyPlatformApi('0.10', { apis, deprecationMode: 'quiet' }).notices).toEqual([]);
    });
    it('fails in error mode, with the reasons as details', () => {
      const err = thrown(() => verifyPlatformApi('0.10', { apis, deprecationMode: 'error' }));
      expect(err.code).toBe('PLATFORM_API_UNSUPPORTED');
      expect(err.details).toEqual(["Platform requested deprecated API '0.10'", 'Deprecated APIs are disabled by CNB_DEPRECATION_MODE=error']);
    });
  });
});

describe('#verifyBuildpackApi', () => {
  it('accepts a supported extension API', () => {
    expect(verifyBuildpackApi('Extension', 'curl@0.0.1', '0.10').api.toString()).toBe('0.10');
  });

  it('fails with the lifecycle message for an unsupported API', () => {
    const err = thrown(() => verifyBuildpackApi('Extension', 'curl@0.0.1', '0.2'));
    expect(err.code).toBe('EXTENSION_API_UNSUPPORTED');
    expect(renderError(err)).toBe("ERROR: failed to set API for Extension 'curl@0.0.1': buildpack API version '0.2' is incompatible with the lifecycle\n");
  });

  it.each([undefined, '', 'x.y'])('fails for an unparsable API (%j)', (value) => {
    const err = thrown(() => verifyBuildpackApi('Extension', 'curl@0.0.1', value));
    expect(err.code).toBe('EXTENSION_API_UNSUPPORTED');
    expect(err.message).toBe(`failed to parse buildpack API '${value ?? ''}' for extension 'curl@0.0.1'`);
  });

  it('warns about a deprecated API in warn mode and fails in error mode', () => {
    const apis = createApiList(['0.9', '0.10'], ['0.9']);
    expect(verifyBuildpackApi('Buildpack', 'a@1', '0.9', { apis }).notices).toEqual([
      { level: 'warn', message: "Buildpack 'a@1' requests deprecated API '0.9'" },
    ]);
    expect(thrown(() => verifyBuildpackApi('Buildpack', 'a@1', '0.9', { apis, deprecationMode: 'error' })).code).toBe('EXTENSION_API_UNSUPPORTED');
  });
});

describe('#parseDeprecationMode', () => {
  it('defaults to warn for unset and unknown values', () => {
    expect(parseDeprecationMode(undefined)).toBe('warn');
    expect(parseDeprecationMode('loud')).toBe('warn');
    expect(parseDeprecationMode('quiet')).toBe('quiet');
    expect(parseDeprecationMode('error')).toBe('error');
  });
});
