import { describe, expect, it } from 'vitest';
import {
  ApiListError,
  BUILDPACK_APIS,
  createApiList,
  EXTEND_PLATFORM_APIS,
  PLATFORM_APIS,
  platformFeatures,
  supportsExtension,
} from './apis.ts';

describe('API lists', () => {
  it('the lifecycle accepts Platform API 0.7–0.15', () => {
    expect(PLATFORM_APIS.supportedStrings()).toEqual(['0.7', '0.8', '0.9', '0.10', '0.11', '0.12', '0.13', '0.14', '0.15']);
    expect(PLATFORM_APIS.deprecatedStrings()).toEqual([]);
    expect(PLATFORM_APIS.latest().toString()).toBe('0.15');
    expect(PLATFORM_APIS.oldest().toString()).toBe('0.7');
  });

  it('the extend phase exists from 0.10, and every extend API is a lifecycle API', () => {
    expect(EXTEND_PLATFORM_APIS.supportedStrings()).toEqual(['0.10', '0.11', '0.12', '0.13', '0.14', '0.15']);
    for (const api of EXTEND_PLATFORM_APIS.supported) expect(PLATFORM_APIS.isSupported(api)).toBe(true);
    expect(supportsExtension('0.9')).toBe(false);
    expect(supportsExtension('0.10')).toBe(true);
    expect(supportsExtension('0.16')).toBe(false);
  });

  it('Buildpack APIs 0.7–0.12', () => {
    expect(BUILDPACK_APIS.supportedStrings()).toEqual(['0.7', '0.8', '0.9', '0.10', '0.11', '0.12']);
    expect(BUILDPACK_APIS.isSupported('0.6')).toBe(false);
    expect(BUILDPACK_APIS.isSupported('v0.12')).toBe(true);
  });

  describe('#createApiList', () => {
    it('a supported 1.x serves lower minors, deprecated majors cover every minor', () => {
      const apis = createApiList(['0.9', '1.3'], ['1']);
      expect(apis.isSupported('1.2')).toBe(true);
      expect(apis.isSupported('1.4')).toBe(false);
      expect(apis.isDeprecated('1.2')).toBe(true);
      expect(apis.isDeprecated('0.9')).toBe(false);
    });

    it('rejects deprecated versions that are not supported or are 1.x minors', () => {
      expect(() => createApiList(['0.9'], ['0.8'])).toThrow(ApiListError);
      expect(() => createApiList(['0.9'], ['0.8'])).toThrow("invalid deprecated API '0.8': all deprecated APIs must also be supported");
      expect(() => createApiList(['1.2'], ['1.1'])).toThrow('deprecated APIs may only contain 0.x or a major version');
      expect(() => createApiList([])).toThrow(ApiListError);
    });
  });

  describe('#platformFeatures', () => {
    it('gates extend behaviour by version', () => {
      expect(platformFeatures('0.11')).toEqual({ extension: true, extendKindFlag: false, perExtensionGeneratedLayout: false, execEnv: false });
      expect(platformFeatures('0.12').extendKindFlag).toBe(true);
      expect(platformFeatures('0.12').perExtensionGeneratedLayout).toBe(false);
      expect(platformFeatures('0.13').perExtensionGeneratedLayout).toBe(true);
      expect(platformFeatures('0.15').execEnv).toBe(true);
    });
  });
});
